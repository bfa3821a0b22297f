"""Audio input for spoken answers: decode what users and browsers produce, check it, normalise it.

    clip = load_audio("answer.m4a", max_seconds=300)   # -> AudioClip (16 kHz mono int16), or SpeechError
    clip.wav_bytes()        # a 16 kHz mono 16-bit wav, what every speech-to-text backend accepts
    clip.float32()          # samples in [-1, 1], what faster-whisper takes directly

Accepted: anything ffmpeg decodes, in practice wav, webm/ogg (opus/vorbis, what browsers' MediaRecorder
writes, often without a duration in the header), mp3 and m4a/mp4 (AAC, what phones record). Rejected,
each with a Chinese message and a `SpeechError.kind`: an empty file (`empty`), undecodable bytes or a file
without an audio track (`corrupt`), under 0.3 s of audio (`too_short`), no speech energy (`silent`), and
audio longer than the limit (`too_long`, `TUTOR_STT_MAX_SECONDS`).

Decoder choice. The `ffmpeg` executable in a subprocess is the default because it is the robust option:
a corrupt or hostile file can crash or hang only the child (we kill it after a timeout), every container
and codec browsers produce is covered, `-t` caps the work for a three-hour file at "limit + 1 s" of
decoding, and the base install needs no Python audio package. PyAV (`av`, installed with the `whisper`
extra) is the fallback when ffmpeg is not on PATH (typical on Windows); it decodes in-process with the same
libraries. Output is raw s16le on a pipe and the wav header is written by us: ffmpeg cannot seek back into
a pipe to fix up a wav header, and an in-memory clip needs no temporary output file. Input bytes (an
upload) go through one temporary file, deleted in `finally`: m4a puts its index at the end, so it cannot
be decoded from a pipe. Nothing is kept unless the caller saves the clip (`AudioClip.save`).

Silence is judged per 30 ms frame, not on the whole file: a recording is "silent" when fewer than 0.2 s of
frames reach -45 dBFS RMS. One click (a high peak) or a long pause before the answer (a low overall
RMS) do not fool it. Trade-off: a whispered answer into a bad microphone can be rejected; the message says
to speak louder or check the microphone, and the threshold is a module constant.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
FRAME_SECONDS = 0.03
SPEECH_FRAME_DBFS = -45.0  # a frame louder than this (RMS) counts as sound
MIN_SPEECH_SECONDS = 0.2  # this much sound at least, or the recording is "silent"
MIN_SECONDS = 0.3
AUDIO_SUFFIXES = (".wav", ".webm", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".mp4", ".aac", ".flac", ".weba")


class SpeechError(RuntimeError):
    """A speech input/output failure with a user-facing Chinese message (never a key)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind  # empty | corrupt | too_short | silent | too_long | decoder | not_found | backend kinds
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass
class AudioClip:
    """Decoded audio: 16 kHz mono int16 samples and where they came from."""

    samples: np.ndarray
    source: str = ""
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def float32(self) -> np.ndarray:
        return self.samples.astype(np.float32) / 32768.0

    def wav_bytes(self) -> bytes:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.sample_rate)
            w.writeframes(self.samples.astype("<i2").tobytes())
        return buf.getvalue()

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.wav_bytes())
        return path

    def speech_seconds(self) -> float:
        """Seconds of 30 ms frames whose RMS reaches SPEECH_FRAME_DBFS."""
        n = int(self.sample_rate * FRAME_SECONDS)
        usable = len(self.samples) // n * n
        if usable == 0:
            return 0.0
        frames = self.samples[:usable].astype(np.float64).reshape(-1, n) / 32768.0
        rms = np.sqrt((frames ** 2).mean(axis=1))
        threshold = 10 ** (SPEECH_FRAME_DBFS / 20)
        return float((rms >= threshold).sum() * FRAME_SECONDS)

    def peak_dbfs(self) -> float:
        peak = int(np.abs(self.samples.astype(np.int32)).max()) if len(self.samples) else 0
        return 20 * np.log10(peak / 32768.0) if peak else float("-inf")


def available_decoder() -> str | None:
    """"ffmpeg" when the executable is on PATH, else "av" when PyAV imports, else None."""
    if shutil.which("ffmpeg"):
        return "ffmpeg"
    try:
        import av  # noqa: F401
    except ImportError:
        return None
    return "av"


def load_audio(source: str | Path | bytes, *, max_seconds: float = 300.0, decoder: str = "auto",
               name: str = "") -> AudioClip:
    """Decode `source` (a path or the file's bytes) to 16 kHz mono and check it; SpeechError if unusable."""
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise SpeechError("empty", "音频是空的（0 字节）：请重新录音。")
        suffix = Path(name).suffix if name else ""
        fd, tmp = tempfile.mkstemp(prefix="tutor-audio-", suffix=suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(source)
            return load_audio(tmp, max_seconds=max_seconds, decoder=decoder, name=name or "上传的音频")
        finally:
            Path(tmp).unlink(missing_ok=True)
    path = Path(source)
    shown = name or path.name
    if not path.is_file():
        raise SpeechError("not_found", f"找不到音频文件：{path}")
    if path.stat().st_size == 0:
        raise SpeechError("empty", f"音频文件是空的（0 字节）：{shown}。请重新录音。")
    choice = available_decoder() if decoder == "auto" else decoder
    if choice is None:
        raise SpeechError("decoder", "无法解码音频：需要 ffmpeg（推荐：apt install ffmpeg / brew install ffmpeg / "
                                     "winget install ffmpeg），或安装 PyAV：pip install 'llm-interview-tutor[whisper]'。")
    # Decode a little past the limit: enough to know it is too long, never the whole of a huge file.
    cap = max_seconds + 1.0
    samples = _decode_ffmpeg(path, cap, shown) if choice == "ffmpeg" else _decode_av(path, cap, shown)
    clip = AudioClip(samples, source=shown)
    check_clip(clip, max_seconds)
    return clip


def check_clip(clip: AudioClip, max_seconds: float) -> None:
    """Raise SpeechError when the clip is too short, too long or has no speech."""
    if clip.duration > max_seconds:
        raise SpeechError("too_long", f"录音超过 {max_seconds:g} 秒的上限（TUTOR_STT_MAX_SECONDS）：{clip.source}。"
                                      "请剪短，或把回答分成几段。")
    if clip.duration < MIN_SECONDS:
        raise SpeechError("too_short", f"录音太短（{clip.duration:.2f} 秒，至少 {MIN_SECONDS:g} 秒）：{clip.source}。"
                                       "请录下完整的回答。")
    if clip.speech_seconds() < MIN_SPEECH_SECONDS:
        peak = clip.peak_dbfs()
        level = "完全无声" if peak == float("-inf") else f"最大音量 {peak:.0f} dBFS"
        raise SpeechError("silent", f"录音里没有检测到说话声（{clip.duration:.1f} 秒，{level}）：{clip.source}。"
                                    "请检查麦克风是否静音、是否选对了输入设备，靠近麦克风再录一次。")


def _corrupt(shown: str, detail: str = "") -> SpeechError:
    detail = " ".join(detail.split())[-200:]
    return SpeechError("corrupt", f"无法解码音频：{shown}。文件可能已损坏、不完整，或不是音频文件"
                                  f"（支持 wav、webm、ogg、mp3、m4a）。" + (f"（解码器信息：{detail}）" if detail else ""))


def _decode_ffmpeg(path: Path, cap_seconds: float, shown: str) -> np.ndarray:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:a:0", "-vn",
           "-ac", "1", "-ar", str(SAMPLE_RATE), "-t", f"{cap_seconds:.3f}", "-f", "s16le", "-acodec", "pcm_s16le",
           "pipe:1"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=30 + cap_seconds / 5)
    except subprocess.TimeoutExpired:
        raise SpeechError("corrupt", f"解码音频超时：{shown}。文件可能已损坏。") from None
    except OSError as exc:
        raise SpeechError("decoder", f"无法运行 ffmpeg（{exc.strerror or exc}）：请确认已安装 ffmpeg。") from None
    err = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0 or not proc.stdout:
        if "matches no streams" in err:
            raise SpeechError("corrupt", f"文件里没有音轨：{shown}。请上传录音文件（wav、webm、ogg、mp3、m4a）。")
        raise _corrupt(shown, err.replace(str(path), shown))
    return np.frombuffer(proc.stdout[: len(proc.stdout) // 2 * 2], dtype="<i2").copy()


def _decode_av(path: Path, cap_seconds: float, shown: str) -> np.ndarray:
    import av  # lazy: only when ffmpeg is missing (or asked for); comes with the `whisper` extra

    limit = int(cap_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            streams = container.streams.audio
            if not streams:
                raise SpeechError("corrupt", f"文件里没有音轨：{shown}。请上传录音文件（wav、webm、ogg、mp3、m4a）。")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in container.decode(streams[0]):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().reshape(-1)
                    chunks.append(arr)
                    total += len(arr)
                if total >= limit:
                    break
            else:
                for out in resampler.resample(None):  # flush
                    chunks.append(out.to_ndarray().reshape(-1))
    except SpeechError:
        raise
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise _corrupt(shown, str(exc).replace(str(path), shown)) from None
    if not chunks:
        raise _corrupt(shown)
    return np.concatenate(chunks)[:limit].astype(np.int16)
