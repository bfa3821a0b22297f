"""The eval report: context (machine, corpus version, configuration), markdown rendering, files.

`write_report(report, data_dir)` writes `<data_dir>/eval/<timestamp>/` with `report.md`,
`report.json` (the same numbers for machines) and the PNG figures of `eval.plots`. The markdown
is plain tables, so it reads well in a terminal, on a code-hosting site and in a diff between two
runs. Every number carries its context: split, query count, 95% bootstrap interval, the corpus
fingerprint and the retriever constants in force, so a figure quoted later can be traced back.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime
from pathlib import Path

from eval.metrics import RANKING_METRICS


def machine_info() -> dict:
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "processor": platform.processor() or "", "python": sys.version.split()[0]}


def corpus_info(corpus) -> dict:
    sections: dict[str, int] = {}
    for e in corpus.entries:
        sections[e.section] = sections.get(e.section, 0) + 1
    return {"dir": str(corpus.root), "fingerprint": corpus.fingerprint(), "entries": len(corpus.entries),
            "sections": dict(sorted(sections.items()))}


def settings_info(settings) -> dict:
    from tutor import retriever

    return {
        "embedding_backend": settings.embedding_backend, "embedding_model": settings.embedding_model or None,
        "vector_store": settings.chroma_url or str(settings.chroma_dir), "llm": settings.describe_llm(),
        "retrieval_k": settings.retrieval_k,
        "retriever_constants": {"WEIGHTS": dict(retriever.WEIGHTS), "CODE_PRIOR": retriever.CODE_PRIOR,
                                "MIN_COVERAGE": retriever.MIN_COVERAGE, "EXACT_BONUS": retriever.EXACT_BONUS,
                                "CONTAINED_BONUS": retriever.CONTAINED_BONUS},
    }


def _fmt(m: dict | None, ci: bool = True) -> str:
    if not m or m.get("mean") is None:
        return "-"
    if ci and m.get("ci") and m["ci"][0] is not None and m["ci"][0] != m["ci"][1]:
        return f"{m['mean']:.3f} [{m['ci'][0]:.2f}, {m['ci'][1]:.2f}]"
    return f"{m['mean']:.3f}"


def retrieval_table(retrieval: dict, split: str) -> list[str]:
    head = ["配置", "n", "Hit@1", "R@1", "R@3", "R@5", "R@10", "MRR@10", "nDCG@10", "拒答准确率", "误拒率", "p50 ms", "p95 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, c in retrieval["configs"].items():
        m = c["splits"].get(split)
        if not m:
            continue
        cells = [f"`{name}`", f"{m['n_answerable']}+{m['n_unanswerable']}", _fmt(m["hit@1"])]
        cells += [_fmt(m[k], ci=False) for k in ("recall@1", "recall@3")]
        cells += [_fmt(m["recall@5"])]
        cells += [_fmt(m["recall@10"], ci=False), _fmt(m["mrr@10"]), _fmt(m["ndcg@10"], ci=False)]
        cells += [_fmt(m["abstention_accuracy"]), _fmt(m["false_abstention"], ci=False)]
        cells += [f"{m['latency_ms']['p50']:.1f}", f"{m['latency_ms']['p95']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _breakdown(title: str, groups: dict) -> list[str]:
    lines = [f"**{title}**", "", "| 分组 | n | Hit@1 | R@5 | MRR@10 |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {k} | {v['n']} | {v['hit@1']:.3f} | {v['recall@5']:.3f} | {v['mrr@10']:.3f} |" for k, v in groups.items()]
    return lines + [""]


def _misses(m: dict) -> list[str]:
    lines = ["| 查询 | 期望 | 期望的排名 | 实际前 3 |", "| --- | --- | --- | --- |"]
    for w in m["worst_misses"]:
        lines.append(f"| {w['query']} | {', '.join(w['expected'])} | {w['rank'] or '>10'} | {', '.join(w['got'])} |")
    if m["not_abstained"]:
        lines += ["", "未拒答的不可回答问题（coverage 越高越危险）：", ""]
        lines += [f"- {w['query']} → {', '.join(w['top'])} (coverage {w['coverage']})" for w in m["not_abstained"]]
    if m["wrongly_abstained"]:
        lines += ["", "误拒的可回答问题（coverage 最低的几条）：", ""]
        lines += [f"- {w['query']} → 期望 {', '.join(w['expected'])}，排名 {w['rank'] or '>10'} (coverage {w['coverage']})"
                  for w in m["wrongly_abstained"][:8]]
    return lines


def render_markdown(report: dict) -> str:
    r = report
    mi, ci, si, q = r["machine"], r["corpus"], r["settings"], r["queries"]
    out = [f"# 评测报告 (eval report) · {r['generated_at']}", "",
           "## 环境与版本", "",
           f"- 机器：{mi['platform']}，{mi['cpu_count']} 个 CPU，Python {mi['python']}",
           f"- 知识库：{ci['entries']} 个条目，指纹 `{ci['fingerprint']}`（{ci['dir']}）",
           f"- 嵌入后端：{si['embedding_backend']}{' / ' + si['embedding_model'] if si['embedding_model'] else ''}；"
           f"大模型：{si['llm']}；retrieval_k = {si['retrieval_k']}",
           f"- 检索常量：`{json.dumps(si['retriever_constants'], ensure_ascii=False)}`",
           f"- 查询集：{q['file']}，共 {q['total']} 条（{', '.join(f'{k} {v}' for k, v in q['by_split'].items())}；"
           f"不可回答 {q['unanswerable']}；风格 {', '.join(f'{k} {v}' for k, v in q['by_style'].items())}）", ""]
    if q.get("problems"):
        out += ["查询文件的问题：", ""] + [f"- {p}" for p in q["problems"][:10]] + [""]
    if q.get("unlabelled_entries"):
        out += [f"少于 2 条标注查询的条目（新条目需要补标注）：{', '.join(q['unlabelled_entries'])}", ""]
    ret = r.get("retrieval")
    if ret:
        out += ["## 检索质量", "",
                "排序指标只看排序（不管拒答标记）；拒答准确率 = 不可回答问题中被判为“无相关条目”的比例，"
                "误拒率 = 可回答问题被判为无相关条目的比例。方括号为 95% bootstrap 置信区间（按查询重采样）。", ""]
        for split in r["splits"]:
            out += [f"### {split} split", ""] + retrieval_table(ret, split) + [""]
        out += ["![metrics](metrics.png)", "", "![latency](latency.png)", ""]
        goals = r.get("goals")
        if goals:
            out += ["### 目标（离线默认配置，test split）", ""]
            out += [f"- {k}: {'达到' if ok else '未达到'}（目标 {goals['targets'][k]}，实测 {goals['values'][k]}）"
                    for k, ok in goals["met"].items()]
            if goals.get("configs_meeting_all"):
                out.append(f"- 达到全部目标的配置：{', '.join(goals['configs_meeting_all'])}")
            if goals.get("explanation"):
                out.append(f"- 说明：{goals['explanation']}")
            out.append("")
        for note in ret.get("notes", []):
            out.append(f"> {note}")
        out.append("")
        default = ret["configs"].get(r.get("default_config", ""), {}).get("splits", {})
        for split, m in default.items():
            out += [f"### 分组与失败案例：`{r['default_config']}` · {split}", ""]
            out += _breakdown("按大主题 (section)", m["by_section"]) + _breakdown("按主题文件 (topic)", m["by_topic"])
            out += _breakdown("按查询风格 (style)", m["by_style"])
            out += ["**最差的未命中 (Hit@1 = 0)**", ""] + _misses(m) + [""]
        out += ["![topics](topics.png)", ""]
    out += ["## 生成质量（大模型裁判）", ""] + _generation(r.get("generation") or {}) + [""]
    out += ["## 评分器一致性（标定集）", ""] + _grading(r.get("grading") or {}) + [""]
    return "\n".join(out)


def _generation(g: dict) -> list[str]:
    if "skipped" in g:
        return [f"跳过：{g['skipped']}"]
    if not g:
        return ["未运行。"]
    lines = [f"回答模型 {g['model']}（temperature {g['answer_temperature']}），裁判 {g['judge']}（temperature 0），"
             f"{g['questions']} 个问题 × {g['runs']} 轮。", "",
             "| 指标 | 均值 | 轮间标准差 | 最小 | 最大 |", "| --- | --- | --- | --- | --- |"]
    for name, s in g["metrics"].items():
        cells = [s[k] if s[k] is not None else "-" for k in ("mean", "std", "min", "max")]
        lines.append(f"| {name} | " + " | ".join(str(c) for c in cells) + " |")
    if g.get("unstable_questions"):
        lines += ["", "忠实度在各轮间波动 ≥ 0.3 的问题："] + [f"- {u['query']}: {u['faithfulness']}" for u in g["unstable_questions"]]
    if g.get("errors"):
        lines += ["", "出错的调用："] + [f"- {e}" for e in g["errors"]]
    return lines


def _grading(g: dict) -> list[str]:
    if not g:
        return ["未运行。"]
    if "error" in g:
        return [f"无法运行：{g['error']}"]
    lines = ["| 评分器 | split | n | 区间准确率 | Spearman | 排序一致率 | p50 ms |", "| --- | --- | --- | --- | --- | --- | --- |"]
    notes = []
    for grader, rep in g.items():
        if "skipped" in rep:
            notes.append(f"- {grader}：跳过，{rep['skipped']}")
            continue
        for split, m in rep.items():
            lines.append(f"| {grader} | {split} | {m['n']} | {m['band_accuracy']} | {m['spearman']} | "
                         f"{m['ordering_accuracy']} | {m.get('latency_ms_p50', '-')} |")
    return lines + [""] + notes


def write_report(report: dict, data_dir: Path, stamp: str | None = None) -> Path:
    from eval.plots import write_plots

    stamp = stamp or datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(data_dir) / "eval" / stamp
    out.mkdir(parents=True, exist_ok=True)
    if report.get("retrieval"):
        report["figures"] = [p.name for p in write_plots(report["retrieval"], out)]
    (out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    return out


def summary_rows(retrieval: dict, split: str) -> list[dict]:
    """One flat dict per configuration (means only), for `--json` output and quick comparisons."""
    rows = []
    for name, c in retrieval["configs"].items():
        m = c["splits"].get(split)
        if m:
            rows.append({"config": name, **{k: m[k]["mean"] for k in RANKING_METRICS},
                         "abstention_accuracy": m["abstention_accuracy"]["mean"],
                         "false_abstention": m["false_abstention"]["mean"], **m["latency_ms"]})
    return rows
