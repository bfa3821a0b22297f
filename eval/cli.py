"""`python -m eval` / `tutor eval`: measured retrieval quality, generation quality and grader agreement.

    python -m eval                                   # full report -> <data_dir>/eval/<timestamp>/
    python -m eval retrieval [--queries FILE] [--split dev|test|all|both] [--json] [--config NAME]
    python -m eval retrieval --tune                  # grid search on the DEV split, prints the best values
    python -m eval generation [--runs 3] [--limit 20] [--json]     # needs an LLM; skipped offline
    python -m eval grading [--json]                  # grader agreement on the calibration set

Like every tutor command module, this one exposes `add_arguments(parser)` and `run(args)`; `tutor`
finds it by name (`importlib`) so nothing in `tutor/` imports `eval/`. The orchestration lives
here; each measurement is its own module (retrieval, tuning, generation, grading_eval) and the
files are written by `eval.report`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

from eval.queries import DEFAULT_QUERIES, QueryFileError, check_against_corpus, label_coverage, load_queries, select

SPLIT_CHOICES = ["dev", "test", "all", "both"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cmd", metavar="{report,retrieval,generation,grading}")
    rep = sub.add_parser("report", help="完整评测并写出 markdown/PNG/JSON 报告（默认）")
    _common(rep)
    rep.add_argument("--runs", type=int, default=3, help="生成质量评测的重复轮数")
    rep.add_argument("--limit", type=int, default=20, help="生成质量评测的问题数")
    rep.add_argument("--no-generation", action="store_true", help="不跑生成质量评测")
    rep.add_argument("--no-grading", action="store_true", help="不跑评分器一致性评测")
    rep.add_argument("--out", type=Path, default=None, help="报告目录的上级（默认：数据目录）")

    ret = sub.add_parser("retrieval", help="检索质量：各配置的 Hit@k / Recall@k / MRR / nDCG / 拒答 / 延迟")
    _common(ret)
    ret.add_argument("--split", choices=SPLIT_CHOICES, default="both", help="both = dev 和 test 分开报告")
    ret.add_argument("--json", action="store_true", help="以 JSON 输出全部指标")
    ret.add_argument("--config", action="append", default=None, help="只评测这些配置（可重复），如 hybrid:hashing-v1")
    ret.add_argument("--tune", action="store_true", help="在 dev split 上网格搜索融合权重、CODE_PRIOR、MIN_COVERAGE")

    gen = sub.add_parser("generation", help="生成质量（大模型裁判）：忠实度、答案相关性、上下文召回")
    _common(gen)
    gen.add_argument("--split", choices=["dev", "test", "all"], default="test")
    gen.add_argument("--runs", type=int, default=3)
    gen.add_argument("--limit", type=int, default=20)
    gen.add_argument("--judge-model", default=None, help="裁判模型名（默认与回答模型相同）")
    gen.add_argument("--json", action="store_true")

    gra = sub.add_parser("grading", help="评分器在标定集上的一致性（区间准确率、Spearman）")
    gra.add_argument("--json", action="store_true")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queries", type=Path, default=DEFAULT_QUERIES, help="标注查询文件（JSON lines，格式见 eval/README.md）")


def _context(args):
    from tutor.corpus import load_corpus
    from tutor.settings import get_settings

    settings = get_settings()
    corpus = load_corpus(settings.corpus_dir, strict=False)
    queries = load_queries(args.queries)
    kept, problems = check_against_corpus(queries, set(corpus.by_id))
    info = {"file": str(args.queries), "total": len(kept), "by_split": dict(sorted(Counter(q.split for q in kept).items())),
            "by_style": dict(Counter(q.style or "-" for q in kept).most_common()),
            "unanswerable": sum(not q.answerable for q in kept), "problems": problems,
            "unlabelled_entries": label_coverage(kept, set(corpus.by_id))}
    return settings, corpus, kept, info


def _splits(choice: str) -> tuple[str, ...]:
    return ("dev", "test") if choice == "both" else (choice,)


def default_config_name(retrieval: dict) -> str:
    return next((n for n in retrieval["configs"] if n.startswith("hybrid:hashing")), next(iter(retrieval["configs"]), ""))


def goals_section(retrieval: dict, split: str = "test") -> dict | None:
    from eval.retrieval import GOALS, goal_check

    name = default_config_name(retrieval)
    m = retrieval["configs"].get(name, {}).get("splits", {}).get(split)
    if not m:
        return None
    met = goal_check(m)
    meeting = [n for n, c in retrieval["configs"].items() if split in c["splits"] and all(goal_check(c["splits"][split]).values())]
    out = {"config": name, "split": split, "targets": GOALS, "met": met,
           "values": {k: m[k]["mean"] for k in GOALS}, "configs_meeting_all": meeting}
    if not all(met.values()):
        weak = sorted(m["by_style"].items(), key=lambda kv: kv[1]["hit@1"])[:2]
        out["explanation"] = (
            "未达标：" + "、".join(f"{k} {m[k]['mean']}" for k, ok in met.items() if not ok) + "。最弱的查询风格："
            + "、".join(f"{s}（Hit@1 {v['hit@1']}，n={v['n']}）" for s, v in weak)
            + "。离线默认只有词面信号（BM25 + 哈希向量，靠术语表沟通中英文与同义写法），没有语义相似度；"
              "意译较多、跨语言或错别字的问法需要神经嵌入模型（如 bge-small-zh-v1.5）来补。")
    return out


def _run_retrieval(args) -> int:
    from eval.report import corpus_info, retrieval_table, settings_info, summary_rows
    from eval.retrieval import build_configs, evaluate

    settings, corpus, queries, info = _context(args)
    if args.tune:
        return _run_tune(settings, corpus, queries, info)
    configs, notes = build_configs(settings, corpus)
    if args.config:
        unknown = set(args.config) - {c.name for c in configs}
        if unknown:
            print(f"未知配置: {', '.join(sorted(unknown))}；可选: {', '.join(c.name for c in configs)}", file=sys.stderr)
            return 2
        configs = [c for c in configs if c.name in args.config]
    splits = _splits(args.split)
    result = evaluate(settings, corpus, queries, splits, configs)
    result["notes"] = notes + result["notes"]
    if args.json:
        print(json.dumps({"corpus": corpus_info(corpus), "settings": settings_info(settings), "queries": info,
                          "summary": {s: summary_rows(result, s) for s in splits}, "retrieval": result},
                         ensure_ascii=False, indent=1))
        return 0
    print(f"# 检索评测：{info['total']} 条查询（{info['by_split']}），知识库 {len(corpus.entries)} 个条目 "
          f"`{corpus.fingerprint()}`")
    for p in info["problems"][:10]:
        print(f"! {p}")
    for split in splits:
        print(f"\n## {split}\n")
        print("\n".join(retrieval_table(result, split)))
    for n in result["notes"]:
        print(f"\n> {n}")
    default = result["configs"].get(default_config_name(result), {})
    for split, m in default.get("splits", {}).items():
        print(f"\n## 最差的未命中（{default_config_name(result)} · {split}）")
        for w in m["worst_misses"][:10]:
            print(f"- {w['query']} → 期望 {', '.join(w['expected'])}（排名 {w['rank'] or '>10'}），实际 {', '.join(w['got'])}")
    return 0


def _run_tune(settings, corpus, queries, info) -> int:
    from tutor.retriever import CODE_PRIOR, MIN_COVERAGE, WEIGHTS, load_retriever
    from ingest.pipeline import ingest_corpus
    from eval.retrieval import RetrieverConfig, run_config, score
    from eval.tuning import tune

    hashing = settings.model_copy(update={"embedding_backend": "hashing", "embedding_model": ""}) \
        if settings.embedding_backend == "hashing" else settings
    ingest_corpus(hashing, progress=False, strict=False)
    index = load_retriever(hashing, corpus=corpus).index
    dev = select(queries, "dev")
    print(f"# 在 dev split 上调参：{len(dev)} 条查询（test split 不参与搜索）", flush=True)
    best = tune(index, dev, progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    current = RetrieverConfig("current", "", index, dict(WEIGHTS), CODE_PRIOR, MIN_COVERAGE)
    tuned = RetrieverConfig("tuned", "", index, best["weights"], best["code_prior"], best["min_coverage"])
    print(f"\n最佳值（dev）：WEIGHTS = {best['weights']}，CODE_PRIOR = {best['code_prior']}，"
          f"MIN_COVERAGE = {best['min_coverage']}")
    print(f"目标函数 J = (Hit@1 + MRR@10 + R@5) / 3：{best['objective']}（邻域平均 {best['objective_smoothed']}）；"
          f"网格单点最优 {best['raw_best']}")
    print("邻域平均最高的几个点（平台）：")
    for t in best["top"][:5]:
        print(f"  head/body/dense = {t['weights']}, CODE_PRIOR = {t['code_prior']}: J = {t['J']}，邻域平均 {t['J_smoothed']}")
    print("MIN_COVERAGE 曲线 (阈值, 拒答准确率, 误拒率, 平衡准确率)：")
    print("  " + "  ".join(str(c) for c in best["coverage_curve"]))
    keys = ("hit@1", "recall@5", "mrr@10", "ndcg@10", "abstention_accuracy", "false_abstention")
    print("\n| 配置 | split | " + " | ".join(keys) + " |\n|" + " --- |" * (len(keys) + 2))
    for cfg in (current, tuned):
        results = run_config(cfg, queries)
        for split in ("dev", "test"):  # test printed once, for information only
            m = score([r for r in results if r.query.split == split], corpus)
            print(f"| {cfg.name} | {split} | " + " | ".join(f"{m[k]['mean']:.3f}" for k in keys) + " |")
    print("\n把最佳值写进 tutor/retriever.py 的常量（附上 dev 上的数字），再运行 `python -m eval` 生成报告。")
    return 0


def _run_generation(args) -> int:
    from eval.generation import evaluate_generation

    settings, corpus, queries, _ = _context(args)
    result = evaluate_generation(settings, corpus, select(queries, args.split), runs=args.runs, limit=args.limit,
                                 judge_model=args.judge_model)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    elif "skipped" in result:
        print(result["skipped"])
    else:
        from eval.report import _generation

        print("\n".join(_generation(result)))
    return 0


def grading_section(settings, corpus) -> dict:
    """Grader agreement through the public functions of `eval.grading_eval` (another module's)."""
    from eval.grading_eval import evaluate, load_calibration
    from tutor.grading import build_grader

    try:
        rows = load_calibration()
    except OSError as exc:
        return {"error": f"读不到标定集: {exc}"}
    out = {"offline": evaluate(build_grader(settings.model_copy(update={"grader": "offline"}), corpus), corpus, rows)}
    if settings.llm_enabled:
        out["llm"] = evaluate(build_grader(settings.model_copy(update={"grader": "llm"}), corpus), corpus, rows)
    else:
        out["llm"] = {"skipped": "未配置大模型（TUTOR_LLM_MODEL），大模型评分器未评测"}
    return out


def _run_grading(args) -> int:
    from eval import grading_eval

    return grading_eval.main(["--json"] if args.json else [])


def _run_report(args) -> int:
    from eval.generation import evaluate_generation
    from eval.report import corpus_info, machine_info, settings_info, write_report
    from eval.retrieval import evaluate

    settings, corpus, queries, info = _context(args)
    print(f"检索评测：{info['total']} 条查询 × 全部可用配置 ……", file=sys.stderr, flush=True)
    retrieval = evaluate(settings, corpus, queries, ("dev", "test"))
    report = {"generated_at": datetime.now().isoformat(timespec="seconds"), "machine": machine_info(),
              "corpus": corpus_info(corpus), "settings": settings_info(settings), "queries": info,
              "splits": ["dev", "test"], "retrieval": retrieval, "default_config": default_config_name(retrieval),
              "goals": goals_section(retrieval)}
    if not args.no_generation:
        print("生成质量评测 ……", file=sys.stderr, flush=True)
        report["generation"] = evaluate_generation(settings, corpus, select(queries, "test"), runs=args.runs, limit=args.limit)
    if not args.no_grading:
        print("评分器一致性评测 ……", file=sys.stderr, flush=True)
        report["grading"] = grading_section(settings, corpus)
    out = write_report(report, args.out or settings.data_dir)
    print(f"报告已写出: {out / 'report.md'}")
    return 0


def run(args) -> int:
    if getattr(args, "cmd", None) is None:
        args = argparse.Namespace(cmd="report", queries=DEFAULT_QUERIES, runs=3, limit=20, no_generation=False,
                                  no_grading=False, out=None)
    handlers = {"report": _run_report, "retrieval": _run_retrieval, "generation": _run_generation,
                "grading": _run_grading}
    try:
        return handlers[args.cmd](args)
    except QueryFileError as exc:
        print(str(exc), file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval", description="评测检索与评分质量")
    add_arguments(parser)
    return run(parser.parse_args(argv))
