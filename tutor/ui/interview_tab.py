"""The 模拟面试 tab: configure, answer by typing or speaking, see every grade, download the report.

Design. The interview logic is `tutor.interview.Interview`; this tab only feeds it answers and shows
what it says. Each browser session keeps an `InterviewRun` in a `gr.State`: the `Interview`, the
transcript shown, and the report file once written. After every event the session is saved as JSON
under `data_dir/interviews` (the same store as `tutor interview`, so `--resume` works on it), with the
profile that took it: 未完成的面试 lists that profile's unfinished sessions (refreshed when the page
loads), and 继续这场面试 rebuilds the transcript from the saved turns and re-asks the open question,
so closing the tab or restarting the app loses nothing.

Answering: typed text, or a recording/upload that is transcribed into the *editable* answer box
(`tutor.ui.voice`), so the candidate checks the transcript before it is graded. Each graded answer
shows a grade card: score, the key-point checklist (covered / partial / missed with the evidence
quoted from the answer) and what comes next (a follow-up or the next question). The command buttons
send the interviewer's commands (跳过, 不知道, 看参考答案, 再说一遍). The report renders when the
interview ends (or "结束面试" ends it early) and downloads as markdown.

Every graded answer is recorded in the progress store (`tutor.progress.record_interview`, idempotent,
under the request's profile: the login name with TUTOR_AUTH), and a new interview asks the
profile's due and weak entries first. A failing store adds a note; it never stops the interview.

Trade-off: the grade card shows the latest answer only; the transcript keeps the interviewer's short
summaries of earlier ones and the report lists all of them, so the screen does not grow without end.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import gradio as gr

from tutor.interview import Interview, InterviewConfig, Reply
from tutor.interview_report import InterviewStore
from tutor.ui.render import LATEX, grade_markdown
from tutor.ui.services import Services

ANY_LEVEL = "不限"
NO_INTERVIEW = "还没有开始面试：请先设置主题和题数，点击「开始面试」，或在题库中点「练这道题」。"
GRADE_HINT = "提交回答后，这里显示得分和要点清单。"
REPORT_HINT = "面试结束后在这里生成报告。"
CORPUS_LINK = re.compile(r"\[([^\]]+)\]\([^)\s]+\.md#[^)\s]+\)")
COMMANDS = {"skip": "跳过", "dont_know": "不知道", "reveal": "看参考答案", "repeat": "再说一遍"}


@dataclass
class InterviewRun:
    session: Interview
    transcript: list[dict] = field(default_factory=list)
    report_path: str | None = None
    profile: str = "default"  # whose progress the answers are recorded under
    spoken: bool = False  # the answer box was filled by speech-to-text since the last answer


@dataclass
class InterviewTab:
    outputs: list  # the components every interview event updates, in `view` order
    follow_ups: gr.Slider
    voice_on: gr.Checkbox
    state: gr.State
    practice: Callable  # (entry_id, follow_ups, voice_on, run, request) -> outputs: a one-question practice
    resume_pick: gr.Dropdown  # the unfinished interviews; `resumable` refreshes it (on page load)
    resumable: Callable


def report_dir() -> Path:
    """Downloads are served from the temp dir (Gradio serves files from there, not from data_dir)."""
    path = Path(tempfile.gettempdir()) / "llm-interview-tutor-reports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def topic_choices(svc: Services) -> list[str]:
    counts: dict[str, int] = {}
    for e in svc.corpus.entries:
        for t in e.tags:
            counts[t] = counts.get(t, 0) + 1
    tags = [t for t in svc.tags if counts[t] >= 2]
    return list(dict.fromkeys(svc.sections + svc.topics + tags))


def build_interview_tab(svc: Services) -> InterviewTab:
    store = InterviewStore(svc.settings.data_dir)
    with gr.Tab("模拟面试", id="interview"):
        gr.Markdown(f"评分方式：**{svc.grader_label()}**。可以打字作答，也可以录音或上传音频，"
                    "转写结果会先放进文本框，确认或修改后再提交评分。", elem_id="interview-mode")
        state = gr.State(None)
        with gr.Accordion("面试设置", open=True):
            with gr.Row():
                topics = gr.Dropdown(topic_choices(svc), value=[], multiselect=True, allow_custom_value=True,
                                     label="主题（大类、主题或标签，可多选；留空为全部）", scale=3,
                                     elem_id="iv-topics")
                level = gr.Radio([ANY_LEVEL, "1", "2", "3"], value=ANY_LEVEL, label="难度", scale=2, elem_id="iv-level")
            with gr.Row():
                n_questions = gr.Slider(1, 10, value=3, step=1, label="题数", elem_id="iv-n")
                follow_ups = gr.Slider(0, 3, value=min(svc.settings.interview_follow_ups, 3), step=1,
                                       label="每题最多追问", elem_id="iv-follow-ups")
                voice_on = gr.Checkbox(False, label="语音播报题目", elem_id="iv-voice")
            with gr.Row():
                start = gr.Button("开始面试", variant="primary", elem_id="iv-start")
                finish = gr.Button("结束面试并生成报告", elem_id="iv-finish")
            with gr.Row(equal_height=True):
                # choices differ per login and change as interviews end: refreshed on load and on focus,
                # so the server-side list is not authoritative; `resume_interview` checks the id itself
                resume_pick = gr.Dropdown([], value=None, label="未完成的面试（关掉页面或重启后可以接着答）", scale=3,
                                          allow_custom_value=True, elem_id="iv-resume-pick")
                resume = gr.Button("继续这场面试", scale=1, elem_id="iv-resume")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                question = gr.Markdown(NO_INTERVIEW, latex_delimiters=LATEX, elem_id="iv-question",
                                       elem_classes=["question-card"])
                question_audio = gr.Audio(label="面试官语音", autoplay=True, interactive=False, visible=False,
                                          elem_id="iv-question-audio")
                audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label="语音作答（录音或上传音频）",
                                 elem_id="iv-audio")
                answer = gr.Textbox(label="你的回答（语音转写结果会出现在这里，可修改后再提交）", lines=5,
                                    elem_id="iv-answer", placeholder="在这里输入回答")
                status = gr.Markdown("", elem_id="iv-status")
                with gr.Row():
                    submit = gr.Button("提交回答", variant="primary", elem_id="iv-submit")
                    buttons = {name: gr.Button(label, size="sm", elem_id=f"iv-{name.replace('_', '-')}")
                               for name, label in COMMANDS.items()}
                transcript = gr.Chatbot(label="面试记录", height=380, latex_delimiters=LATEX, feedback_options=None,
                                        buttons=["copy_all"], elem_id="iv-transcript")
            with gr.Column(scale=2):
                grade = gr.Markdown(GRADE_HINT, latex_delimiters=LATEX, elem_id="iv-grade",
                                    elem_classes=["grade-card"])
        with gr.Accordion("面试报告", open=True):
            report = gr.Markdown(REPORT_HINT, latex_delimiters=LATEX, elem_id="iv-report")
            report_file = gr.File(label="下载报告（Markdown）", interactive=False, elem_id="iv-report-file")

    outputs = [transcript, question, grade, report, report_file, answer, status, question_audio, state]

    def view(run: InterviewRun, reply, speak: bool, note: str = "", fresh: bool = False):
        """The outputs after `reply`; `fresh` (a new interview) clears the previous grade and report."""
        s = run.session
        for m in reply.messages:
            if m and m != reply.prompt:
                run.transcript.append({"role": "assistant", "content": m})
        if reply.prompt:
            run.transcript.append({"role": "assistant", "content": f"**{reply.prompt}**"})
        grade_md = grade_markdown(reply.grade, reply.prompt) if reply.grade else (GRADE_HINT if fresh else gr.update())
        report_md, file = (REPORT_HINT, None) if fresh else (gr.update(), gr.update())
        if s.state.finished:
            text = s.report()
            path = report_dir() / f"interview-report-{s.state.id}.md"
            path.write_text(text, encoding="utf-8")
            run.report_path, file = str(path), str(path)
            report_md = CORPUS_LINK.sub(r"\1", text)  # `path.md#id` links lead nowhere inside the app
        store.save(s)
        notes = [note] if note else []
        notes += record(run)
        audio_out = gr.update(visible=False, value=None)
        if speak and reply.prompt:
            path, message = svc.voice.speak(reply.prompt)
            audio_out = gr.update(visible=True, value=path) if path else audio_out
            if message:
                notes.append(message)
        prompt = reply.prompt or ("面试已结束，报告见下方。" if s.state.finished else NO_INTERVIEW)
        return (run.transcript, f"### {prompt}", grade_md, report_md, file, "", "\n\n".join(notes), audio_out, run)

    def record(run: InterviewRun) -> list[str]:
        """Record the graded turns in the progress store; a failing store never fails the interview."""
        progress, reason = svc.progress_store()
        if progress is None:
            return []  # the 进度 tab explains why; no need to repeat it after every answer
        try:
            from tutor.progress import record_interview

            record_interview(progress, run.profile, run.session, input_mode="spoken" if run.spoken else "typed")
        except Exception as exc:  # noqa: BLE001 - ProgressStoreError, disk full, ...: keep interviewing
            return [f"本次作答未记录到学习进度：{exc}"]
        return []

    def blank(message: str, run):
        return (gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), message,
                gr.update(), run)

    def start_interview(topic_list, lvl, n, fu, speak, run, request: gr.Request):
        config = InterviewConfig(topics=list(topic_list or []), level=None if lvl in (None, "", ANY_LEVEL) else int(lvl),
                                 n_questions=int(n), max_follow_ups=int(fu))
        profile = svc.profile(getattr(request, "username", None))
        run = InterviewRun(svc.new_interview(config, profile=profile), profile=profile)
        return view(run, run.session.opening(), speak, fresh=True)

    def practice(entry_id, fu, speak, run, request: gr.Request):
        entry = svc.entry(entry_id)
        if entry is None:
            return blank("请先在题库中选择一道题。", run)
        config = InterviewConfig(n_questions=1, max_follow_ups=int(fu))
        profile = svc.profile(getattr(request, "username", None))
        run = InterviewRun(svc.new_interview(config, only=entry.id, profile=profile), profile=profile)
        return view(run, run.session.opening(), speak, f"单题练习：{entry.question}", fresh=True)

    def submit_answer(text, speak, run):
        if run is None:
            return blank(NO_INTERVIEW, run)
        if run.session.state.finished:
            return blank("这场面试已经结束：可以查看/下载报告，或重新开始。", run)
        text = (text or "").strip()
        if text:
            run.transcript.append({"role": "user", "content": text})
        out = view(run, run.session.answer(text), speak)
        run.spoken = False
        return out

    def command(label: str):
        return lambda speak, run: submit_answer(label, speak, run)

    def finish_interview(speak, run):
        if run is None:
            return blank(NO_INTERVIEW, run)
        s = run.session
        if not s.state.finished:
            s.state.finished = True  # ends early: the report covers the questions answered so far
            run.transcript.append({"role": "assistant", "content": "面试提前结束，下面是本次面试的报告。"})
        return view(run, Reply(event="finished", finished=True), speak)

    def resumable(request: gr.Request):
        """The request's unfinished interviews, most recent first (refreshed on page load and on focus)."""
        profile = svc.profile(getattr(request, "username", None))
        choices = store.resumable(profile, default_profile=svc.profile(None))
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def resume_interview(session_id, speak, run, request: gr.Request):
        if not session_id:
            return blank("没有可以继续的面试：先开始一场新的。", run)
        profile = svc.profile(getattr(request, "username", None))
        text = store.resumable_text(session_id, profile, default_profile=svc.profile(None))
        if text is None:
            return blank(f"找不到可以继续的面试 `{session_id}`：它可能已经结束，或属于其他用户。", run)
        try:
            session = Interview.from_json(text, svc.corpus, svc.grader, svc.grader.llm)
        except ValueError as exc:  # a damaged file: say which, delete nothing
            return blank(f"{exc}。文件保留未删除：{store.dir / (session_id + '.json')}；可以开始一场新的面试。", run)
        run = InterviewRun(session, profile=profile)
        run.transcript = [{"role": role, "content": text} for role, text in session.history()]
        reply = session.opening()
        graded = [t.grade for q in session.state.questions for t in q.turns if t.grade is not None]
        reply.grade = graded[-1] if graded else None  # the card shows the last grade, as before the restart
        return view(run, reply, speak, fresh=True)

    def transcribe(path, run):
        turn = run.session.current if run is not None else None
        text, message = svc.voice.transcribe(path, svc.entry(turn.entry_id) if turn else None)
        if text is None:
            return gr.update(), message, run
        if run is not None:
            run.spoken = True
        return text, message, run

    start.click(start_interview, [topics, level, n_questions, follow_ups, voice_on, state], outputs,
                api_name="interview_start")
    submit.click(submit_answer, [answer, voice_on, state], outputs, api_name="interview_answer")
    for name, label in COMMANDS.items():
        buttons[name].click(command(label), [voice_on, state], outputs, api_name=f"interview_{name}")
    finish.click(finish_interview, [voice_on, state], outputs, api_name="interview_finish")
    resume_pick.focus(resumable, None, [resume_pick], api_name="interview_resumable", queue=False)
    resume.click(resume_interview, [resume_pick, voice_on, state], outputs, api_name="interview_resume")
    audio.upload(transcribe, [audio, state], [answer, status, state], api_name="interview_transcribe",
                 concurrency_limit=2, concurrency_id="speech")
    audio.stop_recording(transcribe, [audio, state], [answer, status, state], api_name="interview_transcribe_recording",
                         concurrency_limit=2, concurrency_id="speech")
    return InterviewTab(outputs, follow_ups, voice_on, state, practice, resume_pick, resumable)
