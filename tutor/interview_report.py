"""The end-of-interview markdown report, and saving/resuming sessions as JSON files.

Design. The report is computed from `InterviewState` alone (plus the corpus for titles and links),
so it can be rebuilt for any saved session. A question's score is the score of its main answer;
skipped, "不知道" and "看参考答案" count as 0 and say so. Follow-up scores are shown beside it.
Missed key points are listed per entry with a `path#id` link; a key point that a follow-up later
covered is marked as recovered rather than missed. "What to review next" ranks entries by their
score (lowest first, linked follow-up entries included).

Sessions are stored one JSON file per session under `settings.data_dir / "interviews"`, written
atomically (temp file + rename) so a crash never leaves half a session.

Trade-off: per-topic averages weigh every question equally, regardless of difficulty level.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from tutor.corpus import Corpus
from tutor.grade_model import VERDICT_LABEL

SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]+")  # 20261122-212616-fe8b8e

STATUS_LABEL = {"answered": "已作答", "skipped": "跳过", "dont_know": "不知道", "revealed": "看了参考答案",
                "pending": "未作答"}


def _link(corpus: Corpus, entry_id: str) -> str:
    e = corpus.get(entry_id)
    return f"[{e.question}]({e.citation})" if e else f"`{entry_id}`（已不在知识库中）"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_report(state, corpus: Corpus) -> str:
    qs = [q for q in state.questions if q.turns]
    lines = ["# 模拟面试报告", ""]
    mode = "大模型评分" if state.mode == "llm" else "离线评分（简化模式：按要点词语覆盖判断）"
    main_scores = []
    for q in qs:
        g = q.turns[0].grade
        main_scores.append(g.score if g else 0.0)
    avg = statistics.fmean(main_scores) if main_scores else 0.0
    lines += [f"- 场次：`{state.id}`　开始于 {state.created_at}",
              f"- 评分方式：{mode}",
              f"- 题数：{len(qs)}　平均分：**{avg:.1f} / 10**", ""]
    if not qs:
        return "\n".join(lines + ["本场没有作答任何题目。"])

    lines += ["## 每题得分", "", "| # | 题目 | 主题 | 得分 | 追问得分 | 状态 |", "| --- | --- | --- | --- | --- | --- |"]
    topic_scores: dict[str, list[float]] = defaultdict(list)
    for n, (q, score) in enumerate(zip(qs, main_scores), 1):
        e = corpus.get(q.entry_id)
        topic = f"{e.section} / {e.topic}" if e else "?"
        topic_scores[topic].append(score)
        fus = [t for t in q.turns[1:]]
        fu_text = "、".join(f"{t.grade.score:g}" if t.grade and t.status == "answered" else STATUS_LABEL[t.status]
                           for t in fus) or "—"
        lines.append(f"| {n} | {_cell(_link(corpus, q.entry_id))} | {_cell(topic)} | {score:g} | {fu_text} | "
                     f"{STATUS_LABEL[q.turns[0].status]} |")

    follow = [(n, t) for n, q in enumerate(qs, 1) for t in q.turns[1:]]
    if follow:
        lines += ["", "## 追问", ""]
        for n, t in follow:
            score = f"{t.grade.score:g}/10" if t.grade and t.status == "answered" else STATUS_LABEL[t.status]
            origin = {"llm": "大模型追问", "template": "按漏掉的要点追问"}.get(t.source, "题库追问")
            lines.append(f"- 第 {n} 题 · {_cell(t.prompt)}（{origin}，依据 {_link(corpus, t.entry_id)}）：{score}")

    lines += ["", "## 各主题得分", "", "| 主题 | 题数 | 平均分 |", "| --- | --- | --- |"]
    for topic, scores in sorted(topic_scores.items(), key=lambda kv: statistics.fmean(kv[1])):
        lines.append(f"| {_cell(topic)} | {len(scores)} | {statistics.fmean(scores):.1f} |")

    lines += ["", "## 没答到的要点", ""]
    review: dict[str, float] = {}
    any_missed = False
    for q in qs:
        main = q.turns[0]
        recovered: set[int] = set()
        for t in q.turns[1:]:
            if t.entry_id == q.entry_id and t.focus and t.grade:
                recovered |= {t.focus[k.index] for k in t.grade.key_points
                              if k.verdict == "covered" and k.index < len(t.focus)}
        review[q.entry_id] = min(review.get(q.entry_id, 10.0), main.grade.score if main.grade else 0.0)
        blocks = [(q.entry_id, main, recovered)]
        blocks += [(t.entry_id, t, set()) for t in q.turns[1:] if t.entry_id != q.entry_id]
        for entry_id, turn, rec in blocks:
            if turn is not main and turn.grade:
                review[entry_id] = min(review.get(entry_id, 10.0), turn.grade.score)
            if turn.grade is None:
                continue
            gaps = [k for k in turn.grade.key_points if k.verdict != "covered"]
            if not gaps:
                continue
            any_missed = True
            lines.append(f"- {_link(corpus, entry_id)}")
            for k in gaps:
                tail = "（追问中已补上）" if k.index in rec else ""
                lines.append(f"  - {VERDICT_LABEL[k.verdict]}：{k.key_point}{tail}")
    if not any_missed:
        lines.append("所有作答的要点都答到了。")

    lines += ["", "## 接下来复习", ""]
    weak = sorted((s, eid) for eid, s in review.items() if s < 8)
    if not weak:
        lines.append("本场表现很好，可以换一个主题或提高难度。")
    for s, eid in weak[:6]:
        lines.append(f"1. {_link(corpus, eid)}（本场得分 {s:g}/10）")
    return "\n".join(lines) + "\n"


class InterviewStore:
    """Saved sessions: `<data_dir>/interviews/<id>.json`."""

    def __init__(self, data_dir: Path):
        self.dir = Path(data_dir) / "interviews"

    def save(self, session) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{session.state.id}.json"
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(session.to_json())
        os.replace(tmp, path)
        return path

    def ids(self) -> list[str]:
        """Saved session ids, most recently updated first."""
        if not self.dir.is_dir():
            return []
        files = sorted(self.dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        return [p.stem for p in files if not p.name.startswith(".tmp-")]

    def resumable(self, profile: str, default_profile: str = "default", limit: int = 20) -> list[tuple[str, str]]:
        """(label, id) of `profile`'s unfinished sessions, most recent first. Sessions saved without a
        profile (before profiles were stored, or by `tutor interview --no-record`) belong to
        `default_profile`. Files that are not sessions are left out."""
        out = []
        for session_id in self.ids():
            label = self._resumable_label(session_id, profile, default_profile)[0]
            if label:
                out.append((label, session_id))
                if len(out) >= limit:
                    break
        return out

    def resumable_text(self, session_id: str, profile: str, default_profile: str = "default") -> str | None:
        """The saved JSON of `session_id` if `profile` may resume it (by the rule of `resumable`), else None:
        unknown, finished, someone else's, or not a session."""
        label, text = self._resumable_label(session_id, profile, default_profile)
        return text if label else None

    def _resumable_label(self, session_id: str, profile: str, default_profile: str) -> tuple[str | None, str]:
        """(the list label or None, the file's text). Read as plain JSON: this module must not import the
        session logic."""
        try:
            text = self.load_text(session_id)
            state = json.loads(text)
            questions = state["questions"]
            if state.get("finished") or not questions or (state.get("profile") or default_profile) != profile:
                return None, text
            answered = sum(1 for q in questions if q.get("done"))
            current = questions[-1]["turns"][0]["prompt"]
            total = state["config"]["n_questions"]
            when = datetime.fromisoformat(state["updated_at"]).astimezone().strftime("%m-%d %H:%M")  # local time
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            return None, ""
        current = current if len(current) <= 24 else current[:24] + "…"
        return f"{when} · 已完成 {answered}/{total} 题 · 当前：{current}", text

    def load_text(self, session_id: str) -> str:
        path = self.dir / f"{session_id}.json"
        # an id is a file name inside the store (ids come from the CLI and the web page): never a path
        if not SESSION_ID_RE.fullmatch(session_id or "") or not path.is_file():
            raise FileNotFoundError(f"找不到面试记录 `{session_id}`（{self.dir}）")
        return path.read_text(encoding="utf-8")
