"""The vector store: Chroma, embedded under the data directory or a `chroma run` server by URL.

One collection per embedder (its name and dimension are in the collection name and metadata),
so vectors from two models never meet. We always pass embeddings explicitly: a Chroma collection
left to embed by itself would try to download an ONNX model.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlparse

from tutor.settings import Settings

COLLECTION_PREFIX = "tutor"


class StoreError(RuntimeError):
    pass


def collection_name(embedder_name: str, dim: int) -> str:
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", embedder_name).strip("-_").lower()
    name = f"{COLLECTION_PREFIX}-{slug}-{dim}"
    if len(name) > 60:  # a local model path: keep its readable tail, a hash of the whole, and the dim
        digest = hashlib.sha1(embedder_name.encode()).hexdigest()[:8]
        tail = slug[-32:].strip("-_")
        name = f"{COLLECTION_PREFIX}-{tail}-{digest}-{dim}"
    return name


def chroma_client(settings: Settings):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url if "://" in settings.chroma_url else f"http://{settings.chroma_url}")
        try:
            return chromadb.HttpClient(host=url.hostname or "127.0.0.1", port=url.port or 8000,
                                       ssl=url.scheme == "https", settings=chroma_settings)
        except Exception as exc:  # noqa: BLE001
            raise StoreError(
                f"连不上 Chroma 服务器 {settings.chroma_url}：{type(exc).__name__}。"
                "请确认已运行 `chroma run --path DIR --port PORT`，或删除 TUTOR_CHROMA_URL 以使用内置存储。"
            ) from exc
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


def open_collection(client, embedder_name: str, dim: int, create: bool = True):
    name = collection_name(embedder_name, dim)
    if create:
        return client.get_or_create_collection(
            name, metadata={"hnsw:space": "cosine", "embedder": embedder_name, "dim": dim}
        )
    try:
        return client.get_collection(name)
    except Exception:  # noqa: BLE001 - chroma raises different types across versions
        return None
