"""The Gradio UI: `build_app(settings, retriever)` builds it, app.py launches it.

Modules: `layout` (the Blocks, theme, cross-tab wiring), one module per tab (`chat_tab`,
`interview_tab`, `bank_tab`, `insights_tab`), `services` (shared lazy backends), `render`
(markdown for entries and grades) and `voice` (the bridge to speech). Nothing here is imported by
the features below it.
"""

from tutor.ui.layout import build_app, launch_options

__all__ = ["build_app", "launch_options"]
