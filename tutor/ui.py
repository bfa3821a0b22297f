"""The Gradio UI, built by `build_app()` and launched elsewhere (app.py), so tests can drive it.

This first version is the knowledge-base search page; the chat, interview, question bank, progress
and evaluation tabs are built on top of it by the UI issue.
"""

from __future__ import annotations

import gradio as gr

from tutor.retriever import HybridRetriever
from tutor.settings import Settings


def render_results(retriever: HybridRetriever, query: str) -> str:
    query = (query or "").strip()
    if not query:
        return "请输入问题或关键词。"
    result = retriever.search(query[:2000], 5)
    if not result.hits:
        return "知识库中没有相关条目。"
    lines = [] if result.relevant else ["> 知识库中没有与此直接相关的条目，以下是最接近的结果：\n"]
    for n, hit in enumerate(result.hits, 1):
        e = hit.entry
        lines.append(f"### {n}. {e.question}\n`{e.citation}` · 难度 {e.level} · {', '.join(e.tags)}\n")
        lines.extend(f"- {kp}" for kp in e.key_points)
        lines.append("")
    return "\n".join(lines)


def build_app(settings: Settings, retriever: HybridRetriever) -> gr.Blocks:
    with gr.Blocks(title="大模型面试辅导") as app:
        gr.Markdown(f"# 大模型算法岗面试辅导\n当前模式：**{settings.describe_llm()}** · "
                    f"知识库 {len(retriever.corpus.entries)} 个条目")
        with gr.Tab("题库检索"):
            query = gr.Textbox(label="问题", placeholder="例如：为什么注意力要除以根号 d？")
            button = gr.Button("检索", variant="primary")
            output = gr.Markdown(latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                   {"left": "$", "right": "$", "display": False}])
            button.click(lambda q: render_results(retriever, q), query, output, api_name="search")
            query.submit(lambda q: render_results(retriever, q), query, output, api_name="search_submit")
    return app
