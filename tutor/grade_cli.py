"""`tutor grade`: grade one answer, or a batch of answers, against an entry's key points.

    tutor grade layernorm-vs-batchnorm --answer "BN 在 batch 维上统计……" [--json]
    tutor grade attention-scaling --file answer.txt          # --file - reads stdin
    tutor grade --batch answers.jsonl                          # {"entry_id", "answer"} per line

Design: a thin shell over `tutor.grading.build_grader`; the human output is the grade's own
markdown-ish rendering, `--json` prints `Grade.model_dump()` unchanged so scripts see exactly what
the app sees. Batch mode prints one JSON object per input line, in order; a bad line prints
`{"line": n, "error": "..."}` and the run continues (exit code 1 at the end), so one typo never
loses the other grades.

Progress: a single grade is recorded to the profile's progress (`--profile`, default TUTOR_PROFILE
or "default"; `--no-record` to skip) by `tutor.progress`, after grading: the grader never sees the
store, and a broken store only prints a warning. Batch mode is for scripts and evaluation, so it
records only when `--profile` is given explicitly.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("entry_id", nargs="?", help="条目 id，例如 layernorm-vs-batchnorm")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--answer", help="回答文本")
    src.add_argument("--file", type=Path, help="从文件读取回答（- 表示标准输入）")
    src.add_argument("--batch", type=Path, help='JSON lines 文件，每行 {"entry_id": ..., "answer": ...}')
    parser.add_argument("--json", action="store_true", help="输出 JSON（评分对象）")
    parser.add_argument("--grader", choices=["auto", "offline", "llm"], default=None,
                        help="评分器（默认按配置：配置了大模型就用大模型）")
    parser.add_argument("--profile", default=None, help="记录到哪个用户档案的学习进度（默认 TUTOR_PROFILE 或 default）")
    parser.add_argument("--no-record", action="store_true", help="不记录到学习进度")


def _unknown(entry_id: str, corpus) -> str:
    close = difflib.get_close_matches(entry_id, list(corpus.by_id), n=3, cutoff=0.5)
    hint = f"，你是不是想找：{', '.join(close)}" if close else "。可用 `tutor search 关键词` 查找条目 id"
    return f"找不到条目 `{entry_id}`{hint}"


def load_grader(settings):
    """The corpus and the configured grader for a command, or None after saying why (bad TUTOR_GRADER).
    Shared by `tutor grade` and `tutor interview`."""
    from tutor.corpus import load_corpus
    from tutor.grading import build_grader

    corpus = load_corpus(settings.corpus_dir, strict=False)
    try:
        return corpus, build_grader(settings, corpus)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    from tutor.settings import get_settings

    settings = get_settings()
    if args.grader:
        settings = settings.model_copy(update={"grader": args.grader})
    if args.batch:
        if args.entry_id:
            print("--batch 模式不需要条目 id（每行自带 entry_id）", file=sys.stderr)
            return 2
    elif not args.entry_id or (args.answer is None and args.file is None):
        print("用法：tutor grade ENTRY_ID (--answer 文本 | --file 路径) [--json]，或 tutor grade --batch 文件",
              file=sys.stderr)
        return 2

    loaded = load_grader(settings)
    if loaded is None:
        return 2
    corpus, grader = loaded

    recorder = None
    if not args.no_record and (not args.batch or args.profile):
        from tutor.progress import open_for_recording

        store, profile, warning = open_for_recording(settings, args.profile)
        if warning:
            print(warning, file=sys.stderr)
        recorder = (store, profile) if store is not None else None

    if args.batch:
        return _batch(args.batch, grader, corpus, recorder)

    entry = corpus.get(args.entry_id)
    if entry is None:
        print(_unknown(args.entry_id, corpus), file=sys.stderr)
        return 2
    if args.file is not None:
        try:
            answer = sys.stdin.read() if str(args.file) == "-" else args.file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"读取回答文件失败：{args.file}（{exc}）", file=sys.stderr)
            return 2
    else:
        answer = args.answer
    grade = grader.grade(entry, answer)
    if args.json:
        print(json.dumps(grade.model_dump(mode="json"), ensure_ascii=False, indent=2))
    else:
        print(f"题目：{entry.question}（{entry.citation}）\n")
        print(grade.to_markdown())
    if _record(recorder, grade, corpus) and not args.json:
        print(f"\n已记录到学习进度（{recorder[1]}）。查看：tutor progress show", file=sys.stderr)
    return 0


def _record(recorder, grade, corpus) -> bool:
    if recorder is None:
        return False
    from tutor.progress import record_grade
    from tutor.progress_store import ProgressStoreError

    try:
        return record_grade(recorder[0], recorder[1], grade, corpus)
    except ProgressStoreError as exc:
        print(f"本次作答没有记录到学习进度：{exc}", file=sys.stderr)
        return False


def _batch(path: Path, grader, corpus, recorder=None) -> int:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"读取批量文件失败：{path}（{exc}）", file=sys.stderr)
        return 2
    errors = 0
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("每行应是一个 JSON 对象")
            entry_id, answer = item.get("entry_id"), item.get("answer")
            if not isinstance(entry_id, str) or not isinstance(answer, str):
                raise ValueError('需要字符串字段 "entry_id" 和 "answer"')
            entry = corpus.get(entry_id)
            if entry is None:
                raise ValueError(_unknown(entry_id, corpus))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            errors += 1
            msg = f"不是合法的 JSON（{exc.msg}）" if isinstance(exc, json.JSONDecodeError) else str(exc)
            print(json.dumps({"line": n, "error": msg}, ensure_ascii=False), flush=True)
            continue
        grade = grader.grade(entry, answer)
        print(json.dumps(grade.model_dump(mode="json"), ensure_ascii=False), flush=True)
        _record(recorder, grade, corpus)
    if errors:
        print(f"{errors} 行无法评分（见输出中的 error 行）", file=sys.stderr)
    return 1 if errors else 0
