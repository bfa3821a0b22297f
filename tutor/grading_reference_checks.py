"""Relation checks against the reference: false statements a key-word match cannot see.

Design. `tutor/grading_checks.py` tests polarity, antonyms and swapped subjects. Fluent wrong answers
mostly keep the right words and break the *relation* between them, so this module reads a few
relations out of a clause and compares them with the same relation in a key point or a sentence of the
entry's reference answer (the grader pairs an answer window with the unit it matches best):

- equality vs difference: the reference says "A 的 X 与 B 相同 / 不变 / 差不多", the answer says X is
  larger, smaller, "h 倍", "比 B 少" (or the reverse: the answer calls two subjects the reference
  tells apart "一回事 / 没有区别 / 一样");
- comparative direction: "A 比 B 高" or "A 的 X 更大" against a reference clause giving the same
  attribute X the other direction for A (or the same direction for B); the reference side may state
  it plainly ("bf16 范围大、精度低");
- monotone relations: "越 X 越 Y" with the opposite sign, or one the reference explicitly denies
  ("不是越多越好");
- polarity of a whole clause: the reference says "不切分激活", the answer "切分激活" (same subject);
- numbers: the answer states a number where the matching reference clause states another, about the
  same subject and terms (numbers found anywhere in the reference, ranges, "约" figures and small
  counts are never questioned);
- sameness: "A 和 B 是一回事 / 没区别" for two subjects the key points tell apart, or "两者的 X 一样"
  where a key point gives X to one of the subjects the question compares;
- misconceptions: a claim the reference itself labels wrong (quoted and followed by 是错的 / 不对,
  "……是错误做法", or the misconception section) repeated as a plain statement.
A sentence that reports a claim as wrong (认为……, 是错的, 不是……) is never judged by these checks.

Trade-offs. Each relation is read from a handful of surface patterns (比, 更, 倍, 相同, 越…越), so
most wrong relations still pass, and a check only fires when the answer clause and the reference
clause share an attribute term and the answer clause has no negation: a false alarm costs a correct
candidate `false_penalty` points, a miss costs a wrong one the same. Pure functions; no state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tutor.textnorm import NEGATIONS, STOPWORDS, Token, compact, is_formula_token

# Equality: canonical tokens that say two things are the same / unchanged.
EQUAL_WORDS = {"一致", "相等", "等价", "等同", "差不多", "不变", "回事", "相当于同"}
# One-word polar adjectives and the canonical change verbs (增大 also covers 增加/变大/升高 ...).
_POS = {"增大", "大", "高", "多", "更快", "强", "好", "长", "宽", "优", "提高", "提升", "上升", "重"}
_NEG = {"减小", "小", "低", "少", "更慢", "弱", "差", "短", "窄", "劣", "轻"}
_COMPARATIVE_SUFFIX = "于"  # 高于, 小于, 优于 ...
_CHANGE = {"增大", "减小", "提高", "提升", "上升"}
# Words that say what precedes them is wrong (in a key point or a reference sentence).
WRONG_MARKER_RE = re.compile(r"(?:是|为)?(?:错误(?:的)?(?:做法|说法|理解)?|错的|不对|不正确|误区|误解|并不成立)")
QUOTE_RE = re.compile(r"[\"“「『']([^\"”」』']{2,40})[\"”」』']")
ORDER_WORDS = ("之前", "之后", "以前", "以后")
_YUE_RE = re.compile(r"越(多|少|大|小|高|低|快|慢|强|弱|好|差|长|短|深|浅|平|尖)")
_YUE_SIGN = {"多": 1, "大": 1, "高": 1, "快": 1, "强": 1, "好": 1, "长": 1, "深": 1, "尖": 1,
             "少": -1, "小": -1, "低": -1, "慢": -1, "弱": -1, "差": -1, "短": -1, "浅": -1, "平": -1}
_DENY_RE = re.compile(r"不是|并非|并不|未必|不一定|不见得")
QUESTION_RE = re.compile(r"为什么|为何|怎么|如何|是否|吗|呢|哪")  # a heading asking a question states nothing
NUMBER_RE = re.compile(r"(?<![a-z0-9_.^/\\{-])(\d+(?:\.\d+)?)(?![a-z0-9_.^/}]|\s*[×x*])")
APPROX_RE = re.compile(r"约|左右|大概|大约|上下|或|量级|以上|以下|不超过|至少|最多|通常|一般|\d\s*(?:[-~～到至]|to)\s*\d")
BOTH_WORDS = {"两者", "二者", "两个", "它们", "都"}
PAIR_WORDS = {"两者", "二者"}
SAMENESS_FILLERS = {"区别", "本质", "本质上", "实际上", "完全", "基本", "基本上", "原理"}  # "本质上没区别"


def is_subject(term: str) -> bool:
    """A named thing a comparison can be about: an ASCII technical term (bf16, fp16, layernorm, gpt)."""
    return term.isascii() and term[:1].isalpha() and len(term) >= 2 and not is_formula_token(term)


def polarity(tok: str) -> int:
    """+1 / -1 for a polar adjective or change verb ("更高" +1, "小于" -1), else 0."""
    if tok in _POS:
        return 1
    if tok in _NEG:
        return -1
    if len(tok) == 2 and tok[0] in "更较" and tok[1:] != tok:
        return polarity(tok[1:])
    if len(tok) == 2 and tok[1] == _COMPARATIVE_SUFFIX:
        return polarity(tok[0])
    return 0


@dataclass
class Relations:
    """The relations read from one clause."""

    terms: set[str] = field(default_factory=set)  # content terms (no polar words, numbers, subjects)
    subjects: set[str] = field(default_factory=set)
    equal: bool = False  # "与 B 相同", "不变", "一回事"
    differ: bool = False  # "比 B 多", "h 倍", "更大", "变少"
    claims: list[tuple[str, str, int]] = field(default_factory=list)  # (subject, attribute, sign)
    monotone: list[tuple[int, bool]] = field(default_factory=list)  # (sign of 越X越Y, denied)
    negated: bool = False
    both: bool = False  # talks about "两者 / 二者" or names two subjects
    order: set[str] = field(default_factory=set)  # 之前 / 之后
    equal_attr: str | None = None  # the term right before the equality word ("稳定性是一样的")
    equal_attrs: set[str] = field(default_factory=set)  # what is said to be equal ("参数量和计算量与 B 相同")
    pair: bool = False  # "两者 / 二者" or two subjects named
    context: set[str] = field(default_factory=set)  # its subjects, or the one carried from the sentence
    negations: int = 0  # negation words (one: a plain negative statement)
    text: str = ""  # the clause, canonical and compact
    core: str = ""  # the same without its negation words ("不切分激活" -> "切分激活")
    numbers: set[float] = field(default_factory=set)  # stated quantities (not digits inside names: bf16, 7b)
    approx: bool = False  # 约 / 左右 / 大概 / 到 / ~: the numbers are a range or rough


def numbers_in(text: str) -> set[float]:
    """Quantities stated in canonical text ("11,008" is one number; the 16 of bf16 is none)."""
    return {float(m) for m in NUMBER_RE.findall(re.sub(r"(?<=\d),(?=\d{3})", "", text))}


def relations(tokens: list[Token], canon: str, carry: str | None = None) -> Relations:
    """Relations of one clause (`canon`: its canonical text). `carry`: the subject named earlier in the
    same sentence."""
    compact_text = compact(canon)
    r = Relations()
    toks = [t for t in tokens if t.text.strip()]
    r.negations = sum(1 for t in toks if t.surface in NEGATIONS)
    r.text = compact_text
    r.numbers = numbers_in(canon)
    r.approx = bool(APPROX_RE.search(canon))
    r.core = "".join(t.surface for t in toks if t.surface not in NEGATIONS).replace(" ", "")
    r.negated = r.negations > 0 or any(t.negated for t in toks)
    r.order = {w for w in ORDER_WORDS if w in compact_text}
    comparator = any(t.surface in ("比", "更", "较", "还") for t in toks)
    subjects_in_order = [t.text for t in toks if is_subject(t.text)]
    r.subjects = set(subjects_in_order)
    r.context = r.subjects or ({carry} if carry else set())
    r.both = any(t.surface in BOTH_WORDS for t in toks) or len(r.subjects) >= 2
    r.pair = any(t.surface in PAIR_WORDS for t in toks) or len(r.subjects) >= 2
    for t in toks:
        if t.text in STOPWORDS or t.function or polarity(t.text) or t.text[:1].isdigit() or is_subject(t.text):
            continue
        if t.text in EQUAL_WORDS or is_formula_token(t.text) or t.text.startswith("越"):
            continue
        r.terms.add(t.text)
    for i, t in enumerate(toks):
        # equality as the predicate ("与 B 相同", "差不多"), not an attribute ("相同预算下")
        last = all(x.function or x.text in STOPWORDS for x in toks[i + 1:])
        if (t.text in EQUAL_WORDS and last and not t.negated and not comparator
                and not (i and toks[i - 1].surface in NEGATIONS)) or (t.text == "区别" and t.negated):
            r.equal = True
            r.equal_attr = next((x.text for x in reversed(toks[max(0, i - 4):i]) if x.text in r.terms), None)
            # what is equal: the two terms before "与 / 和 / 跟 B 相同", else the two before the word
            pivot = next((j for j in range(i - 1, -1, -1) if toks[j].surface in ("与", "和", "跟", "同")), i)
            r.equal_attrs = {x.text for x in toks[:pivot] if x.text in r.terms or x.text in r.subjects}
            r.equal_attrs = set([x.text for x in toks[:pivot] if x.text in r.equal_attrs][-2:])
        if t.text.endswith("倍") or t.text in _CHANGE:
            r.differ = True
        s = polarity(t.text)
        if not s:
            continue
        explicit = comparator or t.text[0] in "更较" or t.text.endswith(_COMPARATIVE_SUFFIX)
        if explicit:
            r.differ = True
        # "A (的 X) 比 B (的 X) 高", "A 的 X 高于 B", "A 的 X 更大", "X 大" (subject carried from the sentence):
        # the subject is the first content word before the comparison, the attribute the last one
        content = [j for j, x in enumerate(toks) if x.text in r.terms or x.text in r.subjects]
        bi = next((j for j in range(i) if toks[j].surface == "比"), None)
        if bi is None and t.text.endswith(_COMPARATIVE_SUFFIX) and len(t.text) == 2:
            bi = i  # "高于 B": the target follows
        head = [toks[j].text for j in content if j < (bi if bi is not None else i)]
        if bi is not None:
            target = [toks[j].text for j in content if bi < j and (j < i or bi == i)]
            between = [toks[j].text for j in content if bi < j < i]
        else:
            target, between = [], []
        if len(head) >= 2:
            subj, attr = head[0], head[-1]
        elif len(head) == 1 and bi is not None and len(between) >= 2:
            subj, attr = head[0], between[-1]  # "A 比 B 精度高"
        elif len(head) == 1 and bi is None and carry:
            subj, attr = carry, head[0]
        else:
            continue
        if bi is not None:
            r.claims.append((subj, attr, s))
            if target and target[0] not in (subj, attr):
                r.claims.append((target[0], attr, -s))
        elif explicit or len(r.subjects - {attr}) <= 1:
            r.claims.append((subj, attr, s if explicit else s * 2))  # 2: a plain statement
    if any(t.text == "区别" and t.negated for t in toks) and r.negations == 1:
        # "没有区别" states an equality; its negation word does not make the clause negative
        r.negations = 0
        r.negated = any(t.negated for t in toks if t.text != "区别")
    signs = [(m.start(), _YUE_SIGN[m.group(1)]) for m in _YUE_RE.finditer(compact_text)]
    if len(signs) >= 2:
        denied = bool(_DENY_RE.search(compact_text[:signs[0][0]]))
        r.monotone.append((signs[0][1] * signs[1][1], denied))
    return r


def sentence_relations(clauses: list[tuple[list[Token], str]]) -> list[Relations]:
    """Relations of consecutive clauses (tokens, canonical text) of one sentence, carrying the last named
    subject forward."""
    out, carry = [], None
    for tokens, canon in clauses:
        rel = relations(tokens, canon, carry)
        if carry is None:  # the sentence's subject: its first named term, else its first content word
            named = [t.text for t in tokens if is_subject(t.text)]
            first = [t.text for t in tokens if t.text in rel.terms]
            carry = named[0] if named else first[0] if first and (rel.claims or rel.equal) else None
        out.append(rel)
    return out


def number_conflict(a: Relations, u: Relations, known: set[float], heavy: set[str]) -> str | None:
    """The answer clause states a number where the reference clause, about the same subject and at least
    two of the same heavy terms, states another one; numbers found anywhere in the reference, rough or
    ranged reference numbers and small counts are never questioned."""
    if not a.numbers or not u.numbers or u.approx or a.negated:
        return None
    if len(a.terms & u.terms & heavy) < 2 or (a.context and u.context and not a.context & u.context):
        return None
    odd = {n for n in a.numbers if n not in known and n > 3}
    if odd and not a.numbers & u.numbers:
        return f"数字与参考答案不符（回答 {sorted(odd)[0]:g}，参考答案 {'/'.join(f'{n:g}' for n in sorted(u.numbers))}）"
    return None


def relation_conflict(unit: list[Relations], window: list[Relations], heavy: set[str],
                      known: set[float] = frozenset()) -> str | None:
    """A reason when an answer window states a relation opposite to the reference unit's, else None.

    `heavy`: the unit's terms heavy enough to stand for the attribute being compared; `known`: every
    number the reference answer and key points state."""
    # a unit saying "A 与 B 相同，C 约为 1.5 倍" mixes both: its equality is not tested
    mixed = any(u.equal for u in unit) and any(u.differ and not u.negated for u in unit)
    for a in window:
        if a.negated:
            continue
        for u in unit:
            shared = (a.terms | a.subjects) & (u.terms | u.subjects) & heavy
            if a.context and u.context and not a.context & u.context:
                continue  # about another subject ("ZeRO-3 多 50%" vs "ZeRO-1/2 相同")
            reason = number_conflict(a, u, known, heavy)
            if reason:
                return reason
            if u.negations == 1 and len(u.terms) >= 2 and len(u.core) >= 3 and u.core in a.text \
                    and not a.negated and a.context & u.context and not u.differ:
                # the reference says "不 X Y" about this subject, the answer says "X Y" plainly
                return f"参考答案说「不……{'、'.join(sorted(u.terms))}」，回答说的是肯定"
            if shared and not mixed and u.equal and not u.differ and a.differ and not a.equal and not u.negated \
                    and u.equal_attrs & (a.terms | a.subjects):
                return f"参考答案说「{sorted(shared)[0]}」相同或不变，回答说有大小差别"
            if a.equal and not mixed and not a.differ and a.both and u.differ and not u.equal and shared and not u.negated \
                    and len(u.subjects) <= 1:
                return f"回答说两者的「{sorted(shared)[0]}」一样，参考答案说有差别"
            if not shared:
                continue
            for subj, attr, s in a.claims:
                if abs(s) != 1:
                    continue  # the answer side must be an explicit comparison
                signs = {us > 0 for usubj, uattr, us in u.claims if usubj == subj and uattr == attr}
                if signs == {s < 0}:
                    return f"比较方向说反了（{subj} 的「{attr}」）"
            for sign, denied in a.monotone:
                if denied:
                    continue
                for usign, udenied in u.monotone:
                    if (udenied and usign == sign) or (not udenied and usign == -sign):
                        return "「越……越……」的关系与参考答案相反"
    return None


def misconception_claims(text: str) -> list[str]:
    """Claims that a key point or reference sentence itself labels wrong: quoted text in a sentence with
    a wrong-marker (“"bf16 精度比 fp16 高"是错的”, 常见误区：“……”——不对), or the clause right
    before "是错误做法 / 是错的"."""
    out = []
    for sent in re.split(r"[。！？\n]", text):
        m = WRONG_MARKER_RE.search(sent)
        if not m:
            continue
        quoted = [q for q in QUOTE_RE.findall(sent)]
        if quoted:
            out.extend(quoted)
            continue
        head = re.split(r"[，,；;：:]", sent[:m.start()])[-1].strip(" —-*")
        if len(head) >= 4 and not _DENY_RE.search(head):
            out.append(head)
    return out


def has_wrong_marker(text: str) -> bool:
    return bool(WRONG_MARKER_RE.search(text))


def reference_sentences(answer: str) -> list[str]:
    """The prose sentences of a reference answer (code, display formulas and tables left out)."""
    text = re.sub(r"```.*?```", "\n", answer, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", "\n", text, flags=re.S)
    text = re.sub(r"\*\*|^#+\s*|^\s*(?:[-*+]|\d+[.)])\s+", "", text, flags=re.M)
    out = []
    for line in text.splitlines():
        if line.lstrip().startswith("|"):
            continue
        for sent in re.split(r"[。！？!?；;]", line):
            sent = sent.strip(" ：:，,")
            if len(sent) >= 6 and re.search(r"[\u4e00-\u9fff]", sent) and not QUESTION_RE.search(sent):
                out.append(sent)
    return out


def sameness_conflict(a: Relations, key_points: list, compared: set[str]) -> str | None:
    """The answer calls two compared subjects the same where the key points tell them apart:
    "A 和 B 是一回事 / 没有区别" with both named in different key-point clauses, or "两者的 X 一样"
    where a key point gives X to one of the subjects the question compares ("Pre-LN 训练稳定")."""
    if not a.equal or a.differ or a.negated or not a.both:
        return None
    named = a.subjects & compared if len(a.subjects & compared) >= 2 else set()
    if named and not a.terms - BOTH_WORDS - SAMENESS_FILLERS:
        # both named, nothing else said: they must be told apart somewhere and never called equal
        apart = [s for s in named if any(s in subj and not (named - {s}) & subj
                                         for kp in key_points for subj, _ in kp.term_subjects.values())]
        said_equal = any(r.equal and named <= r.subjects for kp in key_points for r in kp.relations)
        if len(apart) >= 2 and not said_equal:
            return f"回答说 {' 和 '.join(sorted(named))} 是一回事，要点把两者区分开"
    if a.subjects - compared or not a.pair or not a.equal_attr:
        return None
    for kp in key_points:
        for term in {a.equal_attr} - BOTH_WORDS:
            subj, _ = kp.term_subjects.get(term, (set(), set()))
            owners = subj & compared
            if len(owners) == 1 and len(compared) >= 2 and kp.weights.get(term, 0.0) >= 0.5 * kp.median_weight:
                return f"回答说两者的「{term}」一样，要点说这是 {next(iter(owners))} 的特点"
    return None
