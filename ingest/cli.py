"""Command line of the write side, shared by `python -m ingest` and `tutor ingest`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tutor.corpus import check_corpus
from tutor.settings import get_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="只校验知识库，不建索引 (validate only)")
    parser.add_argument("--corpus", type=Path, default=None, help="知识库目录 (default: settings.corpus_dir)")
    parser.add_argument("--quiet", action="store_true", help="不显示进度条")


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    corpus_dir = args.corpus or settings.corpus_dir
    if args.check:
        entries, problems = check_corpus(corpus_dir)
        for p in problems:
            print(p)
        if problems:
            print(f"知识库校验失败：{len(problems)} 处问题 ({len(entries)} entries parsed)", file=sys.stderr)
            return 1
        print(f"知识库校验通过：{len(entries)} 个条目 (corpus OK: {len(entries)} entries)")
        return 0
    from ingest.pipeline import ingest_corpus  # heavy imports only when building

    try:
        report = ingest_corpus(settings, corpus_dir=corpus_dir, progress=not args.quiet)
    except Exception as exc:  # noqa: BLE001 - shown to the user, with what to do
        from tutor.corpus import CorpusError

        if isinstance(exc, CorpusError):
            for p in exc.problems:
                print(p, file=sys.stderr)
            print("知识库有错误，索引未改动。请先修正 (run `python -m ingest --check`).", file=sys.stderr)
            return 1
        raise
    print(report.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description="校验知识库并写入向量索引")
    add_arguments(parser)
    return run(parser.parse_args(argv))
