"""The segmenter against its reference: rjieba (Rust) and jieba (Python) must cut alike.

The tokens of BM25, the hashing embedder and the offline grader all come from `tutor.segment`.
If the fast backend cut differently from jieba, an index built on one machine would not match
queries tokenised on another, and the figures in eval/ would belong to the wrong tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tutor.corpus import load_corpus
from tutor.segment import HAN_RUN, Segmenter
from tutor.text import DOMAIN_WORDS, canonicalize, normalize, tokenize

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def han_runs() -> list[str]:
    """Every run of Chinese characters in the corpus, the eval queries and the calibration answers."""
    corpus = load_corpus(ROOT / "corpus")
    texts = []
    for e in corpus.entries:
        texts += [e.question, e.answer, *e.aliases, *e.key_points]
    for name in ("queries.jsonl", "grading_calibration.jsonl"):
        for line in (ROOT / "eval" / "data" / name).read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith(("#", "//")):
                row = json.loads(line)
                texts += [v for k, v in row.items() if k in ("query", "answer") and isinstance(v, str)]
    runs = sorted({m.group() for t in texts for m in HAN_RUN.finditer(canonicalize(normalize(t)))})
    assert len(runs) > 10_000
    return runs


def test_rjieba_is_the_default_backend_here():
    # The CI machine has an rjieba wheel; without it every figure in docs/PERFORMANCE.md is wrong.
    assert Segmenter().backend == "rjieba"


@pytest.mark.parametrize("hmm", [True, False])
@pytest.mark.parametrize("words", [{w: 2000 for w in DOMAIN_WORDS}, {"特征维度": 2_000_000, "不一致": 2_000_000}],
                         ids=["retriever-words", "grader-words"])
def test_rjieba_cuts_like_jieba(han_runs, hmm, words):
    fast, reference = Segmenter(words, backend="rjieba"), Segmenter(words, backend="jieba")
    differ = [(run, fast.cut(run, hmm), reference.cut(run, hmm)) for run in han_runs
              if fast.cut(run, hmm) != reference.cut(run, hmm)]
    assert not differ, f"{len(differ)} of {len(han_runs)} runs differ, e.g. {differ[:3]}"


def test_dictionary_lookups_agree(han_runs):
    words = {w: 2000 for w in DOMAIN_WORDS}
    fast, reference = Segmenter(words, backend="rjieba"), Segmenter(words, backend="jieba")
    parts = {run[i:i + n] for run in han_runs[:3000] for n in (2, 3) for i in range(len(run) - n + 1)}
    assert sum(reference.has_word(p) for p in parts) > 1000  # the check has teeth
    assert [p for p in parts if fast.has_word(p) != reference.has_word(p)] == []
    assert fast.has_word("大模型") and not fast.has_word("模型大")


def test_added_words_stay_private():
    mine = Segmenter({"特征维度": 2_000_000}, backend="rjieba")
    other = Segmenter(backend="rjieba")
    assert mine.cut("特征维度") == ["特征维度"]
    assert other.cut("特征维度") != ["特征维度"]


def test_characters_outside_jiebas_range_come_out_alone():
    for backend in ("rjieba", "jieba"):
        seg = Segmenter(backend=backend)
        assert seg.cut("注意\u3400力机制") == ["注意", "\u3400", "力", "机制"]


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="rjieba or jieba"):
        Segmenter(backend="pkuseg")


def test_latin_words_are_not_split_at_glossary_terms():
    # jieba's dictionary, given "albert", found the glossary term "bert" inside it; our Latin rule does not.
    assert "bert" not in tokenize("ALBERT 的参数共享")
    assert "albert" in tokenize("ALBERT 的参数共享")
    assert "nsp" not in tokenize("x.transpose(1, 2)")
    assert tokenize("BERT 的 NSP 任务")[:2] == ["bert", "nsp"]
    # Decimals and percentages stay one token; formula letters go; 学习率 is a glossary concept.
    assert tokenize("mask 掉 15% 的 token，学习率 3.5e-4") == ["mask", "掉", "15%", "token", "learningrate", "3.5", "4"]
