"""Settings sources and `tutor doctor`, with real files, env vars, a real loopback server and real sockets."""

import os
import socket
import subprocess
import sys
from pathlib import Path

from tutor.settings import Settings, default_data_dir

ROOT = Path(__file__).resolve().parents[1]


def test_env_prefix_and_dotenv(tutor_env, monkeypatch):
    (tutor_env / ".env").write_text("TUTOR_LLM_MODEL=qwen-plus\nTUTOR_RETRIEVAL_K=7\n", encoding="utf-8")
    monkeypatch.setenv("TUTOR_RETRIEVAL_K", "3")  # the environment beats .env
    s = Settings()
    assert s.llm_model == "qwen-plus" and s.retrieval_k == 3 and s.llm_enabled
    assert s.data_dir == tutor_env / "data"


def test_conventional_openai_variables_are_honoured(tutor_env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-openai-var")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    s = Settings()
    assert s.llm_api_key.get_secret_value() == "sk-from-openai-var"
    assert s.llm_base_url == "http://127.0.0.1:9/v1"
    monkeypatch.setenv("TUTOR_LLM_API_KEY", "sk-tutor-wins")
    assert Settings().llm_api_key.get_secret_value() == "sk-tutor-wins"


def test_keys_never_show_in_repr_or_descriptions(tutor_env):
    s = Settings(llm_model="deepseek-chat", llm_base_url="https://api.deepseek.com/v1", llm_api_key="sk-secret-123")
    for text in (repr(s), str(s), s.describe_llm(), s.model_dump_json()):
        assert "sk-secret-123" not in text
    assert "deepseek-chat" in s.describe_llm() and "api.deepseek.com" in s.describe_llm()
    assert Settings().describe_llm().startswith("离线模式")


def test_default_data_dir_is_per_user(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert default_data_dir() == tmp_path / "llm-interview-tutor"


def doctor(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TUTOR_", "OPENAI_"))}
    return subprocess.run([sys.executable, "-m", "tutor.cli", "doctor", "--timeout", "2"], capture_output=True,
                          text=True, cwd=ROOT, env={**clean, **env}, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_doctor_offline(tmp_path):
    proc = doctor({"TUTOR_DATA_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "离线模式" in proc.stdout and "知识库" in proc.stdout and "hashing" in proc.stdout


def test_doctor_reaches_the_llm_without_printing_the_key(tmp_path, openai_server):
    proc = doctor({"TUTOR_DATA_DIR": str(tmp_path), "TUTOR_LLM_MODEL": "qwen-plus",
                   "TUTOR_LLM_BASE_URL": openai_server.url, "TUTOR_LLM_API_KEY": "sk-do-not-print"})
    assert proc.returncode == 0, proc.stdout
    assert "✓ 大模型: qwen-plus" in proc.stdout and "sk-do-not-print" not in proc.stdout + proc.stderr
    sent = [r for r in openai_server.requests if r.path.endswith("/models")]
    assert sent and sent[0].headers.get("authorization") == "Bearer sk-do-not-print"


def test_doctor_reports_unreachable_backends(tmp_path):
    port = free_port()  # nothing listens here
    proc = doctor({"TUTOR_DATA_DIR": str(tmp_path), "TUTOR_LLM_MODEL": "m",
                   "TUTOR_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1", "TUTOR_CHROMA_URL": f"http://127.0.0.1:{port}"})
    assert proc.returncode == 1
    assert "✗ 大模型" in proc.stdout and "✗ 向量库" in proc.stdout and "无法连接" in proc.stdout


def test_doctor_sees_a_chroma_server(tmp_path, chroma_server):
    proc = doctor({"TUTOR_DATA_DIR": str(tmp_path), "TUTOR_CHROMA_URL": chroma_server})
    assert proc.returncode == 0 and f"✓ 向量库: Chroma 服务器 {chroma_server}" in proc.stdout
