"""The chat-model backend: any OpenAI-compatible endpoint through `langchain_openai.ChatOpenAI`.

Design: one tiny interface that every feature (RAG chat, grading, mock interview) shares, so none
of them touches LangChain or `openai` directly:

    llm = get_llm(settings)              # None when no model is configured = offline mode
    for delta in llm.stream(messages):   # text deltas as they arrive
    text = llm.complete(messages)        # one blocking call
    obj = llm.complete_json(messages)    # json_mode + parse; LLMError if the reply is not an object

`messages` are `{"role": "system"|"user"|"assistant", "content": str}` dicts (or `(role, content)`
pairs): plain data, easy to assert in tests and to log without the key.

Every failure (timeout, 401/403, 429, 5xx, other 4xx, connection refused, a truncated or malformed
stream, an empty reply) becomes one `LLMError` with a Chinese message that names the endpoint
and model, says what to check, and never contains the API key: server messages are redacted (an
OpenAI 401 echoes part of the key) and the original exception is not chained, because tracebacks
and log handlers would print it. `LLMError.kind` lets callers react (e.g. fall back to offline).

Trade-offs: LangChain adds ~1.8 s of import time, paid only when an LLM is configured (imports
are lazy); in exchange we get its retry/streaming handling and the same client users already know.
Retries are the client's (`llm_max_retries`, with backoff on 429/5xx/connection errors); a stream
that fails half-way is not retried (the caller has already shown part of it).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tutor.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "EMPTY"  # local servers (Ollama, vLLM, llama.cpp) ignore the key but the client wants one
_KEYLIKE = re.compile(r"\bsk-[A-Za-z0-9*_.\-]{4,}|(?i:bearer)\s+\S+")

Message = dict[str, str] | tuple[str, str]


class LLMError(RuntimeError):
    """A failed LLM call, with a user-facing Chinese message that never contains the key."""

    def __init__(self, kind: str, message: str, *, endpoint: str = "", model: str = "",
                 status: int | None = None):
        super().__init__(message)
        self.kind = kind  # timeout | auth | rate_limit | server | bad_request | connection | stream | empty | bad_json
        self.message = message
        self.endpoint = endpoint
        self.model = model
        self.status = status

    def __str__(self) -> str:
        return self.message


def public_endpoint(url: str | None) -> str:
    """The endpoint as shown to users: no user:password, no query string (they can carry secrets)."""
    if not url:
        return DEFAULT_ENDPOINT
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", "")) or url


def server_message(exc: Exception) -> str:
    """The human message in an OpenAI-style error body ({"error": {"message"}}, {"message"} or
    {"detail"}), or "" for errors that carry no body. Shared by every OpenAI-protocol client here."""
    import openai

    if not isinstance(exc, openai.APIStatusError):
        return ""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else {}
        return str(body.get("message") or inner.get("message") or body.get("detail") or "")
    return str(body or "")


def redact(text: str, secret: str | None) -> str:
    """Remove the key (and anything that looks like a key) from a server message."""
    if secret:
        text = text.replace(secret, "***")
        if len(secret) > 8:  # servers often echo a prefix/suffix of a wrong key
            text = text.replace(secret[:8], "***").replace(secret[-6:], "***")
    return _KEYLIKE.sub("***", text)


def _to_langchain(messages: Iterable[Message]):
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "human": HumanMessage,
             "assistant": AIMessage, "ai": AIMessage}
    out = []
    for m in messages:
        role, content = (m["role"], m["content"]) if isinstance(m, dict) else m
        out.append(kinds[role](content=content))
    return out


def _text(chunk: Any) -> str:
    content = getattr(chunk, "content", chunk)
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return ""


class ChatBackend:
    """An OpenAI-compatible chat model. Build it with `get_llm(settings)`."""

    def __init__(self, settings: Settings):
        self.model = settings.llm_model or ""
        self.endpoint = public_endpoint(settings.llm_base_url)
        self.timeout = settings.llm_timeout
        self._key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        from langchain_openai import ChatOpenAI  # lazy: ~1.8 s, only when an LLM is configured

        kwargs: dict[str, Any] = {}
        if settings.llm_base_url:
            kwargs["base_url"] = settings.llm_base_url
        self._chat = ChatOpenAI(
            model=self.model, api_key=self._key or PLACEHOLDER_KEY, timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries, temperature=settings.llm_temperature, **kwargs,
        )

    def describe(self) -> str:
        return f"{self.model} @ {self.endpoint}"

    def __repr__(self) -> str:
        return f"ChatBackend({self.describe()})"

    # --- calls ---------------------------------------------------------------------------------
    def stream(self, messages: Iterable[Message]) -> Iterator[str]:
        """Yield text deltas. Raises LLMError (possibly after some deltas were yielded)."""
        got_any = started = False
        try:
            for chunk in self._chat.stream(_to_langchain(messages)):
                started = True  # the server answered: a later transport error is a cut stream
                delta = _text(chunk)
                if delta:
                    got_any = True
                    yield delta
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001 - every client failure becomes one LLMError
            raise self._error(exc, cut=started) from None
        if not got_any:
            raise LLMError("empty", f"大模型返回了空回复：{self.describe()}。请检查模型名和服务日志。",
                           endpoint=self.endpoint, model=self.model)

    def complete(self, messages: Iterable[Message], json_mode: bool = False) -> str:
        chat = self._chat.bind(response_format={"type": "json_object"}) if json_mode else self._chat
        try:
            text = _text(chat.invoke(_to_langchain(messages)))
        except Exception as exc:  # noqa: BLE001
            raise self._error(exc, cut=False) from None
        if not text.strip():
            raise LLMError("empty", f"大模型返回了空回复：{self.describe()}。请检查模型名和服务日志。",
                           endpoint=self.endpoint, model=self.model)
        return text

    def complete_json(self, messages: Iterable[Message]) -> dict:
        """`complete(json_mode=True)` parsed into a dict; tolerates a ```json fence around it."""
        text = self.complete(messages, json_mode=True).strip()
        fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
        if fenced:
            text = fenced.group(1)
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise LLMError("bad_json", f"大模型没有返回合法的 JSON 对象：{self.describe()}。"
                           "该模型可能不支持 JSON 模式，请换一个模型。",
                           endpoint=self.endpoint, model=self.model)
        return obj

    # --- error mapping -------------------------------------------------------------------------
    def _error(self, exc: Exception, cut: bool) -> LLMError:
        import httpx
        import openai

        where = self.describe()
        status = getattr(exc, "status_code", None)
        detail = redact(server_message(exc), self._key)[:200]
        suffix = f"（服务端信息：{detail}）" if detail else ""
        if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
            kind, msg = "timeout", (f"大模型请求超时（{self.timeout:g} 秒）：{where}。"
                                    "可调大 TUTOR_LLM_TIMEOUT，或检查服务是否过载。")
        elif isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
            kind, msg = "auth", (f"大模型鉴权失败（HTTP {status}）：{where}。"
                                 f"请检查 TUTOR_LLM_API_KEY（或 OPENAI_API_KEY）。{suffix}")
        elif isinstance(exc, openai.RateLimitError):
            kind, msg = "rate_limit", (f"大模型请求过于频繁或额度不足（HTTP 429）：{where}。"
                                       f"请稍后再试，或检查账户额度。{suffix}")
        elif isinstance(exc, openai.APIStatusError) and (status or 0) >= 500:
            kind, msg = "server", f"大模型服务端出错（HTTP {status}）：{where}。请稍后再试。{suffix}"
        elif isinstance(exc, openai.APIStatusError):
            kind, msg = "bad_request", (f"大模型拒绝了请求（HTTP {status}）：{where}。"
                                        f"请检查模型名 TUTOR_LLM_MODEL 与服务是否兼容 OpenAI 协议。{suffix}")
        elif isinstance(exc, (openai.APIConnectionError, httpx.TransportError)) and not cut:
            kind, msg = "connection", (f"无法连接大模型服务：{where}。"
                                       "请确认服务已启动、地址（TUTOR_LLM_BASE_URL）正确、网络可达。")
        elif isinstance(exc, (openai.APIConnectionError, httpx.TransportError, ValueError, KeyError)):
            kind, msg = "stream", (f"大模型的流式回复中断或格式错误：{where}。"
                                   "服务可能中途断开，或不完全兼容 OpenAI 的 SSE 格式。")
        else:
            kind, msg = "stream", f"调用大模型时出错（{type(exc).__name__}）：{where}。"
        log.info("LLM call failed: kind=%s status=%s endpoint=%s model=%s", kind, status, self.endpoint, self.model)
        return LLMError(kind, msg, endpoint=self.endpoint, model=self.model, status=status)


def get_llm(settings: Settings) -> ChatBackend | None:
    """The configured chat model, or None for offline mode (no `llm_model` set)."""
    if not settings.llm_enabled:
        return None
    return ChatBackend(settings)
