"""Fixtures that run the real app: `python app.py --port P` as a subprocess, for UI tests.

Design: the index is built once per test session (`ui_index`, a subprocess running
`python -m ingest`); each app fixture copies that data directory, so two app processes never share
one embedded Chroma directory. An app is started with a scrubbed environment (no TUTOR_*/OPENAI_*
from the developer, GRADIO_ANALYTICS_ENABLED=False, GRADIO_TEMP_DIR and TMPDIR in the test's tmp
dir, cwd in tmp so no stray .env is read), polled until `GET /` answers 200, and killed afterwards.
The measured start-up (spawn -> first HTTP 200) and the process's RSS are kept on the `AppProcess`
for the benchmark test.

    offline_app.url                      # "http://127.0.0.1:P/" (no LLM; speech via a loopback server)
    offline_app.server.push(TRANSCRIPTIONS, Reply(payload="转写文本"))   # the next transcript
    llm_app.server.reply("回答 [1]")      # the loopback OpenAI-protocol server the LLM app talks to

Trade-off: session scope (one offline app, one LLM app for all UI tests) keeps the UI suite under
a few minutes; tests therefore use their own `gradio_client.Client` / browser context each, which
is exactly the per-session isolation the app promises.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUTOR_", "OPENAI_"))}
    (tmp / "gradio").mkdir(parents=True, exist_ok=True)
    (tmp / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(GRADIO_ANALYTICS_ENABLED="False", ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1",
               GRADIO_TEMP_DIR=str(tmp / "gradio"), TMPDIR=str(tmp / "tmp"), PYTHONUNBUFFERED="1",
               TUTOR_DATA_DIR=str(tmp / "data"))
    env.update(extra)
    return env


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class AppProcess:
    proc: subprocess.Popen
    port: int
    tmp: Path
    log: Path
    startup_s: float = 0.0
    rss_mb: float = 0.0
    server: OpenAIServer | None = None
    transcribed: list = field(default_factory=list)  # what the transcription route received
    env: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_app(tmp: Path, env: dict[str, str], args: list[str] = (), timeout: float = START_TIMEOUT) -> AppProcess:
    """Spawn app.py and wait for its first HTTP 200 on /."""
    port = free_port()
    log = tmp / "app.log"
    t0 = time.perf_counter()
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *args], cwd=tmp, env=env,
                                stdout=fh, stderr=subprocess.STDOUT)
    app = AppProcess(proc, port, tmp, log, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode} at start-up:\n{app.output()[-3000:]}")
        try:
            with urllib.request.urlopen(app.url, timeout=2) as resp:
                if resp.status == 200:
                    app.startup_s = time.perf_counter() - t0
                    app.rss_mb = rss_mb(proc.pid)
                    return app
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.05)
    app.stop()
    raise RuntimeError(f"app.py gave no HTTP 200 within {timeout:.0f} s:\n{app.output()[-3000:]}")


def write_sample_eval_report(data_dir: Path) -> Path:
    """An evaluation report laid out like `python -m eval` writes it: eval/<stamp>/report.md + PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    run = data_dir / "eval" / "20261122-120000"
    run.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(4, 2.5))
    ax = fig.add_subplot()
    ax.bar(["bm25", "hybrid"], [0.81, 0.90])
    ax.set_ylabel("Hit@1")
    fig.savefig(run / "metrics.png", dpi=80)
    (run / "report.md").write_text("# 评测报告\n\n| 配置 | Hit@1 | MRR@10 |\n| --- | --- | --- |\n"
                                   "| hybrid | 0.90 | 0.93 |\n| bm25 | 0.81 | 0.86 |\n\n![各配置指标](metrics.png)\n",
                                   encoding="utf-8")
    return run


@pytest.fixture(scope="session")
def ui_index(tmp_path_factory) -> Path:
    """A data directory with the real corpus indexed (built once, by `python -m ingest`)."""
    tmp = tmp_path_factory.mktemp("ui-index")
    env = clean_env(tmp)
    done = subprocess.run([sys.executable, "-m", "ingest"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return tmp / "data"


def _app_from_index(tmp_path_factory, ui_index: Path, name: str, **extra: str) -> AppProcess:
    tmp = tmp_path_factory.mktemp(name)
    shutil.copytree(ui_index, tmp / "data")
    return start_app(tmp, clean_env(tmp, **extra))


TRANSCRIPTIONS = "/v1/audio/transcriptions"


def transcription_route(server: OpenAIServer) -> list[dict]:
    """Serve /v1/audio/transcriptions: check the upload is a 16 kHz mono 16-bit wav, answer the
    transcript pushed with `server.push(TRANSCRIPTIONS, Reply(payload="文本"))`. Returns the log of
    what was received (form fields, seconds of audio)."""
    import io
    import wave

    from tests.openai_server import Response

    received: list[dict] = []

    def handler(rec, item):
        form = rec.multipart()
        _, data = form.get("file", ("", b""))
        try:
            with wave.open(io.BytesIO(data)) as w:
                shape, seconds = (w.getnchannels(), w.getframerate(), w.getsampwidth()), w.getnframes() / w.getframerate()
        except (wave.Error, EOFError) as exc:
            return Response(400, {"error": {"message": f"not a wav: {exc}", "type": "invalid_request_error"}})
        if shape != (1, 16000, 2):
            return Response(400, {"error": {"message": f"want 16 kHz mono 16-bit, got {shape}",
                                            "type": "invalid_request_error"}})
        if item is None:
            return Response(500, {"error": {"message": "no scripted transcript left", "type": "server_error"}})
        received.append({**{k: v for k, v in form.items() if k != "file"}, "seconds": seconds})
        return Response(200, {"text": item.payload})

    server.route(TRANSCRIPTIONS, handler)
    return received


@pytest.fixture(scope="session")
def offline_app(tmp_path_factory, ui_index):
    """The app without an LLM (offline mode), with speech: STT through a loopback OpenAI-protocol
    transcription route (`offline_app.server`), TTS by the local espeak-ng."""
    server = OpenAIServer().start()
    received = transcription_route(server)
    app = _app_from_index(tmp_path_factory, ui_index, "ui-offline", TUTOR_STT_BACKEND="openai",
                          TUTOR_STT_BASE_URL=server.url, TUTOR_STT_API_KEY="sk-test-stt-0123456789",
                          TUTOR_TTS_BACKEND="espeak")
    app.server, app.transcribed = server, received
    yield app
    app.stop()
    server.close()


@pytest.fixture(scope="session")
def llm_app(tmp_path_factory, ui_index):
    """The app in LLM mode, talking to a loopback OpenAI-protocol server (scripted by the tests).
    No speech backend is configured here: the UI must say how to configure one."""
    server = OpenAIServer().start()
    app = _app_from_index(tmp_path_factory, ui_index, "ui-llm", TUTOR_LLM_BASE_URL=server.url,
                          TUTOR_LLM_MODEL="test-model", TUTOR_LLM_API_KEY="sk-test-ui-0123456789",
                          TUTOR_LLM_MAX_RETRIES="0", TUTOR_LLM_TIMEOUT="20")
    app.server = server
    yield app
    app.stop()
    server.close()
