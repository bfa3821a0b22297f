"""The backends the UI shares between all browser sessions, built once and lazily.

Design. `Services` holds what is read-only and expensive: settings, the retriever (already loaded
by app.py), the corpus, and, on first use, the chat model and the grader. Everything that belongs
to one user (a `ChatSession`, an `Interview`) is created per browser session by the tab modules and
kept in a `gr.State`, so two users never share a conversation; they share only these backends.

The progress store (`tutor.progress`) is opened on first use too; every request maps to a profile
(the login name when the app runs with TUTOR_AUTH), so several candidates can share one app.

Trade-offs. The grader is built on the first interview rather than at start-up (corpus statistics
and, with an LLM, the LangChain import cost ~1-2 s): start-up stays fast and a user who only chats
never pays for it. A lock makes the lazy build safe when several users start at once. The chat
model object is shared: `ChatOpenAI` is safe for concurrent calls, and one client reuses one HTTP
connection pool. Nothing here imports Gradio, so it can be tested without a browser.
"""

from __future__ import annotations

import threading
from collections import Counter
from functools import cached_property

from tutor.chat import ChatSession
from tutor.corpus import Corpus, Entry
from tutor.interview import Interview, InterviewConfig
from tutor.settings import Settings
from tutor.ui.voice import Voice

_UNSET = object()


class Services:
    def __init__(self, settings: Settings, retriever):
        self.settings = settings
        self.retriever = retriever
        self.corpus: Corpus = retriever.corpus
        self._lock = threading.Lock()
        self._llm = _UNSET
        self._grader = None
        self._warming = False
        self._progress = None  # (store | None, reason | None) once opened
        self.voice = Voice(settings, self.corpus)  # speech backends, built on first use

    # ---- lazily built backends ----------------------------------------------------------------
    @property
    def llm(self):
        """The chat model (None offline). Imported on first use: LangChain costs ~1.8 s."""
        if self._llm is _UNSET:
            with self._lock:
                if self._llm is _UNSET:
                    from tutor.llm import get_llm

                    self._llm = get_llm(self.settings)
        return self._llm

    @property
    def grader(self):
        if self._grader is None:
            with self._lock:
                if self._grader is None:
                    from tutor.grading import build_grader

                    self._grader = build_grader(self.settings, self.corpus)
        return self._grader

    def warm_up(self) -> None:
        """Build the grader (and the chat model) in a background thread, once.

        Called when a browser has loaded the page: the start-up is already done by then, and the
        first interview no longer waits seconds for the grader's corpus statistics.
        """
        with self._lock:
            if self._warming:
                return
            self._warming = True

        def run() -> None:
            try:
                _ = self.llm, self.grader
            except Exception:  # noqa: BLE001 - a broken backend reports itself when it is really used
                pass

        threading.Thread(target=run, name="tutor-warm-up", daemon=True).start()

    # ---- labels (never build a backend just to describe it) ------------------------------------
    @property
    def offline(self) -> bool:
        return not self.settings.llm_enabled

    def mode_markdown(self) -> str:
        """The always-visible mode line: which model answers and grades, or offline."""
        n = len(self.corpus.entries)
        if self.offline:
            return (f"**当前模式：离线模式**（未配置大模型）：问答直接整理自知识库，评分为离线简化评分 · "
                    f"知识库 {n} 条")
        return f"**当前模式：大模型** `{self.settings.describe_llm()}` · 问答与评分由该模型完成 · 知识库 {n} 条"

    def grader_label(self) -> str:
        if self.offline:
            return "离线评分（简化模式：按要点词语覆盖判断，未使用大模型）"
        return f"大模型评分：{self.settings.llm_model}"

    # ---- per-session objects -------------------------------------------------------------------
    def new_chat(self) -> ChatSession:
        return ChatSession(self.retriever, self.llm, k=self.settings.retrieval_k,
                           history_chars=self.settings.chat_history_chars)

    def new_interview(self, config: InterviewConfig, only: str | None = None, profile: str | None = None) -> Interview:
        """A new interview; `only` = one entry id for a one-question practice from the question bank.
        With a progress store, the profile's due and weak entries are asked first."""
        grader = self.grader
        priority = None
        store, _ = self.progress_store()
        if store is not None and profile and only is None:
            from tutor.progress import interview_priority

            priority = interview_priority(store, profile)
        # the profile is saved with the session: the page offers to resume only the profile's own
        session = Interview.start_new(self.corpus, grader, config, llm=grader.llm, priority=priority, profile=profile)
        if only is not None:
            session.state.pool = [only]  # practise exactly this entry (code entries included)
        return session

    # ---- progress (issue 12): the store and the profile of a request ----------------------------
    def progress_store(self):
        """(store, None), or (None, a Chinese reason) when the store cannot be opened; opened once.

        A broken progress database must never stop a chat or an interview: callers show the reason
        and carry on without recording."""
        if self._progress is None:
            with self._lock:
                if self._progress is None:
                    try:
                        from tutor.progress import ProgressStoreError, open_store

                        try:
                            self._progress = (open_store(self.settings), None)
                        except (ValueError, ProgressStoreError) as exc:
                            self._progress = (None, f"学习进度不可用：{exc}")
                    except ImportError as exc:  # the progress feature is not installed in this checkout
                        self._progress = (None, f"学习进度功能尚未可用（{exc.name}）。")
        return self._progress

    def profile(self, username: str | None) -> str:
        """The progress profile of a request: the login name with TUTOR_AUTH, else the configured one."""
        try:
            from tutor.progress import profile_for_request

            return profile_for_request(username, self.settings)
        except (ImportError, ValueError):
            return "default"

    # ---- corpus facets for filters --------------------------------------------------------------
    @cached_property
    def sections(self) -> list[str]:
        return sorted({e.section for e in self.corpus.entries})

    @cached_property
    def topics(self) -> list[str]:
        return sorted({e.topic for e in self.corpus.entries})

    @cached_property
    def tags(self) -> list[str]:
        """Tags by frequency (most used first), then name."""
        counts = Counter(t for e in self.corpus.entries for t in e.tags)
        return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    def topics_of(self, section: str | None) -> list[str]:
        return sorted({e.topic for e in self.corpus.entries if not section or e.section == section})

    def entry(self, entry_id: str | None) -> Entry | None:
        return self.corpus.get(entry_id or "")
