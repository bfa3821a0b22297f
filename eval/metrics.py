"""Ranking metrics, percentile-bootstrap confidence intervals and latency percentiles.

Every ranking metric takes the ranked entry ids one query got and that query's relevance labels
(`{entry_id: gain}`, gain 1 for binary labels) and returns a number in [0, 1]; the report averages
them over queries. Definitions (k = cut-off):

- Hit@k: 1 if any relevant id is among the first k, else 0 (Hit@1 = "the top answer is right").
- Recall@k: share of the relevant ids found in the first k.
- MRR@k: 1 / rank of the first relevant id if it is within k, else 0.
- nDCG@k: DCG / ideal DCG with exponential gain (2^g - 1) / log2(rank + 1), the Burges form;
  with binary labels it reduces to the usual 1 / log2(rank + 1).

Confidence intervals: percentile bootstrap of the mean over queries (resample queries with
replacement, B = 2000, seeded, so a report is reproducible). Trade-off: queries of one entry are
correlated, so the intervals are somewhat optimistic; resampling by entry would be more honest but
needs many more entries than a few hundred for stable intervals. The point estimate is always the
plain mean, which the interval contains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

BOOTSTRAP_SAMPLES = 2000


def _as_gains(relevant: Mapping[str, float] | Sequence[str]) -> dict[str, float]:
    return dict(relevant) if isinstance(relevant, Mapping) else {r: 1.0 for r in relevant}


def hit_at_k(ranked: Sequence[str], relevant, k: int) -> float:
    gains = _as_gains(relevant)
    return float(any(r in gains for r in ranked[:k]))


def recall_at_k(ranked: Sequence[str], relevant, k: int) -> float:
    gains = _as_gains(relevant)
    if not gains:
        return 0.0
    return len(set(ranked[:k]) & gains.keys()) / len(gains)


def reciprocal_rank(ranked: Sequence[str], relevant, k: int = 10) -> float:
    gains = _as_gains(relevant)
    for i, r in enumerate(ranked[:k], 1):
        if r in gains:
            return 1.0 / i
    return 0.0


def rank_of_first(ranked: Sequence[str], relevant) -> int | None:
    gains = _as_gains(relevant)
    return next((i for i, r in enumerate(ranked, 1) if r in gains), None)


def ndcg_at_k(ranked: Sequence[str], relevant, k: int = 10) -> float:
    gains = _as_gains(relevant)
    if not gains:
        return 0.0
    seen: set[str] = set()
    dcg = 0.0
    for i, r in enumerate(ranked[:k], 1):
        if r in gains and r not in seen:  # a duplicate id earns nothing twice
            seen.add(r)
            dcg += (2.0 ** gains[r] - 1.0) / math.log2(i + 1)
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum((2.0 ** g - 1.0) / math.log2(i + 1) for i, g in enumerate(ideal, 1))
    return dcg / idcg if idcg else 0.0


def bootstrap_ci(values: Sequence[float], *, samples: int = BOOTSTRAP_SAMPLES, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean of `values` (nan, nan for an empty list)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    mean = float(x.mean())
    return min(float(lo), mean), max(float(hi), mean)


def summarize(values: Sequence[float], **kw) -> dict:
    """{"mean", "ci": [lo, hi], "n"} rounded for reports."""
    if not len(values):
        return {"mean": None, "ci": [None, None], "n": 0}
    lo, hi = bootstrap_ci(values, **kw)
    return {"mean": round(float(np.mean(values)), 4), "ci": [round(lo, 4), round(hi, 4)], "n": len(values)}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0-100); nan for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


RANKING_METRICS = ("hit@1", "recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "ndcg@10")


def per_query_metrics(ranked: Sequence[str], relevant) -> dict[str, float]:
    """All ranking metrics of the report for one answerable query."""
    return {
        "hit@1": hit_at_k(ranked, relevant, 1),
        "recall@1": recall_at_k(ranked, relevant, 1),
        "recall@3": recall_at_k(ranked, relevant, 3),
        "recall@5": recall_at_k(ranked, relevant, 5),
        "recall@10": recall_at_k(ranked, relevant, 10),
        "mrr@10": reciprocal_rank(ranked, relevant, 10),
        "ndcg@10": ndcg_at_k(ranked, relevant, 10),
    }
