"""The OpenAI-protocol client and error mapping shared by speech-to-text and text-to-speech.

Both speech directions talk to "any OpenAI-compatible server" (OpenAI itself, or a local Whisper/TTS
server such as speaches or LocalAI), each with its own endpoint, key and model, falling back to the LLM's
endpoint and key. This module builds that `openai.OpenAI` client and turns every client failure into one
`SpeechError` whose Chinese message names the service, endpoint and model and the setting to check, and
never contains the key (server messages are redacted with `tutor.llm.redact`; the original exception is
not chained, since tracebacks would print it).

Trade-off: the `openai` client (~0.9 s import) is imported only when a speech backend is used; its
retries (`llm_max_retries`) and timeout (`llm_timeout`) are shared with the chat model's settings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tutor.audio import SpeechError
from tutor.llm import PLACEHOLDER_KEY, public_endpoint, redact, server_message
from tutor.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Endpoint:
    """Where one speech service lives: the URL as given, the shown URL, the model, the key (secret)."""

    service: str  # 语音识别 | 语音合成
    env: str  # STT | TTS: names the settings in messages
    base_url: str | None
    model: str
    key: str | None

    @property
    def shown(self) -> str:
        return public_endpoint(self.base_url)

    def describe(self) -> str:
        return f"{self.model} @ {self.shown}"


def endpoint(settings: Settings, which: str, default_model: str) -> Endpoint:
    """The STT or TTS endpoint: its own TUTOR_{STT,TTS}_* settings, else the LLM's URL and key."""
    base = getattr(settings, f"{which}_base_url") or settings.llm_base_url
    secret = getattr(settings, f"{which}_api_key") or settings.llm_api_key
    service = "语音识别" if which == "stt" else "语音合成"
    return Endpoint(service, which.upper(), base, getattr(settings, f"{which}_model") or default_model,
                    secret.get_secret_value() if secret else None)


def client(ep: Endpoint, settings: Settings):
    import openai  # lazy: only when a speech backend talks to a server

    kwargs = {"base_url": ep.base_url} if ep.base_url else {}
    return openai.OpenAI(api_key=ep.key or PLACEHOLDER_KEY, timeout=settings.llm_timeout,
                         max_retries=settings.llm_max_retries, **kwargs)


def api_error(exc: Exception, ep: Endpoint, path: str, timeout: float) -> SpeechError:
    """Map an `openai` client exception to a SpeechError naming service, endpoint and model."""
    import openai

    where = f"{ep.describe()}（{path}）"
    status = getattr(exc, "status_code", None)
    detail = redact(server_message(exc), ep.key)[:200]
    suffix = f"（服务端信息：{detail}）" if detail else ""
    s, env = ep.service, ep.env
    if isinstance(exc, openai.APITimeoutError):
        kind, msg = "timeout", f"{s}请求超时（{timeout:g} 秒）：{where}。可调大 TUTOR_LLM_TIMEOUT，或检查服务是否过载。"
    elif isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        kind, msg = "auth", (f"{s}服务鉴权失败（HTTP {status}）：{where}。请检查 TUTOR_{env}_API_KEY"
                             f"（未设置时用 TUTOR_LLM_API_KEY / OPENAI_API_KEY）。{suffix}")
    elif isinstance(exc, openai.RateLimitError):
        kind, msg = "rate_limit", f"{s}请求过于频繁或额度不足（HTTP 429）：{where}。请稍后再试。{suffix}"
    elif isinstance(exc, openai.APIStatusError) and status == 404:
        kind, msg = "bad_request", (f"{s}服务没有这个接口或模型（HTTP 404）：{where}。请确认服务支持 {path}，"
                                    f"模型名 TUTOR_{env}_MODEL 正确。{suffix}")
    elif isinstance(exc, openai.APIStatusError) and status == 413:
        kind, msg = "bad_request", f"{s}服务拒绝了过大的请求（HTTP 413）：{where}。请缩短录音。{suffix}"
    elif isinstance(exc, openai.APIStatusError) and (status or 0) >= 500:
        kind, msg = "server", f"{s}服务端出错（HTTP {status}）：{where}。请稍后再试。{suffix}"
    elif isinstance(exc, openai.APIStatusError):
        kind, msg = "bad_request", (f"{s}服务拒绝了请求（HTTP {status}）：{where}。"
                                    f"请检查模型名 TUTOR_{env}_MODEL 与服务是否兼容 OpenAI 协议。{suffix}")
    elif isinstance(exc, openai.APIConnectionError):
        kind, msg = "connection", (f"无法连接{s}服务：{where}。请确认服务已启动、地址 TUTOR_{env}_BASE_URL"
                                   "（未设置时用 TUTOR_LLM_BASE_URL）正确、网络可达。")
    else:
        kind, msg = "server", f"调用{s}服务时出错（{type(exc).__name__}）：{where}。"
    log.info("speech call failed: kind=%s status=%s endpoint=%s model=%s", kind, status, ep.shown, ep.model)
    return SpeechError(kind, msg)
