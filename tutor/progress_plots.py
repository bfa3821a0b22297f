"""Plots of a profile's progress for the UI's 进度 tab (and `tutor progress show --plots DIR`).

    figs = progress_figures(stats)            # {"mastery": Figure, "timeline": Figure, "missed": Figure}
    paths = write_progress_pngs(stats, out)   # the same, as PNG files

Design. Figures are built with `matplotlib.figure.Figure` directly, never `pyplot`: no global
figure registry (nothing leaks across UI requests), no GUI backend, and nothing to close. Saving
uses the Agg canvas, so this runs on a headless server. `gr.Plot` accepts these figures as they are.

Chinese labels need a CJK font: the first installed one of `CJK_FONTS` is used (WenQuanYi on
Debian's fonts-wqy-zenhei, Noto/Source Han, the Windows and macOS system fonts). Without one the
plots still render, with boxes for Chinese, and `cjk_font()` returns None so a caller can say why.
DejaVu Sans (bundled with matplotlib) is the fallback for the few symbols CJK fonts lack.

Trade-offs: the mastery chart shows only topics with answers (35 topics, most untouched, would bury
the signal); coverage is printed beside each bar. Long key points are shortened to 28 characters.
"""

from __future__ import annotations

import logging
import warnings
from functools import lru_cache
from pathlib import Path

from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tutor.progress_stats import MASTERED_SCORE, ProgressStats
from tutor.review import WEAK_SCORE

CJK_FONTS = ("WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
             "Source Han Sans CN", "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Hiragino Sans GB",
             "Arial Unicode MS")
KEY_POINT_CHARS = 28


@lru_cache(maxsize=1)
def _cjk() -> tuple[str, int] | None:
    installed = {f.name: f.weight for f in font_manager.fontManager.ttflist}
    return next(((name, installed[name]) for name in CJK_FONTS if name in installed), None)


def cjk_font() -> str | None:
    """The name of an installed font that has Chinese glyphs, or None."""
    found = _cjk()
    return found[0] if found else None


class _NoWeightNotice(logging.Filter):
    """Drops matplotlib's "Failed to find font weight ..." notice: WenQuanYi has one weight (500) and the
    DejaVu fallback another (400), so every text would log it once; the rendering is right either way."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Failed to find font weight" not in str(record.msg)


logging.getLogger("matplotlib.font_manager").addFilter(_NoWeightNotice())


def _font_kw() -> dict:
    # DejaVu Sans as fallback: CJK fonts lack a few symbols the key points use (U+2212 minus, ᵀ, combining hats).
    found = _cjk()
    return {"fontfamily": [found[0], "DejaVu Sans"], "fontweight": found[1]} if found else {}


def _color(score: float) -> str:
    if score < WEAK_SCORE:
        return "#d9534f"
    return "#f0ad4e" if score < MASTERED_SCORE else "#5cb85c"


def _empty(fig: Figure, title: str) -> Figure:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, "还没有作答记录", ha="center", va="center", fontsize=14, **_font_kw())
    ax.set_title(title, **_font_kw())
    return fig


def mastery_figure(stats: ProgressStats) -> Figure:
    """Horizontal bars: mastery (mean latest score) per answered topic, with coverage labels."""
    topics = sorted((t for t in stats.topics if t.attempted and t.mastery is not None),
                    key=lambda t: (t.mastery, t.topic), reverse=True)
    fig = Figure(figsize=(8, max(2.5, 0.45 * len(topics) + 1.3)), layout="constrained")
    title = f"各主题掌握度（{stats.profile}）"
    if not topics:
        return _empty(fig, title)
    ax = fig.add_subplot()
    names = [t.topic.split(" / ", 1)[-1] for t in topics]
    ys = range(len(topics))
    ax.barh(ys, [t.mastery for t in topics], height=0.6, color=[_color(t.mastery) for t in topics])
    ax.set_yticks(list(ys), names, **_font_kw())
    ax.invert_yaxis()
    ax.set_xlim(0, 11.5)
    ax.axvline(WEAK_SCORE, color="#999", lw=0.8, ls="--")
    ax.axvline(MASTERED_SCORE, color="#999", lw=0.8, ls=":")
    for y, t in zip(ys, topics):
        cover = f"{t.attempted}/{t.entries}" if t.entries else str(t.attempted)
        ax.text(t.mastery + 0.15, y, f"{t.mastery:.1f}  覆盖 {cover}", va="center", fontsize=8, **_font_kw())
    ax.set_xlabel("掌握度（最近得分的平均，0-10）", **_font_kw())
    ax.set_title(title, **_font_kw())
    return fig


def timeline_figure(stats: ProgressStats) -> Figure:
    """Mean score per day (line) over the number of answers per day (bars); one slot per day with
    answers, so days without practice do not stretch the axis."""
    fig = Figure(figsize=(8, 3.6), layout="constrained")
    title = f"得分变化（{stats.profile}）"
    if not stats.by_day:
        return _empty(fig, title)
    ax = fig.add_subplot()
    days = [d.day[5:] for d in stats.by_day]  # MM-DD
    xs = range(len(days))
    counts = ax.twinx()
    counts.bar(xs, [d.attempts for d in stats.by_day], color="#c6dbef", width=0.6, zorder=0)
    counts.set_ylabel("作答次数", **_font_kw())
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(xs, [d.mean_score for d in stats.by_day], marker="o", color="#1f77b4")
    ax.set_ylim(0, 10.5)
    ax.set_ylabel("平均分", **_font_kw())
    step = max(1, -(-len(days) // 10))  # at most ~10 date labels
    ax.set_xticks(list(xs)[::step], days[::step])
    ax.set_title(title, **_font_kw())
    return fig


def missed_figure(stats: ProgressStats) -> Figure:
    """Horizontal bars: the most-missed key points (missed + half of partial)."""
    points = stats.missed_points
    fig = Figure(figsize=(8, max(2.5, 0.45 * len(points) + 1.3)), layout="constrained")
    title = "最常漏掉的要点"
    if not points:
        return _empty(fig, title)
    ax = fig.add_subplot()
    labels = [p.key_point if len(p.key_point) <= KEY_POINT_CHARS else p.key_point[:KEY_POINT_CHARS] + "…"
              for p in points]
    ys = range(len(points))
    ax.barh(ys, [p.missed for p in points], height=0.6, color="#d9534f", label="未覆盖")
    ax.barh(ys, [p.partial for p in points], height=0.6, left=[p.missed for p in points], color="#f0ad4e",
            label="部分覆盖")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_yticks(list(ys), labels, fontsize=8, **_font_kw())
    ax.invert_yaxis()
    ax.set_xlabel("次数", **_font_kw())
    font = _cjk()
    fig.legend(loc="outside lower center", ncols=2,
               prop={"family": [font[0], "DejaVu Sans"], "weight": font[1]} if font else None)
    ax.set_title(title, **_font_kw())
    return fig


def progress_figures(stats: ProgressStats) -> dict[str, Figure]:
    return {"mastery": mastery_figure(stats), "timeline": timeline_figure(stats), "missed": missed_figure(stats)}


def write_progress_pngs(stats: ProgressStats, out_dir: str | Path, dpi: int = 110) -> list[Path]:
    """Write `mastery.png`, `timeline.png`, `missed.png` into `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in progress_figures(stats).items():
        path = out / f"{name}.png"
        with warnings.catch_warnings():
            if cjk_font() is None:  # boxes instead of Chinese: said once by the caller, not per glyph
                warnings.filterwarnings("ignore", message="Glyph .* missing")
            fig.savefig(path, dpi=dpi)
        paths.append(path)
    return paths
