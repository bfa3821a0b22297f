"""The benchmark's table (stdout) and plot (PNG) from its results dict.

Table: one row per figure, one column per corpus size and vector store (1x/10x/100x, embedded /
server); a missing figure prints as "-". Then the load test, the costs of each part, and the load
average seen during the run (the machine may be shared: wall figures move with it).
Plot: cost against corpus size (log-log), embedded solid and server dashed: ingest times, query
latency, peak memory, and the per-request features (grading, interview turn, cold start).
"""

from __future__ import annotations

from pathlib import Path


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or d.get(k) is None:
            return None
        d = d[k]
    return d


def _fmt(v, unit: str = "", digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:  # nan
            return "-"
        v = f"{v:.{digits}f}"
    return f"{v}{unit}"


ROWS = [  # label, path in one (size, backend) slot, unit, digits
    ("entries / chunks", None, "", 0),
    ("full ingest (wall s)", ("ingest", "full_s"), " s", 1),
    ("full ingest (CPU s)", ("ingest", "full_cpu_s"), " s", 1),
    ("no-change re-ingest", ("ingest", "no_change_s"), " s", 2),
    ("one-entry edit", ("ingest", "edit_s"), " s", 2),
    ("ingest peak memory", ("ingest", "peak_mb"), " MB", 0),
    ("retriever load (first)", ("query", "load_first_s"), " s", 2),
    ("retriever load (warm)", ("query", "load_warm_s"), " s", 2),
    ("query hybrid p50", ("query", "configs", "hybrid", "p50_ms"), " ms", 2),
    ("query hybrid p95", ("query", "configs", "hybrid", "p95_ms"), " ms", 2),
    ("query BM25 p50", ("query", "configs", "bm25", "p50_ms"), " ms", 2),
    ("query BM25 p95", ("query", "configs", "bm25", "p95_ms"), " ms", 2),
    ("query dense p50", ("query", "configs", "dense", "p50_ms"), " ms", 2),
    ("query dense p95", ("query", "configs", "dense", "p95_ms"), " ms", 2),
    ("query peak memory", ("query", "peak_mb"), " MB", 0),
    ("grader build", ("features", "grader_build_s"), " s", 2),
    ("grading p50", ("features", "grade", "p50_ms"), " ms", 1),
    ("grading p95", ("features", "grade", "p95_ms"), " ms", 1),
    ("interview turn offline p50", ("features", "interview_offline", "p50_ms"), " ms", 1),
    ("interview turn offline p95", ("features", "interview_offline", "p95_ms"), " ms", 1),
    ("grading+interview peak mem", ("features", "peak_mb"), " MB", 0),
    ("interview turn LLM p50", ("interview_llm", "interview_llm", "p50_ms"), " ms", 1),
    ("interview turn LLM p95", ("interview_llm", "interview_llm", "p95_ms"), " ms", 1),
    ("LLM-mode peak memory", ("interview_llm", "peak_mb"), " MB", 0),
    ("app cold start to HTTP 200", ("cold_start", "seconds"), " s", 1),
    ("app peak memory", ("cold_start", "peak_mb"), " MB", 0),
    ("chroma server peak memory", ("server_peak_mb",), " MB", 0),
]


def columns(results: dict) -> list[tuple[str, dict]]:
    cols = []
    for size in sorted(results.get("sizes", {}), key=lambda s: int(s.rstrip("x"))):
        for backend in ("embedded", "server"):
            slot = results["sizes"][size].get(backend)
            if slot:
                cols.append((f"{size} {'emb' if backend == 'embedded' else 'srv'}", slot))
    return cols


def table(results: dict) -> list[str]:
    cols = columns(results)
    lines = []
    for label, path, unit, digits in ROWS:
        cells = []
        for _, slot in cols:
            if path is None:
                ing = slot.get("ingest") or {}
                cells.append(f"{ing.get('entries', '-')}/{ing.get('chunks', '-')}")
            else:
                cells.append(_fmt(_get(slot, *path), unit, digits))
        if any(c not in ("-", "-/-") for c in cells):
            lines.append([label, *cells])
    head = ["figure", *[c[0] for c in cols]]
    widths = [max(len(str(r[i])) for r in [head, *lines]) for i in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return [fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)]


def print_report(results: dict) -> None:
    m = results.get("machine", {})
    print(f"machine: {m.get('cpu', '?')}, {m.get('cpus')} CPUs, {m.get('mem_gb', '?')} GB, "
          f"Python {m.get('python')}, {m.get('platform')}")
    loads = [la[1] for la in results.get("load_avg", [])]
    if loads:
        print(f"load average (1 min) during the run: min {min(loads):.2f}, max {max(loads):.2f}")
    print()
    for line in table(results):
        print(line)
    load = results.get("load")
    if load:
        print(f"\nload test: interview turns via gradio_client on 127.0.0.1 (app peak {_fmt(load.get('app_peak_mb'), ' MB', 0)}; "
              f"first call, which builds the grader: {_fmt(load.get('first_call_s'), ' s', 1)})")
        print(f"{'users':>5}  {'calls':>6}  {'calls/s':>7}  {'p50':>9}  {'p95':>9}  {'errors':>6}")
        for lv in load["levels"]:
            print(f"{lv['users']:>5}  {lv['calls']:>6}  {lv['throughput_per_s']:>7.1f}  {_fmt(lv['p50_ms'], ' ms', 0):>9}  "
                  f"{_fmt(lv['p95_ms'], ' ms', 0):>9}  {lv['errors']:>6}")
            for sample in lv.get("error_samples", []):
                print(f"       error: {sample}")
    if results.get("profile"):
        print(f"\nprofiles: {', '.join(results['profile'].get('files', []))} (next to bench.json)")
    print("\ncost of each part (wall s): " + ", ".join(f"{k} {v}" for k, v in results.get("costs", {}).items()))
    print(f"total: {results.get('total_s')} s")
    for name, why in (results.get("failures") or {}).items():
        print(f"FAILED {name}: {why[-400:]}")


SERIES = [  # panel, label, path, unit
    (0, "full ingest", ("ingest", "full_s")), (0, "no-change re-ingest", ("ingest", "no_change_s")),
    (0, "one-entry edit", ("ingest", "edit_s")), (0, "retriever load (first)", ("query", "load_first_s")),
    (1, "hybrid p50", ("query", "configs", "hybrid", "p50_ms")), (1, "hybrid p95", ("query", "configs", "hybrid", "p95_ms")),
    (1, "BM25 p50", ("query", "configs", "bm25", "p50_ms")), (1, "dense p50", ("query", "configs", "dense", "p50_ms")),
    (2, "ingest", ("ingest", "peak_mb")), (2, "query", ("query", "peak_mb")), (2, "app", ("cold_start", "peak_mb")),
    (3, "grading p50 (ms)", ("features", "grade", "p50_ms")),
    (3, "interview turn p50 (ms)", ("features", "interview_offline", "p50_ms")),
    (3, "cold start (s)", ("cold_start", "seconds")), (3, "grader build (s)", ("features", "grader_build_s")),
]
PANELS = ["ingest and load time (s)", "query latency (ms)", "peak memory (MB)", "per-request features"]


def write_plot(results: dict, path: Path) -> Path | None:
    sizes = sorted(results.get("sizes", {}), key=lambda s: int(s.rstrip("x")))
    if len(sizes) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    for (panel, label, keys) in SERIES:
        ax = axes.flat[panel]
        for backend, style in (("embedded", "-o"), ("server", "--s")):
            xs, ys = [], []
            for size in sizes:
                slot = results["sizes"][size].get(backend) or {}
                y = _get(slot, *keys)
                entries = _get(slot, "ingest", "entries") or _get(results["sizes"][size], "embedded", "ingest", "entries")
                if y is not None and entries and y == y and y > 0:
                    xs.append(entries)
                    ys.append(y)
            if xs:
                ax.plot(xs, ys, style, label=f"{label} ({'emb' if backend == 'embedded' else 'srv'})",
                        color=f"C{SERIES.index((panel, label, keys)) % 10}")
    for ax, title in zip(axes.flat, PANELS):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("entries in corpus")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    m = results.get("machine", {})
    fig.suptitle(f"llm-interview-tutor: cost against corpus size ({m.get('cpus')} CPUs, {results.get('started')})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
