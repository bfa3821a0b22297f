"""`tutor search`: ranked entries for a query, or for many (`--batch`), loading everything once."""

from __future__ import annotations

import argparse
import json
import sys

from tutor.settings import get_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", help="问题或关键词")
    parser.add_argument("-k", type=int, default=5, help="返回条目数 (default 5)")
    parser.add_argument("--json", action="store_true", help="输出 JSON: {query, relevant, results: [...]}")
    parser.add_argument("--batch", metavar="FILE", help="每行一个查询的文件（- 为标准输入），每行输出一个 JSON")
    parser.add_argument("--no-sync", action="store_true", help="不在检索前同步索引")


def _print_human(result) -> None:
    if not result.relevant:
        print("知识库中没有与此相关的条目。以下是最接近的结果（仅供参考）：" if result.hits else "知识库中没有相关条目。")
    for n, hit in enumerate(result.hits, 1):
        print(f"{n}. [{hit.entry.id}] {hit.entry.question}  ({hit.score:.3f})")
        print(f"   {hit.entry.citation}")


def run(args: argparse.Namespace) -> int:
    if not args.query and not args.batch:
        print("请给出查询，例如: tutor search \"为什么注意力要除以根号d\"", file=sys.stderr)
        return 2
    settings = get_settings()
    from tutor.retriever import load_retriever

    if not args.no_sync:
        from ingest.pipeline import ensure_index

        report = ensure_index(settings, progress=False)
        if report.added or report.deleted or report.notes:
            print(report.summary(), file=sys.stderr)
    retriever = load_retriever(settings)
    if args.batch:
        stream = sys.stdin if args.batch == "-" else open(args.batch, encoding="utf-8")
        with stream:
            for line in stream:
                if line.strip():
                    print(json.dumps(retriever.search(line.strip(), args.k).to_dict(), ensure_ascii=False), flush=True)
        return 0
    result = retriever.search(args.query, args.k)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_human(result)
    return 0
