"""Shared fixtures. Feature fixtures live in their own modules and are imported here."""

import os

import pytest

from tests.openai_server import openai_server  # noqa: F401

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


@pytest.fixture
def tutor_env(tmp_path, monkeypatch):
    """An isolated data directory and no LLM, so tests never see the developer's own settings."""
    monkeypatch.setenv("TUTOR_DATA_DIR", str(tmp_path / "data"))
    for var in ("TUTOR_LLM_MODEL", "TUTOR_LLM_BASE_URL", "TUTOR_LLM_API_KEY", "OPENAI_API_KEY",
                "OPENAI_BASE_URL", "TUTOR_CHROMA_URL", "TUTOR_EMBEDDING_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout
    return tmp_path
