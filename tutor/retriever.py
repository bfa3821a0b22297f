"""Hybrid retrieval: BM25 over canonical terms + dense vectors from Chroma, fused per entry.

Signals, each computed per *entry* (users want the question that answers them, not a loose chunk):
- `head`: BM25 over the entry's question, aliases, tags and key points (how people ask);
- `body`: BM25 over the answer prose, code blocks left out, and the 常见误区 pairs (what the entry
  explains; the wrong claims there are how some users ask, but in `head` they outweighed the question);
- `dense`: best cosine similarity among the entry's chunks in Chroma (typo- and paraphrase-
  tolerant with the hashing embedder; semantic with a neural one);
- `exact`: the query *is* one of the entry's phrasings (after removing case, width, punctuation).
BM25 scores are divided by the best score for the query, so they share the 0-1 scale of cosine
similarity; the fused score is a weighted sum. Glossary concepts in the query count CONCEPT_REPEAT times: they
are what the question is about, the rest is phrasing. Weights come from the dev split of `eval/data` (see
`python -m eval retrieval --tune`); the values below are the measured optimum, written here.

Intent: entries tagged `手撕代码` hold implementations. A query that does not ask for code
("RMSNorm 好在哪") wants the explanation, so code entries are scaled by CODE_PRIOR unless the query
says 代码/实现/手写/implement...; a query that asks for code gets the reverse.

Abstention ("nothing relevant") needs an absolute signal, which max-normalised scores are not:
`coverage` is the share of the query's IDF mass that the best entry contains (terms unknown to
the corpus count at full IDF). Off-topic queries ("红烧肉怎么做") and topics the corpus lacks
("Mamba 的原理") cover little. Threshold measured on the dev split's unanswerable queries.

BM25 is ours (an inverted index, so query cost grows with matching postings rather than corpus
size); its scores are tested equal to `rank_bm25.BM25Okapi`, whose formula and IDF floor it keeps.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from tutor.corpus import Corpus, Entry, load_corpus
from tutor.json_cache import read_json, write_json
from tutor.settings import Settings, get_settings
from tutor.text import compact, is_concept, tokenize, tokenizer_version

log = logging.getLogger(__name__)

# Fusion weights, CODE_PRIOR and MIN_COVERAGE: `python -m eval retrieval --tune` on the dev split of
# eval/data/queries.jsonl (228 queries, 184 entries, hashing embedder; dense kept >= 0.2 so a neural
# embedder keeps a voice). Dev with these values: Hit@1 0.885, R@5 0.969, MRR@10 0.923, abstention 0.75,
# false abstention 0.168 (was 0.827 / 0.974 / 0.891 / 0.75 / 0.226 with 0.45/0.30/0.25, 0.8, 0.5).
WEIGHTS = {"head": 0.30, "body": 0.10, "dense": 0.60}
EXACT_BONUS = 1.0
CONTAINED_BONUS = 0.3
MIN_COVERAGE = 0.45
# A second way to be relevant: the top entry's dense similarity. Cosine scales differ per embedder,
# so the threshold is per embedder family and measured: for the hashing embedder on the dev split,
# "coverage >= 0.45 or dense >= 0.25" keeps abstention accuracy at 0.75 and cuts wrongly abstained
# answerable queries from 0.183 to 0.130. Families without a measured threshold use coverage alone.
DENSE_RELEVANT = {"hashing": 0.25}
DENSE_CANDIDATES = 40
MAX_QUERY_CHARS = 2000
CODE_PRIOR = 0.7  # ties 0.8 on dev (same figures); 0.7 keeps "RMSNorm 好在哪" on the explanation entry
DOCS_VERSION = "d2"  # what the head/body documents contain (d2: the body includes 常见误区); keys the token cache
CONCEPT_REPEAT = 2  # a glossary concept in the query counts this many times in BM25
_FENCE = re.compile(r"```.*?```", re.DOTALL)  # code identifiers are noise for BM25 over prose
CODE_TAGS = {"手撕代码", "code"}
CODE_INTENT = re.compile(r"代码|实现|手写|手撕|写一个|编程|\b(?:pytorch|torch|numpy|code|coding|implement\w*)\b",
                         re.IGNORECASE)


class BM25:
    """Okapi BM25 with rank_bm25's IDF (negative IDFs floored at epsilon x mean IDF)."""

    def __init__(self, docs: list[list[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25):
        self.k1, self.b = k1, b
        self.n = len(docs)
        self.doc_len = np.array([len(d) for d in docs], dtype=np.float64)
        self.avgdl = float(self.doc_len.mean()) if self.n else 0.0
        # Postings as (doc index array, tf array): compact at 100x corpus size, vectorised at query time.
        # Built with numpy from one (term id, doc) pair per token: sorting the pairs groups them by
        # term and counts the tf in one pass (3-4x faster than a Counter per document at 100x).
        vocab: dict[str, int] = {}
        term_ids = np.fromiter((vocab.setdefault(t, len(vocab)) for doc in docs for t in doc), dtype=np.int64,
                               count=int(self.doc_len.sum()))
        doc_ids = np.repeat(np.arange(self.n, dtype=np.int64), self.doc_len.astype(np.int64))
        pairs, tf = np.unique(term_ids * max(self.n, 1) + doc_ids, return_counts=True)
        terms_of_pairs, docs_of_pairs = np.divmod(pairs, max(self.n, 1))
        bounds = np.flatnonzero(np.diff(terms_of_pairs)) + 1
        names = list(vocab)
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {
            names[int(term[0])]: (d.astype(np.int32), f.astype(np.float64))
            for term, d, f in zip(np.split(terms_of_pairs, bounds), np.split(docs_of_pairs, bounds),
                                  np.split(tf, bounds))
        } if len(pairs) else {}
        idf = {t: math.log(self.n - len(p[0]) + 0.5) - math.log(len(p[0]) + 0.5) for t, p in self.postings.items()}
        floor = epsilon * (sum(idf.values()) / len(idf)) if idf else 0.0
        self.idf = {t: (v if v >= 0 else floor) for t, v in idf.items()}
        self._norm = self.k1 * (1 - self.b + self.b * self.doc_len / self.avgdl) if self.n else self.doc_len

    def scores(self, query: list[str]) -> np.ndarray:
        out = np.zeros(self.n)
        for term in query:
            posting = self.postings.get(term)
            if posting is None:
                continue
            idx, tf = posting
            out[idx] += self.idf[term] * tf * (self.k1 + 1) / (tf + self._norm[idx])
        return out


@dataclass
class Hit:
    entry: Entry
    score: float
    signals: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        e = self.entry
        return {"id": e.id, "title": e.question, "path": e.path, "citation": e.citation,
                "score": round(self.score, 4), "signals": {k: round(v, 4) for k, v in self.signals.items()}}


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    relevant: bool
    coverage: float

    def to_dict(self) -> dict:
        return {"query": self.query, "relevant": self.relevant, "coverage": round(self.coverage, 4),
                "results": [h.to_dict() for h in self.hits]}


class HybridIndex:
    """Everything a query needs, built once per process from the corpus and the vector store."""

    def __init__(self, corpus: Corpus, collection=None, embedder=None, cache_dir: Path | None = None):
        self.corpus = corpus
        self.entries = corpus.entries
        self.collection = collection
        self.embedder = embedder
        # Counted once: the index is read-only for the life of this object (ingest builds a new one).
        self._dense_count = collection.count() if collection is not None else 0
        self._embedder_family = getattr(embedder, "name", "").split("-")[0] or None
        heads, bodies = self._tokens(cache_dir)
        self.head = BM25(heads)
        self.body = BM25(bodies)
        self._doc_terms = [set(h) | set(b) for h, b in zip(heads, bodies)]
        df = Counter(t for terms in self._doc_terms for t in terms)
        n = max(len(self.entries), 1)
        self._cov_idf = {t: math.log(1 + n / c) for t, c in df.items()}
        self._cov_unknown = math.log(1 + n / 0.5)
        self._pos = {e.id: i for i, e in enumerate(self.entries)}
        # English words of the corpus by length, for correcting typos in queries ("attentoin").
        self._ascii_vocab: dict[int, list[str]] = defaultdict(list)
        for term in set(self.head.postings) | set(self.body.postings):
            if term.isascii() and term.isalpha() and len(term) >= 4:
                self._ascii_vocab[len(term)].append(term)
        self._is_code = np.array([bool(CODE_TAGS & set(e.tags)) for e in self.entries])
        self._phrasings: dict[str, int] = {}
        for i, e in enumerate(self.entries):
            for text in (e.question, *e.aliases):
                self._phrasings.setdefault(compact(text), i)

    def _tokens(self, cache_dir: Path | None):
        """Tokenised head/body documents, cached on disk by entry content hash."""
        cache_file = cache_dir / f"tokens-{tokenizer_version()}-{DOCS_VERSION}.json" if cache_dir else None
        cache = read_json(cache_file)
        heads, bodies, fresh = [], [], {}
        keys = [e.content_hash() for e in self.entries]
        computed = _tokenize_entries({k: e for k, e in zip(keys, self.entries) if k not in cache})
        dirty = bool(computed)
        for key in keys:
            head, body = cache[key] if key in cache else computed[key]
            fresh[key] = [head, body]
            heads.append(head)
            bodies.append(body)
        if cache_file and (dirty or len(fresh) != len(cache)):
            try:
                write_json(cache_file, fresh)
            except OSError as exc:
                log.warning("could not write token cache: %s", exc)
        return heads, bodies

    def coverage(self, query_terms: set[str], i: int) -> float:
        if not query_terms:
            return 0.0
        total = sum(self._cov_idf.get(t, self._cov_unknown) for t in query_terms)
        got = sum(self._cov_idf[t] for t in query_terms if t in self._doc_terms[i])
        return got / total if total else 0.0

    def _correct(self, term: str) -> str:
        """A query word the corpus does not know, corrected to a known English word one edit away
        (two for long words): typed typos like "attentoin" or "lamma". Chinese is left alone."""
        if not (term.isascii() and term.isalpha() and len(term) >= 4) or term in self.head.postings \
                or term in self.body.postings:
            return term
        budget = 1 if len(term) < 8 else 2
        best, best_df = term, 0
        for n in range(len(term) - budget, len(term) + budget + 1):
            for cand in self._ascii_vocab.get(n, ()):
                if _within_edits(term, cand, budget):
                    df = len(self.head.postings.get(cand, ((),))[0]) + len(self.body.postings.get(cand, ((),))[0])
                    if df > best_df:
                        best, best_df = cand, df
        return best

    def _dense(self, query: str) -> dict[int, float]:
        if self.collection is None or self.embedder is None or not self._dense_count:
            return {}
        count = self._dense_count
        # Distances only: the entry id is the chunk id's prefix (`entry-id#hash`), and fetching the
        # 40 candidates' metadata from SQLite cost ~3x the vector search itself (eval/bench.py).
        res = self.collection.query(query_embeddings=[self.embedder.embed_query(query)],
                                    n_results=min(DENSE_CANDIDATES, count), include=["distances"])
        best: dict[int, float] = {}
        for cid, dist in zip(res["ids"][0], res["distances"][0]):
            i = self._pos.get(cid.partition("#")[0])
            if i is None:  # a chunk of an entry no longer in the corpus (interrupted ingest)
                continue
            best[i] = max(best.get(i, 0.0), 1.0 - float(dist))
        return best

    def search(self, query: str, k: int = 5, *, weights: dict[str, float] | None = None,
               code_prior: float | None = None, min_coverage: float | None = None) -> SearchResult:
        """Top-k entries for `query`. The keyword arguments override WEIGHTS / CODE_PRIOR /
        MIN_COVERAGE for this call only (eval/ uses them to measure single signals and to tune)."""
        w = WEIGHTS if weights is None else {**dict.fromkeys(WEIGHTS, 0.0), **weights}
        code_prior = CODE_PRIOR if code_prior is None else code_prior
        min_coverage = MIN_COVERAGE if min_coverage is None else min_coverage
        # A pasted essay is not a query: its first MAX_QUERY_CHARS characters say what it is about, and
        # tokenising all of it would cost seconds. (Callers still get their full text back in `query`.)
        query = (query or "").strip()
        text = query[:MAX_QUERY_CHARS]
        terms = [self._correct(t) for t in tokenize(text)]
        if not query or not self.entries:
            return SearchResult(query, [], False, 0.0)
        # The domain concepts are what a question is about; "指标", "怎么算" are filler around them.
        weighted = terms + [t for t in terms if is_concept(t)] * (CONCEPT_REPEAT - 1)
        head, body = self.head.scores(weighted), self.body.scores(weighted)
        head = head / head.max() if head.max() > 0 else head
        body = body / body.max() if body.max() > 0 else body
        dense_raw = self._dense(text) if w["dense"] else {}
        dense = np.zeros(len(self.entries))
        for i, v in dense_raw.items():
            dense[i] = v
        # Cosine is already on an absolute 0-1 scale; max-normalising it would turn noise into a vote.
        fused = w["head"] * head + w["body"] * body + w["dense"] * dense
        wants_code = bool(CODE_INTENT.search(text))
        fused = np.where(self._is_code == wants_code, fused, fused * code_prior)
        cq = compact(text)
        exact = self._phrasings.get(cq)
        if exact is not None:
            fused[exact] += EXACT_BONUS
        elif len(cq) >= 6:  # a pasted question with extra words: look among the leading candidates only
            for i in _top(fused, 50):
                e = self.entries[i]
                best = max((len(p) for p in map(compact, (e.question, *e.aliases)) if len(p) >= 6 and p in cq),
                           default=0)
                fused[i] += CONTAINED_BONUS * best / len(cq)
        order = _top(fused, k)
        qset = set(terms)
        hits = []
        for i in order:
            if fused[i] <= 0:
                break
            hits.append(Hit(self.entries[i], float(fused[i]), {
                "head": float(head[i]), "body": float(body[i]), "dense": float(dense[i]),
                "coverage": self.coverage(qset, int(i)),
            }))
        cov = max((h.signals["coverage"] for h in hits), default=0.0)
        dense_min = DENSE_RELEVANT.get(self._embedder_family)
        close = dense_min is not None and bool(hits) and hits[0].signals["dense"] >= dense_min
        relevant = bool(hits) and (exact is not None or cov >= min_coverage or close)
        return SearchResult(query, hits, relevant, cov)


PARALLEL_MIN_ENTRIES = 1000  # below this, worker start-up (~1 s each: imports, jieba) costs more than it saves


def _tokenize_entries(entries: dict[str, Entry]) -> dict[str, tuple[list[str], list[str]]]:
    """content hash -> (head tokens, body tokens). Thousands of entries (a first load of a large
    corpus: ~10 ms of jieba per entry) are tokenised in worker processes, one per core."""
    docs = {key: (" ".join([e.question, *e.aliases, *e.aliases, " ".join(e.tags), *e.key_points]),
                  " ".join([_FENCE.sub(" ", e.answer), *(f"{m.claim} {m.correction}" for m in e.misconceptions)]))
            for key, e in entries.items()}
    workers = os.cpu_count() or 1
    if len(docs) < PARALLEL_MIN_ENTRIES or workers < 2:
        return {key: (tokenize(head), tokenize(body)) for key, (head, body) in docs.items()}
    from tutor.workers import tokenize_batches

    flat = [text for pair in docs.values() for text in pair]
    tokens = [t for batch in tokenize_batches([flat[i : i + 200] for i in range(0, len(flat), 200)], workers)
              for t in batch]
    return {key: (tokens[2 * i], tokens[2 * i + 1]) for i, key in enumerate(docs)}


def _within_edits(a: str, b: str, budget: int) -> bool:
    """Damerau-Levenshtein distance(a, b) <= budget (adjacent swaps count one), with early exit."""
    if abs(len(a) - len(b)) > budget:
        return False
    prev2, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if prev2 is not None and i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > budget:
            return False
        prev2, prev = prev, cur
    return prev[-1] <= budget


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best scores, best first (argpartition: linear in corpus size)."""
    if len(scores) <= k:
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


class HybridRetriever(BaseRetriever):
    """LangChain face of the index: `invoke(query)` returns one Document per relevant entry."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    index: HybridIndex
    k: int = 5

    @property
    def corpus(self) -> Corpus:
        return self.index.corpus

    def search(self, query: str, k: int | None = None) -> SearchResult:
        return self.index.search(query, k or self.k)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        result = self.search(query)
        if not result.relevant:
            return []
        return [
            Document(page_content=f"{h.entry.question}\n\n{h.entry.answer}",
                     metadata={**h.to_dict(), "entry_id": h.entry.id})
            for h in result.hits
        ]


def load_retriever(settings: Settings | None = None, *, corpus: Corpus | None = None,
                   dense: bool = True) -> HybridRetriever:
    """Open the index read-only. Without a built vector index, BM25 alone serves (and says so)."""
    settings = settings or get_settings()
    if corpus is None:
        corpus = load_corpus(settings.corpus_dir, strict=False, cache_dir=settings.data_dir / "cache")
    collection = embedder = None
    if dense:
        from tutor.embeddings import get_embedder
        from tutor.store import chroma_client, open_collection

        embedder = get_embedder(settings)
        collection = open_collection(chroma_client(settings), embedder.name, embedder.dim, create=False)
        if collection is None:
            log.warning("向量索引尚未建立，仅使用关键词检索；运行 `tutor ingest` 建立索引。")
            embedder = None
    index = HybridIndex(corpus, collection, embedder, cache_dir=settings.data_dir / "cache")
    return HybridRetriever(index=index, k=settings.retrieval_k)
