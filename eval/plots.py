"""PNG figures for the eval report (matplotlib, headless Agg backend).

Three figures, each answering one question a reader of the report asks:
- `metrics.png`: how good is each retriever configuration? Hit@1 / Recall@5 / MRR@10 / nDCG@10 /
  abstention accuracy per configuration, with the 95% bootstrap interval as error bars, one panel
  per split; the issue's goals are drawn as dashed lines.
- `topics.png`: where does it fail? Hit@1 and MRR@10 per corpus section for every configuration
  (test split, else the first split present).
- `latency.png`: what does it cost? p50 and p95 query latency per configuration.

Chinese labels need a CJK font; the first one installed of a short list is used, otherwise the
section names are shortened to their leading number (the markdown tables carry the full names).
"""

from __future__ import annotations

from pathlib import Path

CJK_FONTS = ("Noto Sans CJK SC", "WenQuanYi Zen Hei", "Source Han Sans SC", "SimHei", "Microsoft YaHei",
             "PingFang SC", "Heiti SC")
PLOTTED = ("hit@1", "recall@5", "mrr@10", "ndcg@10", "abstention_accuracy")
GOAL_LINES = {"hit@1": 0.85, "recall@5": 0.95, "mrr@10": 0.90, "abstention_accuracy": 0.8}


def _setup():
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # "findfont: weight 500" noise
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    font = next((f for f in CJK_FONTS if f in installed), None)
    if font:
        plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
        plt.rcParams["axes.unicode_minus"] = False
    return plt, font is not None


def _label(section: str, cjk: bool) -> str:
    return section if cjk else section.split(".")[0]


def plot_metrics(retrieval: dict, out: Path) -> Path:
    plt, _ = _setup()
    import numpy as np

    configs = list(retrieval["configs"])
    splits = [s for s in ("dev", "test", "all") if any(s in c["splits"] for c in retrieval["configs"].values())]
    fig, axes = plt.subplots(1, len(splits), figsize=(6.5 * len(splits), 4.6), squeeze=False, sharey=True)
    width = 0.8 / max(len(configs), 1)
    x = np.arange(len(PLOTTED))
    for ax, split in zip(axes[0], splits):
        for i, name in enumerate(configs):
            m = retrieval["configs"][name]["splits"].get(split)
            if not m:
                continue
            means = [m[k]["mean"] or 0.0 for k in PLOTTED]
            lo = [max(0.0, (m[k]["mean"] or 0) - (m[k]["ci"][0] if m[k]["ci"][0] is not None else 0)) for k in PLOTTED]
            hi = [max(0.0, (m[k]["ci"][1] if m[k]["ci"][1] is not None else 0) - (m[k]["mean"] or 0)) for k in PLOTTED]
            ax.bar(x + (i - (len(configs) - 1) / 2) * width, means, width, yerr=[lo, hi], capsize=2, label=name)
        for j, k in enumerate(PLOTTED):
            if k in GOAL_LINES:
                ax.hlines(GOAL_LINES[k], j - 0.45, j + 0.45, colors="k", linestyles="dashed", linewidth=0.8)
        ax.set_xticks(x, [k.replace("_accuracy", "") for k in PLOTTED], rotation=15)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{split} split (95% bootstrap CI; dashed = goal)")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower left")
    return _save(fig, out / "metrics.png")


def _save(fig, path: Path) -> Path:
    """Lay out, write at 120 dpi and free the figure (pyplot keeps figures alive otherwise)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_topics(retrieval: dict, out: Path) -> Path:
    plt, cjk = _setup()
    import numpy as np

    configs = list(retrieval["configs"])
    first = next(iter(retrieval["configs"].values()))["splits"]
    split = "test" if "test" in first else next(iter(first))
    sections = sorted({s for c in retrieval["configs"].values() for s in c["splits"].get(split, {}).get("by_section", {})})
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
    width = 0.8 / max(len(configs), 1)
    x = np.arange(len(sections))
    for ax, metric in zip(axes, ("hit@1", "mrr@10")):
        for i, name in enumerate(configs):
            by = retrieval["configs"][name]["splits"].get(split, {}).get("by_section", {})
            ax.bar(x + (i - (len(configs) - 1) / 2) * width, [by.get(s, {}).get(metric, 0) for s in sections],
                   width, label=name)
        ax.set_xticks(x, [_label(s, cjk) for s in sections], rotation=15, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{metric} per section ({split} split)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    return _save(fig, out / "topics.png")


def plot_latency(retrieval: dict, out: Path) -> Path:
    plt, _ = _setup()
    import numpy as np

    configs = list(retrieval["configs"])
    split_of = {n: next(iter(c["splits"].values())) for n, c in retrieval["configs"].items() if c["splits"]}
    x = np.arange(len(configs))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(configs)), 4))
    p50 = [split_of[n]["latency_ms"]["p50"] if n in split_of else 0 for n in configs]
    p95 = [split_of[n]["latency_ms"]["p95"] if n in split_of else 0 for n in configs]
    ax.bar(x - 0.2, p50, 0.4, label="p50")
    ax.bar(x + 0.2, p95, 0.4, label="p95")
    ax.set_xticks(x, configs, rotation=15, fontsize=8)
    ax.set_ylabel("ms per query")
    ax.set_title("query latency (one process, warm)")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, out / "latency.png")


def write_plots(retrieval: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    if not retrieval.get("configs"):
        return []
    return [plot_metrics(retrieval, out), plot_topics(retrieval, out), plot_latency(retrieval, out)]
