"""Text processing for mixed Chinese/English technical text: normalise, canonicalise, tokenise.

Candidates write the same concept many ways: "层归一化", "Layer Norm", "LN", "layernorm". A glossary
(`tutor/data/glossary.txt`, one concept per line) maps every spelling to one canonical ASCII token
*before* tokenising, so BM25 and the hashing embedder see one term. Longest spelling wins
("梯度裁剪" before "裁剪"); English spellings match only at word boundaries, Chinese ones anywhere
(Chinese has no spaces). The trade-off: a wrong glossary line merges two concepts everywhere, so
the glossary holds only unambiguous, domain-specific equivalences.

After that, runs of Chinese characters are cut into words and their sub-words by jieba (`tutor/segment.py`,
its Rust port when installed; recall for compounds the dictionary does not know) and Latin text by
jieba's own rule for it; stopwords and punctuation go. `char_ngrams` gives the character
bigrams that make the offline embedder robust to typos and unsegmented phrasing.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from pathlib import Path

from tutor.segment import HAN_RUN, Segmenter

GLOSSARY_PATH = Path(__file__).parent / "data" / "glossary.txt"

# Function words and interview boilerplate that say nothing about the topic.
STOPWORDS = frozenset(
    """
    的 了 吗 呢 吧 啊 呀 么 嘛 是 在 有 和 与 及 或 而 就 都 也 还 又 这 那 这个 那个 这些 那些 一个 一种 一下 一些
    什么 为什么 为啥 怎么 怎么样 怎样 如何 哪些 哪个 哪里 多少 是否 能否 可以 可否 能 会 要 需要 应该 到底 究竟
    介绍 讲讲 讲一讲 说说 说一说 谈谈 聊聊 解释 描述 简述 请 请问 你 我 我们 他 它 它们 其 之 中 里 上 下 对 对于 把 被 给 让
    讲 一 几 几种 哪些 分别 以及 其中 通过 完 得 再 过 之后 以后 然后 还 还得 啥 咋 各 该 个 下 呗 哈 嗯 那 这样 那样 一般来说 话 说 进行 使用 用 用于 时候 时 后 前 呢 ? 吗 面试 问题 一般 通常 比较 具体 主要 哪 理解 知道 看 看法
    the a an of to in on for and or is are was be by with what why how which does do can could should
    please explain describe me you i we it its this that these those about between vs versus
    just together better best make makes made get gets got use used using uses need needed needs much many more
    most less than then there their they them when where who whom will would into from out over under after
    before during via without within also only really very so such each other some any if else not no my our
    your has have had been being am were at as but instead rather way ways thing things like know knew keep
    help helps happen happens tell walk through doing done did may might must here
    """.split()
)

# Chinese domain words jieba's general dictionary cuts apart ("大模型" -> 大 / 模型).
DOMAIN_WORDS = ("大模型", "语言模型", "预训练模型", "显存", "算力", "推理速度", "训练速度", "长文本", "上下文长度",
                "词向量", "损失函数", "优化器", "超参数", "学习率", "参数量", "计算量", "数据集", "评测集", "思维链")

_TOKEN_OK = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_DE_BETWEEN_HAN = re.compile(r"(?<=[\u4e00-\u9fff])的(?=[\u4e00-\u9fff])")
_ASCII_WORD = re.compile(r"[a-z0-9]+(?:[._+-][a-z0-9]+)*")


def normalize(text: str) -> str:
    """NFKC (full-width -> half-width, compatibility forms) and lower case."""
    return unicodedata.normalize("NFKC", text).lower()


@functools.lru_cache(maxsize=1)
def _glossary() -> tuple[dict[str, str], frozenset[str]]:
    """spelling -> canonical token (multi-word spellings also without their spaces), and the
    concept tokens (lines above `#@general`)."""
    mapping: dict[str, str] = {}
    concepts: set[str] = set()
    general = False
    for raw in GLOSSARY_PATH.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        general = general or line.startswith("#@general")
        if not line or line.startswith("#"):
            continue
        names = [re.sub(r"\s+", " ", normalize(n.strip())) for n in line.split("|") if n.strip()]
        if not general:
            concepts.add(names[0])
        for name in names:
            mapping.setdefault(name, names[0])
            mapping.setdefault(name.replace(" ", ""), names[0])
    return mapping, frozenset(concepts)


def is_concept(token: str) -> bool:
    """True for a glossary concept token (layernorm, kvcache, rope, ...): a domain term, not filler."""
    return token in _concepts()


def _concepts() -> frozenset[str]:
    return _glossary()[1]


def canonicalize(text: str) -> str:
    """Replace every glossary spelling with its canonical token (input must be normalised).

    Longest spelling wins; an ASCII spelling must sit at word boundaries ("ln" is not found
    inside "kiln"), a Chinese one may sit anywhere."""
    mapping, pattern = _spelling_pattern()
    return pattern.sub(lambda m: f" {mapping[m.group()]} ", re.sub(r"\s+", " ", text))


@functools.lru_cache(maxsize=1)
def _spelling_pattern() -> tuple[dict[str, str], re.Pattern]:
    """One regex for all ~1,200 spellings, shaped as their prefix trie: "ln(?:orm)?"-style nesting
    instead of a flat alternation, so the engine follows one path per start position instead of
    trying every spelling there (a flat alternation is ~20x slower than a Python scan; the trie
    is ~2x faster than one). At each node the longer continuations come first, so the match is
    the longest spelling whose boundary test passes: an ASCII spelling ends with a fixed-width
    look-behind (no letter or digit just before its first character) and a look-ahead (none just
    after its last). `tests/test_text.py` checks it against the naive every-spelling-everywhere scan."""
    mapping, _ = _glossary()
    trie: dict = {}
    for spelling in mapping:
        node = trie
        for ch in spelling:
            node = node.setdefault(ch, {})
        node[""] = spelling  # a spelling ends here

    def branch(node: dict) -> str:
        alternatives = [re.escape(ch) + branch(node[ch]) for ch in sorted(k for k in node if k)]
        if "" in node:
            spelling = node[""]
            alternatives.append(f"(?<![A-Za-z0-9].{{{len(spelling)}}})(?![A-Za-z0-9])" if spelling.isascii() else "")
        return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"

    return mapping, re.compile(branch(trie))


@functools.lru_cache(maxsize=1)
def _segmenter() -> Segmenter:
    return Segmenter({word: 2000 for word in DOMAIN_WORDS})


# What is not Chinese is cut by jieba's own rule for it: letters and digits (with a decimal part
# and a percent sign), every other character alone. Cutting Latin text ourselves, instead of
# letting jieba's dictionary split words at glossary terms ("albert" into "al" + "bert"), keeps
# words whole and makes the result the same for every segmenter backend.
_LATIN_PIECE = re.compile(r"[a-z0-9]+(?:\.\d+)?%?|\S")


def _segment(canon: str) -> list[str]:
    """Chinese runs through the segmenter, the text between them through `_LATIN_PIECE`."""
    cut = _segmenter().cut
    out: list[str] = []
    pos = 0
    for m in HAN_RUN.finditer(canon):
        out.extend(_LATIN_PIECE.findall(canon, pos, m.start()))
        out.extend(cut(m.group()))
        pos = m.end()
    out.extend(_LATIN_PIECE.findall(canon, pos))
    return out


def tokenize(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Canonical terms of `text`, in order, for BM25 and keyword matching."""
    # "旋转式的位置编码" is "旋转式位置编码" with a particle inserted: drop 的 between Chinese
    # characters so the glossary still sees the term (的 is a stopword anyway).
    canon = canonicalize(_DE_BETWEEN_HAN.sub("", normalize(text)))
    out = []
    for tok in _with_subwords(_segment(canon)):
        tok = tok.strip()
        if not tok or not _TOKEN_OK.search(tok):
            continue
        if not keep_stopwords and tok in STOPWORDS:
            continue
        if tok.isascii() and len(tok) == 1 and not tok.isdigit():
            continue  # lone letters (d, k, q) from formulas are noise
        out.append(stem(tok) if tok.isascii() and tok.isalpha() else tok)
    return out


def stem(word: str) -> str:
    """Fold English inflections ("values"/"value", "caching"/"cached"/"cache") so an English query
    meets the English words inside Chinese entries. Deliberately crude (a few suffix rules, then a
    final e), applied to index and query alike; glossary concepts are left as they are."""
    if is_concept(word) or len(word) <= 3:
        return word
    for suffix, repl, min_len in (("ies", "y", 5), ("ing", "", 6), ("ed", "", 5), ("es", "", 5), ("s", "", 4)):
        if word.endswith(suffix) and len(word) >= min_len and not word.endswith("ss"):
            word = word[: len(word) - len(suffix)] + repl
            break
    return word[:-1] if len(word) > 4 and word.endswith("e") else word


def _with_subwords(words: list[str]):
    """jieba's search mode, restricted to Chinese words: a long word also yields its known
    2- and 3-character parts (so "旋转位置编码" matches "旋转"). ASCII words stay whole."""
    known = _segmenter().has_word
    for w in words:
        if len(w) > 2 and not w.isascii():
            for n in (2, 3):
                for i in range(len(w) - n + 1):
                    part = w[i : i + n]
                    if part != w and known(part):
                        yield part
        yield w


def char_ngrams(text: str, n: int = 2) -> list[str]:
    """Character n-grams of the Chinese runs plus English words: typo-tolerant features."""
    norm = normalize(text)
    grams = []
    for run in _CJK_RUN.findall(norm):
        if len(run) < n:
            grams.append(run)
        grams.extend(run[i : i + n] for i in range(len(run) - n + 1))
    grams.extend(w for w in _ASCII_WORD.findall(norm) if len(w) > 1 and w not in STOPWORDS)
    return grams


@functools.lru_cache(maxsize=1)
def tokenizer_version() -> str:
    """Changes whenever tokenisation could change: anything derived from tokens must key on it."""
    import hashlib

    h = hashlib.sha1(GLOSSARY_PATH.read_bytes())
    h.update(" ".join(sorted(STOPWORDS)).encode())
    h.update(" ".join(DOMAIN_WORDS).encode())
    h.update(_DE_BETWEEN_HAN.pattern.encode())
    h.update(b"stem-v1 latin-pieces-v1")  # v1: Latin text cut by our rule, not jieba's DAG
    return h.hexdigest()[:8]


def compact(text: str) -> str:
    """Text with case, width, spaces and punctuation removed: for exact-question matching."""
    return "".join(ch for ch in normalize(text) if ch.isalnum())
