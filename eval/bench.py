"""Benchmarks: `python -m eval.bench` measures speed, memory and growth, prints a table, writes JSON + PNG.

No timed tests anywhere else: the figures are printed and recorded, never asserted.

Parts (all by default; `--base`, `--growth`, `--load`, `--profile` select some; `--quick` is a short run):
- base (1x, the real corpus): full ingest, no-change re-ingest, one-entry edit; retriever load and
  warm query p50/p95 for hybrid, BM25-only and dense-only retrieval; offline grader build and grading
  latency; an offline interview turn; an interview turn against a loopback OpenAI-protocol server;
  cold start of `python app.py` to its first HTTP 200 (index already built); all again (ingest and
  query) through a `chroma run` server started here on 127.0.0.1;
- growth: synthetic corpora of 10x and 100x entries (`--sizes`; eval/bench_corpus.py, in a
  temp dir, never committed): the same figures, embedded and through a `chroma run` server;
- load: 1, 8 and 32 concurrent users doing interview turns through the app's gradio_client API,
  bounded in time (eval/bench_load.py);
- profile (opt-in): cProfile summaries of a full ingest and of the query loop.

Design. Each measurement runs in a fresh child process (eval/bench_phases.py) so its peak memory is
its own and a cold phase is cold; products run as real processes (app.py, chroma run) on 127.0.0.1
and are always stopped. The machine may be shared, so every part records the load average, and
phases report CPU seconds next to wall seconds.

Budget: the default run (1x, 10x and 100x embedded and server, load) takes ~9 minutes on 2 cores
(`--sizes 10` ~4 minutes); what each part cost is printed at the end and kept in the JSON (`costs`).
Half of it is 100x: its ingest (~80,000 chunks) is ~230 CPU-seconds of parsing, hashing embeddings
(spread over worker processes) and HNSW inserts, and the first retriever load tokenises 18,400
entries for BM25. At 100x the full ingest runs once, embedded; the server's 100x figures
(re-ingest, edit, queries) are measured by pointing `chroma run` at that same index directory, and
the server's full ingest is measured at 1x and 10x (`--server-full-max`). Grading and the interview
are measured up to `--features-max` (10x): their per-answer cost does not depend on corpus size;
the LLM-mode turn and the load test run at 1x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from eval.bench_corpus import make_corpus
from eval.bench_servers import AppProcess, ChromaServer, bench_env

ROOT = Path(__file__).resolve().parents[1]
PHASE_TIMEOUT = 900.0


class Bench:
    """Runs parts in order, recording results, wall costs and load averages."""

    def __init__(self, args: argparse.Namespace, tmp: Path, out_dir: Path):
        self.args, self.tmp, self.out_dir = args, tmp, out_dir
        self.results: dict = {"machine": machine(), "started": datetime.now().isoformat(timespec="seconds"),
                              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                              "sizes": {}, "costs": {}, "load_avg": []}
        self.began = time.perf_counter()

    def log(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.began:6.1f}s] {message}", file=sys.stderr, flush=True)

    def part(self, name: str, fn, *a, **kw):
        self.results["load_avg"].append([name, *[round(x, 2) for x in os.getloadavg()]])
        self.log(f"{name} ... (load average {os.getloadavg()[0]:.2f})")
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        except Exception as exc:  # noqa: BLE001 - one failed part must not lose the others' figures
            self.results.setdefault("failures", {})[name] = f"{type(exc).__name__}: {str(exc)[-1500:]}"
            self.log(f"{name} FAILED: {type(exc).__name__}: {str(exc)[-500:]}")
            return None
        finally:
            self.results["costs"][name] = round(time.perf_counter() - t, 1)

    def phase(self, name: str, data_dir: Path, **args) -> dict:
        payload = {"phase": name, "data_dir": str(data_dir), "queries_from": str(ROOT / "corpus"),
                   "n": self.args.n, "turns": self.args.turns, **args}
        proc = subprocess.run([sys.executable, "-m", "eval.bench_phases", json.dumps(payload)], cwd=self.tmp,
                              env=bench_env(data_dir, self.tmp), capture_output=True, text=True,
                              timeout=PHASE_TIMEOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"phase {name} failed:\n{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def slot(self, scale: int, backend: str) -> dict:
        return self.results["sizes"].setdefault(f"{scale}x", {}).setdefault(backend, {})

    # ---- parts -----------------------------------------------------------------------------------

    def size(self, scale: int, *, features: bool = True, llm: bool = False, cold_start: bool = True,
             server: bool = True) -> Path:
        """Everything measured at one corpus size; returns the embedded data dir (index built)."""
        base = self.tmp / f"x{scale}"
        corpus = base / "corpus"
        self.part(f"{scale}x corpus", make_corpus, ROOT / "corpus", corpus, scale)
        data = base / "data"
        emb = self.slot(scale, "embedded")
        kw = {"corpus": str(corpus)}
        emb["ingest"] = self.part(f"{scale}x embedded ingest", self.phase, "ingest", data, **kw)
        emb["query"] = self.part(f"{scale}x embedded query", self.phase, "query", data, **kw)
        if features:
            emb["features"] = self.part(f"{scale}x grading+interview", self.phase, "features", data, **kw)
        if llm:
            emb["interview_llm"] = self.part(f"{scale}x interview (LLM loopback)", self.phase, "interview_llm",
                                             data, **kw)
        if cold_start:
            emb["cold_start"] = self.part(f"{scale}x app cold start", self.cold_start, data, corpus)
        if server:
            self.server(scale, corpus, data)
        return data

    def server(self, scale: int, corpus: Path, embedded_data: Path) -> None:
        srv = self.slot(scale, "server")
        kw = {"corpus": str(corpus)}
        if scale <= self.args.server_full_max:  # full ingest through the server, into its own store
            data = self.tmp / f"x{scale}" / "data-server"
            with ChromaServer(self.tmp / f"x{scale}" / "chroma-server") as server:
                srv["ingest"] = self.part(f"{scale}x server ingest", self.phase, "ingest", data,
                                          chroma_url=server.url, **kw)
                srv["query"] = self.part(f"{scale}x server query", self.phase, "query", data, chroma_url=server.url, **kw)
                srv["server_peak_mb"] = server.peak_rss_mb()
            return
        # Serve the embedded index itself: same on-disk format; re-ingest, edit and queries through HTTP.
        with ChromaServer(embedded_data / "chroma") as server:
            srv["ingest"] = self.part(f"{scale}x server re-ingest", self.phase, "ingest", embedded_data,
                                      chroma_url=server.url, full=False, **kw)
            srv["query"] = self.part(f"{scale}x server query", self.phase, "query", embedded_data,
                                     chroma_url=server.url, cache_warm=True, **kw)
            srv["server_peak_mb"] = server.peak_rss_mb()
        srv["note"] = "full ingest not repeated through the server at this size (served the embedded index)"

    def cold_start(self, data: Path, corpus: Path, keep: bool = False):
        app = AppProcess(data, corpus, self.tmp)
        seconds = app.start()
        out = {"seconds": seconds, "peak_mb": app.peak_rss_mb()}
        if keep:
            return out, app
        app.__exit__()
        return out

    def load(self, data: Path) -> None:
        started = self.part("load: app start", self.cold_start, data, self.tmp / "x1" / "corpus", keep=True)
        if started is None:
            return
        _, app = started
        try:
            payload = {"url": app.url, "corpus": str(self.tmp / "x1" / "corpus"), "users": self.args.users,
                       "seconds": self.args.load_seconds}
            proc = self.part("load test", subprocess.run, [sys.executable, "-m", "eval.bench_load", json.dumps(payload)],
                             cwd=self.tmp, env={**bench_env(data, self.tmp)}, capture_output=True, text=True,
                             timeout=len(self.args.users) * (self.args.load_seconds + 180))
            if proc is not None and proc.returncode == 0:
                self.results["load"] = json.loads(proc.stdout.strip().splitlines()[-1])
                self.results["load"]["app_peak_mb"] = app.peak_rss_mb()
            elif proc is not None:
                self.results.setdefault("failures", {})["load test"] = proc.stderr[-2000:]
        finally:
            app.__exit__()

    def profile(self, data: Path) -> None:
        fresh = self.tmp / "x1" / "data-profile"
        self.results["profile"] = self.phase("profile", fresh, corpus=str(self.tmp / "x1" / "corpus"),
                                             out_dir=str(self.out_dir))


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        cpu = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
        info["cpu"] = cpu.split(":", 1)[1].strip()
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        info["mem_gb"] = round(int(mem.split()[1]) / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    return info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m eval.bench", description="性能基准：速度、内存、规模增长与并发")
    p.add_argument("--base", action="store_true", help="只跑 1x 的各项（建索引、检索、评分、面试、冷启动、服务器）")
    p.add_argument("--growth", action="store_true", help="只跑规模增长（合成 10x/100x 知识库）")
    p.add_argument("--load", action="store_true", help="只跑并发负载测试（含 1x 建索引）")
    p.add_argument("--profile", action="store_true", help="另外给出建索引与检索的 cProfile 摘要")
    p.add_argument("--quick", action="store_true", help="快速：1x，少量查询，短负载，不测增长和服务器")
    p.add_argument("--sizes", default="10,100", help="增长倍数，逗号分隔 (default 10,100；只要 10x 可省约 5 分钟：--sizes 10)")
    p.add_argument("--server-full-max", type=int, default=10,
                   help="在此倍数及以下，服务器模式也做完整建索引 (default 10)")
    p.add_argument("--features-max", type=int, default=10,
                   help="评分与面试在此倍数及以下测量 (default 10；评分器的语料统计随规模线性增长)")
    p.add_argument("--users", default="1,8,32", help="并发用户数，逗号分隔 (default 1,8,32)")
    p.add_argument("--load-seconds", type=float, default=20.0, help="每个并发级别的时长 (default 20)")
    p.add_argument("-n", type=int, default=200, help="每种检索配置的查询次数、评分次数 (default 200)")
    p.add_argument("--turns", type=int, default=60, help="面试轮次 (default 60)")
    p.add_argument("--out", type=Path, default=None, help="结果目录 (default: 数据目录/bench/时间戳)")
    p.add_argument("--json", type=Path, default=None, help="另外把结果 JSON 写到此文件")
    args = p.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
        args.users = [int(u) for u in args.users.split(",") if u.strip()]
    except ValueError:
        p.error("--sizes 和 --users 要用逗号分隔的正整数，例如 --sizes 10,100 --users 1,8,32")
    if any(n < 1 for n in [*args.sizes, *args.users]):
        p.error("--sizes 和 --users 要用逗号分隔的正整数，例如 --sizes 10,100 --users 1,8,32")
    if args.quick:
        args.n, args.turns, args.load_seconds = min(args.n, 50), min(args.turns, 20), min(args.load_seconds, 8.0)
        args.users = [u for u in args.users if u <= 8] or [1]
    chosen = args.base or args.growth or args.load  # --profile adds to whatever runs
    args.parts = {"base": args.base or not chosen, "growth": args.growth or (not chosen and not args.quick),
                  "load": args.load or not chosen, "profile": args.profile}
    return args


def main(argv: list[str] | None = None) -> int:
    from eval.bench_report import print_report, write_plot

    args = parse_args(argv)
    if args.out is None:
        from tutor.settings import get_settings

        args.out = get_settings().data_dir / "bench" / datetime.now().strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tutor-bench-") as tmp_name:
        tmp = Path(tmp_name)
        bench = Bench(args, tmp, args.out)
        parts = args.parts
        if parts["base"] or parts["load"] or parts["profile"]:
            full = parts["base"]
            data = bench.size(1, features=full, llm=full, cold_start=full, server=full and not args.quick)
            if parts["profile"]:
                bench.part("profile", bench.profile, data)
            if parts["load"]:
                bench.load(data)
        if parts["growth"]:
            for scale in args.sizes:
                bench.size(scale, features=scale <= args.features_max)
                shutil.rmtree(tmp / f"x{scale}", ignore_errors=True)  # 100x is ~1 GB on disk
        bench.results["load_avg"].append(["end", *[round(x, 2) for x in os.getloadavg()]])
        bench.results["total_s"] = round(time.perf_counter() - bench.began, 1)
    results = bench.results
    (args.out / "bench.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    plot = write_plot(results, args.out / "growth.png")
    print_report(results)
    print(f"\nresults: {args.out / 'bench.json'}" + (f"\nplot: {plot}" if plot else ""))
    return 1 if results.get("failures") else 0


if __name__ == "__main__":
    sys.exit(main())
