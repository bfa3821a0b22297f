"""The grade object and the one function that turns verdicts into a score.

Design: every grader (offline, LLM) fills the same pydantic `Grade`, so the CLI, the interview and
the UI never care which one ran. The score is *ours*: `score_from_verdicts` computes it from the
per-key-point verdicts, false statements and flags, whoever produced the verdicts. A model can
therefore never hand itself (or a candidate) a number; it can only claim coverage, and those claims
are checked against the answer text before they count.

Trade-offs: partial credit is a flat half point and every key point weighs the same. Entries state
key points as atomic facts of similar importance, so equal weights keep the score explainable
("3 of 5 points covered"); the offline grader's penalties for keyword lists and question echoes are
multiplicative caps, documented in `tutor/grading_offline.py` where they are tuned.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

VerdictName = Literal["covered", "partial", "missed"]
VERDICT_CREDIT: dict[str, float] = {"covered": 1.0, "partial": 0.5, "missed": 0.0}
VERDICT_LABEL = {"covered": "已覆盖", "partial": "部分覆盖", "missed": "未覆盖"}
VERDICT_MARK = {"covered": "✓", "partial": "◐", "missed": "✗"}
FALSE_STATEMENT_PENALTY = 1.0  # points off per false statement (the offline grader tunes its own)
MAX_FALSE_STATEMENTS = 3  # at most this many false statements are charged
INJECTION_PENALTY = 1.0  # trying to instruct the grader costs a point; it never earns one

GRADER_LABEL = {"offline": "离线评分（简化模式：按要点词语覆盖判断，未使用大模型）", "llm": "大模型评分"}

# Machine-readable flags a grade may carry.
FLAG_TEXT = {
    "empty": "没有收到回答内容。",
    "truncated": "回答过长，只评了前面的部分。",
    "injection": "回答里有要求评分器改分的指令，已忽略并扣分。",
    "keyword_stuffing": "回答像是关键词堆砌，缺少完整的句子和因果关系，得分已降低。",
    "echo": "回答基本是在复述题目，没有给出新的内容。",
    "off_topic": "回答和题目要点基本无关。",
    "non_chinese": "回答主要不是中文，已按术语匹配评分（离线评分对英文的同义词覆盖有限，可能略偏低）。",
}


class KeyPointVerdict(BaseModel):
    index: int = Field(ge=0, description="0-based index into entry.key_points")
    key_point: str
    verdict: VerdictName
    evidence: str = Field("", description="verbatim quote from the candidate's answer; empty when missed")
    note: str = ""
    coverage: float | None = Field(None, description="offline grader's match strength 0-1")


class FalseStatement(BaseModel):
    quote: str = Field(description="verbatim quote from the candidate's answer")
    correction: str = Field(description="what is actually true (Chinese)")
    key_point_index: int | None = None


class Grade(BaseModel):
    entry_id: str
    question: str
    score: float = Field(ge=0, le=10)
    key_points: list[KeyPointVerdict]
    false_statements: list[FalseStatement] = []
    feedback: str
    probe_key_point: int | None = Field(None, description="index of the key point a follow-up should probe")
    probe: str | None = Field(None, description="that key point's text")
    grader: Literal["offline", "llm"]
    fell_back: bool = False
    fallback_reason: str | None = None
    flags: list[str] = []
    notices: list[str] = []
    answer: str = Field("", description="the candidate's answer as received (never shortened)")
    graded_chars: int = 0
    latency_ms: float = 0.0

    @property
    def mode_label(self) -> str:
        label = GRADER_LABEL[self.grader]
        return f"{label}（大模型不可用，已回退）" if self.fell_back else label

    def count(self, verdict: str) -> int:
        return sum(1 for k in self.key_points if k.verdict == verdict)

    def missed(self) -> list[KeyPointVerdict]:
        return [k for k in self.key_points if k.verdict != "covered"]

    def to_markdown(self) -> str:
        lines = [f"**得分：{self.score:g} / 10**　（{self.mode_label}）", ""]
        for k in self.key_points:
            ev = f" —「{k.evidence}」" if k.evidence else ""
            note = f"（{k.note}）" if k.note else ""
            lines.append(f"- {VERDICT_MARK[k.verdict]} {VERDICT_LABEL[k.verdict]}：{k.key_point}{ev}{note}")
        for f in self.false_statements:
            lines.append(f"- ⚠ 错误说法：「{f.quote}」→ {f.correction}")
        lines += ["", self.feedback]
        lines += [f"> {n}" for n in self.notices]
        return "\n".join(lines)


def score_from_verdicts(verdicts: list[KeyPointVerdict], false_statements: list[FalseStatement] = (),
                        cap: float = 10.0, injection: bool = False,
                        false_penalty: float = FALSE_STATEMENT_PENALTY) -> float:
    """The score: 10 x mean credit (covered 1, partial 0.5), minus false statements (at most
    MAX_FALSE_STATEMENTS count), capped, minus the injection penalty, rounded to 0.1."""
    if not verdicts:
        return 0.0
    raw = 10.0 * sum(VERDICT_CREDIT[v.verdict] for v in verdicts) / len(verdicts)
    raw -= false_penalty * min(MAX_FALSE_STATEMENTS, len(false_statements))
    raw = min(raw, cap)
    if injection:
        raw -= INJECTION_PENALTY
    return round(max(0.0, min(10.0, raw)), 1)


def probe_for(verdicts: list[KeyPointVerdict]) -> int | None:
    """The key point a follow-up should probe: the first missed one, else the first partial one."""
    for wanted in ("missed", "partial"):
        for v in verdicts:
            if v.verdict == wanted:
                return v.index
    return None


def feedback_for(verdicts: list[KeyPointVerdict], false_statements: list[FalseStatement],
                 flags: list[str]) -> str:
    """Short Chinese feedback built from the verdicts (used by the offline grader and as a fallback)."""
    n = len(verdicts)
    covered = sum(1 for v in verdicts if v.verdict == "covered")
    partial = sum(1 for v in verdicts if v.verdict == "partial")
    parts: list[str] = []
    if "empty" in flags:
        return "没有收到回答。可以先说说你知道的部分，哪怕只是思路。"
    if covered == n:
        parts.append("要点都答到了，回答完整。")
    elif covered + partial == 0:
        parts.append("没有答到这道题的要点。")
    else:
        parts.append(f"{n} 个要点中答到 {covered} 个" + (f"，部分答到 {partial} 个。" if partial else "。"))
    gaps = [v for v in verdicts if v.verdict != "covered"][:2]
    if gaps and covered + partial > 0:
        parts.append("还可以补充：" + "；".join(v.key_point for v in gaps) + "。")
    if false_statements:
        parts.append(f"有 {len(false_statements)} 处说法可能有误，请核对。")
    parts += [FLAG_TEXT[f] for f in flags if f in ("keyword_stuffing", "echo", "off_topic", "injection")]
    return "".join(parts)
