"""Benchmark phases, each run in a fresh child process: `python -m eval.bench_phases '<json>'`.

A child measures one thing and prints one JSON line. Fresh processes make each phase's peak memory
(ru_maxrss) its own and keep a cold phase cold; CPU seconds (user+sys, self and children) are
reported next to wall seconds because the machine may be shared: wall time moves with the load
average, CPU time much less. Only public APIs of the product are used.

Phases:
- `ingest`: full ingest into an empty index, no-change re-ingest, one-entry edit (`full=False`
  skips the first, for an index that already exists, e.g. served by `chroma run`);
- `query`: retriever load (first = builds the token cache; then warm; only warm with `cache_warm`,
  when an earlier phase built the cache in this data dir), then warm query latency
  p50/p95 per configuration: hybrid (the default weights), BM25 only, dense only;
- `features`: offline grader build and grading latency; offline interview turns (`Interview.answer`);
- `interview_llm`: interview turns with the LLM grader and LLM follow-ups against a loopback
  OpenAI-protocol server started in this process (what our code adds around a model: prompt building,
  the openai/LangChain client, JSON parsing and checking);
- `profile`: cProfile of a full ingest and of the query loop, summarised (see docs/PERFORMANCE.md).
"""

from __future__ import annotations

import cProfile
import gc
import io
import json
import pstats
import resource
import statistics
import sys
import time
from pathlib import Path

from eval.bench_corpus import answer_for, bench_queries

CONFIGS = {"hybrid": None, "bm25": {"head": 0.45, "body": 0.30}, "dense": {"dense": 1.0}}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def latency(times_ms: list[float]) -> dict:
    return {"n": len(times_ms), "p50_ms": statistics.median(times_ms) if times_ms else float("nan"),
            "p95_ms": percentile(times_ms, 0.95), "mean_ms": statistics.fmean(times_ms) if times_ms else float("nan")}


def settings_for(a: dict, **extra):
    from tutor.settings import Settings

    return Settings(corpus_dir=Path(a["corpus"]), data_dir=Path(a["data_dir"]), chroma_url=a.get("chroma_url"),
                    **extra)


def timed(fn):
    t, c = time.perf_counter(), cpu_s()
    out = fn()
    return out, time.perf_counter() - t, cpu_s() - c


def edit_one_entry(corpus: Path) -> None:
    """Change one entry's answer (the first topic file's first entry), as an author would."""
    from tutor.corpus import corpus_files

    target = corpus_files(corpus)[0]
    text = target.read_text(encoding="utf-8")
    target.write_text(text.replace("### 答案\n", f"### 答案\n（基准测试改动 {time.time_ns()}）\n", 1), encoding="utf-8")


def phase_ingest(a: dict) -> dict:
    from ingest.pipeline import ingest_corpus

    settings = settings_for(a)
    out: dict = {}
    if a.get("full", True):
        full, wall, cpu = timed(lambda: ingest_corpus(settings, progress=False, strict=False, workers=a.get("workers")))
        out.update(entries=full.entries, chunks=full.chunks, full_s=wall, full_cpu_s=cpu, full_embedded=full.added)
    again, wall, cpu = timed(lambda: ingest_corpus(settings, progress=False, strict=False))
    out.update(entries=again.entries, chunks=again.chunks, no_change_s=wall, no_change_cpu_s=cpu,
               no_change_embedded=again.added)
    edit_one_entry(Path(a["corpus"]))
    edit, wall, cpu = timed(lambda: ingest_corpus(settings, progress=False, strict=False))
    out.update(edit_s=wall, edit_cpu_s=cpu, edit_embedded=edit.added, edit_deleted=edit.deleted)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {**out, "peak_mb": peak_mb(), "worker_peak_mb": kids}


def phase_query(a: dict) -> dict:
    from tutor.retriever import load_retriever

    settings = settings_for(a)
    if a.get("cache_warm"):  # the token cache was built by an earlier phase on this data dir
        retriever, warm_s, _ = timed(lambda: load_retriever(settings))
        first_s = first_cpu = None
    else:
        first, first_s, first_cpu = timed(lambda: load_retriever(settings))  # builds the token cache
        del first
        gc.collect()  # (the peak stays that of the larger of the two loads, not of both alive at once)
        retriever, warm_s, _ = timed(lambda: load_retriever(settings))  # token cache on disk, imports done
    queries = bench_queries(Path(a["queries_from"]), a["n"])
    index = retriever.index
    out = {"entries": len(index.entries), "load_first_s": first_s, "load_first_cpu_s": first_cpu,
           "load_warm_s": warm_s, "configs": {}}
    for name, weights in CONFIGS.items():
        for q in queries[:20]:  # warm-up: jieba, Chroma's caches
            index.search(q, 5, weights=weights)
        times = []
        for q in queries:
            t = time.perf_counter()
            index.search(q, 5, weights=weights)
            times.append((time.perf_counter() - t) * 1000)
        out["configs"][name] = latency(times)
    return {**out, "peak_mb": peak_mb()}


def _interview_turns(corpus, grader, turns: int, llm=None) -> list[float]:
    from tutor.interview import Interview, InterviewConfig

    times: list[float] = []
    i = 0
    while len(times) < turns:
        session = Interview.start_new(corpus, grader, InterviewConfig(n_questions=10, max_follow_ups=1, seed=i),
                                      llm=llm)
        session.opening()
        while not session.state.finished and len(times) < turns:
            turn = session.current
            entry = corpus.get(turn.entry_id)
            t = time.perf_counter()
            session.answer(answer_for(entry, i))
            times.append((time.perf_counter() - t) * 1000)
            i += 1
    return times


def phase_features(a: dict) -> dict:
    from tutor.corpus import load_corpus
    from tutor.grading import build_grader

    settings = settings_for(a, grader="offline")
    corpus = load_corpus(settings.corpus_dir, strict=False, cache_dir=settings.data_dir / "cache")
    grader, build_s, build_cpu = timed(lambda: build_grader(settings, corpus))
    entries = corpus.entries
    for i in range(5):  # warm-up
        grader.grade(entries[i % len(entries)], answer_for(entries[i % len(entries)], i))
    times = []
    for i in range(a["n"]):
        e = entries[(i * 7919) % len(entries)]
        ans = answer_for(e, i)
        t = time.perf_counter()
        grader.grade(e, ans)
        times.append((time.perf_counter() - t) * 1000)
    turns = _interview_turns(corpus, grader, a["turns"])
    return {"entries": len(entries), "grader_build_s": build_s, "grader_build_cpu_s": build_cpu,
            "grade": latency(times), "interview_offline": latency(turns), "peak_mb": peak_mb()}


def phase_interview_llm(a: dict) -> dict:
    from eval.bench_servers import LoopbackLLM
    from tutor.corpus import load_corpus
    from tutor.grading import build_grader

    with LoopbackLLM(delay=a.get("llm_delay", 0.0)) as server:
        settings = settings_for(a, llm_model="bench-model", llm_base_url=server.url, llm_api_key="bench-key",
                                grader="llm", llm_max_retries=0)
        corpus = load_corpus(settings.corpus_dir, strict=False, cache_dir=settings.data_dir / "cache")
        grader, build_s, _ = timed(lambda: build_grader(settings, corpus))
        _interview_turns(corpus, grader, 3, llm=grader.llm)  # warm-up: LangChain, the HTTP pool
        before = server.requests
        turns = _interview_turns(corpus, grader, a["turns"], llm=grader.llm)
        calls = server.requests - before
    return {"grader_build_s": build_s, "interview_llm": latency(turns), "llm_calls_per_turn": calls / len(turns),
            "llm_delay_s": a.get("llm_delay", 0.0), "peak_mb": peak_mb()}


def _summary(prof: cProfile.Profile, top: int) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def phase_profile(a: dict) -> dict:
    """cProfile of the slowest paths: a full ingest (serial, so the profile sees the embedding) and
    the hybrid query loop. Written to text files next to the results."""
    from ingest.pipeline import ingest_corpus
    from tutor.retriever import load_retriever

    settings = settings_for(a)
    out_dir = Path(a["out_dir"])
    prof = cProfile.Profile()
    prof.enable()
    report = ingest_corpus(settings, progress=False, strict=False, workers=1)
    prof.disable()
    (out_dir / "profile-ingest.txt").write_text(_summary(prof, 25), encoding="utf-8")
    retriever = load_retriever(settings)
    queries = bench_queries(Path(a["queries_from"]), a["n"])
    for q in queries[:20]:
        retriever.search(q, 5)
    prof = cProfile.Profile()
    prof.enable()
    for q in queries:
        retriever.search(q, 5)
    prof.disable()
    (out_dir / "profile-query.txt").write_text(_summary(prof, 25), encoding="utf-8")
    return {"chunks": report.chunks, "files": ["profile-ingest.txt", "profile-query.txt"], "peak_mb": peak_mb()}


PHASES = {"ingest": phase_ingest, "query": phase_query, "features": phase_features,
          "interview_llm": phase_interview_llm, "profile": phase_profile}


if __name__ == "__main__":
    args = json.loads(sys.argv[1])
    print(json.dumps(PHASES[args["phase"]](args)))
