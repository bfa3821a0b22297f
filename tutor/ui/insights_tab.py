"""The 进度 and 评测 tabs: what the candidate has learnt, and how good the tutor itself is.

Design. Both tabs only *read* what other features produce, so they never slow start-up:

- 进度 shows the progress store's statistics for the request's profile (`tutor.progress.progress_page`):
  plots of mastery per topic, score over time and the most-missed key points, then the markdown
  statistics and 今日待复习. Without attempts yet, it says how to get some; a store that cannot be
  opened shows its reason.
- 评测 shows the newest evaluation report written by `python -m eval` under `data_dir/eval`
  (markdown and its PNG plots). The UI never imports `eval`: the report files are the interface,
  so the app stays small and the evaluation can run on another machine and be copied over.

Trade-off: PNGs are loaded into memory and handed to a gallery rather than served from `data_dir`,
so the app needs no extra `allowed_paths` (the data directory is not exposed over HTTP).
"""

from __future__ import annotations

import re
from pathlib import Path

import gradio as gr

from tutor.ui.render import LATEX
from tutor.ui.services import Services

PROGRESS_EMPTY = ("还没有作答记录：在「模拟面试」里答几道题（或在题库中点「练这道题」），"
                  "这里就会显示各主题掌握度、得分变化和最常漏掉的要点，以及今日待复习的题目。")
PLOTS = ("mastery", "timeline", "missed")  # tutor.progress_plots.progress_figures keys, in display order
EVAL_HOWTO = """### 还没有评测报告

评测模块衡量检索质量（Hit@1、Recall@k、MRR、nDCG，含置信区间）、生成质量（配置大模型时）和评分器一致性。
在项目目录运行：

```bash
python -m eval
```

报告（Markdown + PNG 图表 + JSON）会写到 `{dir}`，然后点击「刷新」。"""


def latest_eval_report(eval_dir: Path) -> Path | None:
    """The most recently written markdown report under `eval_dir` (any depth), or None."""
    if not eval_dir.is_dir():
        return None
    reports = [p for p in eval_dir.rglob("*.md") if p.is_file()]
    return max(reports, key=lambda p: p.stat().st_mtime) if reports else None


def eval_view(eval_dir: Path):
    """(markdown, gallery items) for the newest report; images referenced in it are shown below."""
    report = latest_eval_report(eval_dir)
    if report is None:
        return EVAL_HOWTO.format(dir=eval_dir), []
    text = report.read_text(encoding="utf-8", errors="replace")
    referenced = re.findall(r"!\[[^\]]*\]\(([^)\s]+)[^)]*\)", text)
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"*（图：\1，见下方图表）*", text)
    pngs = [report.parent / r for r in referenced if (report.parent / r).is_file()]
    pngs += sorted(p for p in report.parent.glob("*.png") if p not in pngs)
    from PIL import Image

    images = []
    for p in pngs:
        with Image.open(p) as im:
            images.append((im.convert("RGB"), p.stem))
    rel = report.relative_to(eval_dir)
    head = f"*报告文件：`{rel}`（{len(images)} 张图表）*\n\n"
    return head + text, images


def progress_view(svc: Services, username: str | None):
    """(markdown, figures by name) for the request's profile; figures are empty without attempts."""
    store, reason = svc.progress_store()
    if store is None:
        return f"### 学习进度暂不可用\n\n{reason}", {}
    profile = svc.profile(username)
    try:
        from tutor.progress import progress_page

        markdown, figures = progress_page(store, profile, svc.corpus)
    except Exception as exc:  # noqa: BLE001 - a broken database shows a message, not a stack trace
        return f"### 学习进度暂不可用\n\n读取进度数据库失败：{exc}", {}
    head = f"当前档案：**{profile}**（{store.describe()}）\n\n"
    if not figures:
        head += PROGRESS_EMPTY + "\n\n"
    return head + markdown, figures


def build_progress_tab(svc: Services) -> None:
    with gr.Tab("进度", id="progress") as tab:
        refresh = gr.Button("刷新", size="sm", elem_id="progress-refresh")
        labels = dict(zip(PLOTS, ("各主题掌握度", "得分变化", "最常漏掉的要点")))
        with gr.Row():  # the figures carry their own Chinese titles: no component labels over them
            plots = [gr.Plot(label=labels[n], show_label=False, visible=False, elem_id=f"progress-{n}")
                     for n in PLOTS[:2]]
        plots.append(gr.Plot(label=labels["missed"], show_label=False, visible=False, elem_id="progress-missed"))
        view = gr.Markdown("点击「刷新」查看学习进度。", latex_delimiters=LATEX, elem_id="progress-view")

    def show(request: gr.Request):
        markdown, figures = progress_view(svc, getattr(request, "username", None))
        return (markdown, *[gr.update(value=figures.get(n), visible=n in figures) for n in PLOTS])

    refresh.click(show, None, [view, *plots], api_name="progress_refresh")
    tab.select(show, None, [view, *plots], api_name="progress_on_select")


def build_eval_tab(svc: Services) -> None:
    eval_dir = svc.settings.data_dir / "eval"
    with gr.Tab("评测", id="eval") as tab:
        refresh = gr.Button("刷新", size="sm", elem_id="eval-refresh")
        report = gr.Markdown(EVAL_HOWTO.format(dir=eval_dir), latex_delimiters=LATEX, elem_id="eval-report")
        gallery = gr.Gallery(label="评测图表", columns=1, height="auto", object_fit="contain", elem_id="eval-plots",
                             visible=False)
    def show():
        text, images = eval_view(eval_dir)
        return text, gr.update(value=images, visible=bool(images))

    refresh.click(show, None, [report, gallery], api_name="eval_refresh")
    tab.select(show, None, [report, gallery], api_name="eval_on_select")
