"""Grader evaluation on the labelled calibration set: band accuracy, Spearman, ordering, latency.

    python -m eval.grading_eval                 # every available grader, dev and test splits
    python -m eval.grading_eval --split test --json
    python -m eval.grading_eval --split holdout      # eval/data/grading_holdout.jsonl
    python -m eval.grading_eval --split holdout2     # eval/data/grading_holdout2.jsonl (dev2: grading_dev2.jsonl)
    python -m eval.grading_eval --split holdout3     # eval/data/grading_holdout3.jsonl
    python -m eval.grading_eval --split holdout4     # eval/data/grading_holdout4.jsonl

Data: `eval/data/grading_calibration.jsonl`, one answer per line:
    {"id", "entry_id", "kind", "band": [lo, hi], "split": "dev"|"test", "answer"}
`kind` is excellent / good / partial / wrong (real answers of decreasing quality) or an adversarial
kind: stuffing (a bag of key terms), echo (the question repeated), offtopic (a correct answer to
another question), injection (an answer that instructs the grader). `band` is the fair score range a
careful human interviewer would accept. The split is by entry (about half the entries each), so
tuning on dev never sees a test entry's key points. `eval/data/grading_holdout.jsonl` (split "holdout",
30 other entries, two partial and two wrong answers each) was written later, by writers who never saw
the grader, after the test split had been consulted: it is the held-out measure now.

Metrics, per grader and split:
- band accuracy: share of answers whose score falls inside [lo, hi];
- Spearman's rho between the score and the band midpoint (scipy);
- ordering accuracy: within one entry, pairs whose band midpoints differ by >= 2 points that the
  grader orders the same way (ties count half);
- partial>wrong: share of same-entry (partial, wrong) answer pairs the grader orders that way (ties half);
- mean absolute distance outside the band, mean score per kind, grading latency p50/p95.

Only public APIs of `tutor` are used (`build_grader`, `Grader.grade`, `load_corpus`, settings), so
the figures describe what users get. The LLM grader is evaluated only when an LLM is configured;
otherwise the report says it was skipped and why.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

DATA = Path(__file__).parent / "data" / "grading_calibration.jsonl"
# Written after the grader was tuned, blind to it, on entries the calibration set does not use: the
# figure to trust for answers we have never seen (`--split holdout`).
HOLDOUT = Path(__file__).parent / "data" / "grading_holdout.jsonl"
# Written later still, by three other writers, after `holdout` had been consulted while developing the
# misconception check: the held-out figure for that change. `dev2`: 20 more entries, written the same
# blind way, for tuning.
HOLDOUT2 = Path(__file__).parent / "data" / "grading_holdout2.jsonl"
DEV2 = Path(__file__).parent / "data" / "grading_dev2.jsonl"
# Written after all of that, by three more writers who also did not read the misconception lists.
HOLDOUT3 = Path(__file__).parent / "data" / "grading_holdout3.jsonl"
# Written after session 3's changes, by five more writers blind to the grader, the other answer sets
# and the misconception lists: 10 entries no set had used, 10 of holdout2's and 10 of holdout3's
# (new answers to them). The held-out figure for the stuffing fix of session 4.
HOLDOUT4 = Path(__file__).parent / "data" / "grading_holdout4.jsonl"
DATA_OF_SPLIT = {"holdout": HOLDOUT, "holdout2": HOLDOUT2, "holdout3": HOLDOUT3, "holdout4": HOLDOUT4, "dev2": DEV2}
ADVERSARIAL = ("stuffing", "echo", "offtopic", "injection")


def load_calibration(path: Path = DATA) -> list[dict]:
    """The labelled answers of a calibration file; ValueError names the file and line of a bad row."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"读不了标定文件 {path}：{exc}") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{n}: 不是合法的 JSON（{exc}）") from None
            if not isinstance(row, dict) or not {"entry_id", "kind", "band", "split", "answer"} <= row.keys():
                raise ValueError(f"{path}:{n}: 需要字段 entry_id、kind、band、split、answer")
            row["_line"] = n
            rows.append(row)
    return rows


def _spearman(xs: list[float], ys: list[float]) -> float:
    from scipy.stats import spearmanr

    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return float("nan")
    return float(spearmanr(xs, ys).statistic)


def partial_over_wrong(rows: list[dict], scores: list[float]) -> float:
    """Share of (partial, wrong) answer pairs of the same entry where the partial one scores higher
    (ties count half); an entry may have several of each."""
    by: dict[str, dict[str, list[float]]] = {}
    for r, s in zip(rows, scores):
        by.setdefault(r["entry_id"], {}).setdefault(r["kind"], []).append(s)
    pairs = [(p, w) for k in by.values() for p in k.get("partial", []) for w in k.get("wrong", [])]
    return sum(1.0 if p > w else 0.5 if p == w else 0.0 for p, w in pairs) / len(pairs) if pairs else 0.0


def metrics(rows: list[dict], scores: list[float], latencies: list[float] | None = None) -> dict:
    """Band accuracy, Spearman, ordering accuracy and per-kind means for graded rows."""
    inside = [r["band"][0] <= s <= r["band"][1] for r, s in zip(rows, scores)]
    outside = [max(0.0, r["band"][0] - s, s - r["band"][1]) for r, s in zip(rows, scores)]
    mids = [(r["band"][0] + r["band"][1]) / 2 for r in rows]
    by_entry: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r, s, m in zip(rows, scores, mids):
        by_entry[r["entry_id"]].append((m, s))
    agree = total = 0.0
    for pairs in by_entry.values():
        for i in range(len(pairs)):
            for j in range(i + 1, len(pairs)):
                (m1, s1), (m2, s2) = pairs[i], pairs[j]
                if abs(m1 - m2) < 2:
                    continue
                total += 1
                agree += 0.5 if s1 == s2 else float((m1 - m2) * (s1 - s2) > 0)
    kinds: dict[str, list[float]] = defaultdict(list)
    kind_hits: dict[str, list[bool]] = defaultdict(list)
    for r, s, ok in zip(rows, scores, inside):
        kinds[r["kind"]].append(s)
        kind_hits[r["kind"]].append(ok)
    out = {
        "n": len(rows),
        "band_accuracy": round(sum(inside) / len(rows), 3) if rows else float("nan"),
        "spearman": round(_spearman(scores, mids), 3),
        "ordering_accuracy": round(agree / total, 3) if total else float("nan"),
        "partial_over_wrong": round(partial_over_wrong(rows, scores), 3),
        "mean_outside": round(statistics.fmean(outside), 2) if rows else float("nan"),
        "per_kind": {k: {"mean": round(statistics.fmean(v), 2), "band_accuracy": round(sum(kind_hits[k]) / len(v), 2),
                         "n": len(v)} for k, v in sorted(kinds.items())},
    }
    if latencies:
        lat = sorted(latencies)
        out["latency_ms_p50"] = round(statistics.median(lat), 2)
        out["latency_ms_p95"] = round(lat[min(len(lat) - 1, int(0.95 * len(lat)))], 2)
    return out


def grade_rows(grader, corpus, rows: list[dict]) -> tuple[list[dict], list[float], list[float], list[dict]]:
    """Grade every row whose entry exists. Returns (graded rows, scores, latencies ms, missing rows)."""
    kept, scores, lat, missing = [], [], [], []
    for r in rows:
        entry = corpus.get(r["entry_id"])
        if entry is None:
            missing.append(r)
            continue
        t0 = time.perf_counter()
        g = grader.grade(entry, r["answer"])
        lat.append((time.perf_counter() - t0) * 1000)
        kept.append(r)
        scores.append(g.score)
    return kept, scores, lat, missing


def evaluate(grader, corpus, rows: list[dict], splits=("dev", "test")) -> dict:
    report = {}
    for split in splits:
        subset = [r for r in rows if split == "all" or r["split"] == split]
        kept, scores, lat, missing = grade_rows(grader, corpus, subset)
        m = metrics(kept, scores, lat)
        m["missing_entries"] = sorted({r["entry_id"] for r in missing})
        m["worst"] = sorted(
            ({"id": r["id"], "score": s, "band": r["band"]} for r, s in zip(kept, scores)
             if not r["band"][0] <= s <= r["band"][1]),
            key=lambda x: -max(x["band"][0] - x["score"], x["score"] - x["band"][1]))[:8]
        report[split] = m
    return report


def _print(name: str, report: dict) -> None:
    print(f"\n## {name}")
    print("| split | n | band acc | Spearman | ordering | partial>wrong | mean outside | p50 ms | p95 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for split, m in report.items():
        print(f"| {split} | {m['n']} | {m['band_accuracy']} | {m['spearman']} | {m['ordering_accuracy']} | "
              f"{m['partial_over_wrong']} | {m['mean_outside']} | {m.get('latency_ms_p50', '-')} | {m.get('latency_ms_p95', '-')} |")
    for split, m in report.items():
        kinds = ", ".join(f"{k} {v['mean']} ({v['band_accuracy']:.0%})" for k, v in m["per_kind"].items())
        print(f"- {split} mean score per kind (band hit rate): {kinds}")
        if m["missing_entries"]:
            print(f"- {split}: entries not in the corpus, skipped: {', '.join(m['missing_entries'])}")
        for w in m["worst"][:5]:
            print(f"  - outside band: {w['id']} score {w['score']} band {w['band']}")


def main(argv: list[str] | None = None) -> int:
    from tutor.corpus import load_corpus
    from tutor.grading import build_grader
    from tutor.settings import get_settings

    ap = argparse.ArgumentParser(prog="python -m eval.grading_eval", description="评分器在标定集上的一致性评测")
    ap.add_argument("--data", type=Path, default=None, help="calibration file (default: the calibration set; "
                    "with --split dev2/holdout/holdout2, that split's own file)")
    ap.add_argument("--split", choices=["dev", "test", "dev2", "holdout", "holdout2", "holdout3", "holdout4", "all", "both"], default="both")
    ap.add_argument("--grader", choices=["offline", "llm", "all"], default="all")
    ap.add_argument("--json", action="store_true", help="print the metrics as JSON")
    args = ap.parse_args(argv)

    settings = get_settings()
    corpus = load_corpus(settings.corpus_dir, strict=False)
    try:
        rows = load_calibration(args.data or DATA_OF_SPLIT.get(args.split, DATA))
    except ValueError as exc:
        ap.error(str(exc))
    splits = ("dev", "test") if args.split == "both" else (args.split,)
    results: dict[str, dict] = {}
    if args.grader in ("offline", "all"):
        results["offline"] = evaluate(build_grader(settings.model_copy(update={"grader": "offline"}), corpus),
                                      corpus, rows, splits)
    if args.grader in ("llm", "all"):
        if settings.llm_enabled:
            results["llm"] = evaluate(build_grader(settings.model_copy(update={"grader": "llm"}), corpus),
                                      corpus, rows, splits)
        else:
            results["llm"] = {"skipped": "未配置大模型（TUTOR_LLM_MODEL），大模型评分器未评测"}
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return 0
    print(f"# 评分器标定评测 (grader calibration): {len(rows)} answers, "
          f"{len({r['entry_id'] for r in rows})} entries, corpus {corpus.fingerprint()}")
    for name, report in results.items():
        if "skipped" in report:
            print(f"\n## {name}\n- 跳过：{report['skipped']}")
        else:
            _print(name, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
