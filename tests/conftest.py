"""Shared fixtures. Feature fixtures live in their own modules and are imported here."""

import os

import pytest

from tests.openai_server import openai_server  # noqa: F401
from tests.ui_app import llm_app, offline_app, ui_index  # noqa: F401  (real app subprocesses for UI tests)

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


def write_entry(path, entry_id, question, answer, *, aliases=("别名问法",), key_points=None, follow_ups=None,
                tags="test", level=1, topic="测试主题"):
    """Append one well-formed entry to a corpus file (creating it with its H1), for tests."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key_points = key_points or [f"{question} 的要点一", f"{question} 的要点二", f"{question} 的要点三"]
    follow_ups = follow_ups or ["追问一是什么？", "追问二是什么？"]
    head = "" if path.exists() else f"# {topic}\n\n"
    text = (
        f"{head}## {question}\n\n- id: {entry_id}\n- 难度: {level}\n- 标签: {tags}\n\n"
        "### 别名\n" + "".join(f"- {a}\n" for a in aliases) + "\n"
        f"### 答案\n{answer}\n\n"
        "### 要点\n" + "".join(f"- {k}\n" for k in key_points) + "\n"
        "### 追问\n" + "".join(f"- {f}\n" for f in follow_ups) + "\n"
        "### 来源\n- Attention Is All You Need, 2017, arXiv:1706.03762\n\n"
    )
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)
    return path


def make_corpus(root):
    """A three-entry corpus in two sections, for tests that must not depend on the real corpus."""
    write_entry(root / "1.基础" / "注意力.md", "scaled-attention", "为什么注意力要除以根号 d？",
                "点积的方差随维度增长，softmax 会饱和，所以除以 $\\sqrt{d_k}$。\n\n#### 推导\n\n方差等于 d。",
                aliases=("attention 为什么要 scale",), tags="attention")
    write_entry(root / "1.基础" / "注意力.md", "kv-cache", "KV Cache 是什么？",
                "推理时缓存每层的 key 和 value，避免重复计算。\n\n```python\ncache = {}\n```",
                aliases=("键值缓存的作用",), tags="inference")
    write_entry(root / "2.训练" / "优化.md", "warmup", "学习率为什么要 warmup？",
                "训练初期 Adam 的二阶矩估计不准，先用小学习率。", aliases=("预热的作用",), tags="training")
    return root


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real `chroma run` server on 127.0.0.1, started once for the session."""
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(["chroma", "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("chroma run exited at start-up")
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("chroma run did not answer its heartbeat within 30 s")
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
