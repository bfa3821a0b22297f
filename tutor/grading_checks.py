"""Cheap checks that find false statements in an answer: contradictions of a key point.

Design. The offline grader (`tutor/grading_offline.py`) finds, for each key point, the answer window
that matches it best; these checks then ask whether that window says the *opposite*:

- polarity: the key point says "不 X" and the window says X plainly (or the window negates a heavy
  term the key point affirms). A term is only tested in answer clauses about the same named subject
  (layernorm, ppo, ...) as the key-point clause it sits in, and sharing another of that clause's
  terms: "ZeRO 不切分激活" is not contradicted by "ZeRO-2 切分梯度". Double negatives are skipped, and
  so are answer clauses about the other side of what the question contrasts ("训练时随机置零" is no
  contradiction of "推理时不再随机置零" when the question asks how 训练 and 推理 differ);
- antonyms: binary properties interview facts hinge on (增大/减小, 双向/单向, 精确/近似 ...);
- swaps: a key point contrasting subjects the question compares ("LayerNorm 和 BatchNorm") clause by
  clause, answered with one subject carrying a heavy term only the other subject's clause has.

Trade-offs. Every rule is conservative: a missed contradiction costs a point of precision in the
score, a false alarm costs a correct candidate up to `false_penalty` points. On the calibration set
the checks fire on wrong answers and almost never on good ones; fluent wrong answers that use the
right words in the wrong relations still pass (a limit of lexical grading; the LLM grader exists for
that). Pure functions over the grader's prepared key points and analysed clauses; no state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tutor.textnorm import Analyzer, is_formula_token

# Binary properties interview facts hinge on; saying one where the key point says the other is a
# contradiction (only checked in the answer window that matches the key point, same subject).
ANTONYMS = [("增大", "减小"), ("更快", "更慢"), ("线性", "平方"), ("双向", "单向"), ("在线", "离线"), ("精确", "近似"),
            ("串行", "并行"), ("稠密", "稀疏"), ("全局", "局部"), ("固定", "可学习"), ("对称", "非对称"),
            ("乘以", "除以"), ("加剧", "缓解")]


@dataclass
class Term:
    text: str
    weight: float
    negated: bool


@dataclass
class KeyPointInfo:
    index: int
    text: str
    terms: list[Term]
    bigrams: dict[str, float]
    negation: bool  # the key point itself contains a negation
    parts: dict = field(default_factory=dict)  # subject -> its exclusive terms ("A 做 X，B 做 Y")
    term_subjects: dict = field(default_factory=dict)  # term -> (subjects, other terms) of its key-point clause
    weights: dict = field(default_factory=dict)  # term -> weight
    median_weight: float = 0.0
    relations: list = field(default_factory=list)  # grading_reference_checks.Relations per clause
    misconceptions: list = field(default_factory=list)  # KeyPointInfo of claims the text labels wrong
    fragments: list = field(default_factory=list)  # KeyPointInfo of the facts a compound key point lists
    own_question_terms: set = field(default_factory=set)  # question terms the key point uses (推理)
    other_question_terms: set = field(default_factory=set)  # question terms it does not (训练: the other side)


@dataclass
class Clause:
    start: int
    end: int
    terms: dict[str, bool]  # canonical term -> every occurrence negated
    english: set[str]
    compact: str
    bigrams: set[str]
    has_negation: bool
    negations: int = 0  # negation words in the clause (two = a double negative: no polarity test)
    entities: frozenset = frozenset()  # named terms (ASCII: layernorm, ppo, ...) of the whole sentence
    own_entities: frozenset = frozenset()  # named terms of this clause
    sentence_terms: frozenset = frozenset()  # every term of the whole sentence
    relations: object = None  # grading_reference_checks.Relations of this clause


def is_entity(term: str) -> bool:
    """A named technical term (layernorm, ppo, kvcache): ASCII letters, not a formula symbol."""
    return term.isascii() and term.isalpha() and len(term) >= 2 and not is_formula_token(term)


def key_point_parts(analyzer: Analyzer, kp: str, compared: set[str]) -> dict[str, set[str]]:
    """For a key point contrasting, clause by clause, two or more of the subjects the question
    compares ("LayerNorm 和 BatchNorm 的区别"), each subject's own terms."""
    per: dict[str, set[str]] = {}
    for part in re.split(r"[，,；;。]", kp):
        terms = {t.text for t in analyzer.content_terms(part)}
        subjects = [t for t in terms if t in compared]
        if len(subjects) == 1:
            per.setdefault(subjects[0], set()).update(t for t in terms if not is_entity(t))
    if len(per) < 2:
        return {}
    shared = set.intersection(*per.values())
    return {e: terms - shared for e, terms in per.items()}

def term_subjects(analyzer: Analyzer, kp: str) -> dict[str, tuple[set[str], set[str]]]:
    """term -> (named subjects, other content terms) of the key-point clause it sits in. A polarity
    test for the term is only made against answer clauses about one of those subjects that also
    share one of those terms ("ZeRO 不切分激活" is not contradicted by "ZeRO-2 切分梯度")."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    for part in re.split(r"[，,；;。]", kp):
        terms = {t.text for t in analyzer.content_terms(part)}
        subjects = {t for t in terms if is_entity(t)}
        plain = {t for t in terms - subjects if not t[:1].isdigit() and not is_formula_token(t)}
        for t in terms:
            subj, ctx = out.setdefault(t, (set(), set()))
            subj.update(subjects - {t})
            ctx.update(plain - {t})
    return out


def contradiction(kp: KeyPointInfo, win: list[Clause]) -> str | None:
    """A short reason when the window states the opposite of the key point, else None.

    Conservative: a term counts only in a clause without a double negative, in a sentence whose
    named subjects (layernorm, ppo, ...) are the key point's; the term must be among the key
    point's heavier half."""
    kp_entities = {t.text for t in kp.terms if is_entity(t.text)}

    def about(c: Clause, subjects: set[str]) -> bool:
        """The clause (or, if it names none, its sentence) is about these subjects and not also
        about another subject of the key point ("QAT 在训练中……" is not about PTQ)."""
        named = c.own_entities or c.entities
        if not subjects or not named:
            return True
        return bool(named & subjects) and not named & (kp_entities - subjects)

    def other_side(c: Clause) -> bool:
        """The clause is about the other side of what the question contrasts ("训练时……" against a key
        point about 推理 when the question asks 训练和推理有什么不同)."""
        return bool(set(c.terms) & kp.other_question_terms) and not set(c.terms) & kp.own_question_terms

    win_negation = any(c.has_negation for c in win)
    heavy = sorted((t.weight for t in kp.terms), reverse=True)
    floor = heavy[len(heavy) // 2] if heavy else 0.0
    for t in kp.terms:
        if t.text[:1].isdigit() or is_formula_token(t.text):
            continue  # numbers and symbols have no polarity
        subjects = kp.term_subjects.get(t.text, (set(), set()))[0] or kp_entities
        context = kp.term_subjects.get(t.text, (set(), set()))[1]  # the other terms of its clause
        states = [c.terms[t.text] for c in win
                  if t.text in c.terms and c.negations < 2 and about(c, subjects) and not other_side(c)
                  and (not context or context & set(c.terms))]
        if not states:
            continue
        # "不 X" in the key point is its crux whatever X weighs; a negated X in the answer only
        # counts for the key point's heavier terms
        if t.negated and not win_negation and not any(states):
            return f"要点是「不{t.text}」，回答说的是肯定"
        if t.weight >= floor and not kp.negation and not t.negated and all(states):
            return f"回答否定了「{t.text}」"
    usable = [c for c in win if c.negations < 2 and about(c, kp_entities)]
    swap = swapped(kp, win)
    if swap:
        return swap
    kp_terms = {t.text for t in kp.terms if not t.negated}
    present = {t for c in usable for t in c.terms}
    for a, b in ANTONYMS:
        if a in kp_terms and b in kp_terms:
            continue
        for x, y in ((a, b), (b, a)):
            if x in kp_terms and y in present and x not in present:
                return f"要点是「{x}」，回答说「{y}」"
    return None

def swapped(kp: KeyPointInfo, win: list[Clause]) -> str | None:
    """"A 做 X，B 做 Y" answered as "A 做 Y": a sentence that names exactly one of the key point's
    subjects carries a term only the *other* subject's part of the key point has, and none of its own."""
    if len(kp.parts) < 2:
        return None
    for c in win:
        named = [e for e in kp.parts if e in c.entities]
        if len(named) != 1:
            continue
        own = kp.parts[named[0]]
        others = set().union(*(v for e, v in kp.parts.items() if e != named[0])) - own
        hits = {t for t in others & c.sentence_terms if kp.weights.get(t, 0.0) >= kp.median_weight}
        if hits and not own & c.sentence_terms:
            return f"把「{sorted(hits)[0]}」说成了 {named[0]} 的性质（说反了）"
    return None
