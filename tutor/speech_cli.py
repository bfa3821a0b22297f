"""Speech in the terminal: `tutor transcribe`, `tutor speak`, and the voice I/O of `tutor interview --voice`.

    tutor transcribe answer.m4a [--entry kv-cache] [--keep-audio]   # check the STT setup on one file
    tutor speak "为什么注意力要除以根号 d？" [-o question.wav]       # check the TTS setup (plays it without -o)
    tutor interview --voice [--keep-audio]                          # answer each question with an audio file

Design. The terminal records nothing: a candidate records on a phone or with any recorder and types (or
drags in) the file's path. `VoiceIO.read_answer` transcribes it, prints the transcript, and lets the user
press Enter to accept it, type a correction (graded instead), or give another file; a line that is not an
audio path is taken as a typed answer, so "跳过" and typing still work. Bad audio (empty, silent, corrupt,
too long) prints the Chinese message and asks again; nothing is graded until a text is accepted.

Questions are read aloud when TUTOR_TTS_BACKEND is set (off by default): each question is synthesised to a
temporary wav, played with TUTOR_TTS_PLAYER or the first player found (ffplay, afplay, aplay, paplay,
sox's play) and deleted. Without a player, or when playing fails, it says so once and goes on silently:
reading aloud is a convenience, the interview must not stop for it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tutor.audio import AUDIO_SUFFIXES, SpeechError
from tutor.settings import Settings

PLAYERS = (["ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet"], ["afplay"], ["aplay", "-q"], ["paplay"],
           ["play", "-q"])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    command = parser.prog.split()[-1]
    parser.set_defaults(command=command)
    if command == "transcribe":
        parser.add_argument("audio", help="录音文件（wav、webm、ogg、mp3、m4a）")
        parser.add_argument("--entry", default=None, help="题目条目 id：优先提示该题的术语")
        parser.add_argument("--keep-audio", action="store_true", help="把转换后的 16 kHz wav 保存到数据目录")
    else:
        parser.add_argument("text", nargs="+", help="要朗读的文字")
        parser.add_argument("-o", "--output", default=None, help="保存为音频文件（不给则直接播放）")


def find_player(settings: Settings) -> list[str] | None:
    if settings.tts_player.strip():
        return shlex.split(settings.tts_player)
    for cmd in PLAYERS:
        if shutil.which(cmd[0]):
            return list(cmd)
    return None


def as_audio_path(line: str) -> Path | None:
    """The path in `line` if it names an audio file (quotes, file:// and "\\ " from drag-and-drop removed)."""
    raw = line.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    raw = raw.removeprefix("file://").replace("\\ ", " ")
    if not raw or "\n" in raw:
        return None
    path = Path(raw).expanduser()
    if path.suffix.lower() in AUDIO_SUFFIXES or (path.is_file() and path.suffix):
        return path
    return None


class VoiceIO:
    """The voice side of `tutor interview`: answers from audio files, questions read aloud."""

    def __init__(self, settings: Settings, corpus, *, listen: bool, keep_audio: bool = False, out=None):
        from tutor.speech import SpeechToText
        from tutor.tts import get_synthesizer

        self.settings = settings
        self.out = out or sys.stdout
        self.keep_audio = keep_audio
        self.stt = SpeechToText(settings, corpus) if listen else None
        self.tts = None
        self.player = None
        try:
            self.tts = get_synthesizer(settings)
        except SpeechError as exc:
            self._say(f"（题目不朗读：{exc}）")
        if self.tts is not None:
            self.player = find_player(settings)
            if self.player is None:
                self._say("（题目不朗读：没有找到音频播放器 ffplay/afplay/aplay/paplay/play，可设置 TUTOR_TTS_PLAYER）")
                self.tts = None

    @classmethod
    def open(cls, settings: Settings, corpus, *, listen: bool, keep_audio: bool = False) -> "VoiceIO | None":
        """None when neither answering by voice nor reading aloud; SpeechError when --voice cannot work."""
        if not listen and (settings.tts_backend or "none").strip().lower() in ("none", "off", ""):
            return None
        return cls(settings, corpus, listen=listen, keep_audio=keep_audio)

    @property
    def listening(self) -> bool:
        return self.stt is not None

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def intro(self) -> str:
        parts = []
        if self.stt is not None:
            parts.append(f"语音作答（{self.stt.describe()}）：终端本身不录音。请用手机或录音软件录下回答，在提示处输入录音文件的路径"
                         f"（wav、webm、ogg、mp3、m4a，最长 {self.settings.stt_max_seconds:g} 秒）；转写结果先给你确认或修改，再评分。"
                         "也可以直接打字作答。" + ("录音会保存到数据目录。" if self.keep_audio else "录音不会被保存。"))
        if self.tts is not None:
            parts.append(f"题目朗读：{self.tts.describe()}")
        return "\n".join(parts)

    def speak(self, text: str | None) -> None:
        if self.tts is None or not text:
            return
        fd, tmp = tempfile.mkstemp(prefix="tutor-question-", suffix=".wav")
        os.close(fd)
        try:
            self.tts.synthesize(text).save(tmp)
            proc = subprocess.run([*self.player, tmp], timeout=300, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                raise SpeechError("player", f"播放器 {self.player[0]} 退出码 {proc.returncode}")
        except (SpeechError, OSError, subprocess.TimeoutExpired) as exc:
            self._say(f"（朗读失败，后面的题目不再朗读：{exc}）")
            self.tts = None
        finally:
            Path(tmp).unlink(missing_ok=True)

    def read_answer(self, entry, read_line=input) -> str:
        """An answer: an audio file transcribed and confirmed/corrected, or typed text."""
        line = read_line("录音文件路径（或直接打字作答）> ")
        while True:
            path = as_audio_path(line)
            if path is None:
                return self._typed(line, read_line)
            try:
                if path.is_file():
                    self._say("正在转写……")
                result = self.stt.transcribe(path, entry=entry, keep_audio=self.keep_audio)
            except SpeechError as exc:
                self._say(str(exc))
                line = read_line("请换一个录音文件，或直接打字作答> ")
                continue
            self._say(f"转写结果（{result.duration:.1f} 秒录音，识别用时 {result.seconds:.1f} 秒）：\n{result.text}")
            if result.audio_path:
                self._say(f"录音已保存：{result.audio_path}")
            fix = read_line("回车采用；或输入修改后的回答；或输入另一个录音文件路径> ")
            if not fix.strip():
                return result.text
            if as_audio_path(fix) is None:
                return self._typed(fix, read_line)
            line = fix

    @staticmethod
    def _typed(line: str, read_line) -> str:
        parts = []
        while line.endswith("\\"):  # same continuation rule as typed answers
            parts.append(line[:-1])
            line = read_line("......> ")
        parts.append(line)
        return "\n".join(parts)


def run(args: argparse.Namespace) -> int:
    from tutor.settings import get_settings

    settings = get_settings()
    try:
        return _transcribe(settings, args) if args.command == "transcribe" else _speak(settings, args)
    except SpeechError as exc:
        print(str(exc), file=sys.stderr)
        return 1


def _transcribe(settings: Settings, args: argparse.Namespace) -> int:
    from tutor.corpus import load_corpus
    from tutor.speech import SpeechToText

    corpus = load_corpus(settings.corpus_dir, strict=False)
    entry = corpus.get(args.entry) if args.entry else None
    if args.entry and entry is None:
        print(f"知识库里没有条目 {args.entry}", file=sys.stderr)
        return 2
    stt = SpeechToText(settings, corpus)
    result = stt.transcribe(args.audio, entry=entry, keep_audio=args.keep_audio)
    print(f"[{result.backend}，录音 {result.duration:.1f} 秒，用时 {result.seconds:.1f} 秒]", file=sys.stderr)
    if result.audio_path:
        print(f"录音已保存：{result.audio_path}", file=sys.stderr)
    print(result.text)
    return 0


def _speak(settings: Settings, args: argparse.Namespace) -> int:
    from tutor.tts import get_synthesizer

    tts = get_synthesizer(settings)
    if tts is None:
        print("语音合成未开启：请设置 TUTOR_TTS_BACKEND=espeak（离线）或 openai，见 docs/SPEECH.md。", file=sys.stderr)
        return 2
    text = " ".join(args.text)
    if args.output:
        audio = tts.synthesize(text)
        path = audio.save(args.output)
        print(f"已保存：{path}（{audio.format}，{audio.duration:.1f} 秒；{tts.describe()}）")
        return 0
    voice = VoiceIO(settings, None, listen=False)
    if voice.tts is None:
        return 1
    voice.speak(text)
    return 0 if voice.tts is not None else 1
