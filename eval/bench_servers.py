"""Processes and servers the benchmark starts on 127.0.0.1, and always stops.

- `ChromaServer`: `chroma run --path DIR` on a free port, ready when `/api/v2/heartbeat` answers.
  Pointed at an embedded index's directory it serves that very index (same on-disk format), which
  lets `--growth` measure the server at 100x without paying for a second 100x ingest.
- `AppProcess`: `python app.py --port P` with a scrubbed environment; `start()` returns the seconds
  from spawn to the first HTTP 200 on `/` (the cold start), `peak_rss_mb()` reads the kernel's
  high-water mark (VmHWM) of the app process.
- `LoopbackLLM`: a minimal OpenAI-protocol chat server (stdlib, one thread per request) that answers
  the tutor's own prompts well-formed: the grader's JSON verdicts (one per key point, counted from the
  prompt), the follow-up planner's JSON (the first candidate entry, key point 1), and plain text for
  anything else. Replies arrive after `delay` seconds (0 = measure our own overhead, not a model's).
  Copied from nothing in tests/: tests script every reply; a benchmark needs unscripted answers.

Every process has a deadline for start-up and is terminated (then killed) by `stop()`/`with`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} during start-up")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s")


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def proc_status_mb(pid: int, field: str) -> float:
    """VmHWM (peak) or VmRSS (current) of a process in MB, from /proc (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def bench_env(data_dir: Path, tmp: Path, **extra: str) -> dict[str, str]:
    """The environment for a product process: no developer TUTOR_*/OPENAI_* settings leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUTOR_", "OPENAI_"))}
    (tmp / "gradio").mkdir(parents=True, exist_ok=True)
    env.update(GRADIO_ANALYTICS_ENABLED="False", ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1",
               GRADIO_TEMP_DIR=str(tmp / "gradio"), PYTHONUNBUFFERED="1", TUTOR_DATA_DIR=str(data_dir),
               PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


class ChromaServer:
    def __init__(self, path: Path, timeout: float = 60.0):
        self.path, self.timeout = path, timeout
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ChromaServer":
        self.path.mkdir(parents=True, exist_ok=True)
        chroma = Path(sys.executable).with_name("chroma")
        cmd = [str(chroma) if chroma.exists() else "chroma", "run", "--path", str(self.path),
               "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_http(f"{self.url}/api/v2/heartbeat", self.proc, self.timeout, "chroma run")
        except Exception:
            _stop(self.proc)
            raise
        return self

    def peak_rss_mb(self) -> float:
        return proc_status_mb(self.proc.pid, "VmHWM") if self.proc else float("nan")

    def __exit__(self, *exc) -> None:
        _stop(self.proc)


class AppProcess:
    def __init__(self, data_dir: Path, corpus_dir: Path, tmp: Path, timeout: float = 300.0, **env: str):
        self.port = free_port()
        self.env = bench_env(data_dir, tmp, TUTOR_CORPUS_DIR=str(corpus_dir), **env)
        self.timeout = timeout
        self.log = tmp / f"app-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> float:
        """Spawn the app; seconds until `GET /` first answers 200."""
        started = time.perf_counter()
        with self.log.open("w") as log:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(self.port)],
                                         cwd=self.log.parent, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_http(self.url, self.proc, self.timeout, "app.py")
        except Exception as exc:
            _stop(self.proc)
            raise RuntimeError(f"{exc}\n{self.log.read_text(errors='replace')[-2000:]}") from None
        return time.perf_counter() - started

    def peak_rss_mb(self) -> float:
        return proc_status_mb(self.proc.pid, "VmHWM") if self.proc else float("nan")

    def __enter__(self) -> "AppProcess":
        return self

    def __exit__(self, *exc) -> None:
        _stop(self.proc)


# --- loopback OpenAI-protocol chat server ---------------------------------------------------------

_POINTS = re.compile(r"评分要点（共 (\d+) 条）")
_CANDIDATE = re.compile(r"^\[([a-z0-9-]+)\]", re.MULTILINE)


def scripted_reply(messages: list[dict]) -> str:
    """A well-formed answer to the tutor's own prompts (grading, follow-up planning), else text."""
    user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
    m = _POINTS.search(user)
    if m:
        verdicts = [{"index": i + 1, "verdict": "missed", "evidence": "", "reason": "未提到"}
                    for i in range(int(m.group(1)))]
        return json.dumps({"verdicts": verdicts, "false_statements": [], "feedback": "请补充关键要点。"},
                          ensure_ascii=False)
    m = _CANDIDATE.search(user)
    if m:
        return json.dumps({"question": f"能再具体讲讲 {m.group(1)} 的关键细节吗？（{time.monotonic_ns()}）",
                           "entry_id": m.group(1), "key_points": [1]}, ensure_ascii=False)
    return "这是基准测试的回答 [1]。"


class LoopbackLLM:
    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.requests = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> "LoopbackLLM":
        llm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with llm._lock:
                    llm.requests += 1
                if llm.delay:
                    time.sleep(llm.delay)
                text = scripted_reply(body.get("messages", []))
                base = {"id": "bench", "created": int(time.time()), "model": body.get("model", "bench")}
                if body.get("stream"):
                    chunks = [{**base, "object": "chat.completion.chunk",
                               "choices": [{"index": 0, "delta": {"role": "assistant", "content": text},
                                            "finish_reason": None}]},
                              {**base, "object": "chat.completion.chunk",
                               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
                    data = "".join(f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in chunks)
                    self._send(200, (data + "data: [DONE]\n\n").encode(), "text/event-stream")
                    return
                reply = {**base, "object": "chat.completion",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                      "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                self._send(200, json.dumps(reply, ensure_ascii=False).encode(), "application/json")

            def _send(self, status: int, data: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="bench-llm", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
