"""`tutor ask "..."` (one question) and `tutor chat` (a conversation), streaming to the terminal.

Both commands share this module; the registry in `tutor/cli.py` builds a parser per command and
`add_arguments` reads the command name from the parser's `prog`. The answer goes to stdout as it
streams (pipe-friendly); the mode line ("离线模式" or model @ endpoint) goes to stderr so scripts
get only the answer. In `tutor chat`, Ctrl-C stops the current answer and keeps the session;
Ctrl-D, `/exit` or Ctrl-C at the prompt leaves. Heavy imports happen in `run`, not at import time.
"""

from __future__ import annotations

import argparse
import sys

HELP = "命令：/reset 清空对话记忆　/mode 查看当前模式　/exit 退出（也可按 Ctrl-D）"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    command = parser.prog.split()[-1]
    parser.set_defaults(command=command)
    if command == "ask":
        parser.add_argument("question", nargs="+", help="要问的问题（可不加引号）")
    else:
        parser.add_argument("question", nargs="*", help="可选：第一句问题")
    parser.add_argument("--offline", action="store_true", help="即使配置了大模型也只用知识库回答")


def _stream(reply, out) -> None:
    for delta in reply:
        out.write(delta)
        out.flush()
    out.write("\n")
    out.flush()


def _session(args):
    from tutor.chat import ChatSession, open_session
    from tutor.settings import get_settings

    settings = get_settings()
    if args.offline:
        from tutor.retriever import load_retriever

        return ChatSession(load_retriever(settings), None, k=settings.retrieval_k,
                           history_chars=settings.chat_history_chars)
    return open_session(settings)


def run(args: argparse.Namespace) -> int:
    session = _session(args)
    print(f"[{session.mode_label}]", file=sys.stderr)
    first = " ".join(args.question).strip()
    if args.command == "ask":
        _stream(session.ask(first), sys.stdout)
        return 0
    print(HELP, file=sys.stderr)
    pending = first
    while True:
        if not pending:
            try:
                pending = input("\n你> ").strip()
            except (EOFError, KeyboardInterrupt):
                print("\n再见。", file=sys.stderr)
                return 0
        question, pending = pending, ""
        if not question:
            continue
        if question in ("/exit", "/quit", "exit", "quit"):
            print("再见。", file=sys.stderr)
            return 0
        if question == "/reset":
            session.reset()
            print("已清空对话记忆。", file=sys.stderr)
            continue
        if question == "/mode":
            print(session.mode_label, file=sys.stderr)
            continue
        if question in ("/help", "/?"):
            print(HELP, file=sys.stderr)
            continue
        print()
        try:
            _stream(session.ask(question), sys.stdout)
        except KeyboardInterrupt:
            print("\n（已停止本轮回答，可以继续提问）", file=sys.stderr)
