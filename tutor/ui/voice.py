"""The UI's bridge to speech (`tutor.speech`, `tutor.tts`): transcribe an answer, speak a question.

    voice = Voice(settings, corpus)
    text, message = voice.transcribe("/tmp/answer.webm", entry)   # text None on failure
    path, message = voice.speak("第 1/2 题：……")                   # path None when unavailable

Design. Both calls return a Chinese message instead of raising, because the UI shows it next to
the audio widget and carries on: the answer box stays editable, so the candidate can always type.
The backends come from settings (`TUTOR_STT_*`, `TUTOR_TTS_*`, see docs/SPEECH.md) and are built on
first use, once per process (the STT backend ranks the corpus's technical terms for its prompt,
which is worth doing once). A transcript is never graded directly: it goes into the editable answer
box and the candidate submits it. Synthesised questions are written to the temp directory, which
Gradio serves; the candidate's audio is not kept (`tutor.speech` reads the upload in place).

Trade-off: a misconfigured backend (unknown name, espeak-ng missing) is reported on every use
rather than at start-up, so the app still starts and everything else works.
"""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path

_UNSET = object()


class Voice:
    def __init__(self, settings, corpus=None):
        self.settings = settings
        self.corpus = corpus
        self._lock = threading.Lock()
        self._stt = _UNSET  # SpeechToText, or a SpeechError message
        self._tts = _UNSET  # a synthesizer, None (off), or a SpeechError message

    def _speech_to_text(self):
        if self._stt is _UNSET:
            with self._lock:
                if self._stt is _UNSET:
                    from tutor.speech import SpeechError, SpeechToText

                    try:
                        self._stt = SpeechToText(self.settings, self.corpus)
                    except SpeechError as exc:
                        self._stt = exc.message
        return self._stt

    def _synthesizer(self):
        if self._tts is _UNSET:
            with self._lock:
                if self._tts is _UNSET:
                    from tutor.tts import SpeechError, get_synthesizer

                    try:
                        self._tts = get_synthesizer(self.settings)
                    except SpeechError as exc:
                        self._tts = exc.message
        return self._tts

    def transcribe(self, path: str | None, entry=None) -> tuple[str | None, str]:
        """(transcript, message). `entry`: the question being answered (its terms prime the recogniser)."""
        if not path:
            return None, "没有收到音频：请录音或上传一个音频文件。"
        stt = self._speech_to_text()
        if isinstance(stt, str):
            return None, f"语音识别不可用：{stt} 你仍可以直接在文本框中输入回答。"
        from tutor.speech import SpeechError

        try:
            result = stt.transcribe(path, entry=entry, name=Path(path).name)
        except SpeechError as exc:
            return None, f"语音识别失败：{exc.message}"
        return result.text, (f"已转写 {result.duration:.1f} 秒的录音（{result.backend}）：请检查文本框里的内容，"
                             "可以修改后再点「提交回答」。")

    def speak(self, text: str | None) -> tuple[str | None, str]:
        """(path of a wav/mp3 to play, message) for the interviewer's line."""
        if not text:
            return None, ""
        tts = self._synthesizer()
        if tts is None:
            return None, "语音播报未开启：请设置 TUTOR_TTS_BACKEND=espeak（离线，需要 espeak-ng）或 openai（见 docs/SPEECH.md）。"
        if isinstance(tts, str):
            return None, f"语音播报不可用：{tts}"
        from tutor.tts import SpeechError

        try:
            audio = tts.synthesize(text)
        except SpeechError as exc:
            return None, f"语音播报失败：{exc.message}"
        out = Path(tempfile.gettempdir()) / "llm-interview-tutor-voice" / f"{uuid.uuid4().hex}.{audio.format}"
        return str(audio.save(out)), ""
