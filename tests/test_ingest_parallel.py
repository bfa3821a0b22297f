"""Large ingests embed in worker processes (tutor/workers.py): same vectors, same incremental result.

The size threshold is lowered so a three-entry corpus takes the worker path; no timing is asserted
(speed is measured by `python -m eval.bench --growth`, not by tests).
"""

import numpy as np

from ingest import pipeline
from tutor.workers import embed_batches
from ingest.pipeline import ingest_corpus
from tests.conftest import make_corpus
from tutor.embeddings import HashingEmbedder
from tutor.settings import Settings
from tutor.store import chroma_client, open_collection

TEXTS = ["为什么注意力要除以根号 d？", "KV Cache 是什么", "LayerNorm 和 BatchNorm 的区别", "", "warmup 的作用"]


def test_worker_vectors_equal_in_process_vectors_in_order():
    emb = HashingEmbedder()
    batches = [TEXTS[:2], TEXTS[2:3], TEXTS[3:]]
    got = list(embed_batches(emb.dim, batches, workers=2))
    assert [len(v) for v in got] == [2, 1, 2]
    for batch, vectors in zip(batches, got):
        assert vectors.dtype == np.float32
        assert np.array_equal(vectors, np.asarray(emb.embed_documents(batch), dtype=np.float32))


def stored(settings: Settings) -> dict[str, np.ndarray]:
    emb = HashingEmbedder()
    col = open_collection(chroma_client(settings), emb.name, emb.dim, create=False)
    got = col.get(include=["embeddings"])
    return dict(zip(got["ids"], np.asarray(got["embeddings"])))


def test_parallel_ingest_stores_what_a_serial_ingest_stores_and_stays_incremental(tmp_path, monkeypatch):
    corpus = make_corpus(tmp_path / "corpus")
    serial = Settings(corpus_dir=corpus, data_dir=tmp_path / "serial")
    parallel = Settings(corpus_dir=corpus, data_dir=tmp_path / "parallel")
    ingest_corpus(serial, progress=False, workers=1)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_CHUNKS", 0)
    monkeypatch.setattr(pipeline, "BATCH_SIZE", 2)  # several batches over two workers
    report = ingest_corpus(parallel, progress=False, workers=2)
    assert report.added == report.chunks > 2
    a, b = stored(serial), stored(parallel)
    assert a.keys() == b.keys()
    assert all(np.allclose(a[k], b[k], atol=1e-7) for k in a)
    again = ingest_corpus(parallel, progress=False, workers=2)
    assert again.added == 0 and again.deleted == 0


def test_retriever_tokenises_a_large_corpus_in_workers_with_the_same_result(tmp_path, monkeypatch):
    from tutor import retriever
    from tutor.corpus import load_corpus

    corpus = load_corpus(make_corpus(tmp_path / "corpus"))
    serial = retriever.HybridIndex(corpus)
    monkeypatch.setattr(retriever, "PARALLEL_MIN_ENTRIES", 0)
    monkeypatch.setattr(retriever.os, "cpu_count", lambda: 2)
    parallel = retriever.HybridIndex(corpus, cache_dir=tmp_path / "cache")
    assert parallel._doc_terms == serial._doc_terms
    assert parallel.head.idf == serial.head.idf and parallel.body.idf == serial.body.idf
    assert [h.entry.id for h in parallel.search("KV Cache 的作用", 3).hits] == \
           [h.entry.id for h in serial.search("KV Cache 的作用", 3).hits]
