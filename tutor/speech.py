"""Spoken answers: an audio file -> a checked 16 kHz clip -> a transcript the user confirms -> the grader.

    stt = SpeechToText(settings, corpus)                      # SpeechError when STT is off or misconfigured
    result = stt.transcribe("answer.m4a", entry=entry)       # -> Transcription(text, duration, ...)
    # show result.text, let the user accept or correct it, then:
    grade = grader.grade(entry, corrected_or_accepted_text)

This is the one entry point features use (the terminal interview, the web UI); the parts live in
`tutor/audio.py` (decode, convert, reject bad audio), `tutor/stt.py` (recognition backends) and
`tutor/tts.py` (reading questions aloud). `SpeechError` (from `tutor.audio`) is the one error type:
its message is Chinese and shown as is.

Technical terms. Whisper-style recognisers write what they expect; "KV Cache" spoken inside Chinese often
comes back as "KV 开始". So every request carries the corpus's English technical terms, taken from the
questions, aliases and key points (not the answers, whose code and formulas would be noise), ranked by how
many entries use them, with the current question's own terms first and again as faster-whisper hotwords.
A term is kept when it looks technical: an acronym or CamelCase (SFT, LayerNorm, RoPE), letters with digits
(GPT-3, fp16), a capitalised phrase (KV Cache), or any spelling in the glossary (softmax). The prompt is
capped at ~400 characters because Whisper reads at most 224 prompt tokens.

Privacy: the audio is not kept. A path is read in place (the caller owns it), bytes go through one temp
file that is deleted, and only `keep_audio=True` saves the converted 16 kHz wav under
data_dir/recordings/ (its path is returned so the user can find it).
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable

from tutor.audio import AUDIO_SUFFIXES, AudioClip, SpeechError, load_audio
from tutor.corpus import Corpus, Entry
from tutor.settings import Settings
from tutor.stt import TermsPrompt, Transcriber, get_transcriber
from tutor.text import STOPWORDS, canonicalize, normalize

__all__ = ["SpeechError", "SpeechToText", "Transcription", "AUDIO_SUFFIXES", "corpus_terms", "entry_terms",
           "terms_prompt"]

PROMPT_PREFIX = "以下是大模型算法岗面试的中文口语回答，英文术语保持英文原样："
PROMPT_CHARS = 400
HOTWORD_CHARS = 120
_TERM = re.compile(r"(?<![A-Za-z0-9_.])[A-Za-z][A-Za-z0-9]*(?:[-+.][A-Za-z0-9]+)*(?:[ \t]+[A-Z][A-Za-z0-9]*(?:[-+][A-Za-z0-9]+)*)*")
_EXTRA_STOP = {"why", "how", "what", "when", "where", "who", "not", "yes", "no", "if", "else", "than", "then"}


def _technical(term: str) -> bool:
    low = term.lower()
    if len(term) < 2 or low in STOPWORDS or low in _EXTRA_STOP or "+" in term:
        return False
    if any(c.isupper() for c in term[1:]) or (term.isupper() and len(term) >= 2):
        return True  # SFT, LayerNorm, RoPE, KV Cache
    if " " in term or any(c.isdigit() for c in term):
        return True  # Transformer Encoder, fp16, GPT-3
    return canonicalize(normalize(term)).strip() != low  # a glossary spelling: softmax, warmup


def entry_terms(entry: Entry) -> list[str]:
    """The entry's technical English terms, in order of first appearance."""
    seen: dict[str, str] = {}
    for text in [entry.question, *entry.aliases, *entry.key_points]:
        for m in _TERM.finditer(text):
            words = m.group(0).split()
            while len(words) > 1 and (words[0].lower() in STOPWORDS or words[0].lower() in _EXTRA_STOP):
                words.pop(0)  # "the KV Cache" -> "KV Cache"
            term = " ".join(words)
            if _technical(term):
                seen.setdefault(term.lower(), term)
    return list(seen.values())


def corpus_terms(entries: Iterable[Entry]) -> list[str]:
    """Technical terms of the whole corpus, the ones used by most entries first (most frequent casing)."""
    df: Counter[str] = Counter()
    casing: dict[str, Counter[str]] = {}
    for entry in entries:
        terms = entry_terms(entry)
        df.update({t.lower() for t in terms})
        for t in terms:
            casing.setdefault(t.lower(), Counter())[t] += 1
    ranked = sorted(df, key=lambda k: (-df[k], k))
    return [casing[k].most_common(1)[0][0] for k in ranked]


def terms_prompt(terms: list[str], entry: Entry | None = None, budget: int = PROMPT_CHARS) -> TermsPrompt:
    """The prompt (Chinese lead-in + terms, current question's first) and the question's hotwords."""
    own = entry_terms(entry) if entry is not None else []
    chosen: list[str] = []
    seen: set[str] = set()
    size = len(PROMPT_PREFIX) + 1
    for term in own + terms:
        if term.lower() in seen:
            continue
        if size + len(term) + 1 > budget:
            break
        seen.add(term.lower())
        chosen.append(term)
        size += len(term) + 1
    hot: list[str] = []
    for term in own:
        if sum(len(h) + 1 for h in hot) + len(term) > HOTWORD_CHARS:
            break
        hot.append(term)
    text = PROMPT_PREFIX + "、".join(chosen) + "。" if chosen else ""
    return TermsPrompt(text=text, hotwords=" ".join(hot))


@dataclass
class Transcription:
    """A transcript to show (and let the user edit) before grading."""

    text: str
    duration: float  # seconds of audio
    backend: str  # who transcribed it
    seconds: float  # how long recognition took
    audio_path: Path | None = None  # only with keep_audio=True


class SpeechToText:
    """Audio in, transcript out, using the configured backend and the corpus's terms."""

    def __init__(self, settings: Settings, corpus: Corpus | None = None, transcriber: Transcriber | None = None):
        self.settings = settings
        self.transcriber = transcriber or get_transcriber(settings)
        if self.transcriber is None:
            raise SpeechError("config", "语音识别未开启：请设置 TUTOR_STT_BACKEND=openai（任意兼容 OpenAI 的 Whisper 服务）"
                                        "或 faster-whisper（本地模型），见 docs/SPEECH.md。")
        self.terms = corpus_terms(corpus.entries) if corpus is not None else []

    def describe(self) -> str:
        return self.transcriber.describe()

    def load(self, source: str | Path | bytes, name: str = "") -> AudioClip:
        """Decode and check the audio (SpeechError for empty, corrupt, silent or over-long audio)."""
        return load_audio(source, max_seconds=self.settings.stt_max_seconds, name=name)

    def transcribe(self, source: str | Path | bytes, *, entry: Entry | None = None, keep_audio: bool = False,
                   name: str = "") -> Transcription:
        clip = self.load(source, name=name)
        saved = self._keep(clip, entry) if keep_audio else None
        t0 = time.perf_counter()
        text = self.transcriber.transcribe(clip, terms_prompt(self.terms, entry))
        return Transcription(text=text, duration=clip.duration, backend=self.transcriber.describe(),
                             seconds=round(time.perf_counter() - t0, 3), audio_path=saved)

    def _keep(self, clip: AudioClip, entry: Entry | None) -> Path:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", entry.id if entry else "answer")[:60]
        return clip.save(self.settings.data_dir / "recordings" / f"{stamp}-{slug}-{uuid.uuid4().hex[:6]}.wav")
