"""Grid search of the retriever's fusion weights, CODE_PRIOR and MIN_COVERAGE on the DEV split only.

    python -m eval retrieval --tune [--queries FILE]

Two stages, because abstention does not change the ranking:

1. Ranking: every (head, body, dense) weight triple on a simplex grid (step 0.1, summing to 1, so
   the scale relative to the exact-phrasing bonus stays fixed) x CODE_PRIOR in 0.5..1.0, then a
   step-0.05 refinement within 0.1 of the coarse winner. Objective J = mean of Hit@1, MRR@10 and
   Recall@5 over the dev split's answerable queries. With a few hundred queries many grid points
   tie or differ by one query, so the winner is the point with the best J averaged over itself and
   its grid neighbours (a plateau, not a spike): the choice that survives a different sample of
   queries best. Trade-off: coarse-to-fine can miss a narrow optimum far from the coarse winner;
   a narrow optimum is exactly what we do not want to pick on 200 queries.
   Constraint: dense >= MIN_DENSE_WEIGHT. The weights are shared by every embedder, and only the
   hashing one can be measured here; on the dev split the hashing vectors add little over BM25 (the
   landscape is flat, with optima at both dense = 0 and dense = 0.8), and a zero weight would
   silently switch off a neural embedder (bge-zh) that a user configures for its semantics.
2. Abstention: at the chosen weights, MIN_COVERAGE in 0.20..0.80 (step 0.025), maximising balanced
   accuracy = (abstention accuracy on unanswerable + 1 - false-abstention rate on answerable) / 2;
   among ties, the lowest threshold (wrongly refusing a real question costs the user more than
   showing a weak match under a "no exact entry" note).

The test split is never searched; the command prints its figures once for the chosen values, for
information. Cost: the query vector and the Chroma result depend only on the query text, so the
index here wraps the vector store in a memo (built with the public `HybridIndex` constructor):
each grid point costs only the BM25 and fusion work.
"""

from __future__ import annotations

import itertools
import statistics

import numpy as np

from eval.metrics import per_query_metrics
from eval.queries import LabelledQuery

COARSE_STEP, FINE_STEP = 0.1, 0.05
MIN_DENSE_WEIGHT = 0.2
CODE_PRIORS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
COVERAGES = tuple(round(0.2 + 0.025 * i, 3) for i in range(25))


class _MemoCollection:
    """A Chroma collection whose `query` answers repeated questions from memory."""

    def __init__(self, collection):
        self._c = collection
        self._memo: dict = {}
        self.name = getattr(collection, "name", "memo")

    def count(self) -> int:
        return self._c.count()

    def query(self, *, query_embeddings, n_results, include):
        key = (tuple(query_embeddings[0]), n_results, tuple(include))
        if key not in self._memo:
            self._memo[key] = self._c.query(query_embeddings=query_embeddings, n_results=n_results, include=include)
        return self._memo[key]


class _MemoEmbedder:
    def __init__(self, embedder):
        self._e = embedder
        self.name, self.dim = embedder.name, embedder.dim
        self._memo: dict[str, list[float]] = {}

    def embed_query(self, text: str) -> list[float]:
        if text not in self._memo:
            self._memo[text] = self._e.embed_query(text)
        return self._memo[text]

    def embed_documents(self, texts):
        return self._e.embed_documents(texts)


def memo_index(index):
    """A HybridIndex over the same corpus and vectors, with the vector look-ups memoised."""
    from tutor.retriever import HybridIndex

    if index.collection is None:
        return index
    return HybridIndex(index.corpus, _MemoCollection(index.collection), _MemoEmbedder(index.embedder))


def weight_grid(step: float) -> list[tuple[float, float, float]]:
    n = round(1 / step)
    grid = [(round(i * step, 3), round(j * step, 3), round((n - i - j) * step, 3))
            for i in range(n + 1) for j in range(n + 1 - i)]
    return [w for w in grid if w[2] >= MIN_DENSE_WEIGHT - 1e-9]


def ranking_objective(index, queries: list[LabelledQuery], weights: dict, code_prior: float) -> float:
    vals = []
    for q in queries:
        ranked = [h.entry.id for h in index.search(q.text, 10, weights=weights, code_prior=code_prior).hits]
        m = per_query_metrics(ranked, q.relevant)
        vals.append((m["hit@1"] + m["mrr@10"] + m["recall@5"]) / 3)
    return statistics.fmean(vals) if vals else 0.0


def _smoothed(scores: dict[tuple, float], step: float) -> dict[tuple, float]:
    """Each point's J averaged with its neighbours on the simplex grid and the CODE_PRIOR axis."""
    out = {}
    moves = [(a, b, c) for a, b, c in itertools.product((-step, 0, step), repeat=3)
             if abs(a + b + c) < 1e-9 and (a, b, c) != (0, 0, 0)]
    for (h, b, d, cp), val in scores.items():
        near = [val]
        for mh, mb, md in moves:
            key = (round(h + mh, 3), round(b + mb, 3), round(d + md, 3), cp)
            if key in scores:
                near.append(scores[key])
        i = CODE_PRIORS.index(cp)
        for j in (i - 1, i + 1):
            if 0 <= j < len(CODE_PRIORS) and (h, b, d, CODE_PRIORS[j]) in scores:
                near.append(scores[(h, b, d, CODE_PRIORS[j])])
        out[(h, b, d, cp)] = statistics.fmean(near)
    return out


def tune_abstention(index, queries: list[LabelledQuery], weights: dict, code_prior: float) -> tuple[float, list]:
    answerable = [q for q in queries if q.answerable]
    unanswerable = [q for q in queries if not q.answerable]
    curve = []
    for th in COVERAGES:
        def flag(q):
            return index.search(q.text, 10, weights=weights, code_prior=code_prior, min_coverage=th).relevant
        abst = np.mean([not flag(q) for q in unanswerable]) if unanswerable else 1.0
        false_abst = np.mean([not flag(q) for q in answerable]) if answerable else 0.0
        curve.append((th, round(float(abst), 4), round(float(false_abst), 4),
                      round(float((abst + 1 - false_abst) / 2), 4)))
    best = max(curve, key=lambda c: (c[3], -c[0]))
    return best[0], curve


def _search_grid(index, answerable, points, scores, progress) -> None:
    todo = [p for p in points if p not in scores]
    for n, (h, b, d, cp) in enumerate(todo, 1):
        scores[(h, b, d, cp)] = ranking_objective(index, answerable, {"head": h, "body": b, "dense": d}, cp)
        if progress and n % 50 == 0:
            progress(f"{n}/{len(todo)} grid points")


def _pick(scores: dict, step: float, points) -> tuple:
    sub = {p: scores[p] for p in points}
    smooth = _smoothed(sub, step)
    return max(smooth, key=lambda key: (smooth[key], scores[key])), smooth


def tune(index, dev: list[LabelledQuery], *, progress=None) -> dict:
    """Search on `dev` only; returns the chosen values, their dev figures and the search traces."""
    if any(q.split != "dev" for q in dev):
        raise ValueError("tuning uses the dev split only")
    index = memo_index(index)
    answerable = [q for q in dev if q.answerable]
    scores: dict[tuple, float] = {}
    coarse = [(*w, cp) for w in weight_grid(COARSE_STEP) for cp in CODE_PRIORS]
    _search_grid(index, answerable, coarse, scores, progress)
    (ch, cb, cd, ccp), _ = _pick(scores, COARSE_STEP, coarse)
    fine = [(*w, cp) for w in weight_grid(FINE_STEP) for cp in CODE_PRIORS
            if max(abs(w[0] - ch), abs(w[1] - cb), abs(w[2] - cd)) <= COARSE_STEP + 1e-9 and abs(cp - ccp) <= 0.1 + 1e-9]
    _search_grid(index, answerable, fine, scores, progress)
    best, smooth = _pick(scores, FINE_STEP, fine)
    raw_best = max(scores, key=scores.get)
    h, b, d, cp = best
    weights = {"head": h, "body": b, "dense": d}
    min_cov, curve = tune_abstention(index, dev, weights, cp)
    return {
        "weights": weights, "code_prior": cp, "min_coverage": min_cov,
        "objective": round(scores[best], 4), "objective_smoothed": round(smooth[best], 4),
        "coarse_winner": {"weights": {"head": ch, "body": cb, "dense": cd}, "code_prior": ccp},
        "raw_best": {"weights": dict(zip(("head", "body", "dense"), raw_best[:3])), "code_prior": raw_best[3],
                     "objective": round(scores[raw_best], 4)},
        "grid_points": len(scores), "dev_answerable": len(answerable),
        "dev_unanswerable": len(dev) - len(answerable), "coverage_curve": curve,
        "top": sorted(({"weights": k[:3], "code_prior": k[3], "J": round(scores[k], 4), "J_smoothed": round(v, 4)}
                       for k, v in smooth.items()), key=lambda x: -x["J_smoothed"])[:10],
    }
