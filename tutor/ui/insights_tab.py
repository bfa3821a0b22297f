"""The 进度 and 评测 tabs: what the candidate has learnt, and how good the tutor itself is.

Design. Both tabs only *read* what other features produce, so they never slow start-up:

- 进度 shows the progress store's statistics and plots (issue 12) when `tutor.progress_*` provides
  them; until then, a clear placeholder says the feature is not available yet.
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

PROGRESS_PLACEHOLDER = ("### 学习进度（功能尚未可用）\n\n进度记录与间隔复习（每道题的得分历史、各主题掌握度、"
                        "今日待复习）还在开发中，完成后会在这里显示图表。模拟面试的记录已保存在数据目录的 "
                        "`interviews/` 下，届时可以导入。")
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


def progress_view(svc: Services) -> str:
    return PROGRESS_PLACEHOLDER


def build_progress_tab(svc: Services) -> None:
    with gr.Tab("进度", id="progress") as tab:
        view = gr.Markdown(PROGRESS_PLACEHOLDER, elem_id="progress-view")
        refresh = gr.Button("刷新", size="sm", elem_id="progress-refresh")
    refresh.click(lambda: progress_view(svc), None, [view], api_name="progress_refresh")
    tab.select(lambda: progress_view(svc), None, [view], api_name="progress_on_select")


def build_eval_tab(svc: Services) -> None:
    eval_dir = svc.settings.data_dir / "eval"
    with gr.Tab("评测", id="eval") as tab:
        refresh = gr.Button("刷新", size="sm", elem_id="eval-refresh")
        report = gr.Markdown(EVAL_HOWTO.format(dir=eval_dir), latex_delimiters=LATEX, elem_id="eval-report")
        gallery = gr.Gallery(label="评测图表", columns=2, height="auto", elem_id="eval-plots", visible=False)
    def show():
        text, images = eval_view(eval_dir)
        return text, gr.update(value=images, visible=bool(images))

    refresh.click(show, None, [report, gallery], api_name="eval_refresh")
    tab.select(show, None, [report, gallery], api_name="eval_on_select")
