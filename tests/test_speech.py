"""Spoken answers end to end, with real audio and real tools.

Real Chinese speech is made with espeak-ng (voice cmn-latn-pinyin) and converted with ffmpeg to what
browsers and phones produce (webm/opus streamed without a duration, ogg/vorbis, mp3, m4a/AAC). Each file goes
through our conversion (both decoders: the ffmpeg subprocess and PyAV) and through the real `openai` client to
the loopback OpenAI-protocol server, whose transcription route CHECKS the upload (a parseable 16 kHz mono
16-bit wav whose length matches the source as measured by sox, language zh, the corpus terms in the prompt)
before returning a scripted transcript, which is then graded against an entry. Bad audio (empty, sox-made
silence, corrupt bytes, a file with no audio track, too short, over the length limit) is rejected before
anything is uploaded. Text-to-speech: espeak-ng output is a valid wav whose length grows with the text; the
OpenAI speech route gets the right request and its audio is validated. faster-whisper: its `decode_audio`
agrees with our converted file, and a model that is not on disk fails fast, with our message and without a
single network request (Hugging Face pointed at a loopback server that records requests). Finally `tutor
interview --voice` runs in a subprocess, fed audio paths on stdin.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_entry
from tests.openai_server import Reply, Response
from tutor.audio import SpeechError, load_audio
from tutor.corpus import load_corpus
from tutor.grading import build_grader
from tutor.settings import Settings
from tutor.speech import SpeechToText, corpus_terms, entry_terms, terms_prompt

ROOT = Path(__file__).resolve().parents[1]
ANSWER = "KV Cache 就是在推理的时候把每一层已经算过的 Key 和 Value 缓存起来，这样解码每一步只需要算新 token 的注意力，避免了重复计算。"
KPS = ["推理时缓存每一层已经算过的 Key 和 Value", "解码每一步只需要计算新 token 的注意力，避免重复计算",
       "显存占用随序列长度和 batch 线性增长"]
TOLERANCE = 0.1  # seconds: AAC/MP3 encoder delay and padding
TRANSCRIPTIONS = "/v1/audio/transcriptions"
SPEECH = "/v1/audio/speech"


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, timeout=120, **kw)
    assert proc.returncode == 0, f"{cmd[0]} failed: {proc.stderr.decode(errors='replace')[-500:]}"
    return proc


def soxi_seconds(path: Path) -> float:
    return float(run(["soxi", "-D", str(path)]).stdout)


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> dict[str, Path]:
    """Real speech in every format users upload, plus each kind of bad audio."""
    d = tmp_path_factory.mktemp("audio")
    src = d / "answer.wav"
    run(["espeak-ng", "-v", "cmn-latn-pinyin", "-w", str(src), ANSWER])
    files = {"wav": src}
    ff = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src)]
    # A browser's MediaRecorder streams webm/opus: no duration in the header. Writing to a pipe does the same.
    files["webm"] = d / "answer.webm"
    files["webm"].write_bytes(run(ff + ["-c:a", "libopus", "-f", "webm", "pipe:1"]).stdout)
    for fmt, codec in (("ogg", "libvorbis"), ("mp3", "libmp3lame"), ("m4a", "aac")):
        files[fmt] = d / f"answer.{fmt}"
        run(ff + ["-c:a", codec, str(files[fmt])])
    files["empty"] = d / "empty.wav"
    files["empty"].write_bytes(b"")
    files["silence"] = d / "silence.wav"
    run(["sox", "-n", "-r", "16000", "-c", "1", str(files["silence"]), "trim", "0", "3"])
    files["corrupt"] = d / "corrupt.webm"
    files["corrupt"].write_bytes(np.random.default_rng(0).integers(0, 256, 8000, dtype=np.uint8).tobytes())
    files["truncated"] = d / "truncated.m4a"  # a real m4a cut in half: its index (moov) is gone
    files["truncated"].write_bytes(files["m4a"].read_bytes()[: files["m4a"].stat().st_size // 2])
    files["video"] = d / "video.mp4"  # no audio track at all
    run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=black:s=64x64:d=1",
         "-c:v", "mpeg4", str(files["video"])])
    files["short"] = d / "short.wav"
    run(["sox", str(src), str(files["short"]), "trim", "0.5", "0.15"])
    files["long"] = d / "long.wav"  # real speech, 38 times over: about 5 minutes 20 s
    run(["sox", *[str(src)] * 38, str(files["long"])])
    assert soxi_seconds(files["long"]) > 300
    return files


@pytest.fixture
def corpus(tutor_env):
    root = tutor_env / "corpus"
    write_entry(root / "1.基础" / "推理.md", "kv-cache", "KV Cache 是什么？为什么能加速推理？", "推理时缓存 K、V……",
                key_points=KPS, tags="inference,kv-cache")
    write_entry(root / "1.基础" / "归一化.md", "ln", "LayerNorm 和 RMSNorm 有什么区别？", "RMSNorm 去掉了均值……",
                key_points=["LayerNorm 减均值再除以标准差", "RMSNorm 只除以均方根，不减均值", "RMSNorm 更快"],
                tags="normalization", topic="归一化")
    return load_corpus(root)


def transcription_route(server, received: list[dict]):
    """/v1/audio/transcriptions that checks the upload; `Reply(payload=(transcript, expected_seconds))`."""

    def handler(rec, item):
        form = rec.multipart()
        problems = []
        name, data = form.get("file", ("", b""))
        try:
            with wave.open(io.BytesIO(data)) as w:
                channels, rate, width, frames = w.getnchannels(), w.getframerate(), w.getsampwidth(), w.getnframes()
        except (wave.Error, EOFError) as exc:
            return Response(400, {"error": {"message": f"not a wav: {exc}", "type": "invalid_request_error"}})
        text, expected = item.payload
        seconds = frames / rate
        if (channels, rate, width) != (1, 16000, 2):
            problems.append(f"want 16 kHz mono 16-bit, got {rate} Hz, {channels} ch, {8 * width} bit")
        if abs(seconds - expected) > TOLERANCE:
            problems.append(f"duration {seconds:.3f} s, source {expected:.3f} s")
        if form.get("language") != "zh":
            problems.append(f"language {form.get('language')!r}")
        if problems:
            return Response(400, {"error": {"message": "; ".join(problems), "type": "invalid_request_error"}})
        received.append({**form, "seconds": seconds, "filename": name})
        return Response(200, {"text": text})

    server.route(TRANSCRIPTIONS, handler)


def stt_settings(server, tutor_env, **kw) -> Settings:
    return Settings(stt_backend="openai", stt_base_url=server.url, stt_api_key="sk-test-stt-key-123456",
                    llm_max_retries=0, **kw)


# --- conversion ------------------------------------------------------------------------------

@pytest.mark.parametrize("decoder", ["ffmpeg", "av"])
@pytest.mark.parametrize("fmt", ["wav", "webm", "ogg", "mp3", "m4a"])
def test_every_format_converts_to_16k_mono_of_the_right_length(audio, fmt, decoder):
    source = soxi_seconds(audio["wav"])
    clip = load_audio(audio[fmt], decoder=decoder)
    assert clip.sample_rate == 16000 and clip.samples.dtype == np.int16 and clip.samples.ndim == 1
    assert abs(clip.duration - source) <= TOLERANCE
    assert clip.speech_seconds() > 0.5 * source  # espeak speech is mostly voiced
    with wave.open(io.BytesIO(clip.wav_bytes())) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth(), w.getnframes()) == (1, 16000, 2, len(clip.samples))


def test_both_decoders_give_the_same_samples_for_wav(audio):
    a, b = load_audio(audio["wav"], decoder="ffmpeg"), load_audio(audio["wav"], decoder="av")
    assert len(a.samples) == len(b.samples)
    corr = np.corrcoef(a.samples.astype(float), b.samples.astype(float))[0, 1]
    assert corr > 0.99  # same resampler family, tiny filter differences at most


BAD = [("empty", "empty", "空的"), ("silence", "silent", "没有检测到说话声"), ("corrupt", "corrupt", "无法解码"),
       ("truncated", "corrupt", "无法解码"), ("video", "corrupt", "没有音轨"), ("short", "too_short", "太短"),
       ("long", "too_long", "300 秒")]


@pytest.mark.parametrize("decoder", ["ffmpeg", "av"])
@pytest.mark.parametrize("name,kind,words", BAD, ids=[b[0] for b in BAD])
def test_bad_audio_is_rejected_with_a_clear_message(audio, name, kind, words, decoder):
    t0 = time.perf_counter()
    with pytest.raises(SpeechError) as err:
        load_audio(audio[name], max_seconds=300, decoder=decoder)
    assert err.value.kind == kind and words in str(err.value), str(err.value)
    assert audio[name].name in str(err.value)  # says which file
    assert time.perf_counter() - t0 < 10  # the long file is decoded only up to the limit


def test_the_limit_comes_from_settings_and_uploads_leave_no_temp_files(audio, corpus, tutor_env, openai_server,
                                                                     monkeypatch):
    tmp = tutor_env / "tmp"
    tmp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    stt = SpeechToText(stt_settings(openai_server, tutor_env, stt_max_seconds=5), corpus)
    with pytest.raises(SpeechError, match="5 秒的上限") as err:
        stt.transcribe(audio["webm"].read_bytes(), name="answer.webm")  # ~8 s, as an upload
    assert err.value.kind == "too_long"
    assert list(tmp.iterdir()) == [] and openai_server.requests == []


# --- transcription and grading ----------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["wav", "webm", "ogg", "mp3", "m4a"])
def test_spoken_answer_is_transcribed_by_the_server_and_graded(audio, fmt, corpus, tutor_env, openai_server,
                                                               monkeypatch):
    tmp = tutor_env / "tmp"
    tmp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(tmp))
    received: list[dict] = []
    transcription_route(openai_server, received)
    openai_server.push(TRANSCRIPTIONS, Reply(payload=(ANSWER, soxi_seconds(audio["wav"]))))
    settings = stt_settings(openai_server, tutor_env, stt_model="whisper-large-v3")
    entry = corpus.get("kv-cache")

    source = audio[fmt].read_bytes() if fmt == "webm" else audio[fmt]  # webm arrives as a browser upload
    result = SpeechToText(settings, corpus).transcribe(source, entry=entry, name=f"answer.{fmt}")

    assert result.text == ANSWER and result.audio_path is None
    assert abs(result.duration - soxi_seconds(audio["wav"])) <= TOLERANCE
    [form] = received
    assert form["model"] == "whisper-large-v3" and form["filename"].endswith(".wav")
    prompt = form["prompt"]
    assert prompt.startswith("以下是大模型算法岗面试的中文口语回答") and len(prompt) <= 400
    assert prompt.index("KV Cache") < prompt.index("LayerNorm")  # the question's own terms first
    rec = openai_server.requests[0]
    assert rec.headers["authorization"] == "Bearer sk-test-stt-key-123456"
    # Not kept: no recordings, no temp files.
    assert not (settings.data_dir / "recordings").exists() and list(tmp.iterdir()) == []

    grade = build_grader(Settings(grader="offline"), corpus).grade(entry, result.text)
    assert [k.verdict for k in grade.key_points] == ["covered", "covered", "missed"]
    assert 5 <= grade.score <= 8 and grade.answer == ANSWER


def test_keep_audio_saves_the_converted_wav(audio, corpus, tutor_env, openai_server):
    received: list[dict] = []
    transcription_route(openai_server, received)
    openai_server.push(TRANSCRIPTIONS, Reply(payload=(ANSWER, soxi_seconds(audio["wav"]))))
    settings = stt_settings(openai_server, tutor_env)
    result = SpeechToText(settings, corpus).transcribe(audio["m4a"], entry=corpus.get("kv-cache"), keep_audio=True)
    assert result.audio_path and result.audio_path.parent == settings.data_dir / "recordings"
    assert "kv-cache" in result.audio_path.name
    assert abs(soxi_seconds(result.audio_path) - soxi_seconds(audio["wav"])) <= TOLERANCE
    with wave.open(str(result.audio_path)) as w:
        assert (w.getnchannels(), w.getframerate()) == (1, 16000)
    assert received[0]["model"] == "whisper-1"  # the default model


def test_bad_audio_never_reaches_the_server(audio, corpus, tutor_env, openai_server):
    stt = SpeechToText(stt_settings(openai_server, tutor_env), corpus)
    for name in ("empty", "silence", "corrupt", "long"):
        with pytest.raises(SpeechError):
            stt.transcribe(audio[name])
    assert openai_server.requests == []


def test_server_failures_name_endpoint_and_model_never_the_key(audio, corpus, tutor_env, openai_server):
    key = "sk-test-stt-key-123456"
    stt = SpeechToText(stt_settings(openai_server, tutor_env, stt_model="whisper-1"), corpus)
    openai_server.route(TRANSCRIPTIONS, lambda rec, item: Response(200, {"text": item.payload}))
    openai_server.error(401, f"Incorrect API key provided: {key}", path=TRANSCRIPTIONS)
    with pytest.raises(SpeechError) as err:
        stt.transcribe(audio["wav"])
    msg = str(err.value)
    assert err.value.kind == "auth" and "TUTOR_STT_API_KEY" in msg and "whisper-1 @ http://127.0.0.1" in msg
    assert key not in msg and key[:8] not in msg

    openai_server.error(404, "model not found", path=TRANSCRIPTIONS)
    with pytest.raises(SpeechError, match="TUTOR_STT_MODEL") as err:
        stt.transcribe(audio["wav"])
    assert err.value.kind == "bad_request"

    openai_server.push(TRANSCRIPTIONS, Reply(payload="  "))
    with pytest.raises(SpeechError, match="没有识别出文字") as err:
        stt.transcribe(audio["wav"])
    assert err.value.kind == "no_text"

    dead = Settings(stt_backend="openai", stt_base_url="http://127.0.0.1:9/v1", llm_max_retries=0)
    with pytest.raises(SpeechError, match="无法连接语音识别服务") as err:
        SpeechToText(dead, corpus).transcribe(audio["wav"])
    assert err.value.kind == "connection" and "127.0.0.1:9" in str(err.value)


def test_stt_endpoint_and_key_default_to_the_llm(audio, corpus, tutor_env, openai_server):
    received: list[dict] = []
    transcription_route(openai_server, received)
    openai_server.push(TRANSCRIPTIONS, Reply(payload=(ANSWER, soxi_seconds(audio["wav"]))))
    settings = Settings(stt_backend="openai", llm_base_url=openai_server.url, llm_api_key="sk-llm-key-abcdef")
    assert SpeechToText(settings, corpus).transcribe(audio["ogg"]).text == ANSWER
    assert openai_server.requests[0].headers["authorization"] == "Bearer sk-llm-key-abcdef"


def test_speech_to_text_off_or_unknown_is_a_clear_error(corpus, tutor_env):
    with pytest.raises(SpeechError, match="TUTOR_STT_BACKEND"):
        SpeechToText(Settings(), corpus)
    with pytest.raises(SpeechError, match="未知的语音识别后端"):
        SpeechToText(Settings(stt_backend="vosk"), corpus)


def test_corpus_terms_keep_english_technical_terms(tutor_env):
    real = load_corpus(Settings().corpus_dir, strict=False)
    terms = corpus_terms(real.entries)
    for term in ("KV Cache", "LayerNorm", "RoPE", "SFT", "LoRA", "FlashAttention"):
        assert term in terms
    assert not {"the", "What", "How", "vs"} & set(terms)
    entry = next(e for e in real.entries if "RoPE" in entry_terms(e))
    prompt = terms_prompt(terms, entry)
    assert len(prompt.text) <= 400 and "RoPE" in prompt.hotwords
    own = entry_terms(entry)
    first_other = next(t for t in terms if t.lower() not in {o.lower() for o in own})
    assert prompt.text.index("RoPE") < prompt.text.index(first_other)  # the question's own terms come first


# --- faster-whisper ---------------------------------------------------------------------------

def test_faster_whisper_decodes_our_converted_file_identically(audio, tmp_path):
    from faster_whisper import decode_audio
    from faster_whisper.feature_extractor import FeatureExtractor

    clip = load_audio(audio["webm"])
    path = clip.save(tmp_path / "converted.wav")
    theirs = decode_audio(str(path), sampling_rate=16000)
    assert theirs.dtype == np.float32 and len(theirs) == len(clip.samples)
    assert np.abs(theirs - clip.float32()).max() < 1e-3  # what we hand the model == what it would decode
    mel = FeatureExtractor()(clip.float32())  # the model's own front end accepts our samples
    assert mel.shape[0] == 80 and abs(mel.shape[1] - len(clip.samples) // 160) <= 1


def _in_subprocess(code: str, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=env.get("CWD"))


MISSING_MODEL = """
import json, time
from tutor.settings import Settings
from tutor.stt import get_transcriber
from tutor.audio import SpeechError
out = []
for model in ("small", "Systran/faster-whisper-large-v3"):
    t0 = time.perf_counter()
    try:
        get_transcriber(Settings(stt_backend="faster-whisper", stt_model=model))
        out.append({"model": model, "error": None})
    except SpeechError as exc:
        out.append({"model": model, "kind": exc.kind, "error": str(exc), "seconds": time.perf_counter() - t0})
print(json.dumps(out, ensure_ascii=False))
"""


def test_missing_faster_whisper_model_fails_fast_without_a_download(tmp_path, openai_server):
    # Hugging Face is pointed at the loopback server, which records every request: none may arrive.
    hub = openai_server.url.removesuffix("/v1")
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub, "HF_HUB_OFFLINE": "0", "CWD": str(tmp_path)}
    proc = _in_subprocess(MISSING_MODEL, env)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for r, repo in zip(results, ("Systran/faster-whisper-small", "Systran/faster-whisper-large-v3")):
        assert r["kind"] == "model_missing" and r["seconds"] < 5, r
        assert f"`{r['model']}`" in r["error"] and repo in r["error"] and "hf download" in r["error"]
        assert "不会在运行时下载" in r["error"] and "docs/SPEECH.md" in r["error"]
    assert openai_server.requests == []


def test_faster_whisper_bad_model_dir_and_name(tmp_path):
    from tutor.stt import get_transcriber

    (tmp_path / "not-a-model").mkdir()
    for model, words in ((str(tmp_path / "not-a-model"), "model.bin"), (str(tmp_path / "absent"), "找不到"),
                         ("huge-v9", "未知的 faster-whisper 模型名")):
        with pytest.raises(SpeechError, match=words) as err:
            get_transcriber(Settings(stt_backend="faster-whisper", stt_model=model))
        assert err.value.kind == "model_missing"


def test_faster_whisper_not_installed_names_the_extra(tmp_path):
    code = ("import sys; sys.modules['faster_whisper'] = None\n"  # what an install without the extra looks like
            "from tutor.settings import Settings\nfrom tutor.stt import get_transcriber\n"
            "try:\n    get_transcriber(Settings(stt_backend='faster-whisper'))\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    proc = _in_subprocess(code, {"CWD": str(tmp_path)})
    assert proc.stdout.startswith("SpeechError") and "llm-interview-tutor[whisper]" in proc.stdout, proc.stderr


# --- text-to-speech ---------------------------------------------------------------------------

def test_espeak_reads_questions_aloud(tutor_env):
    from tutor.tts import get_synthesizer

    tts = get_synthesizer(Settings(tts_backend="espeak"))
    short_text = "什么是注意力？"
    long_text = "第 2/5 题：为什么多头注意力要把查询、键和值投影到多个子空间，分别计算注意力以后再拼接起来？"
    short, long = tts.synthesize(short_text), tts.synthesize(long_text)
    for speech, text in ((short, short_text), (long, long_text)):
        with wave.open(io.BytesIO(speech.data)) as w:
            assert (w.getnchannels(), w.getsampwidth()) == (1, 2) and w.getframerate() == 22050
        chars = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
        assert 0.1 * chars <= speech.duration <= 0.6 * chars, (text, speech.duration)  # a syllable a character
        clip = load_audio(speech.data, name="q.wav")  # real sound, not silence
        assert clip.speech_seconds() > 0.3 * speech.duration
    assert long.duration > 3 * short.duration


def test_espeak_missing_or_wrong_voice_is_a_clear_message(tutor_env, monkeypatch):
    from tutor.tts import get_synthesizer

    with pytest.raises(SpeechError, match="cmn-latn-pinyin"):
        get_synthesizer(Settings(tts_backend="espeak", tts_voice="cmn"))
    empty = tutor_env / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a machine without espeak-ng
    with pytest.raises(SpeechError, match="apt install espeak-ng") as err:
        get_synthesizer(Settings(tts_backend="espeak"))
    assert err.value.kind == "missing_tool"


def test_openai_speech_endpoint(tutor_env, openai_server, audio):
    from tutor.tts import get_synthesizer

    wav = audio["wav"].read_bytes()
    openai_server.route(SPEECH, lambda rec, item: Response(200, item.payload, "audio/wav"))
    openai_server.push(SPEECH, Reply(payload=wav))
    tts = get_synthesizer(Settings(tts_backend="openai", tts_base_url=openai_server.url, tts_voice="nova"))
    speech = tts.synthesize("第 1/3 题：为什么注意力要除以根号 $\\sqrt{d_k}$？")
    assert speech.data == wav and speech.format == "wav"
    assert abs(speech.duration - soxi_seconds(audio["wav"])) <= TOLERANCE
    body = openai_server.requests[0].body
    assert body["model"] == "tts-1" and body["voice"] == "nova" and body["response_format"] == "wav"
    assert body["input"] == "第 1 题：为什么注意力要除以根号 sqrt d k ？"  # no markup, no "slash"

    openai_server.push(SPEECH, Reply(payload=audio["mp3"].read_bytes()))  # a server that ignores the format
    speech = tts.synthesize("什么是注意力？")
    assert speech.format == "mp3" and abs(speech.duration - soxi_seconds(audio["wav"])) < 0.2

    openai_server.push(SPEECH, Reply(payload=b"<html>oops</html>"))
    with pytest.raises(SpeechError, match="不是可用的音频") as err:
        tts.synthesize("什么是注意力？")
    assert err.value.kind == "bad_audio"


# --- the command line -------------------------------------------------------------------------

def _cli(args: list[str], stdin: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TUTOR_", "OPENAI_"))}
    return subprocess.run([sys.executable, "-m", "tutor.cli", *args], input=stdin, capture_output=True, text=True,
                          timeout=180, cwd=cwd, env={**base, "PYTHONPATH": str(ROOT), **env})


def test_interview_voice_in_a_subprocess(audio, corpus, tutor_env, openai_server):
    received: list[dict] = []
    transcription_route(openai_server, received)
    seconds = soxi_seconds(audio["wav"])
    openai_server.push(TRANSCRIPTIONS, Reply(payload=(ANSWER, seconds)))
    env = {"TUTOR_CORPUS_DIR": str(corpus.root), "TUTOR_DATA_DIR": str(tutor_env / "data"),
           "TUTOR_STT_BACKEND": "openai", "TUTOR_STT_BASE_URL": openai_server.url, "TUTOR_GRADER": "offline",
           "TUTOR_TTS_BACKEND": "espeak", "TUTOR_TTS_PLAYER": "soxi -D"}  # the "player" prints each question's length
    # A silent recording first (rejected, asked again), then the browser's webm, then Enter to accept.
    stdin = f"{audio['silence']}\n'{audio['webm']}'\n\n"
    proc = _cli(["interview", "--voice", "--topics", "inference", "-n", "1", "--follow-ups", "0", "--no-record"],
                stdin, env, tutor_env)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr + out
    assert "终端本身不录音" in out and "录音不会被保存" in out and "espeak-ng" in out
    assert "没有检测到说话声" in out and "silence.wav" in out
    assert f"转写结果（{seconds:.1f} 秒录音" in out and ANSWER in out
    assert re.search(r"得分 [\d.]+/10", out) and "# 模拟面试报告" in out
    spoken = [float(line) for line in out.splitlines() if line.strip().replace(".", "", 1).isdigit()]
    assert spoken and all(s > 1.0 for s in spoken)  # the question was synthesised and "played"
    assert len(received) == 1 and not (tutor_env / "data" / "recordings").exists()
    [saved] = (tutor_env / "data" / "interviews").glob("*.json")
    turn = json.loads(saved.read_text(encoding="utf-8"))["questions"][0]["turns"][0]
    assert turn["answer"] == ANSWER and turn["status"] == "answered"
    assert [k["verdict"] for k in turn["grade"]["key_points"]] == ["covered", "covered", "missed"]


def test_interview_voice_correction_is_graded_and_audio_kept_on_request(audio, corpus, tutor_env, openai_server):
    received: list[dict] = []
    transcription_route(openai_server, received)
    openai_server.push(TRANSCRIPTIONS, Reply(payload=("KV 开始就是缓存 Key 和 Value。", soxi_seconds(audio["wav"]))))
    env = {"TUTOR_CORPUS_DIR": str(corpus.root), "TUTOR_DATA_DIR": str(tutor_env / "data"),
           "TUTOR_STT_BACKEND": "openai", "TUTOR_STT_BASE_URL": openai_server.url, "TUTOR_GRADER": "offline"}
    correction = "KV Cache 就是推理时缓存每一层已经算过的 Key 和 Value"
    stdin = f"{audio['m4a']}\n{correction}\\\n，解码每一步只需要计算新 token 的注意力，避免重复计算。\n"
    proc = _cli(["interview", "--voice", "--keep-audio", "--topics", "inference", "-n", "1", "--follow-ups", "0",
                 "--no-record"], stdin, env, tutor_env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "KV 开始" in proc.stdout and "录音已保存" in proc.stdout
    [kept] = (tutor_env / "data" / "recordings").glob("*-kv-cache-*.wav")
    assert abs(soxi_seconds(kept) - soxi_seconds(audio["wav"])) <= TOLERANCE
    [saved] = (tutor_env / "data" / "interviews").glob("*.json")
    turn = json.loads(saved.read_text(encoding="utf-8"))["questions"][0]["turns"][0]
    assert turn["answer"].startswith(correction) and "避免重复计算" in turn["answer"]
    assert [k["verdict"] for k in turn["grade"]["key_points"]] == ["covered", "covered", "missed"]


def test_interview_voice_without_stt_configured_exits_with_the_reason(corpus, tutor_env):
    proc = _cli(["interview", "--voice", "-n", "1", "--no-record"], "",
                {"TUTOR_CORPUS_DIR": str(corpus.root), "TUTOR_DATA_DIR": str(tutor_env / "data")}, tutor_env)
    assert proc.returncode == 2 and "TUTOR_STT_BACKEND" in proc.stderr


def test_transcribe_and_speak_commands(audio, corpus, tutor_env, openai_server, monkeypatch, capsys):
    from tutor.cli import main

    received: list[dict] = []
    transcription_route(openai_server, received)
    openai_server.push(TRANSCRIPTIONS, Reply(payload=(ANSWER, soxi_seconds(audio["wav"]))))
    monkeypatch.setenv("TUTOR_CORPUS_DIR", str(corpus.root))
    monkeypatch.setenv("TUTOR_STT_BACKEND", "openai")
    monkeypatch.setenv("TUTOR_STT_BASE_URL", openai_server.url)
    assert main(["transcribe", str(audio["mp3"]), "--entry", "ln"]) == 0
    assert capsys.readouterr().out.strip() == ANSWER
    assert received[0]["prompt"].index("LayerNorm") < received[0]["prompt"].index("KV Cache")
    assert main(["transcribe", str(audio["silence"])]) == 1
    assert "没有检测到说话声" in capsys.readouterr().err

    monkeypatch.setenv("TUTOR_TTS_BACKEND", "espeak")
    out_wav = tutor_env / "q.wav"
    assert main(["speak", "为什么", "要", "warmup？", "-o", str(out_wav)]) == 0
    assert "已保存" in capsys.readouterr().out and soxi_seconds(out_wav) > 0.5


def test_audio_paths_from_a_terminal_and_a_player_that_fails(tutor_env, audio):
    from tutor.speech_cli import VoiceIO, as_audio_path

    assert as_audio_path(f"'{audio['webm']}'") == audio["webm"]  # drag-and-drop quotes
    assert as_audio_path("file:///tmp/my\\ answer.m4a") == Path("/tmp/my answer.m4a")
    assert as_audio_path("~/answer.ogg") == Path.home() / "answer.ogg"
    assert as_audio_path("跳过") is None and as_audio_path("KV Cache 缓存 K 和 V。") is None

    out = io.StringIO()
    voice = VoiceIO(Settings(tts_backend="espeak", tts_player="false"), None, listen=False, out=out)
    voice.speak("第 1/1 题：什么是注意力？")
    voice.speak("第 2/2 题：什么是 softmax？")
    assert out.getvalue().count("朗读失败") == 1 and voice.tts is None  # said once; the interview goes on
