"""The glossary scan against its naive reference: every spelling tried at every position."""

from __future__ import annotations

import random
import re
from pathlib import Path

from tutor.corpus import load_corpus
from tutor.text import _glossary, canonicalize, normalize, tokenize

ROOT = Path(__file__).resolve().parents[1]


def reference_canonicalize(text: str) -> str:
    """The definition, written the slow obvious way: left to right, at each position the longest
    spelling that is there and, if ASCII, has no letter or digit on either side."""
    mapping, _ = _glossary()
    spellings = sorted(mapping, key=len, reverse=True)
    text = re.sub(r"\s+", " ", text)
    word = re.compile(r"[A-Za-z0-9]")
    out, i = [], 0
    while i < len(text):
        for s in spellings:
            end = i + len(s)
            if text.startswith(s, i) and not (s.isascii() and ((i > 0 and word.match(text[i - 1]))
                                                               or (end < len(text) and word.match(text[end])))):
                out.append(f" {mapping[s]} ")
                i = end
                break
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def test_canonicalize_matches_the_reference_on_corpus_text():
    corpus = load_corpus(ROOT / "corpus")
    texts = [normalize(t) for e in corpus.entries[::4] for t in (e.question, e.answer[:600], *e.key_points)]
    assert sum(canonicalize(t) != t for t in texts) > 100  # the glossary does fire on this text
    assert [t for t in texts if canonicalize(t) != reference_canonicalize(t)] == []


def test_canonicalize_matches_the_reference_on_fuzzed_text():
    """Spellings glued to letters, digits, Chinese and each other: where boundary rules and
    longest-match decide."""
    mapping, _ = _glossary()
    spellings = sorted(mapping)
    rng = random.Random(7)
    glue = ["", " ", "a", "x1", "的", "和", "2", "-", "模型", "s", "ing"]
    texts = []
    for _ in range(1500):
        parts = [rng.choice(spellings if rng.random() < 0.6 else glue) for _ in range(rng.randint(1, 6))]
        texts.append("".join(parts))
    assert [t for t in texts if canonicalize(t) != reference_canonicalize(t)] == []


def test_ascii_spellings_need_word_boundaries():
    assert "layernorm" in canonicalize("用 ln 做归一化").split()
    assert "layernorm" not in canonicalize("kiln 和 lnx").split()
    assert canonicalize("层归一化").split() == ["layernorm"]
    assert "ALBERT".lower() in tokenize("ALBERT 模型")
