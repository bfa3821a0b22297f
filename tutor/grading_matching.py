"""Matching for the offline grader: prepared entries, analysed clauses and coverage windows.

Design. `MatchingBase` holds what does not depend on the answer: the analyzer, corpus IDF statistics and,
per entry, its key points and the sentences of its reference answer as weighted term bags
(`KeyPointInfo`, with the relations `tutor/grading_reference_checks.py` reads from their clauses). For an
answer it analyses clauses once (cached) and finds, for any such unit, the window of 1..`max_span`
consecutive clauses that covers it best, and how much of a window the reference answer backs
(`_support`). `tutor/grading_offline.py` turns these into verdicts, false statements and a score.

Trade-offs. Everything is cached per entry and per answer text, so tuning many parameter settings on the
dev split re-analyses nothing; reference sentences cost a few milliseconds per answer, kept low by
matching only sentences that share two terms with the answer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tutor.corpus import Entry
from tutor import grading_misconceptions
from tutor.grading_checks import Clause, KeyPointInfo, Term, is_entity, key_point_parts, term_subjects
from tutor.grading_reference_checks import misconception_claims, reference_sentences, sentence_relations
from tutor.grading_stats import CorpusStats, corpus_stats
from tutor.textnorm import (CJK_RE, NEGATION_LIKE, NEGATIONS, STOPWORDS, Analyzer, canonical_text, cjk_bigrams,
                            clauses, compact, get_analyzer, is_formula_token)

# A function that embeds texts (returns one vector per text); any configured embedding backend.
EmbedFn = Callable[[list[str]], Sequence[Sequence[float]]]

@dataclass
class PreparedEntry:
    key_points: list[KeyPointInfo]
    question_terms: set[str]
    question_bigrams: set[str]
    references: list[KeyPointInfo] = field(default_factory=list)  # sentences of the reference answer
    reference_terms: set[str] = field(default_factory=set)  # every term of the reference answer and key points
    reference_links: list = field(default_factory=list)  # per reference sentence: the key point it explains
    reference_numbers: set[float] = field(default_factory=set)  # every number the reference states
    misconceptions: list = field(default_factory=list)  # grading_misconceptions.PreparedMisconception


def domain_terms(entries: Sequence[Entry]) -> list[str]:
    """Technical terms of the corpus worth keeping whole: tags and short Chinese aliases."""
    terms: set[str] = set()
    for e in entries:
        terms.update(t for t in e.tags if CJK_RE.search(t))
    return sorted(terms)


class MatchingBase:
    """Answer-independent preparation and window matching shared by the offline grader."""


    def __init__(self, entries: Sequence[Entry], params, embed: EmbedFn | None = None,
                 cache_dir: Path | None = None):
        self.params = params
        self.embed = embed
        self.analyzer: Analyzer = get_analyzer(domain_terms(entries))
        self.stats: CorpusStats = corpus_stats(entries, self.analyzer, cache_dir)
        self._prepared: dict[tuple[str, str], PreparedEntry] = {}
        self._clause_cache: dict[str, list[Clause]] = {}  # text -> analysed clauses (param-independent)

    def with_params(self, params):
        """A copy with other parameters sharing the analyzer, corpus statistics and clause cache
        (used by the tuning script, which grades the dev split under many parameter settings)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.params = params
        clone._prepared = {}
        return clone

    # ---- preparing an entry ------------------------------------------------------------------

    def _prepare(self, entry: Entry) -> PreparedEntry:
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
        numbers = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", re.sub(r"(?<=\d),(?=\d{3})", "", " ".join(
            [entry.answer, *entry.key_points])))}
        wrong = grading_misconceptions.prepare(self.analyzer, self.stats.idf, entry.misconceptions,
                                               [set(kp.weights) for kp in kps])
        prepared = PreparedEntry(kps, q_terms, q_bigrams, refs, ref_terms, links, numbers, wrong)
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
            rels += sentence_relations([(self.analyzer.tokens(c, canonicalized=True), c) for c in parts])
        unit.relations = rels
        unit.own_question_terms = set(merged) & q_terms
        unit.other_question_terms = (q_terms - set(merged)) if unit.own_question_terms else set()
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
            toks_of[id(out[-1])], canon_of[id(out[-1])] = toks, canon
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

    def _support(self, prep: PreparedEntry, win: list[Clause], floor: bool = False) -> float:
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
