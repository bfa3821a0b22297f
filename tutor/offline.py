"""Offline answers: a study answer composed from the knowledge base, with no language model.

Design: the best-matching entry *is* an answer written for interviews, so offline mode shows it
rather than a list of search hits: the entry's answer (whole when it is short, otherwise the
opening plus the paragraphs that share the most terms with the question, in their original order,
with "……" where text was left out), its key points (the checklist an interviewer grades against),
its common misconceptions (many questions are asked from one of those beliefs),
the follow-up questions an interviewer would ask next, and related entries. Everything is cited
`[n]` with the same closing sources list as LLM mode, so the user can open the full entry.

Paragraphs are split on blank lines but never inside a ``` fence or a `$$` block, and a paragraph
ending in "：" stays with what it introduces, and a `$$` formula with the sentence before it. Trade-off: term overlap picks the
right paragraphs of long, multi-part answers well enough and costs ~1 ms; it cannot rephrase or
combine two entries the way a model can — that is what LLM mode is for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from tutor.citations import Source
from tutor.corpus import Corpus, Entry
from tutor.text import tokenize

OFFLINE_BANNER = "【离线模式】未配置大模型，以下内容直接整理自知识库，[编号] 对应文末来源中的条目。"
ANSWER_BUDGET = 1500  # characters of answer text shown before selecting paragraphs
REPEAT_BUDGET = 700  # the entry was shown last turn: only the paragraphs the follow-up is about
MAX_RELATED = 3
RELATED_MIN_RATIO = 0.5  # a further hit is "related" if it scores at least half the best
NEAR_MIN_COVERAGE = 0.4  # out of corpus: list near misses only if they share some of the query's terms


@dataclass
class OfflineAnswer:
    body: str
    sources: list[Source]


def split_blocks(markdown: str) -> list[str]:
    """Paragraphs of an answer; fences and $$ blocks stay whole, "…：" joins what follows."""
    blocks: list[list[str]] = [[]]
    fence = math = False
    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = not fence
        elif not fence and stripped.count("$$") % 2 == 1:
            math = not math
        if not stripped and not fence and not math:
            if blocks[-1]:
                blocks.append([])
            continue
        blocks[-1].append(line)
    paras = ["\n".join(b) for b in blocks if b]
    merged: list[str] = []
    for p in paras:
        if merged and (merged[-1].rstrip().endswith(("：", ":")) or p.lstrip().startswith("$$")):
            merged[-1] += "\n\n" + p
        else:
            merged.append(p)
    return merged


@functools.lru_cache(maxsize=256)
def _blocks_and_terms(answer: str) -> tuple[list[str], list[frozenset]]:
    """Paragraphs and their terms, cached: tokenising a long answer costs ~20 ms, a lookup ~0."""
    blocks = split_blocks(answer)
    return blocks, [frozenset(tokenize(b)) for b in blocks]


def select_answer(question: str, answer: str, budget: int = ANSWER_BUDGET) -> tuple[str, bool]:
    """The parts of `answer` that match `question`; returns (text, was_shortened)."""
    if len(answer) <= budget:
        return answer, False
    blocks, block_terms = _blocks_and_terms(answer)
    terms = set(tokenize(question))
    scores = [len(terms & bt) for bt in block_terms]
    keep = {0}
    used = len(blocks[0])
    for i in sorted(range(1, len(blocks)), key=lambda i: (-scores[i], i)):
        if scores[i] == 0 and len(keep) > 1:
            break
        if used + len(blocks[i]) <= budget:
            keep.add(i)
            used += len(blocks[i])
    out: list[str] = []
    for i, block in enumerate(blocks):
        if i in keep:
            if out and i - 1 not in keep:
                out.append("……")
            out.append(block)
    if max(keep) < len(blocks) - 1:
        out.append("……")
    return "\n\n".join(out), True


def related_entries(best: Entry, result, corpus: Corpus) -> list[Entry]:
    """Entries the best one links as follow-ups, then other strong hits; at most MAX_RELATED."""
    out: list[Entry] = []
    for f in best.follow_ups:
        e = corpus.get(f.entry_id) if f.entry_id else None
        if e is not None and e.id != best.id and e not in out:
            out.append(e)
    top = result.hits[0].score
    for h in result.hits[1:]:
        if h.score >= RELATED_MIN_RATIO * top and h.entry.id != best.id and h.entry not in out:
            out.append(h.entry)
    return out[:MAX_RELATED]


def offline_answer(question: str, result, corpus: Corpus, shown: set[str] = frozenset()) -> OfflineAnswer:
    """Compose the study answer for `question` from a `SearchResult`.

    `shown`: ids of entries the user has just read in full; for those, only the paragraphs that
    match this (follow-up) question are repeated.
    """
    if not result.relevant or not result.hits:
        lines = ["知识库中没有与这个问题对应的条目。"]
        near = [h.entry for h in result.hits[:3]] if result.coverage >= NEAR_MIN_COVERAGE else []
        if near:
            lines += ["", "检索到的最接近的条目（相关度不足，仅供参考）："]
            lines += [f"- {e.question}（{e.citation}）" for e in near]
        lines += ["", "可以换个说法再问，例如直接用论文或技术名称（如 FlashAttention、RoPE、DPO）。"]
        return OfflineAnswer("\n".join(lines), [])

    best = result.hits[0].entry
    related = related_entries(best, result, corpus)
    sources = [Source(1, best)] + [Source(i, e) for i, e in enumerate(related, 2)]
    number = {s.entry.id: s.n for s in sources}

    repeat = best.id in shown
    text, shortened = select_answer(question, best.answer, REPEAT_BUDGET if repeat else ANSWER_BUDGET)
    parts = [f"### {best.question} [1]", "", text]
    if repeat and shortened:
        parts += ["", "（上一轮已给出这个条目的完整答案，这里只摘出与追问相关的段落。）"]
    elif shortened:
        parts += ["", "（以上为与问题最相关的段落节选，完整答案见 [1]。）"]
    parts += ["", "**要点**（面试回答应覆盖）[1]"]
    parts += [f"- {p}" for p in best.key_points]
    if best.misconceptions:  # a question is often asked from one of these beliefs: correct it in place
        parts += ["", "**常见误区**（✗ 错误说法 → ✓ 正确说法）[1]"]
        parts += [f"- {m.display()}" for m in best.misconceptions]
    if best.follow_ups:
        parts += ["", "**面试官可能追问**"]
        for f in best.follow_ups:
            n = number.get(f.entry_id or "")
            parts.append(f"- {f.question}" + (f" [{n}]" if n else ""))
    linked = {f.entry_id for f in best.follow_ups if f.entry_id}
    others = [e for e in related if e.id not in linked]
    if others:
        parts += ["", "**相关条目**"]
        parts += [f"- {e.question} [{number[e.id]}]" for e in others]
    return OfflineAnswer("\n".join(parts), sources)
