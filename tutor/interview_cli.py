"""`tutor interview`: a mock interview in the terminal.

    tutor interview --topics 注意力,归一化 --level 2 -n 3 --follow-ups 1
    tutor interview --resume              # the most recent session; or --resume ID
    tutor interview --list                # saved sessions

Design: the terminal loop only prints what `tutor.interview.Interview` says and feeds it lines.
The session is saved after every answer (JSON under data_dir/interviews), so Ctrl-C / Ctrl-D or a
crash loses nothing; at the end the markdown report is printed and saved next to the JSON. A line
ending in "\\" continues the answer on the next line.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topics", nargs="*", default=[],
                        help="主题（匹配大类、主题名或标签），可用逗号分隔，例如 注意力,归一化")
    parser.add_argument("--level", type=int, choices=[1, 2, 3], help="难度 1/2/3（默认不限）")
    parser.add_argument("-n", "--questions", type=int, default=5, help="题数（默认 5）")
    parser.add_argument("--follow-ups", type=int, default=None, help="每题最多追问次数（默认按配置）")
    parser.add_argument("--seed", type=int, default=None, help="随机种子（同样的种子出同样的题）")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, help="继续上次（或指定 id 的）面试")
    parser.add_argument("--list", action="store_true", help="列出保存的面试")


def _read_answer() -> str:
    parts = []
    while True:
        line = input("你的回答> " if not parts else "......> ")
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        return "\n".join(parts)


def run(args: argparse.Namespace) -> int:
    from tutor.corpus import load_corpus
    from tutor.grading import build_grader
    from tutor.interview import Interview, InterviewConfig
    from tutor.interview_report import InterviewStore
    from tutor.settings import get_settings

    settings = get_settings()
    store = InterviewStore(settings.data_dir)
    if args.list:
        ids = store.ids()
        print("\n".join(ids) if ids else "还没有保存的面试。")
        return 0
    corpus = load_corpus(settings.corpus_dir, strict=False)
    try:
        grader = build_grader(settings, corpus)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    llm = grader.llm
    if args.resume:
        ids = store.ids()
        session_id = ids[0] if args.resume == "latest" and ids else args.resume
        try:
            session = Interview.from_json(store.load_text(session_id), corpus, grader, llm)
        except FileNotFoundError as exc:
            print(f"{exc}。可用 `tutor interview --list` 查看已保存的面试。", file=sys.stderr)
            return 2
    else:
        topics = [t.strip() for raw in args.topics for t in raw.replace("，", ",").split(",") if t.strip()]
        follow_ups = settings.interview_follow_ups if args.follow_ups is None else args.follow_ups
        config = InterviewConfig(topics=topics, level=args.level, n_questions=max(1, args.questions),
                                 max_follow_ups=max(0, follow_ups), seed=args.seed)
        session = Interview.start_new(corpus, grader, config, llm=llm)
    print(f"【{grader.describe()}】 面试 id：{session.state.id}")

    reply = session.opening()
    while True:
        for m in reply.messages:
            print(f"\n面试官：{m}")
        store.save(session)
        if reply.finished:
            break
        print(f"\n面试官：{reply.prompt}")
        try:
            text = _read_answer()
        except (EOFError, KeyboardInterrupt):
            store.save(session)
            print(f"\n已保存。继续这场面试：tutor interview --resume {session.state.id}")
            return 0
        reply = session.answer(text)
    report = session.report()
    path = store.save(session).with_suffix(".md")
    path.write_text(report, encoding="utf-8")
    print("\n" + report)
    print(f"报告已保存：{path}")
    return 0
