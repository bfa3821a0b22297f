"""Embedding backends behind one small interface, registered by name and chosen by settings.

- `hashing` (offline default): a stateless feature-hashing vectoriser over canonical terms and
  Chinese character bigrams (sublinear tf, L2-normalised, signed hashing into 1024 dims). It needs
  no weights, no torch, and gives the same vector for the same text in any process, so the index
  stays valid across runs and incremental ingest can re-embed one entry at a time. It deliberately
  has no IDF: corpus-dependent weights would make every edit invalidate every vector; BM25 in the
  retriever supplies the IDF side. It is a lexical-fuzzy signal (typos, partial phrases), not a
  semantic one.
- `sentence-transformers`: any local path or model name (bge-small-zh-v1.5, bge-m3, ...), loaded
  lazily; bge's retrieval instruction is added to queries for the models that want it.
- `openai`: any OpenAI-compatible `/v1/embeddings` endpoint.

Every backend reports `name` and `dim`; the vector store keeps one collection per (name, dim),
so switching models never mixes vectors.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import Counter
from typing import Callable, Protocol

import numpy as np

from tutor.settings import Settings
from tutor.text import canonicalize, char_ngrams, normalize, tokenize, tokenizer_version


class EmbeddingError(RuntimeError):
    """A backend that cannot run; the message says what is missing and how to get it."""


class Embedder(Protocol):
    name: str
    dim: int

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


FEATURE_WEIGHTS = {"t": 2.0, "c": 1.0}  # canonical terms, character bigrams


@functools.lru_cache(maxsize=500_000)
def _bucket(feature: str, dim: int) -> tuple[int, float]:
    """Bucket and sign of a feature. Memoised: the same terms and bigrams recur across chunks."""
    h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return h % dim, (1.0 if (h >> 63) & 1 else -1.0)


class HashingEmbedder:
    """Offline default: signed feature hashing of terms and character bigrams."""

    version = "v1"

    def __init__(self, dim: int = 1024):
        self.dim = dim
        # The vectors depend on the tokenizer (glossary, stopwords), so its version is in the name:
        # a glossary edit lands in a fresh collection instead of silently mixing old and new vectors.
        self.name = f"hashing-{self.version}-{tokenizer_version()}"

    def _features(self, text: str) -> Counter:
        feats = Counter(f"t:{t}" for t in tokenize(text))
        # Bigrams of the canonicalised text: known concepts are already one token whatever the
        # spelling; what is left (unknown words, typos) still overlaps character by character.
        feats.update(f"c:{g}" for g in char_ngrams(canonicalize(normalize(text))))
        # Raw bigrams too, at lower weight: a misspelt concept ("旋转位置编吗") escapes the glossary
        # and would otherwise share nothing with its correct spelling.
        feats.update(f"c:{g}" for g in char_ngrams(text))
        return feats

    def _vector(self, text: str) -> list[float]:
        vec = np.zeros(self.dim, dtype=np.float32)
        for feat, count in self._features(text).items():
            bucket, sign = _bucket(feat, self.dim)
            vec[bucket] += sign * (1.0 + math.log(count)) * FEATURE_WEIGHTS[feat[0]]
        norm = float(np.linalg.norm(vec))
        return (vec / norm if norm else vec).tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


BGE_ZH_QUERY_PREFIX = "为这个句子生成表示以用于检索相关文章："
BGE_EN_QUERY_PREFIX = "Represent this sentence for searching relevant passages: "


def query_prefix_for(model: str) -> str:
    """bge v1/v1.5 models want an instruction on short queries; bge-m3 and others do not."""
    lowered = model.lower()
    if "bge" in lowered and "m3" not in lowered and "reranker" not in lowered:
        return BGE_ZH_QUERY_PREFIX if "zh" in lowered else BGE_EN_QUERY_PREFIX
    return ""


class SentenceTransformerEmbedder:
    def __init__(self, model: str, device: str = "cpu", batch_size: int = 32):
        if not model:
            raise EmbeddingError(
                "sentence-transformers 后端需要模型名或本地路径：设置 TUTOR_EMBEDDING_MODEL，"
                "例如 BAAI/bge-small-zh-v1.5"
            )
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingError(
                "未安装 sentence-transformers。请运行: pip install 'llm-interview-tutor[embeddings]'"
            ) from exc
        try:
            self._model = SentenceTransformer(model, device=device)
        except Exception as exc:  # noqa: BLE001 - hub/network/path errors all mean "model not available"
            raise EmbeddingError(
                f"无法加载嵌入模型 `{model}`（本机没有缓存且无法下载）。请在联网机器上先下载："
                f"`python -c \"from sentence_transformers import SentenceTransformer as S; S('{model}')\"`，"
                f"或把 TUTOR_EMBEDDING_MODEL 设为本地模型目录。原因: {type(exc).__name__}: {exc}"
            ) from exc
        self.model = model
        self.batch_size = batch_size
        self.dim = int(self._model.get_sentence_embedding_dimension())
        self.name = f"st-{model}"
        self.query_prefix = query_prefix_for(model)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vecs = self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                  show_progress_bar=False)
        return [v.tolist() for v in vecs]

    def embed_query(self, text: str) -> list[float]:
        vec = self._model.encode([self.query_prefix + text], normalize_embeddings=True,
                                 show_progress_bar=False)[0]
        return vec.tolist()


class OpenAIEmbedder:
    """Any OpenAI-compatible /v1/embeddings endpoint. The dimension is learnt from one probe call."""

    def __init__(self, model: str, base_url: str | None, api_key: str | None, timeout: float = 60.0,
                 batch_size: int = 64):
        if not model:
            raise EmbeddingError("openai 嵌入后端需要模型名：设置 TUTOR_EMBEDDING_MODEL，例如 text-embedding-3-small")
        from openai import OpenAI

        self.model = model
        self.base_url = base_url
        self.batch_size = batch_size
        self._client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout,
                              max_retries=1)
        self.name = f"openai-{model}"
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = len(self._embed(["dimension probe"])[0])
        return self._dim

    def _embed(self, texts: list[str]) -> list[list[float]]:
        try:
            resp = self._client.embeddings.create(model=self.model, input=texts)
        except Exception as exc:  # noqa: BLE001
            where = self.base_url or "https://api.openai.com/v1"
            raise EmbeddingError(f"嵌入服务 {where}（模型 {self.model}）调用失败: {type(exc).__name__}") from exc
        return [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            out.extend(self._embed(texts[i : i + self.batch_size]))
        if out and self._dim is None:
            self._dim = len(out[0])
        return out

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text])[0]


def _secret(value) -> str | None:
    return value.get_secret_value() if value is not None else None


BACKENDS: dict[str, Callable[[Settings], Embedder]] = {
    "hashing": lambda s: HashingEmbedder(),
    "sentence-transformers": lambda s: SentenceTransformerEmbedder(s.embedding_model, device=s.embedding_device),
    "openai": lambda s: OpenAIEmbedder(
        s.embedding_model, s.embedding_base_url or s.llm_base_url,
        _secret(s.embedding_api_key) or _secret(s.llm_api_key), timeout=s.llm_timeout,
    ),
}


def get_embedder(settings: Settings) -> Embedder:
    try:
        factory = BACKENDS[settings.embedding_backend]
    except KeyError:
        raise EmbeddingError(
            f"未知的嵌入后端 `{settings.embedding_backend}`；可选: {', '.join(BACKENDS)}"
        ) from None
    return factory(settings)
