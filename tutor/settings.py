"""One settings object for the whole tutor (pydantic-settings).

Sources, highest priority first: explicit arguments, environment variables with the `TUTOR_`
prefix, a `.env` file in the working directory, defaults. The conventional `OPENAI_API_KEY` and
`OPENAI_BASE_URL` are honoured as fallbacks for the LLM. Keys are `SecretStr`, so they print as
`**********` in reprs, logs and errors; only the backends call `get_secret_value()`.

Offline is the default: no LLM, the hashing embedder, embedded Chroma under the data directory.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "llm-interview-tutor"


def default_data_dir() -> Path:
    """Per-user data location, following each platform's convention."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / APP_NAME


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TUTOR_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        populate_by_name=True,
    )

    # Where things live.
    corpus_dir: Path = PROJECT_ROOT / "corpus"
    data_dir: Path = Field(default_factory=default_data_dir)

    # Embeddings: "hashing" (offline default, no weights), "sentence-transformers", "openai".
    embedding_backend: str = "hashing"
    embedding_model: str = ""  # model name or local path; for openai, the model id
    embedding_base_url: str | None = None  # defaults to llm_base_url for the openai backend
    embedding_api_key: SecretStr | None = None
    embedding_device: str = "cpu"

    # Vector store: embedded Chroma under data_dir unless a server URL is given (`chroma run`).
    chroma_url: str | None = None

    # Retrieval (values measured in eval/; see tutor/retriever.py for where they come from).
    retrieval_k: int = 5

    # LLM (any OpenAI-compatible endpoint). No model configured = offline mode.
    llm_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("TUTOR_LLM_BASE_URL", "OPENAI_BASE_URL")
    )
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TUTOR_LLM_API_KEY", "OPENAI_API_KEY")
    )
    llm_model: str | None = None
    llm_timeout: float = 60.0
    llm_max_retries: int = 1
    llm_temperature: float = 0.3
    chat_history_chars: int = 6000  # conversation memory budget (~tokens for Chinese); oldest turns dropped

    # Grading and mock interview (tutor/grading.py, tutor/interview.py).
    grader: str = "auto"  # auto (LLM when configured, else offline) | offline | llm
    grading_max_answer_chars: int = 4000  # longer answers are graded on their first N chars (kept whole)
    interview_follow_ups: int = 2  # follow-up questions per main question (0 = none)

    # Speech (tutor/speech.py, docs/SPEECH.md): both off by default.
    stt_backend: str = "none"  # none | openai (any /v1/audio/transcriptions) | faster-whisper (extra `whisper`)
    stt_model: str = ""  # openai: model id (default whisper-1); faster-whisper: name (small, large-v3) or local dir
    stt_base_url: str | None = None  # defaults to llm_base_url
    stt_api_key: SecretStr | None = None  # defaults to llm_api_key
    stt_language: str = "zh"
    stt_max_seconds: float = 300.0  # longer recordings are rejected
    stt_device: str = "cpu"  # faster-whisper: cpu | cuda | auto
    stt_compute_type: str = "int8"  # faster-whisper: int8 (CPU) | float16 (GPU) | ...
    tts_backend: str = "none"  # none | openai (any /v1/audio/speech) | espeak (offline espeak-ng)
    tts_model: str = ""  # openai: model id (default tts-1)
    tts_voice: str = ""  # openai: default alloy; espeak: default cmn-latn-pinyin
    tts_base_url: str | None = None  # defaults to llm_base_url
    tts_api_key: SecretStr | None = None  # defaults to llm_api_key
    tts_player: str = ""  # terminal: command that plays a wav (the path is appended); default: auto-detect

    # Progress store.
    database_url: str | None = None  # sqlite:///path or a bare path; default: data_dir/progress.sqlite3
    profile: str = "default"  # whose progress is recorded (CLI --profile; the UI uses the login name)

    @property
    def llm_enabled(self) -> bool:
        return bool(self.llm_model)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    def describe_llm(self) -> str:
        """Human description of the LLM endpoint: never includes the key."""
        if not self.llm_enabled:
            return "离线模式（未配置大模型）"
        return f"{self.llm_model} @ {self.llm_base_url or 'https://api.openai.com/v1'}"


def get_settings(**overrides) -> Settings:
    return Settings(**overrides)
