"""`build_app(settings, retriever)`: the whole Gradio app, built separately from `launch()`.

Design. One `gr.Blocks` with a header that always shows the mode (offline, or the model name and
endpoint) and five tabs, each built by its own module: 问答 (`chat_tab`), 模拟面试 (`interview_tab`),
题库 (`bank_tab`), 进度 and 评测 (`insights_tab`). This module only wires the cross-tab events:
"练这道题" in the bank starts a one-question practice and selects the interview tab; "在题库中打开"
in the chat shows the cited entry in the bank.

Every event has an explicit `api_name`, so the app is scriptable with `gradio_client` (see
`tests/test_ui_api.py`); per-user objects live in `gr.State`, so each browser session (and each
`gradio_client.Client`) has its own conversation and interview. app.py adds the queue
(`default_concurrency_limit`) and `launch_options()` (theme, CSS) at launch time: Gradio 6 takes
theme and CSS in `launch()`, not in `Blocks()`.

Trade-off: the theme uses local/system fonts only (a CJK stack ending in WenQuanYi/Noto), never web
fonts, so the page renders the same offline and behind firewalls that block font CDNs.
"""

from __future__ import annotations

import gradio as gr

from tutor.settings import Settings
from tutor.ui.bank_tab import build_bank_tab
from tutor.ui.chat_tab import build_chat_tab
from tutor.ui.insights_tab import build_eval_tab, build_progress_tab
from tutor.ui.interview_tab import build_interview_tab
from tutor.ui.render import entry_label
from tutor.ui.services import Services

CJK_FONTS = ["PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC",
             "WenQuanYi Zen Hei", "sans-serif"]
CSS = """
.entry-list { max-height: 62vh; overflow-y: auto; }
.entry-list label { width: 100%; }
.entry-panel { max-height: 70vh; overflow-y: auto; padding-right: 6px; }
.question-card { font-size: 1.05rem; }
.grade-card td:first-child { white-space: nowrap; }
#mode-line { padding: 6px 12px; border-radius: 8px; background: var(--color-accent-soft); }
"""


def theme() -> gr.themes.Base:
    return gr.themes.Soft(primary_hue="indigo", font=["system-ui"] + CJK_FONTS,
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"])


def launch_options() -> dict:
    """Keyword arguments for `Blocks.launch()` that belong to the UI (Gradio 6: theme/css go there)."""
    return {"theme": theme(), "css": CSS}


def build_app(settings: Settings, retriever) -> gr.Blocks:
    svc = Services(settings, retriever)
    with gr.Blocks(title="大模型面试辅导") as app:
        gr.Markdown("# 大模型算法岗面试辅导")
        gr.Markdown(svc.mode_markdown(), elem_id="mode-line")
        with gr.Tabs(selected="chat") as tabs:
            chat = build_chat_tab(svc)
            interview = build_interview_tab(svc)
            bank = build_bank_tab(svc)
            build_progress_tab(svc)
            build_eval_tab(svc)

        def practice(entry_id, follow_ups, voice_on, run, request: gr.Request):
            return (gr.Tabs(selected="interview"), *interview.practice(entry_id, follow_ups, voice_on, run, request))

        bank.practice.click(practice, [bank.selected, interview.follow_ups, interview.voice_on, interview.state],
                            [tabs, *interview.outputs], api_name="bank_practice")

        def open_in_bank(entry_id):
            entry = svc.entry(entry_id)
            if entry is None:
                return gr.Tabs(), gr.update(), gr.update()
            everything = [(entry_label(e), e.id) for e in svc.corpus.entries]
            return gr.Tabs(selected="bank"), gr.update(choices=everything, value=entry.id), entry.id

        # Setting the bank's hidden id triggers its `bank_entry` event, which renders the entry.
        chat.open_in_bank.click(open_in_bank, [chat.citations], [tabs, bank.results, bank.selected],
                                api_name="chat_open_in_bank")
        app.load(svc.warm_up, None, None, api_name="warm_up", queue=False)
        app.load(interview.resumable, None, [interview.resume_pick], queue=False)
    return app
