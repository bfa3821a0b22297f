"""The offline grader: deterministic key-point coverage from the candidate's own words.

Design. Each key point becomes a weighted bag of canonical terms (see `tutor/textnorm.py`: jieba with
domain terms, EN/ZH synonyms, formula spellings) plus its Chinese character bigrams. The answer is cut
into clauses; a key point is matched against every window of 1..`max_span` consecutive clauses, so the
evidence is a short verbatim quote and the words that cover one fact must sit together (a keyword
list scattered over the whole answer does not add up to a fact). Coverage of a window is

    (1 - b*r) * term_coverage + b*r * bigram_coverage          (r = share of Chinese in the answer)

with terms weighted by corpus IDF^p and terms that already appear in the question discounted (echoing
"LayerNorm 和 BatchNorm 的区别" back covers nothing). Thresholds turn coverage into covered / partial /
missed; the score is then computed from the verdicts by `grade_model.score_from_verdicts`.
Checks on the whole answer cap the score: keyword stuffing (almost no function words, i.e. no
sentences or relations), echoing the question, and text unrelated to the key points. Cheap
contradiction checks (`tutor/grading_checks.py`) flag a key point whose best window says the opposite
(negation, antonym, two compared subjects swapped), which becomes a false statement. An embedding backend, when configured, blends in the
cosine similarity of the key point and the window (weight `embed_weight`).

Trade-offs. Lexical coverage cannot verify reasoning: "BN 在特征维、LN 在 batch 维" (swapped) scores like
the correct sentence. The parameters in `OfflineParams` were tuned on the dev split of
`eval/data/grading_calibration.jsonl` by `python -m eval.tune_offline_grader` (never on the test
split); their provenance is recorded next to the defaults. The grader is pure Python: ~ms per answer.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from tutor.corpus import Entry
from tutor.grade_model import (FalseStatement, Grade, KeyPointVerdict, feedback_for, probe_for,
                               score_from_verdicts)
from tutor.grading_checks import (Clause, KeyPointInfo, Term, contradiction, is_entity, key_point_parts,
                                  term_subjects)
from tutor.grading_reference_checks import (has_wrong_marker, misconception_claims, reference_sentences,
                                            relation_conflict, sameness_conflict, sentence_relations)
from tutor.textnorm import (CJK_RE, NEGATION_LIKE, NEGATIONS, RELATION_WORDS, STOPWORDS, Analyzer, canonical_text,
                            cjk_bigrams, cjk_ratio, clauses, compact, get_analyzer, is_formula_token)

# A function that embeds texts (returns one vector per text); any configured embedding backend.
EmbedFn = Callable[[list[str]], Sequence[Sequence[float]]]

_STATS_CACHE: dict[str, "CorpusStats"] = {}


STUFFING_CHUNK_MAX_CHARS = 400
_DENIAL_RE = re.compile(r"认为|以为|误以为|说成|当成|当作|不是|并非|而不是")  # reporting a belief, not holding it


@dataclass(frozen=True)
class OfflineParams:
    """Defaults tuned on the dev split only by `python -m eval.tune_offline_grader` (seed 0, 300 trials +
    coordinate refinement; corpus of 2026-11-22, 184 entries; calibration set of 51 entries / 306
    answers). Measured with these: dev band accuracy 0.853, Spearman 0.807; test band accuracy 0.807,
    Spearman 0.833 (the test split was graded once, after the choice)."""

    bigram_weight: float = 0.3  # b: share of the bigram signal for an all-Chinese answer
    question_discount: float = 0.6  # weight factor for key-point terms that also occur in the question
    idf_power: float = 1.0  # p: how strongly rare terms dominate
    formula_weight: float = 0.1  # weight factor for formula symbols (x_l, l+1, f)
    span_decay: float = 0.2  # coverage factor lost per extra clause in a window
    max_span: int = 3
    covered: float = 0.25  # coverage at or above: covered
    partial: float = 0.12  # coverage at or above: partial
    stuffing_ratio: float = 0.1  # function-word share below this (with >= stuffing_min_terms): stuffing
    stuffing_chunk_ratio: float = 0.5  # or: share of Chinese chunks with a relation word below this
    stuffing_min_terms: int = 5
    stuffing_cap: float = 2.0
    echo_ratio: float = 0.9  # share of the answer's term weight found in the question: echo
    echo_cap: float = 1.0
    off_topic_coverage: float = 0.12  # mean key-point coverage below this: off-topic (a flag, no cap)
    contradictions: bool = True  # flag negation/antonym contradictions as false statements
    reference_checks: bool = True  # also check the reference answer's sentences for contradictions
    ref_match: float = 0.5  # coverage of a reference sentence needed before its checks run
    misconception_match: float = 0.6  # coverage of a claim labelled wrong that repeats it
    support_min: float = 0.6  # a window this much backed by the reference ...
    ref_link: float = 0.3  # a reference sentence covering this much of a key point explains it
    ref_credit: float = 0.4  # coverage of such a sentence that earns the key point partial credit
    support_floor: float = 0.2  # a matching window less backed than this drops one verdict level
    support_coverage: float = 0.06  # ... touching a key point this much: partial credit
    fragment_match: float = 0.9  # coverage of one fragment of a compound key point: partial credit
    relation_term_floor: float = 0.5  # a compared attribute weighs at least this x the unit's median term
    false_penalty: float = 3.0  # points off per false statement found (at most 3 statements count)
    off_topic_cap: float = 10.0  # score cap when the answer is off-topic (10 = no cap)
    embed_weight: float = 0.3  # not tuned: no Chinese embedding model is available offline here
    embed_floor: float = 0.35  # cosine below: no semantic credit; at embed_ceiling: full credit
    embed_ceiling: float = 0.8


@dataclass
class _PreparedEntry:
    key_points: list[KeyPointInfo]
    question_terms: set[str]
    question_bigrams: set[str]
    references: list[KeyPointInfo] = field(default_factory=list)  # sentences of the reference answer
    reference_terms: set[str] = field(default_factory=set)  # every term of the reference answer and key points
    reference_links: list = field(default_factory=list)  # per reference sentence: the key point it explains


@dataclass
class CorpusStats:
    """Document frequencies over the corpus (one document per entry), for IDF weights."""

    n_docs: int = 0
    term_df: Counter = field(default_factory=Counter)
    bigram_df: Counter = field(default_factory=Counter)

    def idf(self, term: str, bigram: bool = False) -> float:
        if self.n_docs == 0:
            return 1.0
        df = (self.bigram_df if bigram else self.term_df).get(term, 0)
        return math.log(1.0 + self.n_docs / (df + 1.0))


def domain_terms(entries: Sequence[Entry]) -> list[str]:
    """Technical terms of the corpus worth keeping whole: tags and short Chinese aliases."""
    terms: set[str] = set()
    for e in entries:
        terms.update(t for t in e.tags if CJK_RE.search(t))
    return sorted(terms)


class OfflineGrader:
    name = "offline"

    def __init__(self, entries: Sequence[Entry] = (), params: OfflineParams | None = None,
                 embed: EmbedFn | None = None):
        self.params = params or OfflineParams()
        self.embed = embed
        self.analyzer: Analyzer = get_analyzer(domain_terms(entries))
        self.stats = self._build_stats(entries)
        self._prepared: dict[tuple[str, str], _PreparedEntry] = {}
        self._clause_cache: dict[str, list[Clause]] = {}  # text -> analysed clauses (param-independent)

    def with_params(self, params: OfflineParams) -> "OfflineGrader":
        """A copy with other parameters sharing the analyzer, corpus statistics and clause cache
        (used by the tuning script, which grades the dev split under many parameter settings)."""
        clone = object.__new__(OfflineGrader)
        clone.__dict__.update(self.__dict__)
        clone.params = params
        clone._prepared = {}
        return clone

    def _build_stats(self, entries: Sequence[Entry]) -> CorpusStats:
        """Corpus IDF statistics; cached per corpus content, so a grader per session costs nothing."""
        key = hashlib.sha256("\0".join(sorted(f"{e.id}:{e.content_hash()}" for e in entries)).encode()).hexdigest()
        if key in _STATS_CACHE:
            return _STATS_CACHE[key]
        stats = CorpusStats(n_docs=len(entries))
        for e in entries:
            text = " ".join([e.question, *e.aliases, e.answer, *e.key_points])
            stats.term_df.update({t.text for t in self.analyzer.content_terms(text)})
            stats.bigram_df.update(cjk_bigrams(canonical_text(text)))
        if len(_STATS_CACHE) >= 8:
            _STATS_CACHE.clear()
        _STATS_CACHE[key] = stats
        return stats

    # ---- preparing an entry ------------------------------------------------------------------

    def _prepare(self, entry: Entry) -> _PreparedEntry:
        key = (entry.id, "\x00".join([entry.question, *entry.key_points, entry.answer]))
        if key in self._prepared:
            return self._prepared[key]
        q_text = " ".join([entry.question, *entry.aliases])
        q_terms = {t.text for t in self.analyzer.content_terms(q_text)}
        q_bigrams = cjk_bigrams(canonical_text(q_text))
        kps = [self._unit(i, kp, q_terms, q_bigrams) for i, kp in enumerate(entry.key_points)]
        refs = [u for j, sent in enumerate(reference_sentences(entry.answer))
                if len((u := self._unit(-1 - j, sent, q_terms, q_bigrams)).terms) >= 2]
        ref_terms = {t.text for t in self.analyzer.content_terms(" ".join([entry.answer, *entry.key_points]))}
        links = []
        for u in refs:  # the key point a reference sentence explains: the one whose terms it covers most
            cover = [sum(t.weight for t in kp.terms if t.text in u.weights) / (sum(t.weight for t in kp.terms) or 1.0)
                     for kp in kps]
            best = max(range(len(kps)), key=lambda k: cover[k]) if kps else None
            links.append(best if best is not None and cover[best] >= self.params.ref_link else None)
        prepared = _PreparedEntry(kps, q_terms, q_bigrams, refs, ref_terms, links)
        self._prepared[key] = prepared
        return prepared

    def _unit(self, index: int, text: str, q_terms: set[str], q_bigrams: set[str],
              claims: bool = True) -> KeyPointInfo:
        """A key point (index >= 0) or a reference sentence (index < 0) as weighted terms, bigrams and
        the relations of its clauses."""
        p = self.params
        merged: dict[str, Term] = {}
        for t in self.analyzer.content_terms(text):
            w = self.stats.idf(t.text) ** p.idf_power
            if t.text in q_terms:
                w *= p.question_discount
            if is_formula_token(t.text):
                w *= p.formula_weight
            if t.text in merged:
                merged[t.text].negated &= t.negated  # negated only if every mention is
            else:
                merged[t.text] = Term(t.text, w, t.negated)
        grams = {}
        for g in cjk_bigrams(canonical_text(text)):
            if all(ch in STOPWORDS for ch in g):
                continue
            w = self.stats.idf(g, bigram=True) ** p.idf_power
            grams[g] = w * (p.question_discount if g in q_bigrams else 1.0)
        negation = any(tok.surface in NEGATION_LIKE for tok in self.analyzer.tokens(text))
        q_entities = {t for t in q_terms if is_entity(t)}
        ws = sorted(t.weight for t in merged.values())
        unit = KeyPointInfo(index, text, list(merged.values()), grams, negation,
                            key_point_parts(self.analyzer, text, q_entities), term_subjects(self.analyzer, text),
                            {t.text: t.weight for t in merged.values()}, ws[len(ws) // 2] if ws else 0.0)
        rels = []
        for sent in re.split(r"[。；;！？!?\n]", text):
            parts = [canonical_text(sent[a:b]) for a, b in clauses(sent)]
            rels += sentence_relations([(self.analyzer.tokens(c, canonicalized=True), compact(c)) for c in parts])
        unit.relations = rels
        if claims:
            unit.misconceptions = [self._unit(index, c, q_terms, q_bigrams, claims=False)
                                   for c in misconception_claims(text)]
            if index >= 0:
                frags = [f for f in re.split(r"[，,、；;：:（）()]|\s(?:和|或)\s", text) if f.strip()]
                if len(frags) >= 2:
                    for f in frags:
                        fu = self._unit(index, f, q_terms, q_bigrams, claims=False)
                        own = [t for t in fu.terms if t.text not in q_terms and not is_formula_token(t.text)
                               and not t.text[:1].isdigit()]
                        if len(fu.terms) >= 2 and own:
                            unit.fragments.append(fu)
        return unit

    def _clauses(self, text: str) -> list[Clause]:
        cached = self._clause_cache.get(text)
        if cached is not None:
            return cached
        out = []
        toks_of: dict[int, list] = {}
        canon_of: dict[int, str] = {}
        for start, end in clauses(text):
            canon = canonical_text(text[start:end])
            toks = self.analyzer.tokens(canon, canonicalized=True)
            terms: dict[str, bool] = {}
            for t in toks:
                if t.function or t.text in STOPWORDS:
                    continue
                terms[t.text] = terms.get(t.text, True) and t.negated
            negs = sum(1 for t in toks if t.surface in NEGATIONS)
            out.append(Clause(start, end, terms, {t for t in terms if t.isascii() and len(t) >= 5}, compact(canon),
                               cjk_bigrams(canon), negs > 0, negs))
            toks_of[id(out[-1])], canon_of[id(out[-1])] = toks, compact(canon)
        # sentence-level entities: a polarity test must be about the same subject as the key point
        sentence: list[Clause] = []
        for i, c in enumerate(out):
            sentence.append(c)
            if i + 1 == len(out) or text[c.end:c.end + 1] in "。！？；;!?\n" or "\n" in text[c.end:out[i + 1].start]:
                terms_all = frozenset(t for cl in sentence for t in cl.terms)
                ents = frozenset(t for t in terms_all if is_entity(t))
                for cl in sentence:
                    cl.entities, cl.sentence_terms = ents, terms_all
                    cl.own_entities = frozenset(t for t in cl.terms if is_entity(t))
                rels = sentence_relations([(toks_of[id(cl)], canon_of[id(cl)]) for cl in sentence])
                for cl, rel in zip(sentence, rels):
                    cl.relations = rel
                sentence = []
        if len(self._clause_cache) >= 1024:
            self._clause_cache.clear()
        self._clause_cache[text] = out
        return out

    # ---- matching ------------------------------------------------------------------------------

    @staticmethod
    def _term_match(term: str, c: Clause) -> float:
        if term in c.terms:
            return 1.0
        if len(term) >= 2 and not term.isascii() and term in c.compact:
            return 1.0
        if CJK_RE.search(term) and len(term) >= 3:
            grams = [term[i:i + 2] for i in range(len(term) - 1)]
            return 0.8 * sum(g in c.bigrams for g in grams) / len(grams)
        if term.isascii() and len(term) >= 5 and any(e[:5] == term[:5] for e in c.english):
            return 0.7
        return 0.0

    def grade(self, entry: Entry, text: str, flags: list[str] | None = None,
              extra_false: list[FalseStatement] = ()) -> Grade:
        """Grade `text` (already cleaned by `tutor.grading`) against `entry`'s key points.

        `extra_false`: false statements found elsewhere (in sentences cut out as instructions to the
        grader); they count here too, so cutting a sentence can never remove a penalty."""
        t0 = time.perf_counter()
        p = self.params
        flags = list(flags or [])
        prep = self._prepare(entry)
        cls = self._clauses(text)
        r = cjk_ratio(text)
        b = p.bigram_weight * r
        semantic = self._semantic(entry, text, cls) if self.embed and cls else None

        verdicts: list[KeyPointVerdict] = []
        false_statements: list[FalseStatement] = []
        coverages: list[float] = []
        used: set[int] = set()  # clauses that already earned support credit
        answer_terms = {t for c in cls for t in c.terms}
        ref_matches = [(u, *self._best_window(u, cls, b)) for u in prep.references
                       if len(answer_terms & u.weights.keys()) >= 2]
        credit = {}  # key point -> a window matching a reference sentence that explains it
        for (u, best, win), k in ((m, prep.reference_links[prep.references.index(m[0])]) for m in ref_matches):
            if k is not None and win and best >= p.ref_credit and best > credit.get(k, (0.0, None))[0]:
                credit[k] = (best, win)
        for kp in prep.key_points:
            best, best_win = self._best_window(kp, cls, b, semantic[kp.index] if semantic is not None else None)
            coverages.append(best)
            verdict, best_win, evidence, note, false = self._verdict(kp, prep, cls, b, text, best, best_win, used,
                                                                     credit.get(kp.index, (0.0, None))[1])
            if false:
                false_statements.append(false)
            verdicts.append(KeyPointVerdict(index=kp.index, key_point=kp.text, verdict=verdict,
                                            evidence=evidence if verdict != "missed" else "", note=note,
                                            coverage=round(best, 3)))

        if p.contradictions and p.reference_checks:
            self._reference_conflicts(prep, ref_matches, cls, text, verdicts, false_statements)
        for f in extra_false:
            if f.key_point_index is not None and all(x.key_point_index != f.key_point_index for x in false_statements):
                false_statements.append(f)
                v = verdicts[f.key_point_index]
                verdicts[f.key_point_index] = v.model_copy(update={"verdict": "missed", "evidence": "",
                                                                   "note": "被删去的句子里有与要点相反的说法"})
        cap = 10.0
        whole = self._clause_cache.get("\x00whole\x00" + text)
        if whole is None:
            whole = self._clause_cache["\x00whole\x00" + text] = self.analyzer.tokens(text)
        # words only: formula symbols and numbers (n, ×, d_k, 4096) are neither relations nor keywords
        words = [t for t in whole if t.text.strip() and not t.text[:1].isdigit() and not is_formula_token(t.text)
                 and t.text not in "×√∑+-*/=^()"]
        content = [t for t in words if not t.function and t.text not in STOPWORDS]
        if len(content) >= p.stuffing_min_terms:
            ratio = sum(1 for t in words if t.surface in RELATION_WORDS) / max(1, len(words))
            chunks = self._chunk_relation_share(text)
            # The chunk signal judges short answers only: a bag of keywords is short, while a long
            # structured answer (lists, bold terms, formulas) has many short chunks and is not
            # stuffing (on the corpus's own reference answers, 40 of 184 tripped it otherwise).
            short = len(text) <= STUFFING_CHUNK_MAX_CHARS
            if ratio < p.stuffing_ratio or (short and chunks is not None and chunks < p.stuffing_chunk_ratio):
                flags.append("keyword_stuffing")
                cap = min(cap, p.stuffing_cap)
        if content:
            weights = [self.stats.idf(t.text) ** p.idf_power for t in content]
            in_q = sum(w for t, w in zip(content, weights) if t.text in prep.question_terms)
            if in_q / sum(weights) >= p.echo_ratio:
                flags.append("echo")
                cap = min(cap, p.echo_cap)
        if text.strip() and coverages and sum(coverages) / len(coverages) < p.off_topic_coverage:
            flags.append("off_topic")
            cap = min(cap, p.off_topic_cap)
        if r < 0.2 and text.strip():
            flags.append("non_chinese")

        injection = "injection" in flags
        score = score_from_verdicts(verdicts, false_statements, cap=cap, injection=injection,
                                    false_penalty=p.false_penalty)
        probe = probe_for(verdicts)
        return Grade(
            entry_id=entry.id, question=entry.question, score=score, key_points=verdicts,
            false_statements=false_statements, feedback=feedback_for(verdicts, false_statements, flags),
            probe_key_point=probe, probe=entry.key_points[probe] if probe is not None else None,
            grader="offline", flags=flags, graded_chars=len(text),
            latency_ms=round((time.perf_counter() - t0) * 1000, 2),
        )

    def _verdict(self, kp: KeyPointInfo, prep: _PreparedEntry, cls: list[Clause], b: float, text: str,
                 best: float, best_win: tuple | None, used: set[int], ref_win: tuple | None = None):
        """covered / partial / missed for one key point from its best coverage, then the reference-support
        adjustments and the contradiction checks. Returns (verdict, window, evidence, note, false statement)."""
        p = self.params
        verdict = "covered" if best >= p.covered else "partial" if best >= p.partial else "missed"
        span = range(best_win[0], best_win[1] + 1) if best_win else range(0)
        if verdict == "missed" and best_win and best >= p.support_coverage and not used.intersection(span) \
                and self._support(prep, cls[best_win[0]:best_win[1] + 1]) >= p.support_min:
            # a shallow statement the reference answer backs word for word; each clause earns it once
            verdict = "partial"
            used.update(span)
        if verdict == "missed" and ref_win and not used.intersection(range(ref_win[0], ref_win[1] + 1)) \
                and self._support(prep, cls[ref_win[0]:ref_win[1] + 1]) >= p.support_min:
            # matches a reference sentence that explains this key point, in the reference's own words
            verdict, best_win = "partial", ref_win
            used.update(range(ref_win[0], ref_win[1] + 1))
        if verdict == "missed" and kp.fragments and p.fragment_match < 1:
            # one of the facts a compound key point lists, stated in full: partial credit
            for frag in kp.fragments:
                fbest, fwin = self._best_window(frag, cls, b)
                if fbest >= p.fragment_match and fwin:
                    verdict, best_win = "partial", fwin
                    break
        if verdict == "missed" or not best_win:
            return verdict, best_win, "", "", None
        win = cls[best_win[0]:best_win[1] + 1]
        evidence = text[win[0].start:win[-1].end].strip(" ，,。；;")
        reason = self._conflict(kp, win, text) if p.contradictions else None
        if reason:
            false = FalseStatement(quote=evidence, correction=f"要点是：{kp.text}", key_point_index=kp.index)
            return "missed", best_win, "", f"说法与要点相反（{reason}）", false
        if self._support(prep, win, floor=True) < p.support_floor:
            # the matching words sit among words the reference never uses: trust the match less
            verdict = "partial" if verdict == "covered" else "missed"
        return verdict, best_win, evidence if verdict != "missed" else "", "", None

    def _support(self, prep: _PreparedEntry, win: list[Clause], floor: bool = False) -> float:
        """Share of the window's content (IDF-weighted, question terms discounted) that occurs in the
        reference answer or the key points; 0 (`floor`: 1) when it says fewer than two terms or only
        repeats the question."""
        terms = {t for c in win for t in c.terms if not t[:1].isdigit() and not is_formula_token(t)}
        if len(terms) < 2 or terms <= prep.question_terms:
            return 1.0 if floor else 0.0
        q = self.params.question_discount
        w = {t: self.stats.idf(t) * (q if t in prep.question_terms else 1.0) for t in terms}
        return sum(v for t, v in w.items() if t in prep.reference_terms) / sum(w.values())

    def _best_window(self, kp: KeyPointInfo, cls: list[Clause], b: float, semantic=None) -> tuple[float, tuple | None]:
        """The best coverage of `kp` by a window of 1..max_span clauses, and that window (i, j)."""
        p = self.params
        best, best_win = 0.0, None
        term_w = sum(t.weight for t in kp.terms) or 1.0
        gram_w = sum(kp.bigrams.values()) or 1.0
        per_clause_terms = [[self._term_match(t.text, c) for t in kp.terms] for c in cls]
        per_clause_grams = [[g in c.bigrams for g in kp.bigrams] for c in cls]
        for i in range(len(cls)):
            tm = [0.0] * len(kp.terms)
            gm = [False] * len(kp.bigrams)
            for span in range(min(p.max_span, len(cls) - i)):
                j = i + span
                tm = [max(a, x) for a, x in zip(tm, per_clause_terms[j])]
                gm = [a or x for a, x in zip(gm, per_clause_grams[j])]
                term_cov = sum(t.weight * m for t, m in zip(kp.terms, tm)) / term_w
                gram_cov = sum(w for (g, w), m in zip(kp.bigrams.items(), gm) if m) / gram_w
                cov = (1 - b) * term_cov + b * gram_cov
                if semantic is not None:
                    cov = (1 - p.embed_weight) * cov + p.embed_weight * semantic[i][span]
                cov *= (1 - p.span_decay) ** span
                if cov > best:
                    best, best_win = cov, (i, j)
        return best, best_win

    def _conflict(self, unit: KeyPointInfo, win: list[Clause], text: str) -> str | None:
        """Why the window contradicts the key point or reference sentence `unit`, else None. Reference
        sentences get the relation checks only: polarity tests on loose prose misfire too often."""
        reason = contradiction(unit, win) if unit.index >= 0 else None
        if reason:
            return reason
        heavy = {t.text for t in unit.terms if t.weight >= self.params.relation_term_floor * unit.median_weight}
        reason = relation_conflict(unit.relations, [c.relations for c in win], heavy)
        if reason:
            return reason
        # the whole sentence around the window: "常见误区：认为……" quotes a claim, it does not make it
        start = max(text.rfind(ch, 0, win[0].start) for ch in "。！？!?\n") + 1
        ends = [i for i in (text.find(ch, win[-1].end) for ch in "。！？!?\n") if i >= 0]
        sentence = text[start:min(ends) if ends else len(text)]
        if unit.misconceptions and not any(c.has_negation for c in win) and not has_wrong_marker(sentence) \
                and not _DENIAL_RE.search(sentence):
            for claim in unit.misconceptions:
                cov, cwin = self._best_window(claim, win, 0.0)
                order = {w for c in win for w in c.relations.order}
                if cov >= self.params.misconception_match and claim.relations and \
                        {w for r in claim.relations for w in r.order} <= order:
                    return f"回答把参考答案指出的错误说法当成了正确的（{claim.text}）"
        return None

    def _reference_conflicts(self, prep: _PreparedEntry, ref_matches: list, cls: list[Clause], text: str,
                             verdicts: list[KeyPointVerdict], false_statements: list[FalseStatement]) -> None:
        """Contradictions of the reference answer's sentences: each sentence is matched like a key point
        (a high bar, `ref_match`) and its best window checked; a hit becomes a false statement and the
        key point whose evidence overlaps the window loses its credit."""
        p = self.params
        seen = {f.quote for f in false_statements}
        compared = {t for t in prep.question_terms if is_entity(t)}
        for c in cls:
            reason = sameness_conflict(c.relations, prep.key_points, compared)
            quote = text[c.start:c.end].strip(" ，,。；;")
            if reason and quote not in seen:
                seen.add(quote)
                false_statements.append(FalseStatement(quote=quote, correction=f"与要点不符：{reason}"))
        for unit, best, win_ij in ref_matches:
            if best < p.ref_match or win_ij is None:
                continue
            win = cls[win_ij[0]:win_ij[1] + 1]
            reason = self._conflict(unit, win, text)
            if not reason:
                continue
            quote = text[win[0].start:win[-1].end].strip(" ，,。；;")
            if quote in seen or any(quote in q or q in quote for q in seen):
                continue
            seen.add(quote)
            hit = next((v.index for v in verdicts if v.evidence and (v.evidence in quote or quote in v.evidence)), None)
            false_statements.append(FalseStatement(quote=quote, correction=f"参考答案：{unit.text}（{reason}）",
                                                   key_point_index=hit))
            if hit is not None:
                verdicts[hit] = verdicts[hit].model_copy(update={"verdict": "missed", "evidence": "",
                                                                 "note": f"说法与参考答案相反（{reason}）"})

    def _chunk_relation_share(self, text: str) -> float | None:
        """Share of the Chinese chunks (between spaces/punctuation) that contain a relation word. A
        sentence is one long chunk with 是/在/把...; a keyword list is many short bare chunks. None when
        there are fewer than 4 Chinese chunks (too little to judge)."""
        # A space is a break only between two Chinese words ("加权平均 位置编码"): spaces around English
        # terms inside a sentence ("BN 依赖 batch 大小") are not, and markdown table rows are structure,
        # not stuffing. (Splitting on every space capped real reference answers at 2/10.)
        prose = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("|"))
        prose = re.sub(r"(?<=[\u4e00-\u9fff])[ \t]+(?=[\u4e00-\u9fff])", "\n", prose)
        chunks = [c for c in re.split(r"[，,。；;！!？?、:：()（）/\n]+", prose) if CJK_RE.search(c) and len(c) >= 2]
        if len(chunks) < 4:
            return None
        with_rel = sum(1 for c in chunks if any(t.surface in RELATION_WORDS for t in self.analyzer.tokens(c)))
        return with_rel / len(chunks)

    def _semantic(self, entry: Entry, text: str, cls: list[Clause]) -> list[list[list[float]]]:
        """sem[kp][clause][span] in 0..1 from cosine similarity of key point and window text."""
        p = self.params
        windows, index = [], []
        for i in range(len(cls)):
            for span in range(min(p.max_span, len(cls) - i)):
                windows.append(text[cls[i].start:cls[i + span].end])
                index.append((i, span))
        vecs = [list(v) for v in self.embed(list(entry.key_points) + windows)]
        kp_vecs, win_vecs = vecs[:len(entry.key_points)], vecs[len(entry.key_points):]

        def cos(u, v):
            nu = math.sqrt(sum(x * x for x in u)) or 1.0
            nv = math.sqrt(sum(x * x for x in v)) or 1.0
            return sum(x * y for x, y in zip(u, v)) / (nu * nv)

        out = [[[0.0] * p.max_span for _ in cls] for _ in entry.key_points]
        span_range = (p.embed_ceiling - p.embed_floor) or 1.0
        for k, kv in enumerate(kp_vecs):
            for (i, span), wv in zip(index, win_vecs):
                out[k][i][span] = max(0.0, min(1.0, (cos(kv, wv) - p.embed_floor) / span_range))
        return out
