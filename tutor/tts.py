"""Text-to-speech for the interviewer's questions, off by default (`TUTOR_TTS_BACKEND`).

    tts = get_synthesizer(settings)            # None when TUTOR_TTS_BACKEND=none (the default)
    audio = tts.synthesize("第 1/3 题：为什么注意力要除以根号 d？")   # -> SpeechAudio (bytes, format, duration)
    audio.save(path)

Backends:
- `espeak`: offline espeak-ng with the voice `cmn-latn-pinyin` (Mandarin; the plain `cmn` voice reads tone
  digits in English, so it is refused). Robotic but instant and free; needs the `espeak-ng` executable
  (checked with `shutil.which`, with a Chinese message saying how to install it).
- `openai`: any OpenAI-compatible `/v1/audio/speech` endpoint (OpenAI `tts-1`/`gpt-4o-mini-tts`, or a local
  server such as speaches/Kokoro or LocalAI); endpoint and key default to the LLM's. We ask for wav and
  validate whatever comes back by decoding it (`tutor.audio.load_audio`), so a server that ignores
  `response_format` and sends mp3 still works, and an empty or broken reply is a clear error.

`speakable()` turns a question into something a voice can read: markdown and LaTeX markup are dropped and
"第 1/3 题" becomes "第 1 题" (espeak reads "/" as the English word "slash").

Trade-off: synthesis is per question and blocking (espeak ~0.1 s, a server ~1 s); nothing is cached,
since questions are not repeated within a session. Playing the audio is the caller's business (the terminal
uses a player command, a browser an audio element).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from tutor.audio import SpeechError, load_audio
from tutor.settings import Settings
from tutor.speech_http import api_error, client, endpoint

SPEECH_PATH = "/v1/audio/speech"
ESPEAK_VOICE = "cmn-latn-pinyin"
DEFAULT_OPENAI_MODEL = "tts-1"
DEFAULT_OPENAI_VOICE = "alloy"
BACKENDS = ("none", "openai", "espeak")
MAX_CHARS = 1000  # a question is far shorter; this bounds a runaway input


@dataclass
class SpeechAudio:
    data: bytes
    format: str  # wav | mp3 | ...
    duration: float  # seconds

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.data)
        return path


def speakable(text: str) -> str:
    """Question text without markup: no $…$, \\commands, backticks, ** or #; "1/3" -> "1"."""
    text = re.sub(r"(\d+)\s*/\s*\d+(?=\s*题)", r"\1", text)
    text = re.sub(r"\\([A-Za-z]+)", r" \1 ", text)  # \sqrt -> sqrt
    text = re.sub(r"[$`*#_^{}\\|>]+", " ", text)
    return " ".join(text.split())[:MAX_CHARS]


class EspeakSynthesizer:
    """Offline espeak-ng, Mandarin read from Chinese characters (voice cmn-latn-pinyin)."""

    name = "espeak"

    def __init__(self, settings: Settings):
        self.voice = settings.tts_voice or ESPEAK_VOICE
        if self.voice == "cmn":
            raise SpeechError("config", "espeak-ng 的 `cmn` 音色会用英语读拼音的声调数字，请用 TUTOR_TTS_VOICE=cmn-latn-pinyin。")
        self.exe = shutil.which("espeak-ng")
        if not self.exe:
            raise SpeechError("missing_tool", "TUTOR_TTS_BACKEND=espeak 需要 espeak-ng，但本机没有找到：请安装"
                                              "（Debian/Ubuntu：apt install espeak-ng；macOS：brew install espeak-ng；"
                                              "Windows：从 github.com/espeak-ng/espeak-ng 的 Releases 安装），"
                                              "或改用 TUTOR_TTS_BACKEND=openai，或设为 none 关闭朗读。")

    def describe(self) -> str:
        return f"语音合成：espeak-ng（{self.voice}，离线）"

    def synthesize(self, text: str) -> SpeechAudio:
        text = speakable(text)
        if not text:
            raise SpeechError("empty", "没有可朗读的文字。")
        fd, tmp = tempfile.mkstemp(prefix="tutor-tts-", suffix=".wav")
        os.close(fd)
        try:
            # Text on stdin, never on the command line: a question starting with "-" is not an option.
            proc = subprocess.run([self.exe, "-v", self.voice, "-w", tmp], input=text.encode("utf-8"),
                                  capture_output=True, timeout=60)
            data = Path(tmp).read_bytes()
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SpeechError("server", f"espeak-ng 运行失败（{type(exc).__name__}）。") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        if proc.returncode != 0 or len(data) <= 44:
            err = proc.stderr.decode("utf-8", "replace").strip()[:200]
            raise SpeechError("server", f"espeak-ng 没有生成音频（音色 {self.voice}）：{err or '无输出'}。"
                                        "请用 espeak-ng --voices=cmn 检查是否装有中文音色。")
        with wave.open(io.BytesIO(data)) as w:
            duration = w.getnframes() / float(w.getframerate())
        return SpeechAudio(data, "wav", duration)


class OpenAISynthesizer:
    """Any OpenAI-compatible `/v1/audio/speech` endpoint."""

    name = "openai"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.endpoint = endpoint(settings, "tts", DEFAULT_OPENAI_MODEL)
        self.voice = settings.tts_voice or DEFAULT_OPENAI_VOICE
        self._client = client(self.endpoint, settings)

    def describe(self) -> str:
        return f"语音合成：{self.endpoint.describe()}（音色 {self.voice}）"

    def synthesize(self, text: str) -> SpeechAudio:
        text = speakable(text)
        if not text:
            raise SpeechError("empty", "没有可朗读的文字。")
        try:
            resp = self._client.audio.speech.create(model=self.endpoint.model, voice=self.voice, input=text,
                                                    response_format="wav")
            data = resp.content
        except Exception as exc:  # noqa: BLE001 - every client failure becomes one SpeechError
            raise api_error(exc, self.endpoint, SPEECH_PATH, self.settings.llm_timeout) from None
        fmt = _sniff(data)
        try:
            clip = load_audio(data, max_seconds=600, name=f"合成的语音.{fmt}")
        except SpeechError as exc:
            raise SpeechError("bad_audio", f"语音合成服务返回的不是可用的音频（{self.endpoint.describe()}）：{exc}") from None
        return SpeechAudio(data, fmt, clip.duration)


def _sniff(data: bytes) -> str:
    """The container of an audio reply, from its first bytes (servers may ignore `response_format`)."""
    if data[:4] == b"RIFF":
        return "wav"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    return "audio"


def get_synthesizer(settings: Settings):
    """The configured TTS backend, or None when it is off. SpeechError when misconfigured."""
    choice = (settings.tts_backend or "none").strip().lower()
    if choice in ("none", "off", ""):
        return None
    if choice in ("espeak", "espeak-ng"):
        return EspeakSynthesizer(settings)
    if choice == "openai":
        return OpenAISynthesizer(settings)
    raise SpeechError("config", f"未知的语音合成后端 `{settings.tts_backend}`：可选 {' | '.join(BACKENDS)}（TUTOR_TTS_BACKEND）。")
