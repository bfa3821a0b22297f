"""Benchmarks: `python -m eval.bench` prints a table and writes JSON. No timed tests anywhere else.

Each phase runs in a fresh child process, so its peak memory (ru_maxrss) is its own, and a cold
phase really is cold. Phases:
- `ingest`: full ingest into an empty data dir, then a no-change re-ingest, then a one-entry edit;
- `query`: warm query latency p50/p95 over N queries (syllabus wording + labelled eval queries),
  after one warm-up pass.
The figures are measured on the real corpus with the offline default unless settings say otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def bench_queries(corpus_dir: Path, n: int) -> list[str]:
    queries: list[str] = []
    for path in sorted((corpus_dir / "syllabus").glob("*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^-\s+(.+?)\s+(?:→|->)", line.strip())
            if m:
                queries.append(m.group(1))
    labelled = ROOT / "eval" / "data" / "queries.jsonl"
    if labelled.exists():
        for line in labelled.read_text(encoding="utf-8").splitlines():
            if line.strip():
                queries.append(json.loads(line)["query"])
    if not queries:
        queries = ["注意力为什么除以根号d"]
    return [queries[i % len(queries)] for i in range(n)]


def phase_ingest(corpus_dir: Path, data_dir: Path) -> dict:
    from ingest.pipeline import ingest_corpus
    from tutor.settings import Settings

    work = data_dir / "corpus"
    shutil.copytree(corpus_dir, work, dirs_exist_ok=True)
    settings = Settings(corpus_dir=work, data_dir=data_dir)
    full = ingest_corpus(settings, progress=False, strict=False)
    again = ingest_corpus(settings, progress=False, strict=False)
    target = next(p for p in sorted(work.rglob("*.md")) if p.name != "README.md" and "syllabus" not in p.parts)
    text = target.read_text(encoding="utf-8")
    target.write_text(text.replace("### 答案\n", "### 答案\n（基准测试改动）\n", 1), encoding="utf-8")
    edit = ingest_corpus(settings, progress=False, strict=False)
    return {"entries": full.entries, "chunks": full.chunks,
            "full_ingest_s": full.seconds, "no_change_reingest_s": again.seconds, "no_change_embedded": again.added,
            "one_entry_edit_s": edit.seconds, "one_entry_edit_embedded": edit.added, "peak_mb": peak_mb()}


def phase_query(corpus_dir: Path, data_dir: Path, n: int) -> dict:
    from tutor.retriever import load_retriever
    from tutor.settings import Settings

    settings = Settings(corpus_dir=data_dir / "corpus", data_dir=data_dir)
    started = time.perf_counter()
    retriever = load_retriever(settings)
    load_s = time.perf_counter() - started
    queries = bench_queries(corpus_dir, n)
    for q in queries[: min(20, n)]:  # warm-up: jieba dictionary, Chroma caches
        retriever.search(q, 5)
    times = []
    for q in queries:
        t = time.perf_counter()
        retriever.search(q, 5)
        times.append((time.perf_counter() - t) * 1000)
    return {"queries": len(times), "retriever_load_s": load_s, "query_p50_ms": statistics.median(times),
            "query_p95_ms": percentile(times, 0.95), "peak_mb": peak_mb()}


def run_child(phase: str, args: argparse.Namespace, data_dir: Path) -> dict:
    cmd = [sys.executable, "-m", "eval.bench", "--phase", phase, "--corpus", str(args.corpus),
           "--data-dir", str(data_dir), "-n", str(args.n)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise RuntimeError(f"phase {phase} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.bench", description="检索与建索引的性能基准")
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("-n", type=int, default=200, help="查询次数 (default 200)")
    parser.add_argument("--json", type=Path, default=None, help="把结果写入此 JSON 文件")
    parser.add_argument("--phase", choices=["ingest", "query"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase:  # child process: one phase, one JSON line
        fn = {"ingest": lambda: phase_ingest(args.corpus, args.data_dir),
              "query": lambda: phase_query(args.corpus, args.data_dir, args.n)}[args.phase]
        print(json.dumps(fn()))
        return 0

    with tempfile.TemporaryDirectory(prefix="tutor-bench-") as tmp:
        data_dir = Path(tmp)
        results = {"machine": machine(), "ingest": run_child("ingest", args, data_dir),
                   "query": run_child("query", args, data_dir)}
    ing, q = results["ingest"], results["query"]
    rows = [
        ("corpus", f"{ing['entries']} entries, {ing['chunks']} chunks"),
        ("full ingest", f"{ing['full_ingest_s']:.2f} s (peak {ing['peak_mb']:.0f} MB)"),
        ("no-change re-ingest", f"{ing['no_change_reingest_s']:.2f} s, {ing['no_change_embedded']} chunks embedded"),
        ("one-entry edit", f"{ing['one_entry_edit_s']:.2f} s, {ing['one_entry_edit_embedded']} chunks embedded"),
        ("retriever load", f"{q['retriever_load_s']:.2f} s"),
        (f"warm query ({q['queries']})", f"p50 {q['query_p50_ms']:.2f} ms, p95 {q['query_p95_ms']:.2f} ms "
                                          f"(peak {q['peak_mb']:.0f} MB)"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"machine: {results['machine']}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
