"""The `tutor` command: a thin dispatcher over per-feature command modules.

Each subcommand lives in the module that owns the feature and exposes `add_arguments(parser)`
and `run(args) -> int`. Modules are imported only when their command runs, so `tutor search`
never pays for gradio or torch. Add a command by adding one line to COMMANDS.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("ingest.cli", "校验知识库并建立/更新向量索引"),
    "search": ("tutor.search_cli", "检索知识库条目"),
    "doctor": ("tutor.doctor", "检查各后端的配置与连通性"),
    "grade": ("tutor.grade_cli", "按要点给一段回答评分（--json / --batch）"),
    "interview": ("tutor.interview_cli", "在终端进行模拟面试（可追问、可续接）"),
    "progress": ("tutor.progress_cli", "学习进度、今日待复习、导出/导入/删除用户档案"),
    "ask": ("tutor.chat_cli", "问一个问题（带引用；未配置大模型时离线回答）"),
    "chat": ("tutor.chat_cli", "多轮对话问答（带引用与对话记忆）"),
    "transcribe": ("tutor.speech_cli", "把一段录音转成文字（检查语音识别配置）"),
    "speak": ("tutor.speech_cli", "朗读一段文字（检查语音合成配置）"),
    "eval": ("eval.cli", "评测检索与评分质量"),  # looked up by name: nothing in tutor/ imports eval/
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tutor", description="大模型算法岗面试辅导 (LLM interview tutor)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    sub_parser = argparse.ArgumentParser(prog=f"tutor {name}", description=COMMANDS[name][1])
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("\n已中断 (interrupted)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
