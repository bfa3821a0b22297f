"""A mock interview session: pure logic, serialisable to JSON, no UI.

    session = Interview.start_new(corpus, grader, InterviewConfig(topics=["注意力"], n_questions=3))
    reply = session.opening()             # Reply(messages=[...], prompt="第 1/3 题：...")
    reply = session.answer("候选人的回答")  # graded; a follow-up or the next question
    print(session.report())               # markdown report
    InterviewStore(settings.data_dir).save(session)   # resume later with .load(id)

Design. All state lives in one pydantic `InterviewState` (config, the ordered pool of entry ids,
every question with its turns, answers and grades), so a session survives a restart as a JSON file
and the UI/CLI layers stay thin. The session owns no I/O: it asks, takes an answer, grades it with
the injected `Grader`, and decides what the interviewer says next:

- questions come from entries matching the topics (section, topic or tag) and level, shuffled by a
  seeded RNG, never repeated (an entry reached through a linked follow-up is not asked again);
  `priority` is a hook for a progress store to put due/weak entries first;
- up to `max_follow_ups` follow-ups per question aimed at the missed key point or one level deeper
  (`tutor/interview_followups.py`), LLM-written and grounded when an LLM is configured;
- commands: 跳过 (skip), 不知道 (score 0, show the key points), 看参考答案 (show the reference,
  score 0), 再说一遍 / 重复一下题目 (repeat, no state change). An empty answer changes nothing.

Trade-offs: commands are recognised only in short answers (<= 16 characters), so an answer that
happens to contain "不知道" is still graded. Hand-written code entries (5.手撕代码) are left out
unless a topic selects them: they are not answered by speaking.
"""

from __future__ import annotations

import random
import re
import uuid
from datetime import datetime, timezone
from typing import Callable, Literal

from pydantic import BaseModel, Field

from tutor.corpus import Corpus, Entry
from tutor.grade_model import VERDICT_MARK, Grade
from tutor.interview_followups import FollowUpPlan, plan_llm, plan_offline

CODE_SECTION_MARK = "手撕代码"
COMMANDS = {
    "skip": {"跳过", "跳过这题", "跳过吧", "下一题", "skip", "pass", "next"},
    "dont_know": {"不知道", "不会", "不清楚", "不太清楚", "不了解", "没学过", "忘了", "不记得了", "idontknow",
                  "dontknow", "idk", "不会这题", "这题不会"},
    "reveal": {"看参考答案", "参考答案", "看答案", "答案", "给我看答案", "showanswer", "answer"},
    "repeat": {"再说一遍", "重复一下题目", "重复一下", "重复题目", "再说一次", "请重复", "没听清", "题目是什么",
               "再问一遍", "repeat", "sayagain", "pardon"},
}
Status = Literal["pending", "answered", "skipped", "dont_know", "revealed"]


def detect_command(text: str) -> str | None:
    """'skip' | 'dont_know' | 'reveal' | 'repeat' for a short command-like answer, else None."""
    norm = re.sub(r"[\s\W_]+", "", text.lower())
    norm = re.sub(r"^(请|麻烦|能不能|可以|我|这个我|这题我|抱歉我|嗯|呃)+|(吧|吗|呢|啊|了|耶)+$", "", norm)
    if not norm or len(norm) > 16:
        return None
    for name, words in COMMANDS.items():
        if norm in words:
            return name
    return None


class InterviewConfig(BaseModel):
    topics: list[str] = []  # matched against entry.section, entry.topic and tags (case-insensitive)
    level: int | None = Field(None, ge=1, le=3)
    n_questions: int = Field(5, ge=1, le=50)
    max_follow_ups: int = Field(2, ge=0, le=5)
    seed: int | None = None


class Turn(BaseModel):
    kind: Literal["main", "follow_up"]
    prompt: str
    entry_id: str  # graded against this entry
    focus: list[int] | None = None  # graded on these key points only
    source: str = "entry"
    cites: list[str] = []
    status: Status = "pending"
    answer: str | None = None
    grade: Grade | None = None


class QuestionRecord(BaseModel):
    entry_id: str
    turns: list[Turn]
    done: bool = False


class InterviewState(BaseModel):
    id: str
    created_at: str
    updated_at: str
    config: InterviewConfig
    mode: str = "offline"
    pool: list[str]  # candidate entry ids, in asking order
    asked: list[str] = []  # every entry id asked, main or follow-up
    questions: list[QuestionRecord] = []
    finished: bool = False
    profile: str | None = None  # whose interview (the login name with TUTOR_AUTH): the web page resumes only its own


class Reply(BaseModel):
    """What the interviewer says after an event; `prompt` is the question now waiting for an answer."""

    event: str  # opening | next | graded | follow_up | skipped | dont_know | revealed | repeat | empty | finished
    messages: list[str] = []
    prompt: str | None = None
    grade: Grade | None = None
    finished: bool = False


def select_entries(corpus: Corpus, config: InterviewConfig,
                   priority: Callable[[list[Entry]], list[str]] | None = None) -> list[str]:
    """Entry ids to ask, in order: priority ids first, then a seeded shuffle (level matches first)."""
    topics = [t.lower() for t in config.topics if t.strip()]

    def matches(e: Entry) -> bool:
        if CODE_SECTION_MARK in e.section and not any(t in e.section.lower() for t in topics):
            return False  # code entries only when a topic names their section (手撕代码)
        if not topics:
            return True
        hay = [e.section.lower(), e.topic.lower(), e.id] + [t.lower() for t in e.tags]
        return any(t in h for t in topics for h in hay)

    pool = [e for e in corpus.entries if matches(e) and e.key_points]
    rng = random.Random(config.seed)
    rng.shuffle(pool)
    if config.level:
        pool.sort(key=lambda e: abs(e.level - config.level))  # stable: exact level first, then nearest
    ids = [e.id for e in pool]
    if priority:
        first = [i for i in priority(pool) if i in ids]
        ids = list(dict.fromkeys(first + ids))
    return ids


class Interview:
    def __init__(self, state: InterviewState, corpus: Corpus, grader, llm=None):
        self.state = state
        self.corpus = corpus
        self.grader = grader
        self.llm = llm  # when set, follow-ups are LLM-written (grounded); offline plan on any failure
        self._notices: list[str] = []

    @classmethod
    def start_new(cls, corpus: Corpus, grader, config: InterviewConfig | None = None, llm=None,
                  priority: Callable[[list[Entry]], list[str]] | None = None,
                  profile: str | None = None) -> "Interview":
        config = config or InterviewConfig()
        if config.seed is None:
            config = config.model_copy(update={"seed": random.randrange(1 << 30)})
        now = _now()
        state = InterviewState(id=datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6],
                               created_at=now, updated_at=now, config=config,
                               mode=getattr(grader, "mode", "offline"), pool=select_entries(corpus, config, priority),
                               profile=profile)
        return cls(state, corpus, grader, llm)

    # ---- state helpers ---------------------------------------------------------------------------

    @property
    def current(self) -> Turn | None:
        if self.state.finished or not self.state.questions:
            return None
        q = self.state.questions[-1]
        return None if q.done else q.turns[-1]

    def prompt_text(self) -> str | None:
        turn = self.current
        if turn is None:
            return None
        n = len(self.state.questions)
        total = min(self.state.config.n_questions, n + self._remaining())
        if turn.kind == "main":
            return f"第 {n}/{total} 题：{turn.prompt}"
        return f"追问：{turn.prompt}"

    def _remaining(self) -> int:
        asked = set(self.state.asked)
        return sum(1 for i in self.state.pool if i not in asked and self.corpus.get(i))

    def _next_question(self, messages: list[str]) -> Reply:
        asked = set(self.state.asked)
        if len(self.state.questions) < self.state.config.n_questions:
            for entry_id in self.state.pool:
                entry = self.corpus.get(entry_id)
                if entry_id in asked or entry is None:
                    continue
                self.state.asked.append(entry_id)
                self.state.questions.append(QuestionRecord(
                    entry_id=entry_id, turns=[Turn(kind="main", prompt=entry.question, entry_id=entry_id,
                                                   cites=[entry.citation])]))
                self._touch()
                return Reply(event="next", messages=messages, prompt=self.prompt_text())
        self.state.finished = True
        self._touch()
        if not self.state.questions:
            messages.append("没有符合条件的题目：请换一个主题或难度。")
        else:
            messages.append("面试结束，辛苦了！下面是本次面试的报告。")
        return Reply(event="finished", messages=messages, finished=True)

    def _touch(self) -> None:
        self.state.updated_at = _now()

    # ---- the conversation ------------------------------------------------------------------------

    def opening(self) -> Reply:
        """Start (or, after a resume, re-ask) the current question."""
        if self.state.finished:
            return Reply(event="finished", messages=["这场面试已经结束。"], finished=True)
        if self.current is None:
            intro = (f"你好，我们开始模拟面试，共 {self.state.config.n_questions} 题，每题最多追问 "
                     f"{self.state.config.max_follow_ups} 次。随时可以说「跳过」「不知道」「看参考答案」或「再说一遍」。")
            reply = self._next_question([intro])
            reply.event = "finished" if reply.finished else "opening"
            return reply
        return Reply(event="opening", messages=["我们继续上次的面试。"], prompt=self.prompt_text())

    def answer(self, text: str | None) -> Reply:
        turn = self.current
        if turn is None:
            return Reply(event="finished", messages=["这场面试已经结束，可以查看报告。"], finished=True)
        text = text if isinstance(text, str) else ""
        if not text.strip():
            return Reply(event="empty", messages=["没有收到回答。可以直接作答，或者说「跳过」「不知道」「看参考答案」「再说一遍」。"],
                         prompt=self.prompt_text())
        command = detect_command(text)
        entry = self.corpus.get(turn.entry_id)
        if entry is None:  # the corpus changed since the session was saved
            turn.status = "skipped"
            self.state.questions[-1].done = True
            return self._next_question([f"条目 {turn.entry_id} 已不在知识库中，跳过这道题。"])
        if command == "repeat":
            return Reply(event="repeat", messages=[self.prompt_text() or ""], prompt=self.prompt_text())
        if command == "skip":
            turn.status = "skipped"
            self.state.questions[-1].done = True
            reply = self._next_question(["好的，跳过。"] if turn.kind == "main" else ["好的，这个追问先跳过。"])
            reply.event = "finished" if reply.finished else "skipped"
            return reply
        if command in ("dont_know", "reveal"):
            turn.status = "dont_know" if command == "dont_know" else "revealed"
            turn.answer = text
            turn.grade = self._grade(entry, turn, "")
            self.state.questions[-1].done = True
            points = self._points(entry, turn.focus)
            if command == "dont_know":
                msg = "没关系。这道题的要点是：\n" + points
            else:
                msg = f"参考答案（{entry.citation}）：\n{entry.answer}\n\n要点：\n{points}"
                if entry.misconceptions:
                    msg += "\n\n常见误区：\n" + "\n".join(f"- {m.display()}" for m in entry.misconceptions)
            reply = self._next_question([msg])
            reply.event, reply.grade = turn.status, turn.grade
            return reply
        # A real answer: grade it, then follow up or move on.
        turn.answer = text
        turn.status = "answered"
        turn.grade = self._grade(entry, turn, text)
        g = turn.grade
        summary = f"得分 {g.score:g}/10（{g.mode_label}）。" + " ".join(
            f"{VERDICT_MARK[k.verdict]}{k.key_point}" for k in g.key_points) + f"\n{g.feedback}"
        if g.notices:
            summary += "\n" + "\n".join(g.notices)
        self._notices = []
        plan = self._plan_follow_up(text)
        summary += "".join("\n" + n for n in self._notices)
        if plan is not None:
            q = self.state.questions[-1]
            q.turns.append(Turn(kind="follow_up", prompt=plan.question, entry_id=plan.entry_id, focus=plan.focus,
                                source=plan.source, cites=plan.cites))
            if plan.entry_id != q.entry_id and plan.entry_id not in self.state.asked:
                self.state.asked.append(plan.entry_id)
            self._touch()
            return Reply(event="follow_up", messages=[summary], prompt=self.prompt_text(), grade=g)
        self.state.questions[-1].done = True
        reply = self._next_question([summary])
        reply.grade = g
        reply.event = "finished" if reply.finished else "graded"
        return reply

    def _grade(self, entry: Entry, turn: Turn, text: str) -> Grade:
        target = entry
        if turn.focus:
            target = entry.model_copy(update={"key_points": [entry.key_points[i] for i in turn.focus
                                                             if i < len(entry.key_points)] or entry.key_points})
        return self.grader.grade(target, text)

    @staticmethod
    def _points(entry: Entry, focus: list[int] | None) -> str:
        idx = focus or range(len(entry.key_points))
        return "\n".join(f"- {entry.key_points[i]}" for i in idx if i < len(entry.key_points))

    def _plan_follow_up(self, answer_text: str) -> FollowUpPlan | None:
        q = self.state.questions[-1]
        if sum(1 for t in q.turns if t.kind == "follow_up") >= self.state.config.max_follow_ups:
            return None
        last = q.turns[-1]
        # The main question's gaps come first; once they are all probed, follow the linked entry
        # the last follow-up went to (its own gaps, then deeper); otherwise go deeper from the main entry.
        entry, grade = self.corpus.get(q.entry_id), q.turns[0].grade
        probed = {i for t in q.turns[1:] if t.entry_id == q.entry_id and t.focus for i in t.focus}
        main_gaps = grade is not None and any(k.verdict != "covered" and k.index not in probed for k in grade.key_points)
        if not main_gaps and last.kind == "follow_up" and last.focus is None and last.entry_id != q.entry_id:
            entry, grade, probed = self.corpus.get(last.entry_id), last.grade, set()
        if entry is None:
            return None
        used = {t.prompt for t in q.turns}
        asked = set(self.state.asked)
        if self.llm is not None:
            try:
                return plan_llm(self.llm, entry, grade, answer_text, self.corpus, used, asked)
            except Exception as exc:  # noqa: BLE001 - LLMError, bad JSON, ungrounded: use the entry's own
                self._notices.append(f"大模型追问不可用（{str(exc)[:120]}），改用题库中的追问。")
        return plan_offline(entry, grade, self.corpus, used, asked, probed)

    # ---- output ----------------------------------------------------------------------------------

    def history(self) -> list[tuple[str, str]]:
        """The conversation so far as (role, text) pairs, role "assistant" or "user", rebuilt from the
        state: what a resumed session shows before it re-asks the current question (which is left out)."""
        out: list[tuple[str, str]] = []
        outcome = {"skipped": "（跳过）", "dont_know": "（不知道，已看要点）", "revealed": "（已看参考答案）"}
        for n, q in enumerate(self.state.questions, 1):
            for turn in q.turns:
                if turn is self.current:
                    return out
                label = f"第 {n}/{self.state.config.n_questions} 题：" if turn.kind == "main" else "追问："
                out.append(("assistant", f"**{label}{turn.prompt}**"))
                if turn.status == "answered" and turn.answer:
                    out.append(("user", turn.answer))
                    if turn.grade is not None:
                        out.append(("assistant", f"得分 {turn.grade.score:g}/10。"))
                elif turn.status in outcome:
                    out.append(("assistant", outcome[turn.status]))
        return out

    def report(self) -> str:
        from tutor.interview_report import render_report

        return render_report(self.state, self.corpus)

    def to_json(self) -> str:
        return self.state.model_dump_json(indent=1)

    @classmethod
    def from_json(cls, data: str, corpus: Corpus, grader, llm=None) -> "Interview":
        """A saved session; ValueError in Chinese when the text is not one (damaged, or hand-edited)."""
        try:
            state = InterviewState.model_validate_json(data)
        except ValueError as exc:  # pydantic's ValidationError: not JSON, or not a session's fields
            where = "; ".join(".".join(map(str, e["loc"])) for e in getattr(exc, "errors", lambda: [])()[:3])
            raise ValueError(f"面试记录已损坏，无法继续（{where or '不是合法的 JSON'}）") from None
        return cls(state, corpus, grader, llm)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
