"""Markdown rendering for the UI: a knowledge-base entry, a grade card, entry labels.

Design: pure functions from model objects to markdown strings, so every tab shows an entry or a
grade the same way, and tests can check the text without a browser. Gradio renders the markdown
(KaTeX for `$...$` / `$$...$$`, highlighted code fences); `LATEX` is passed to every component that
shows corpus text.

Trade-off: the key-point checklist is a markdown table rather than custom HTML. Tables render in
every Gradio component (Markdown, Chatbot) and copy cleanly as text; the price is that cell text
must be kept on one line (`_cell`).
"""

from __future__ import annotations

import re

from tutor.corpus import Corpus, Entry
from tutor.grade_model import VERDICT_LABEL, VERDICT_MARK, Grade

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
LEVEL_NAME = {1: "基础", 2: "进阶", 3: "深入"}


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def entry_label(entry: Entry) -> str:
    """One line naming an entry in lists: level and question."""
    return f"[{LEVEL_NAME.get(entry.level, entry.level)}] {entry.question}"


def source_line(src) -> str:
    """A source as a list item; an arXiv id or URL in it becomes a link."""
    text = src.text
    if src.arxiv:
        link = f"[arXiv:{src.arxiv}](https://arxiv.org/abs/{src.arxiv})"
        linked = re.sub(r"arXiv:\s*" + re.escape(src.arxiv) + r"(v\d+)?", link, text, count=1, flags=re.I)
        return f"- {linked}" if linked != text else f"- {text}（{link}）"
    if src.url:
        return f"- {text.replace(src.url, f'<{src.url}>')}" if src.url in text else f"- {text}（<{src.url}>）"
    return f"- {text}"


def entry_markdown(entry: Entry | None, corpus: Corpus | None = None) -> str:
    """The whole entry: metadata, answer, key points, follow-ups (with linked entries), sources."""
    if entry is None:
        return "没有找到这个条目。"
    meta = (f"`{entry.citation}` · 难度 {entry.level}（{LEVEL_NAME.get(entry.level, '')}） · "
            f"{entry.section} / {entry.topic} · 标签：{'、'.join(entry.tags)}")
    lines = [f"## {entry.question}", "", meta, ""]
    if entry.aliases:
        lines += ["**其他问法**：" + "；".join(entry.aliases), ""]
    lines += ["### 答案", "", entry.answer, "", "### 要点", ""]
    lines += [f"{i}. {kp}" for i, kp in enumerate(entry.key_points, 1)]
    if entry.misconceptions:
        lines += ["", "### 常见误区", ""]
        lines += [f"- {m.display()}" for m in entry.misconceptions]
    if entry.follow_ups:
        lines += ["", "### 追问", ""]
        for f in entry.follow_ups:
            linked = corpus.get(f.entry_id) if (corpus and f.entry_id) else None
            lines.append(f"- {f.question}" + (f"（见条目「{linked.question}」`{linked.id}`）" if linked else ""))
    if entry.sources:
        lines += ["", "### 来源", ""]
        lines += [source_line(s) for s in entry.sources]
    return "\n".join(lines)


# The offline grader checks which key points are *said*, not whether what is said is right: on held-out
# answers a fluent wrong answer averages about as much as a short correct one (docs/GRADING.md).
OFFLINE_CAVEAT = ("离线评分只核对回答有没有说到要点里的内容，判断不了说法对不对：说错但用词到位的回答也可能得分，"
                  "换了说法的正确回答也可能被判遗漏。配置大模型（TUTOR_LLM_MODEL）后会逐条判断对错。")


def grade_markdown(grade: Grade | None, follow_up: str | None = None) -> str:
    """The grade card: score, the key-point checklist with evidence, false statements, feedback."""
    if grade is None:
        return "这道题没有评分。"
    head = f"### 得分 {grade.score:g} / 10"
    counts = "　".join(f"{VERDICT_MARK[v]} {VERDICT_LABEL[v]} {grade.count(v)}" for v in ("covered", "partial", "missed"))
    lines = [head, "", f"{counts}　·　{grade.mode_label}", "", f"**题目**：{grade.question}", "",
             "| 判定 | 要点 | 回答中的依据 |", "| --- | --- | --- |"]
    for k in grade.key_points:
        evidence = f"「{_cell(k.evidence)}」" if k.evidence else "—"
        note = f"（{_cell(k.note)}）" if k.note else ""
        lines.append(f"| {VERDICT_MARK[k.verdict]} {VERDICT_LABEL[k.verdict]} | {_cell(k.key_point)} | {evidence}{note} |")
    if grade.false_statements:
        lines += ["", "**可能有误的说法**"]
        lines += [f"- 「{f.quote}」→ {f.correction}" for f in grade.false_statements]
    lines += ["", f"**点评**：{grade.feedback}"]
    lines += [f"> {n}" for n in grade.notices]
    if grade.grader == "offline":  # say what the score can and cannot mean (docs/GRADING.md)
        lines += ["", f"<small>{OFFLINE_CAVEAT}</small>"]
    if follow_up:
        lines += ["", f"**接下来**：{follow_up}"]
    return "\n".join(lines)
