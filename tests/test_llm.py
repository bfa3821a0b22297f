"""The OpenAI-compatible chat backend (tutor/llm.py) against a real loopback server.

The real `langchain-openai` / `openai` clients talk HTTP to `tests/openai_server.py`; these tests
check what goes over the wire, what comes back, and that every failure becomes one Chinese
`LLMError` naming the endpoint and model and never the key.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time

import pytest

from tests.openai_server import Response, embed
from tutor.llm import LLMError, get_llm, public_endpoint, redact
from tutor.settings import Settings

KEY = "sk-test-SECRET-0123456789abcdef"


def make_settings(url: str, **kw) -> Settings:
    base = dict(llm_model="test-model", llm_base_url=url, llm_api_key=KEY, llm_timeout=2.0, llm_max_retries=0)
    base.update(kw)
    return Settings(**base)


@pytest.fixture
def llm(tutor_env, openai_server):
    return get_llm(make_settings(openai_server.url))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed when the with-block ends: connecting is refused


def assert_no_key(*texts: str) -> None:
    for t in texts:
        assert KEY not in t
        assert KEY[:12] not in t and KEY[-8:] not in t


# --- configuration -------------------------------------------------------------------------

def test_no_model_means_offline(tutor_env):
    settings = Settings()
    assert get_llm(settings) is None
    assert "离线模式" in settings.describe_llm()


def test_openai_env_vars_are_honoured(tutor_env, openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    monkeypatch.setenv("TUTOR_LLM_MODEL", "env-model")
    openai_server.reply("好")
    llm = get_llm(Settings())
    assert llm.complete([("user", "hi")]) == "好"
    req = openai_server.chat_requests[0]
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.body["model"] == "env-model"


def test_describe_and_repr_never_show_the_key(llm, openai_server):
    assert llm.describe() == f"test-model @ {openai_server.url}"
    assert_no_key(repr(llm), llm.describe())


def test_public_endpoint_strips_credentials_and_query():
    assert public_endpoint("https://user:pw@api.example.com:8443/v1/?key=abc") == "https://api.example.com:8443/v1"
    assert public_endpoint(None) == "https://api.openai.com/v1"


def test_redact_removes_key_and_key_like_tokens():
    msg = f"Incorrect API key provided: {KEY[:10]}*****{KEY[-4:]}; also Bearer {KEY}"
    out = redact(msg, KEY)
    assert_no_key(out)
    assert "Incorrect API key provided" in out


def test_importing_llm_does_not_import_langchain():
    code = "import sys, tutor.llm, tutor.chat; print('langchain_openai' in sys.modules, 'openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --- successful calls ----------------------------------------------------------------------

def test_stream_yields_deltas_and_sends_settings(llm, openai_server):
    openai_server.reply("多头注意力把表示拆成多个子空间。", chunks=["多头", "注意力把表示", "拆成多个子空间。"])
    deltas = list(llm.stream([{"role": "system", "content": "系统"}, {"role": "user", "content": "问题"}]))
    assert deltas == ["多头", "注意力把表示", "拆成多个子空间。"]
    req = openai_server.chat_requests[0]
    assert req.body["stream"] is True
    assert req.body["model"] == "test-model"
    assert req.body["temperature"] == 0.3
    assert req.body["messages"] == [{"role": "system", "content": "系统"}, {"role": "user", "content": "问题"}]
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers.get("x-stainless-read-timeout") == "2.0"


def test_complete_and_json_mode(llm, openai_server):
    openai_server.reply("普通回答")
    assert llm.complete([("user", "q")]) == "普通回答"
    assert "response_format" not in openai_server.chat_requests[0].body
    openai_server.reply_json({"score": 3, "missing": ["要点二"]})
    assert llm.complete_json([("user", "q")]) == {"score": 3, "missing": ["要点二"]}
    assert openai_server.chat_requests[1].body["response_format"] == {"type": "json_object"}
    assert openai_server.chat_requests[1].body["stream"] is False


def test_complete_json_tolerates_a_fence_and_rejects_prose(llm, openai_server):
    openai_server.reply('```json\n{"ok": true}\n```')
    assert llm.complete_json([("user", "q")]) == {"ok": True}
    openai_server.reply("我觉得得分是 3 分")
    with pytest.raises(LLMError) as err:
        llm.complete_json([("user", "q")])
    assert err.value.kind == "bad_json" and "JSON" in err.value.message


def test_retries_follow_settings(tutor_env, openai_server):
    llm = get_llm(make_settings(openai_server.url, llm_max_retries=1))
    openai_server.error(500, "boom")
    openai_server.reply("第二次成功")
    assert llm.complete([("user", "q")]) == "第二次成功"
    assert [r.headers.get("x-stainless-retry-count") for r in openai_server.chat_requests] == ["0", "1"]


# --- every failure becomes one LLMError -----------------------------------------------------

@pytest.mark.parametrize("status,kind,phrase", [
    (401, "auth", "鉴权失败"),
    (403, "auth", "鉴权失败"),
    (429, "rate_limit", "过于频繁"),
    (500, "server", "服务端出错"),
    (503, "server", "服务端出错"),
    (404, "bad_request", "TUTOR_LLM_MODEL"),
])
@pytest.mark.parametrize("streaming", [True, False])
def test_http_errors(llm, openai_server, caplog, status, kind, phrase, streaming):
    caplog.set_level(logging.DEBUG)
    openai_server.error(status, f"Incorrect API key provided: {KEY[:10]}****{KEY[-4:]}")
    with pytest.raises(LLMError) as err:
        if streaming:
            list(llm.stream([("user", "q")]))
        else:
            llm.complete([("user", "q")])
    e = err.value
    assert e.kind == kind and e.status == status
    assert phrase in e.message and f"HTTP {status}" in e.message
    assert "test-model" in e.message and openai_server.url in e.message
    assert e.__cause__ is None and e.__suppress_context__  # the client's exception (with the echo) is not shown
    assert_no_key(str(e), repr(e), caplog.text, *map(str, e.args))


def test_timeout(tutor_env, openai_server):
    llm = get_llm(make_settings(openai_server.url, llm_timeout=0.5))
    openai_server.stall(5)
    start = time.monotonic()
    with pytest.raises(LLMError) as err:
        list(llm.stream([("user", "q")]))
    assert err.value.kind == "timeout"
    assert "超时" in err.value.message and "0.5 秒" in err.value.message and "TUTOR_LLM_TIMEOUT" in err.value.message
    assert time.monotonic() - start < 3


def test_stall_in_the_middle_of_a_stream_is_a_timeout(tutor_env, openai_server):
    llm = get_llm(make_settings(openai_server.url, llm_timeout=0.5))
    openai_server.reply("前半句后半句", chunks=["前半句", "后半句"], chunk_delay=3)
    got = []
    with pytest.raises(LLMError) as err:
        for d in llm.stream([("user", "q")]):
            got.append(d)
    assert got == ["前半句"] and err.value.kind == "timeout"


def test_connection_refused(tutor_env):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    llm = get_llm(make_settings(url))
    with pytest.raises(LLMError) as err:
        list(llm.stream([("user", "q")]))
    assert err.value.kind == "connection"
    assert "无法连接" in err.value.message and url in err.value.message and "TUTOR_LLM_BASE_URL" in err.value.message
    assert_no_key(str(err.value))


@pytest.mark.parametrize("mode", ["truncated", "malformed"])
def test_broken_stream_after_partial_text(llm, openai_server, mode):
    getattr(openai_server, mode)("已经输出的一半")
    got = []
    with pytest.raises(LLMError) as err:
        for d in llm.stream([("user", "q")]):
            got.append(d)
    assert "".join(got) == "已经输出的一半"  # the caller saw the partial text before the failure
    assert err.value.kind == "stream" and "中断或格式错误" in err.value.message
    assert "test-model" in err.value.message


def test_empty_reply_is_an_error(llm, openai_server):
    openai_server.reply("")
    with pytest.raises(LLMError) as err:
        list(llm.stream([("user", "q")]))
    assert err.value.kind == "empty"


# --- the loopback server's other endpoints (used by embeddings, speech and UI work) ---------

def test_embeddings_are_deterministic_in_float_and_base64(openai_server):
    import openai

    client = openai.OpenAI(base_url=openai_server.url, api_key=KEY, max_retries=0)
    openai_server.embedding_dim = 8
    got = client.embeddings.create(model="emb", input=["注意力机制", "KV Cache"])  # client asks for base64
    assert openai_server.requests[-1].body["encoding_format"] == "base64"
    assert got.data[0].embedding == pytest.approx(embed("注意力机制", 8), abs=1e-6)  # float32 round trip
    assert got.data[1].embedding == pytest.approx(embed("KV Cache", 8), abs=1e-6)
    raw = client.embeddings.create(model="emb", input="注意力机制", encoding_format="float")
    assert raw.data[0].embedding == pytest.approx(embed("注意力机制", 8))
    sim = sum(a * b for a, b in zip(embed("多头注意力机制", 64), embed("注意力机制", 64)))
    assert sim > sum(a * b for a, b in zip(embed("红烧肉做法", 64), embed("注意力机制", 64)))


def test_scripted_error_on_embeddings(openai_server):
    import openai

    client = openai.OpenAI(base_url=openai_server.url, api_key=KEY, max_retries=0)
    openai_server.error(401, "bad key", path="/v1/embeddings")
    with pytest.raises(openai.AuthenticationError):
        client.embeddings.create(model="emb", input="x")


def test_custom_route_with_multipart_upload(openai_server, tmp_path):
    """The hook later audio work uses: a route handler sees the parsed multipart form."""
    import openai

    seen = {}

    def transcribe(rec, item):
        seen.update(rec.multipart())
        return Response(200, {"text": item.payload if item else "默认转写"})

    openai_server.route("/v1/audio/transcriptions", transcribe)
    from tests.openai_server import Reply

    openai_server.push("/v1/audio/transcriptions", Reply(payload="多头注意力"))
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF0000WAVEfmt ")
    client = openai.OpenAI(base_url=openai_server.url, api_key=KEY, max_retries=0)
    out = client.audio.transcriptions.create(model="whisper-1", file=audio.open("rb"), language="zh")
    assert out.text == "多头注意力"
    assert seen["model"] == "whisper-1" and seen["language"] == "zh"
    assert seen["file"] == ("a.wav", b"RIFF0000WAVEfmt ")


def test_missing_script_fails_loudly(llm, openai_server):
    with pytest.raises(LLMError) as err:
        llm.complete([("user", "q")])
    assert err.value.status == 500 and "no scripted reply" in err.value.message
    assert json.loads(openai_server.requests[0].raw)["messages"][0]["content"] == "q"
