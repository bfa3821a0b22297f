"""False statements found by the corpus's own list of common misconceptions (### 常见误区).

Design. Each misconception is written as a minimal pair, "误：<what candidates wrongly say> ｜ 正：<the
same sentence, corrected>". Analysed into canonical tokens (with negation), the pair splits into

- the *crux*: what only the claim says: its tokens minus those of the correction's restatement (its
  first clauses, as many as the claim has; a reason may follow), or failing that the pairs of
  neighbouring tokens around an order word ("step() 之后");
- the *truth markers*: what only the restatement says (and the *reason*: what only the whole
  correction says; two of those in a sentence mean it is saying the correction);
- the *frame*: the content words both halves share (the subject the claim is about).

An answer clause states the misconception when it says most of the crux (by IDF weight), its
sentence says none of the truth markers, and the frame is there (half of it by weight, and every
subject the claim names in Latin letters: ALBERT, k1): in the clause itself, or, unless the clause
names a subject of its own ("k2 有偏" is about k2), in the clauses before it in the same sentence
("ALBERT 那种跨层共享，参数少了计算量也跟着等比例下降"). Not stating it: sentences that report a belief
("很多人以为……", "不要说……") or ask ("是否……"), steps of an arrow sequence, a clause whose negation differs from the claim's ("不能在 softmax 之后置 0"),
a list under 绕过/避免, and a clause about the opposite condition ("温度越低……" against "温度越高……").
A pair whose halves use the same words with one negated ("一定越好" / "不一定越好") is tested by that
polarity, with most of the claim's words present.

Trade-offs. This catches exactly the mistakes someone wrote down, phrased in the words candidates use:
it is as good as the list, and a fluent wrong answer with a mistake nobody listed passes (see
docs/GRADING.md). It is cheap (a few token-set tests per clause) and conservative by construction: a
correct answer has to say the claim's crux without any of the correction's words to be flagged, which
the minimal-pair form makes rare. Pure functions; the grader caches the prepared pairs per entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from tutor.corpus import Misconception
from tutor.textnorm import NEGATIONS, STOPWORDS, Analyzer, is_formula_token

# Function words that carry the crux of many interview facts (before/after, only, most) and so are
# kept as markers although they are not content words.
ORDER_WORDS = {"之前", "之后", "前", "后", "只", "只有", "最", "更", "before", "after", "only"}
# Reporting a belief, quoting a mistake, or correcting it: the sentence does not hold the claim.
_REPORTED_RE = re.compile(r"(?:有人|很多人|不少人|一些人|有些人|别人|大家|常)(?:都|会)?(?:认为|觉得|说)|以为|误解|误区|"
                          r"说成|是错误的|错误的说法|是错的|不对|并非|而不是|其实不|并不是|不要说|别说|不能说|"
                          r"是否|能否|是不是|有没有|会不会")  # a whether-clause asks, it does not claim
NEGATING_WORDS = {"不一定", "未必", "不能", "无法", "不可以", "不了", "不到", "不出", "没法"}  # 识别不了, 防止不了
_SENTENCE_END = "。！？；;!?\n→"  # steps of a sequence do not lend each other a subject

_NAMED_RE = re.compile(r"[A-Za-z][A-Za-z0-9]+")  # in the raw text: the glossary turns 计算量 into flop
_SYMBOL_RE = re.compile(r"^[a-z]\d+$")  # k1, w2: a subject in a misconception, not a formula symbol

POLARITY_FRAME_SHARE = 1.0  # a polarity-only pair needs its whole frame ("X 等于 Y" vs "X 不等于 Y")
ORDER_WEIGHT = 1.0  # about the IDF of a common content word
# Words that put a whole list in the negative ("绕过/避免/省掉 A 和 B"), read up to the clause tested.
_AVOIDING_RE = re.compile(r"绕过|绕开|避免|避开|省掉|省去|去掉|免去|不用|不需要|无需|摆脱|代替|取代")
# Opposite conditions: a clause about the other one ("温度越低……" against "温度越高分布越尖锐") is not
# stating the claim, even though it shares the rest of its words.
OPPOSITES = [("高", "低"), ("大", "小"), ("增大", "减小"), ("多", "少"), ("长", "短"), ("快", "慢"), ("前", "后"),
             ("之前", "之后"), ("上", "下"), ("左", "右"), ("调高", "调低"), ("变高", "变低"), ("变长", "变短"),
             ("训练", "推理"), ("编码器", "解码器"), ("encoder", "decoder"), ("正", "负"), ("最大", "最小")]
_OPPOSITE = {a: b for a, b in OPPOSITES} | {b: a for a, b in OPPOSITES}
_CLAUSE_RE = re.compile(r"(?:[^，,。；;！!？?\n、:：.→（）]|\.(?!\s))+")  # a "." inside 0.5 or step() stays; "A → B → C" is a sequence, not a claim
Marker = tuple[str, bool]  # (canonical token, negated)


@dataclass(frozen=True)
class PreparedMisconception:
    claim: str
    correction: str
    crux: dict  # marker -> weight: what only the claim says
    truth: frozenset  # markers only the correction's restatement says
    reason: frozenset  # markers only the whole correction says (with its reason)
    frame: dict  # content term -> weight: what both say
    subjects: frozenset  # frame terms written in Latin letters in the claim (ALBERT, k1): all must be there
    polarity_only: bool  # the claim differs only by saying a word the correction negates (or v.v.)
    affirmed: bool | None  # same words on both sides: True if the claim is the affirmative one
    negative: bool  # the claim itself contains a negation
    key_point: int | None  # the key point the correction restates, if any


def _analyse(analyzer: Analyzer, text: str) -> tuple[set, set[str]]:
    """The markers of `text`: its content tokens and order words with their polarity, plus each pair of
    consecutive ones (so "step() 之后" differs from "backward 之后、step() 之前"); and the subjects it
    names in Latin letters (LayerNorm, k2; a glossary word like 计算量 -> flop does not count)."""
    seq: list[Marker] = []
    for t in analyzer.tokens(text):
        if t.text in ORDER_WORDS or t.surface in ORDER_WORDS:
            seq.append((t.text, t.negated))
        elif not t.function and t.text not in STOPWORDS and t.surface not in STOPWORDS and t.text.strip():
            seq.append((t.text, t.negated))
    named = {t.text for w in _NAMED_RE.findall(text) for t in analyzer.tokens(w)}
    return set(seq) | set(zip(seq, seq[1:])), named


def _words(markers: set) -> set[str]:
    return {m[0] for m in markers if isinstance(m[0], str)}


def prepare(analyzer: Analyzer, idf: Callable[[str], float], items: Sequence[Misconception],
            key_points: Sequence[set[str]]) -> list[PreparedMisconception]:
    """The usable pairs of an entry. The crux is what the claim says and the correction's restatement
    (its first clauses) does not, as single tokens, or failing that as pairs of neighbouring tokens; a pair with neither is
    dropped (it could only be tested by what is missing). `key_points`: each key point's terms."""
    def weight(token: str) -> float:  # order words are not in the corpus statistics (not content)
        return ORDER_WEIGHT if token in ORDER_WORDS else idf(token)

    out = []
    for m in items:
        claim, claim_named = _analyse(analyzer, m.claim)
        # the correction's part that restates the claim: as many clauses as the claim has
        n = len(re.split(r"[，,；;。]", m.claim))
        first = "，".join(re.split(r"[，,；;。]", m.correction)[:n])
        fixed, _ = _analyse(analyzer, first)
        correction, _ = _analyse(analyzer, m.correction)
        single = {mk for mk in claim - fixed if isinstance(mk[0], str)
                  and (not is_formula_token(mk[0]) or mk[0][:1].isdigit())}
        # neighbours as the crux only around an order word ("step() 之后"): other pairs are incidental
        pairs = {mk for mk in claim - correction if not isinstance(mk[0], str)
                 and (mk[0][0] in ORDER_WORDS or mk[1][0] in ORDER_WORDS)}
        crux = {mk: weight(mk[0]) for mk in single} or {mk: weight(mk[0][0]) + weight(mk[1][0]) for mk in pairs}
        affirmed = None
        if not crux:
            # same words, one side negated ("一定越好" / "不一定越好"): the claim's polarity is the crux
            claim_neg, fixed_neg = _negated(analyzer, m.claim), _negated(analyzer, first)
            if claim_neg == fixed_neg:
                continue
            affirmed = not claim_neg
        truth = frozenset(mk for mk in fixed - claim if isinstance(mk[0], str))
        reason = frozenset(mk for mk in correction - claim if isinstance(mk[0], str))
        crux_words = {mk[0] for mk in crux if isinstance(mk[0], str)}
        frame = {t: idf(t) for t in _words(claim) & _words(correction) if t not in ORDER_WORDS
                 and (not is_formula_token(t) or _SYMBOL_RE.match(t)) and t not in crux_words}
        words = _words(correction)
        overlaps = [len(words & kp) for kp in key_points]
        best = max(range(len(overlaps)), key=overlaps.__getitem__) if overlaps else None
        flipped = bool(crux) and all(isinstance(mk[0], str) and (mk[0], not mk[1]) in correction for mk in crux)
        subjects = frozenset(t for t in frame if t in claim_named)
        out.append(PreparedMisconception(m.claim, m.correction, crux, truth, reason, frame, subjects, flipped, affirmed,
                                         _negated(analyzer, m.claim),
                                         best if best is not None and overlaps[best] >= 2 else None))
    return out


def _sentences(text: str) -> list[list[tuple[int, int]]]:
    """Clause offsets of `text`, grouped by sentence. An English full stop ends a sentence too (the
    grader's clause splitter keeps "features. At inference" together; here the subject changes there)."""
    groups: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    for m in _CLAUSE_RE.finditer(text):
        if not m.group().strip():
            continue
        start, end = m.start(), m.end()
        current.append((start, end))
        if text[end:end + 1] in _SENTENCE_END or text[end:end + 2].startswith(". ") or end >= len(text.rstrip()):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _negated(analyzer: Analyzer, text: str) -> bool:
    return any(t.surface in NEGATIONS or t.surface in NEGATING_WORDS for t in analyzer.tokens(text))


def find(analyzer: Analyzer, prepared: Sequence[PreparedMisconception], text: str,
         crux_share: float = 0.6, frame_share: float = 0.5) -> list[tuple[PreparedMisconception, str]]:
    """(misconception, quoted clause) for every misconception the answer states, at most once each.
    The grader passes its own shares (`OfflineParams.misconception_crux/_frame`, 0.6 and 0.6)."""
    if not prepared:
        return []
    hits: list[tuple[PreparedMisconception, str]] = []
    done: set[int] = set()
    for sentence in _sentences(text):
        whole = text[sentence[0][0]:sentence[-1][1]]
        if _REPORTED_RE.search(whole):
            continue
        analysed = [_analyse(analyzer, text[s:e]) for s, e in sentence]
        sentence_marks = set().union(*(m for m, _ in analysed))
        for i, (own, named) in enumerate(analysed):
            before = set().union(*(m for m, _ in analysed[:i]))
            own_words, before_words = _words(own), _words(before)
            clause = text[sentence[i][0]:sentence[i][1]]
            negated = _negated(analyzer, clause)
            avoiding = bool(_AVOIDING_RE.search(text[sentence[0][0]:sentence[i][1]]))
            for k, m in enumerate(prepared):
                if k in done or m.truth & sentence_marks or len(m.reason & sentence_marks) >= 2:
                    continue  # the sentence says (part of) the correction
                # a clause naming a subject the claim is not about speaks of that subject only
                # ("k1 方差大，k2 是有偏的"); otherwise its sentence so far supplies the subject
                alone = any(t not in m.frame for t in named)
                # the context may lend a subject, but a polarity-only pair or one whose correction has no
                # word of its own ("方差越大" vs "方差越小": both canonicalise 越大/降低) must be said in one clause
                strict = m.affirmed is not None or not m.truth
                words = own_words if alone or strict else own_words | before_words
                if m.affirmed is not None:  # "X 一定越好" vs "X 不一定越好": the whole claim, its polarity
                    said = m.affirmed != negated
                    need = POLARITY_FRAME_SHARE
                else:
                    if m.negative != negated:
                        continue  # "不能在 softmax 之后置 0" does not say "可以在 softmax 之后置 0"
                    if not m.negative and avoiding:
                        continue  # "想绕过两件事：训练奖励模型，和在线跑强化学习"
                    got = sum(w for mk, w in m.crux.items() if mk in own or mk in before)
                    share = crux_share if isinstance(next(iter(m.crux))[0], str) else 0.0  # pairs: any one
                    said = any(mk in own for mk in m.crux) and got >= share * sum(m.crux.values())
                    need = max(frame_share, POLARITY_FRAME_SHARE) if m.polarity_only else frame_share
                if not said or any(_OPPOSITE.get(t) in words and t not in words for t in m.frame):
                    continue
                if m.frame:
                    if not m.subjects <= words:
                        continue  # every subject the claim names
                    if sum(w for t, w in m.frame.items() if t in words) < need * sum(m.frame.values()):
                        continue
                elif len(m.crux) < 2:
                    continue  # a one-word claim with no shared subject: too little to go on
                done.add(k)
                hits.append((m, clause.strip(" ，,。；;")))
    return hits
