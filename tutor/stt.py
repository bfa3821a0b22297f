"""Speech-to-text backends behind one small interface, chosen by `TUTOR_STT_BACKEND`.

    stt = get_transcriber(settings)                   # None when TUTOR_STT_BACKEND=none (the default)
    text = stt.transcribe(clip, TermsPrompt("以下是…：LayerNorm、KV Cache", hotwords="KV Cache"))

Backends:
- `openai`: any OpenAI-compatible `/v1/audio/transcriptions` endpoint through the `openai` client: OpenAI
  (`whisper-1`, `gpt-4o-transcribe`) or a local server (speaches / faster-whisper-server, LocalAI,
  whisper.cpp's server with its OpenAI route). We send a 16 kHz mono wav (small, accepted everywhere),
  `language` (default zh) and the corpus's technical terms as `prompt`, which Whisper-style models imitate,
  so "KV Cache" stays "KV Cache" instead of "KV 开始". Endpoint and key default to the LLM's.
- `faster-whisper` (the optional `whisper` extra): a model name (`small`, `large-v3`, `Systran/...`) or a
  local directory in CTranslate2 format. Terms go in as `initial_prompt`, the current question's terms as
  `hotwords`. Nothing is ever downloaded: a name is resolved in the Hugging Face cache with
  `local_files_only=True` (no network request at all), and a missing model is a `SpeechError` that names
  the model and says how to fetch it on a connected machine (docs/SPEECH.md).

Trade-offs: the model is loaded when the transcriber is built, so a missing or broken model fails at
start-up and not after the candidate has answered; loading a large model costs seconds once. The
faster-whisper backend decodes nothing itself: it receives our already-checked 16 kHz float samples,
which is exactly the input `faster_whisper.decode_audio` would produce.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tutor.audio import AudioClip, SpeechError
from tutor.settings import Settings
from tutor.speech_http import api_error, client, endpoint

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
DEFAULT_OPENAI_MODEL = "whisper-1"
DEFAULT_LOCAL_MODEL = "small"
BACKENDS = ("none", "openai", "faster-whisper")
WHISPER_EXTRA = "pip install 'llm-interview-tutor[whisper]'（或 pip install faster-whisper）"


@dataclass
class TermsPrompt:
    """Context for the recogniser: a prompt the model imitates, and hotwords for the current question."""

    text: str = ""
    hotwords: str = ""


class Transcriber(Protocol):
    name: str

    def describe(self) -> str: ...

    def transcribe(self, clip: AudioClip, prompt: TermsPrompt | None = None) -> str: ...


def _non_empty(text: str, where: str, clip: AudioClip) -> str:
    text = " ".join((text or "").split())
    if not text:
        raise SpeechError("no_text", f"语音识别没有识别出文字（{where}，录音 {clip.duration:.1f} 秒）。"
                                     "请靠近麦克风、放慢语速再录一次，或直接打字作答。")
    return text


class OpenAITranscriber:
    """Any OpenAI-compatible `/v1/audio/transcriptions` endpoint."""

    name = "openai"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.endpoint = endpoint(settings, "stt", DEFAULT_OPENAI_MODEL)
        self.language = settings.stt_language or None
        self._client = client(self.endpoint, settings)

    def describe(self) -> str:
        return f"语音识别：{self.endpoint.describe()}"

    def transcribe(self, clip: AudioClip, prompt: TermsPrompt | None = None) -> str:
        kwargs = {}
        if self.language:
            kwargs["language"] = self.language
        if prompt and prompt.text:
            kwargs["prompt"] = prompt.text
        try:
            result = self._client.audio.transcriptions.create(
                model=self.endpoint.model, file=("answer.wav", clip.wav_bytes(), "audio/wav"),
                response_format="json", temperature=0.0, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every client failure becomes one SpeechError
            raise api_error(exc, self.endpoint, TRANSCRIPTIONS_PATH, self.settings.llm_timeout) from None
        text = result if isinstance(result, str) else getattr(result, "text", "")
        return _non_empty(text, self.endpoint.describe(), clip)


def _repo_id(name: str) -> str:
    try:
        from faster_whisper.utils import _MODELS  # name -> Hugging Face repo id
    except ImportError:
        _MODELS = {}
    return name if "/" in name else _MODELS.get(name, f"Systran/faster-whisper-{name}")


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1 or Path(name).is_absolute()


def missing_model_message(name: str) -> str:
    repo = _repo_id(name)
    return (f"faster-whisper 模型 `{name}`（{repo}）不在本机，本程序不会在运行时下载模型。"
            f"请在能联网的机器上下载：hf download {repo} --local-dir {repo.split('/')[-1]}"
            f"（或运行 python -c \"from faster_whisper import WhisperModel; WhisperModel('{name}')\" 存入 Hugging Face 缓存），"
            "把目录拷到本机后设置 TUTOR_STT_MODEL=该目录的路径（或拷贝整个 ~/.cache/huggingface/hub）。"
            "也可以改用 TUTOR_STT_BACKEND=openai 连接一个 Whisper 服务。详见 docs/SPEECH.md。")


def resolve_local_model(name: str) -> str:
    """A local model directory for `name` (a directory, or a name/repo id in the HF cache), never downloading."""
    p = Path(name).expanduser()
    if p.is_dir():
        if not (p / "model.bin").is_file():
            raise SpeechError("model_missing", f"目录 {p} 里没有 model.bin，不是 CTranslate2 格式的 faster-whisper 模型。"
                                               "请下载 Systran/faster-whisper-* 的模型目录（见 docs/SPEECH.md），"
                                               "或用 ct2-transformers-converter 转换 openai/whisper-* 模型。")
        return str(p)
    if _looks_like_path(name):
        raise SpeechError("model_missing", f"找不到 faster-whisper 模型目录：{p}。请检查 TUTOR_STT_MODEL；"
                                           "模型下载方法见 docs/SPEECH.md。")
    from faster_whisper.utils import available_models, download_model

    if "/" not in name and name not in available_models():
        raise SpeechError("model_missing", f"未知的 faster-whisper 模型名 `{name}`：可选 {', '.join(available_models())}，"
                                           "或 Hugging Face 上的 CTranslate2 模型 id（如 Systran/faster-whisper-small），"
                                           "或本地模型目录。")
    try:
        return download_model(name, local_files_only=True)  # a cache lookup: no network request
    except Exception:  # noqa: BLE001 - LocalEntryNotFoundError, OfflineModeIsEnabled, ...: all mean "not here"
        raise SpeechError("model_missing", missing_model_message(name)) from None


class FasterWhisperTranscriber:
    """Local faster-whisper (CTranslate2). Needs the `whisper` extra and a model already on disk."""

    name = "faster-whisper"

    def __init__(self, settings: Settings):
        self.settings = settings
        self.model_name = settings.stt_model or DEFAULT_LOCAL_MODEL
        self.language = settings.stt_language or None
        try:
            import faster_whisper  # noqa: F401 - lazy: ctranslate2 and av are heavy
        except ImportError:
            raise SpeechError("missing_extra", f"TUTOR_STT_BACKEND=faster-whisper 需要可选依赖 faster-whisper：{WHISPER_EXTRA}。"
                                               "或改用 TUTOR_STT_BACKEND=openai。") from None
        path = resolve_local_model(self.model_name)
        from faster_whisper import WhisperModel

        try:
            self._model = WhisperModel(path, device=settings.stt_device, compute_type=settings.stt_compute_type,
                                       local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - a broken model dir, an unsupported compute type, no CUDA
            raise SpeechError("model_broken", f"无法加载 faster-whisper 模型 `{self.model_name}`（{path}）："
                                              f"{type(exc).__name__}: {str(exc)[:200]}。请检查模型文件是否完整、"
                                              "TUTOR_STT_DEVICE / TUTOR_STT_COMPUTE_TYPE 是否适合本机。") from None

    def describe(self) -> str:
        return f"语音识别：faster-whisper {self.model_name}（本地，{self.settings.stt_device}）"

    def transcribe(self, clip: AudioClip, prompt: TermsPrompt | None = None) -> str:
        prompt = prompt or TermsPrompt()
        try:
            segments, _info = self._model.transcribe(
                clip.float32(), language=self.language, initial_prompt=prompt.text or None,
                hotwords=prompt.hotwords or None, beam_size=5, condition_on_previous_text=False)
            text = "".join(s.text for s in segments)
        except Exception as exc:  # noqa: BLE001
            raise SpeechError("server", f"faster-whisper 转写失败（{type(exc).__name__}: {str(exc)[:200]}）。") from None
        return _non_empty(text, self.describe(), clip)


def get_transcriber(settings: Settings) -> Transcriber | None:
    """The configured backend, or None when speech-to-text is off. SpeechError when misconfigured."""
    choice = (settings.stt_backend or "none").strip().lower()
    if choice in ("none", "off", ""):
        return None
    if choice == "openai":
        return OpenAITranscriber(settings)
    if choice in ("faster-whisper", "faster_whisper", "whisper"):
        return FasterWhisperTranscriber(settings)
    raise SpeechError("config", f"未知的语音识别后端 `{settings.stt_backend}`：可选 {' | '.join(BACKENDS)}（TUTOR_STT_BACKEND）。")
