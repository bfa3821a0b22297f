"""`tutor interview`: a mock interview in the terminal.

    tutor interview --topics 注意力,归一化 --level 2 -n 3 --follow-ups 1
    tutor interview --resume              # the most recent session; or --resume ID
    tutor interview --list                # saved sessions

Design: the terminal loop only prints what `tutor.interview.Interview` says and feeds it lines.
The session is saved after every answer (JSON under data_dir/interviews), so Ctrl-C / Ctrl-D or a
crash loses nothing; at the end the markdown report is printed and saved next to the JSON. A line
ending in "\\" continues the answer on the next line. `--voice` takes an audio file path per answer and
shows the transcript for confirmation before grading (`tutor.speech_cli.VoiceIO`); questions are read aloud
when TUTOR_TTS_BACKEND is set.

Progress (`tutor.progress`): a new session asks the profile's due and weak entries first (the
session's `priority` hook), and every graded turn plus the session and its report are recorded to
the profile (`--profile`, default TUTOR_PROFILE or "default"; `--no-record` for neither). Recording
is idempotent, so it simply runs after every answer; a broken store prints one warning and the
interview goes on.
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
    parser.add_argument("--profile", default=None, help="用户档案名：先问到期/薄弱的题，并记录进度（默认 TUTOR_PROFILE 或 default）")
    parser.add_argument("--no-record", action="store_true", help="不读取也不记录学习进度")
    parser.add_argument("--voice", action="store_true",
                        help="语音作答：每题输入一个录音文件路径（终端不录音），转写后确认或修改再评分（需 TUTOR_STT_BACKEND）")
    parser.add_argument("--keep-audio", action="store_true", help="语音作答时保存转换后的录音（默认不保存）")


def _read_answer() -> str:
    parts = []
    while True:
        line = input("你的回答> " if not parts else "......> ")
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        return "\n".join(parts)


def _record(progress, profile, session, input_mode: str = "typed"):
    """Record the session's new graded turns; on a store error warn once and stop recording."""
    if progress is None:
        return None
    from tutor.progress import record_interview
    from tutor.progress_store import ProgressStoreError

    try:
        record_interview(progress, profile, session, input_mode=input_mode)
        return progress
    except ProgressStoreError as exc:
        print(f"学习进度记录失败，本场后面的作答不再记录：{exc}", file=sys.stderr)
        return None


def run(args: argparse.Namespace) -> int:
    from tutor.interview import Interview, InterviewConfig
    from tutor.interview_report import InterviewStore
    from tutor.settings import get_settings

    settings = get_settings()
    store = InterviewStore(settings.data_dir)
    if args.list:
        ids = store.ids()
        print("\n".join(ids) if ids else "还没有保存的面试。")
        return 0
    from tutor.grade_cli import load_grader

    loaded = load_grader(settings)
    if loaded is None:
        return 2
    corpus, grader = loaded
    llm = grader.llm
    progress, profile, warning = (None, None, None)
    if not args.no_record:
        from tutor.progress import open_for_recording

        progress, profile, warning = open_for_recording(settings, args.profile)
        if warning:
            print(warning, file=sys.stderr)
    if args.resume:
        ids = store.ids()
        session_id = ids[0] if args.resume == "latest" and ids else args.resume
        try:
            session = Interview.from_json(store.load_text(session_id), corpus, grader, llm)
        except FileNotFoundError as exc:
            print(f"{exc}。可用 `tutor interview --list` 查看已保存的面试。", file=sys.stderr)
            return 2
        except ValueError as exc:  # a damaged session file: say which, delete nothing
            print(f"{exc}：{store.dir / (session_id + '.json')}（文件保留未删除）。", file=sys.stderr)
            return 2
    else:
        topics = [t.strip() for raw in args.topics for t in raw.replace("，", ",").split(",") if t.strip()]
        follow_ups = settings.interview_follow_ups if args.follow_ups is None else args.follow_ups
        config = InterviewConfig(topics=topics, level=args.level, n_questions=max(1, args.questions),
                                 max_follow_ups=max(0, follow_ups), seed=args.seed)
        priority = None
        if progress is not None:
            from tutor.progress import interview_priority

            priority = interview_priority(progress, profile)
        # profile None (--no-record): the session counts as the configured profile's
        session = Interview.start_new(corpus, grader, config, llm=llm, priority=priority, profile=profile)
    print(f"【{grader.describe()}】 面试 id：{session.state.id}")
    from tutor.speech_cli import SpeechError, VoiceIO  # voice answers / questions read aloud (tutor/speech.py)

    try:
        voice = VoiceIO.open(settings, corpus, listen=args.voice, keep_audio=args.keep_audio)
    except SpeechError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if voice is not None and voice.intro():
        print(voice.intro())

    reply = session.opening()
    while True:
        for m in reply.messages:
            print(f"\n面试官：{m}")
        store.save(session)
        progress = _record(progress, profile, session, "spoken" if args.voice else "typed")
        if reply.finished:
            break
        print(f"\n面试官：{reply.prompt}")
        if voice is not None:
            voice.speak(reply.prompt)
        try:
            text = (voice.read_answer(corpus.get(session.current.entry_id)) if voice is not None and voice.listening
                    else _read_answer())
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
