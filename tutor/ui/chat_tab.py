"""The 问答 tab: streaming, cited answers, with the cited entries one click away.

Design. Each browser session keeps a `ChatState` in a `gr.State`: its own `ChatSession` (the
conversation memory used for follow-up questions) and the messages shown. The chatbot is an output
only: we never read the displayed history back, so what the model remembers and what the user sees
cannot drift apart, and the browser cannot inject turns.

A turn streams: `ChatSession.ask()` yields text deltas; every delta re-yields the message list
(Gradio sends only the diff to the browser). When the answer is done, the cited entries become the
choices of a radio list beside the chat; choosing one renders the whole entry in the side panel,
and "在题库中打开" shows it in the 题库 tab.

Trade-off: citations open from a list beside the chat rather than from links inside the message.
Links inside a message would need custom JavaScript and would break copying the answer as text;
the list works the same from the browser and from `gradio_client` (`/chat_open_citation`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gradio as gr

from tutor.ui.render import LATEX, entry_markdown
from tutor.ui.services import Services

ENTRY_HINT = "回答生成后，点击上方列出的引用即可在这里查看知识库条目全文。"


@dataclass
class ChatState:
    session: object  # tutor.chat.ChatSession
    messages: list[dict] = field(default_factory=list)
    cited: list[tuple[str, str]] = field(default_factory=list)  # (label, entry id) of the last answer


@dataclass
class ChatTab:
    chatbot: gr.Chatbot
    citations: gr.Radio
    entry_view: gr.Markdown
    open_in_bank: gr.Button


def build_chat_tab(svc: Services) -> ChatTab:
    with gr.Tab("问答", id="chat"):
        gr.Markdown("向知识库提问：回答带 [编号] 引用，文末列出来源；可以接着追问（如「那它和 GQA 比呢？」）。"
                    + ("　*离线模式：答案直接整理自知识库条目。*" if svc.offline else ""))
        state = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="对话", height=560, latex_delimiters=LATEX, buttons=["copy", "copy_all"],
                                     feedback_options=None, elem_id="chat-box",
                                     placeholder="例如：为什么注意力要除以根号 d？KV Cache 省了什么？")
                with gr.Row():
                    box = gr.Textbox(show_label=False, placeholder="输入问题，回车发送", scale=6, elem_id="chat-input",
                                     max_lines=6)
                    send = gr.Button("发送", variant="primary", scale=1, min_width=80, elem_id="chat-send")
                    clear = gr.Button("清空", variant="secondary", scale=1, min_width=80, elem_id="chat-clear")
            with gr.Column(scale=2):
                citations = gr.Radio(label="本轮引用的条目（点击查看全文）", choices=[], elem_id="chat-citations")
                open_in_bank = gr.Button("在题库中打开", size="sm", elem_id="chat-open-bank")
                entry_view = gr.Markdown(ENTRY_HINT, latex_delimiters=LATEX, elem_id="chat-entry",
                                         elem_classes=["entry-panel"], buttons=["copy"])

    def send_message(message: str, st: ChatState | None):
        message = (message or "").strip()
        if st is None:
            st = ChatState(svc.new_chat())
        if not message:
            yield st.messages, st, gr.update(), gr.update(), ""
            return
        reply = st.session.ask(message[:4000])
        # A list of this turn's own: a clear (trash icon) handled while the answer streams replaces
        # st.messages, and must not make this turn index into an emptied list.
        messages = st.messages + [{"role": "user", "content": message}, {"role": "assistant", "content": "……"}]
        st.messages = messages
        yield messages, st, gr.update(), gr.update(), ""  # show the question at once
        text = ""
        for delta in reply:
            text += delta
            messages[-1] = {"role": "assistant", "content": text}
            yield messages, st, gr.update(), gr.update(), ""
        st.cited = [(f"[{s.n}] {s.title}", s.entry.id) for s in reply.sources]
        first = st.cited[0][1] if st.cited else None
        view = entry_markdown(svc.entry(first), svc.corpus) if first else "这一轮回答没有引用知识库条目。"
        yield messages, st, gr.update(choices=st.cited, value=first), view, ""

    def clear_chat(st: ChatState | None):
        if st is not None:
            st.session.reset()
            st.messages, st.cited = [], []
        return [], st, gr.update(choices=[], value=None), ENTRY_HINT, ""

    def open_citation(entry_id: str | None) -> str:
        return entry_markdown(svc.entry(entry_id), svc.corpus) if entry_id else ENTRY_HINT

    outputs = [chatbot, state, citations, entry_view, box]
    box.submit(send_message, [box, state], outputs, api_name="chat_submit", show_progress="minimal")
    send.click(send_message, [box, state], outputs, api_name="chat", show_progress="minimal")
    clear.click(clear_chat, [state], outputs, api_name="chat_clear")
    chatbot.clear(clear_chat, [state], outputs, api_name="chat_clear_icon")  # the chatbot's own trash icon
    citations.input(open_citation, [citations], [entry_view], api_name="chat_open_citation")
    return ChatTab(chatbot, citations, entry_view, open_in_bank)
