"""A real HTTP server on 127.0.0.1 that speaks the OpenAI protocol, for tests.

Design: the stdlib `ThreadingHTTPServer` in a daemon thread, so the real `openai` and
`langchain-openai` clients (httpx underneath) talk to it over a socket exactly as they would to
OpenAI, DeepSeek, Ollama or vLLM. Nothing is mocked: retries, timeouts, SSE parsing and error
mapping all run in the real client code. Trade-off: tests pay ~1 ms per request and must script
every chat reply; in exchange a passing test means the wire format really works.

API (fixture `openai_server`, one fresh server per test):

    server.url                      # "http://127.0.0.1:PORT/v1" -> base_url / TUTOR_LLM_BASE_URL
    # Chat completions: replies are consumed in order, one per request (stream or not).
    server.reply("文本", chunks=None, delay=0)   # plain reply; SSE chunks when the request streams
    server.reply_json({"score": 3})            # a JSON-object reply (the text is json.dumps(obj))
    server.error(429, "Rate limit reached")    # HTTP error with an OpenAI-style error body
    server.stall(5.0)                          # answer nothing for 5 s (client timeout tests)
    server.truncated("前半句")                  # stream some text, then drop the connection mid-body
    server.malformed("前半句")                  # stream some text, then an event that is not JSON
    # An empty chat queue answers 500 "no scripted reply left", so a missing script fails loudly.

    server.requests                 # every request: Recorded(method, path, headers, body, raw)
    server.chat_requests            # the chat-completion ones; .body is the parsed JSON
    server.embedding_dim = 16       # POST /v1/embeddings: deterministic vectors (see `embed`)
    server.push("/v1/embeddings", Error(401, "bad key"))   # script any path: Reply/Error/Stall
    server.pending()                # chat replies scripted but not consumed yet
    # Add an endpoint (audio later): handler(recorded, item) -> Response, where item is the next
    # scripted thing pushed to that path (None if none). Error/Stall/delay are handled for you.
    server.route("/v1/audio/transcriptions", lambda rec, item: Response(200, {"text": item.payload}))
    server.push("/v1/audio/transcriptions", Reply(payload="多头注意力"))
    recorded.multipart()            # {"model": "whisper-1", "file": ("a.wav", b"...")}
    Response(200, b"RIFF...", "audio/wav")   # binary bodies (speech) work too

`embed(text, dim)` is a pure function (character-bigram hashing, L2-normalised), so similar texts
get similar vectors and tests can compute the expected vector themselves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"


# --- scripted items -------------------------------------------------------------------------

@dataclass
class Reply:
    """A successful reply. For chat: `text` as a completion (or SSE chunks when streaming)."""
    text: str = ""
    chunks: list[str] | None = None  # how to split the text into stream deltas
    delay: float = 0.0  # seconds before answering
    chunk_delay: float = 0.0  # seconds between stream chunks
    finish_reason: str = "stop"
    payload: Any = None  # for custom routes: anything the handler wants


@dataclass
class Error:
    """An HTTP error with an OpenAI-style body: {"error": {"message", "type", "code"}}."""
    status: int
    message: str = "error"
    type: str | None = None
    code: str | None = None
    delay: float = 0.0


@dataclass
class Stall:
    """Answer nothing for `seconds` (the client should time out first)."""
    seconds: float


@dataclass
class Broken:
    """A stream that goes wrong after `text`: mode "truncated" (connection drops) or "malformed"."""
    text: str
    mode: str = "truncated"


@dataclass
class Response:
    """What a custom route handler returns."""
    status: int = 200
    body: bytes | str | dict | list = b""
    content_type: str | None = None  # inferred: dict/list -> JSON, str -> text/plain
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    raw: bytes
    body: Any  # parsed JSON, or None when the body is not JSON

    def multipart(self) -> dict[str, Any]:
        """Form fields of a multipart/form-data body: str for fields, (filename, bytes) for files."""
        ctype = self.headers.get("content-type", "")
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + self.raw
        )
        fields: dict[str, Any] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            fields[name] = (filename, data) if filename else data.decode("utf-8")
        return fields


Handler = Callable[[Recorded, Any], Response]


def embed(text: str, dim: int = 16) -> list[float]:
    """Deterministic unit vector: character bigrams hashed into `dim` buckets with a sign."""
    vec = [0.0] * dim
    grams = [text[i:i + 2] for i in range(max(len(text) - 1, 1))] or [""]
    for g in grams:
        h = hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest()
        vec[h[0] % dim] += 1.0 if h[1] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    if norm == 1.0 and not any(vec):
        vec[0] = 1.0
    return [v / norm for v in vec]


# --- the server -----------------------------------------------------------------------------

class OpenAIServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.embedding_dim = 16
        self.model_name = "test-model"
        self._queues: dict[str, deque] = {}
        self._routes: dict[str, Handler] = {CHAT_PATH: self._chat, EMBEDDINGS_PATH: self._embeddings}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="openai-server", daemon=True)

    # scripting
    def push(self, path: str, item: Any) -> None:
        with self._lock:
            self._queues.setdefault(path, deque()).append(item)

    def pop(self, path: str) -> Any:
        with self._lock:
            q = self._queues.get(path)
            return q.popleft() if q else None

    def pending(self, path: str = CHAT_PATH) -> int:
        with self._lock:
            return len(self._queues.get(path, ()))

    def reply(self, text: str, chunks: list[str] | None = None, delay: float = 0.0,
              chunk_delay: float = 0.0) -> None:
        self.push(CHAT_PATH, Reply(text, chunks=chunks, delay=delay, chunk_delay=chunk_delay))

    def reply_json(self, obj: Any) -> None:
        self.push(CHAT_PATH, Reply(json.dumps(obj, ensure_ascii=False)))

    def error(self, status: int, message: str = "error", type: str | None = None,
              code: str | None = None, path: str = CHAT_PATH) -> None:
        self.push(path, Error(status, message, type, code))

    def stall(self, seconds: float, path: str = CHAT_PATH) -> None:
        self.push(path, Stall(seconds))

    def truncated(self, text: str) -> None:
        self.push(CHAT_PATH, Broken(text, "truncated"))

    def malformed(self, text: str) -> None:
        self.push(CHAT_PATH, Broken(text, "malformed"))

    def route(self, path: str, handler: Handler) -> None:
        self._routes[path] = handler

    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == CHAT_PATH]

    # lifecycle
    def start(self) -> "OpenAIServer":
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def sleep(self, seconds: float) -> None:
        """Wait, but give up early when the server is closing (so teardown is never slow)."""
        self._closing.wait(seconds)

    # built-in endpoints
    def _chat(self, rec: Recorded, item: Any) -> Response | Reply | Broken:
        if item is None:
            return _error_response(Error(500, "openai_server: no scripted reply left", "server_error"))
        return item  # Reply / Broken are rendered by the handler (they depend on `stream`)

    def _embeddings(self, rec: Recorded, item: Any) -> Response:
        body = rec.body or {}
        inputs = body.get("input", [])
        if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        data = []
        for i, text in enumerate(inputs):
            text = text if isinstance(text, str) else " ".join(map(str, text))  # token ids
            vec = embed(text, self.embedding_dim)
            if body.get("encoding_format") == "base64":
                value: Any = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()
            else:
                value = vec
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(len(t) for t in inputs if isinstance(t, str))
        return Response(200, {"object": "list", "data": data, "model": body.get("model", self.model_name),
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # a bug in a handler: show it


def _error_response(err: Error) -> Response:
    kind = err.type or {400: "invalid_request_error", 401: "authentication_error",
                        404: "not_found_error", 429: "rate_limit_error"}.get(err.status, "server_error")
    return Response(err.status, {"error": {"message": err.message, "type": kind, "param": None,
                                           "code": err.code}})


def _make_handler(server: OpenAIServer):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            path = self.path.split("?", 1)[0]
            rec = Recorded(self.command, path, {k.lower(): v for k, v in self.headers.items()}, raw, body)
            with server._lock:
                server.requests.append(rec)
            handler = server._routes.get(path)
            if handler is None:
                self._send(_error_response(Error(404, f"openai_server: no route {path}", "not_found_error")))
                return
            item = server.pop(path)
            delay = getattr(item, "delay", 0.0)
            if delay:
                server.sleep(delay)
            try:
                if isinstance(item, Stall):
                    server.sleep(item.seconds)
                    self.close_connection = True
                    return
                if isinstance(item, Error):
                    self._send(_error_response(item))
                    return
                out = handler(rec, item)
                if isinstance(out, Response):
                    self._send(out)
                elif isinstance(body, dict) and body.get("stream"):
                    self._stream(out, body)
                else:
                    self._complete(out, body or {})
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (timeout): nothing to do

        def _send(self, resp: Response) -> None:
            body, ctype = resp.body, resp.content_type
            if isinstance(body, (dict, list)):
                body, ctype = json.dumps(body, ensure_ascii=False).encode(), ctype or "application/json"
            elif isinstance(body, str):
                body, ctype = body.encode(), ctype or "text/plain; charset=utf-8"
            self.send_response(resp.status)
            self.send_header("Content-Type", ctype or "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _complete(self, item: Reply | Broken, body: dict) -> None:
            text = item.text
            self._send(Response(200, {
                "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", server.model_name),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": getattr(item, "finish_reason", "stop"), "logprobs": None}],
                "usage": {"prompt_tokens": 10, "completion_tokens": len(text), "total_tokens": 10 + len(text)},
            }))

        def _stream(self, item: Reply | Broken, body: dict) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            model = body.get("model", server.model_name)

            def event(delta: dict, finish: str | None = None) -> bytes:
                chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
                return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"

            def write(data: bytes) -> None:
                self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            text = item.text
            pieces = getattr(item, "chunks", None) or [text[i:i + 4] for i in range(0, len(text), 4)]
            write(event({"role": "assistant", "content": ""}))
            for piece in pieces:
                write(event({"content": piece}))
                if getattr(item, "chunk_delay", 0):
                    server.sleep(item.chunk_delay)
            if isinstance(item, Broken):
                if item.mode == "malformed":
                    write(b'data: {"id": "chatcmpl-test", "choices": [{"delta": {"content": \n\n')
                    write(b"data: [DONE]\n\n")
                    self.wfile.write(b"0\r\n\r\n")
                else:  # drop the connection without the terminating chunk
                    self.wfile.flush()
                self.close_connection = True
                return
            write(event({}, item.finish_reason))
            write(b"data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return H


@pytest.fixture
def openai_server():
    server = OpenAIServer().start()
    try:
        yield server
    finally:
        server.close()
