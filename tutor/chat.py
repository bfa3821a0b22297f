"""The RAG chat session: grounded, cited, streamed answers, with an offline mode that still teaches.

One `ChatSession` per conversation. `session.ask(question)` returns a `Reply` at once; iterating
it streams the answer text (the CLI prints deltas, a UI appends them); afterwards the reply knows
its full text, mode, sources and any LLM error. The flow for one turn:

1. Query. With history, an LLM rewrites the follow-up ("那它和 GQA 比呢？") into a standalone
   question for retrieval; offline, a follow-up-looking question is searched together with the
   previous turn's question, so "它" resolves to the entries the user was just reading.
2. Retrieval (`tutor.retriever`). `relevant=False` means the knowledge base has no entry.
3. Answer. LLM mode: numbered entries as context, the answer streamed through `CitationFilter`
   (markers pointing at no retrieved entry are removed), then a sources list of the cited entries
   (`title — path#id`). Out of corpus, the model may answer from general knowledge under a clear
   "不是知识库内容" banner. Offline mode (`tutor.offline`): a study answer composed from the best
   entry, cited the same way.
4. Failure. Any `LLMError` (rewrite or answer, before or mid-stream) prints a clear message and the
   offline answer for that turn; the turn is still recorded, so nothing the user typed is lost.

History keeps (question, answer-without-sources) pairs under a character budget (Chinese is ~1
token per character), oldest dropped first. Trade-off: a character budget is cruder than a
tokenizer but needs no tokenizer download and works for every OpenAI-compatible model.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from tutor import prompts
from tutor.corpus import Entry
from tutor.citations import CitationFilter, Source, format_sources
from tutor.llm import ChatBackend, LLMError
from tutor.offline import OFFLINE_BANNER, offline_answer

FOLLOW_UP_RE = re.compile(
    r"它|它们|这个|那个|这种|那种|这些|那些|其|上面|上述|刚才|前面|这里|那里|该方法|两者|二者"
    r"|^(那|那么|还有|再|和|跟|与|比|相比|对比)|呢[？?]?\s*$"
    r"|\b(it|its|this|that|they|them|both)\b",
    re.IGNORECASE,
)


def looks_like_follow_up(question: str) -> bool:
    """Offline heuristic: pronouns and deixis ("它", "这个", "两者") or a "那…呢" shape."""
    return bool(FOLLOW_UP_RE.search(question.strip()))


@dataclass
class Turn:
    question: str
    answer: str  # without the sources list
    entry_ids: list[str]
    query: str  # what was searched


class Reply:
    """One answer. Iterate it to stream the text; the other fields are final once it has streamed.

    Reading `text`, `mode`, `query`, `relevant`, `sources`, `error` or `dropped_citations` before
    anyone iterated runs the whole answer first (so a caller that does not stream still gets
    final values); during iteration they show the state so far.
    """

    def __init__(self, question: str):
        self.question = question
        self._query = ""
        self._mode = "offline"  # llm | offline | fallback (LLM failed, offline answer given)
        self._relevant = False
        self._sources: list[Source] = []  # the entries cited, with their [n]
        self._error: LLMError | None = None
        self._dropped: list[str] = []
        self._parts: list[str] = []
        self._gen: Iterator[str] | None = None
        self._started = False

    def __iter__(self) -> Iterator[str]:
        if self._started or self._gen is None:
            return iter(())
        self._started = True
        return self._drain(self._gen)

    def _drain(self, gen: Iterator[str]) -> Iterator[str]:
        for delta in gen:
            self._parts.append(delta)
            yield delta

    def _final(self):
        if not self._started:
            for _ in self:
                pass
        return self

    text = property(lambda self: "".join(self._final()._parts))
    query = property(lambda self: self._final()._query)
    mode = property(lambda self: self._final()._mode)
    relevant = property(lambda self: self._final()._relevant)
    sources = property(lambda self: self._final()._sources)
    error = property(lambda self: self._final()._error)
    dropped_citations = property(lambda self: self._final()._dropped)


class ChatSession:
    def __init__(self, retriever, llm: ChatBackend | None = None, *, k: int = 5,
                 history_chars: int = 6000):
        self.retriever = retriever
        self.llm = llm
        self.k = k
        self.history_chars = history_chars
        self.history: list[Turn] = []

    @property
    def mode_label(self) -> str:
        return f"大模型模式：{self.llm.describe()}" if self.llm else "离线模式（未配置大模型，答案直接整理自知识库）"

    def reset(self) -> None:
        self.history.clear()

    def ask(self, question: str) -> Reply:
        reply = Reply(question=question.strip())
        reply._gen = self._answer(reply)
        return reply

    # --- one turn ------------------------------------------------------------------------------
    def _answer(self, reply: Reply) -> Iterator[str]:
        question = reply.question
        if not question:
            yield "请输入一个问题。"
            return
        body: list[str] = []  # the answer without the sources list, for history

        def emit(text: str) -> str:
            body.append(text)
            return text

        reply._query = question
        if self.llm is not None and self.history:
            try:
                reply._query = self._rewrite(question)
            except LLMError as exc:
                reply._error = exc
        note = f"（结合上文，按「{reply._query}」检索）" if reply._query != question else ""
        if self.llm is None or reply._error:
            reply._query, note = self._offline_query(question)
        result = self.retriever.search(reply._query, k=self.k)
        reply._relevant = result.relevant
        entries = [h.entry for h in result.hits]

        if self.llm is not None and reply._error is None:
            reply._mode = "llm"
            filt = CitationFilter(len(entries) if result.relevant else 0)
            messages = self._messages(question, entries if result.relevant else None)
            if not result.relevant:
                yield emit("知识库中没有与这个问题对应的条目。以下回答来自模型的通用知识，"
                           "**不是知识库内容**，请自行核对。\n\n")
            try:
                for delta in self.llm.stream(messages):
                    out = filt.feed(delta)
                    if out:
                        yield emit(out)
                tail = filt.flush()
                if tail:
                    yield emit(tail)
            except LLMError as exc:
                reply._error = exc
                if body:
                    yield emit("……（回答中断）\n\n")
            reply._dropped = filt.dropped
            if reply._error is None:
                self._record(question, "".join(body), [e.id for e in entries] if result.relevant else [],
                             reply._query)
                if result.relevant and filt.cited:
                    reply._sources = [Source(n, entries[n - 1]) for n in sorted(filt.cited)]
                    yield "\n\n" + format_sources(reply._sources)
                elif result.relevant:  # the model cited nothing: still show what it was given
                    listed = [Source(n, e) for n, e in enumerate(entries, 1)]
                    yield "\n\n" + format_sources(listed, "检索到的条目（回答未直接引用）")
                return

        # Offline, or the LLM failed: the offline answer for this turn.
        if reply._error is not None:
            reply._mode = "fallback"  # the warning is for the user, not for the history
            yield f"⚠ {reply._error.message}\n【离线模式】本轮改用知识库内容回答：\n\n"
        else:
            yield emit(OFFLINE_BANNER + "\n\n")
        if note:
            yield emit(note + "\n\n")
        shown = set(self.history[-1].entry_ids[:1]) if self.history else set()
        answer = offline_answer(question, result, self.retriever.corpus, shown)
        yield emit(answer.body)
        reply._sources = answer.sources
        if answer.sources:
            yield "\n\n" + format_sources(answer.sources)
        self._record(question, "".join(body), [s.entry.id for s in answer.sources],
                     reply._query)

    def _rewrite(self, question: str) -> str:
        pairs = [(t.question, t.answer) for t in self.history[-3:]]
        messages = [{"role": "system", "content": prompts.SYSTEM_REWRITE},
                    {"role": "user", "content": prompts.rewrite_user_message(pairs, question)}]
        text = self.llm.complete(messages)
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        rewritten = re.sub(r"^(改写后的问题|独立问题|问题)[:：]\s*", "", lines[0] if lines else "")
        rewritten = rewritten.strip("\"'“”「」 ")[:300]
        return rewritten or question

    def _offline_query(self, question: str) -> tuple[str, str]:
        """A follow-up is searched with the topic (tags) of the previous turn's main entry.

        Tags rather than the entry's full question: the question's words would pull the same entry
        back to the top, while tags name the topic and let "它的初始化" find the LoRA-init entry.
        """
        if not (self.history and looks_like_follow_up(question)):
            return question, ""
        prev = self.history[-1]
        entry = self.retriever.corpus.get(prev.entry_ids[0]) if prev.entry_ids else None
        context = " ".join(entry.tags) if entry else prev.question
        note = f"（按追问理解：结合上一轮的「{entry.question if entry else prev.question}」检索）"
        return f"{context} {question}", note

    def _messages(self, question: str, entries: list[Entry] | None) -> list[dict]:
        system = prompts.SYSTEM_RAG if entries is not None else prompts.SYSTEM_GENERAL
        messages = [{"role": "system", "content": system}]
        for t in self.history:
            messages.append({"role": "user", "content": prompts.history_user_message(t.question)})
            messages.append({"role": "assistant", "content": t.answer})
        user = (prompts.rag_user_message(question, entries) if entries is not None
                else prompts.general_user_message(question))
        messages.append({"role": "user", "content": user})
        return messages

    def _record(self, question: str, answer: str, entry_ids: list[str], query: str) -> None:
        # [n] markers refer to this turn's numbering; in later prompts they would point elsewhere.
        answer = re.sub(r" ?\[\d+\]", "", answer).strip()
        self.history.append(Turn(question, answer, entry_ids, query))
        self._trim()

    def _trim(self) -> None:
        def size() -> int:
            return sum(len(t.question) + len(t.answer) for t in self.history)

        while len(self.history) > 1 and size() > self.history_chars:
            self.history.pop(0)
        if self.history and size() > self.history_chars:  # one huge turn: keep its opening
            t = self.history[0]
            room = max(self.history_chars - len(t.question) - 2, 0)
            t.answer = t.answer[:room] + "……" if room else ""


def open_session(settings) -> ChatSession:
    """A session wired from settings: the retriever and, if configured, the LLM."""
    from tutor.llm import get_llm
    from tutor.retriever import load_retriever

    return ChatSession(load_retriever(settings), get_llm(settings), k=settings.retrieval_k,
                       history_chars=settings.chat_history_chars)
