"""Incremental ingest against a real Chroma, embedded and `chroma run` server."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ingest.chunking import chunk_entry
from ingest.pipeline import ingest_corpus
from tests.conftest import make_corpus
from tutor.corpus import load_corpus
from tutor.embeddings import HashingEmbedder
from tutor.retriever import load_retriever
from tutor.settings import Settings
from tutor.store import chroma_client, collection_name, open_collection

ROOT = Path(__file__).resolve().parents[1]


class CountingEmbedder(HashingEmbedder):
    """The real offline embedder, counting how many texts it was asked to embed."""

    def __init__(self):
        super().__init__()
        self.embedded = 0

    def embed_documents(self, texts):
        self.embedded += len(texts)
        return super().embed_documents(texts)


@pytest.fixture(params=["embedded", "server"])
def settings(request, tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    overrides = dict(corpus_dir=corpus, data_dir=tmp_path / "data")
    if request.param == "server":
        url = request.getfixturevalue("chroma_server")
        overrides["chroma_url"] = url
    s = Settings(**overrides)
    yield s
    if request.param == "server":  # the server outlives the test: leave it clean
        client = chroma_client(s)
        for col in client.list_collections():
            client.delete_collection(col.name if hasattr(col, "name") else col)


def stored_ids(settings: Settings) -> set[str]:
    emb = HashingEmbedder()
    col = open_collection(chroma_client(settings), emb.name, emb.dim, create=False)
    return set(col.get(include=[])["ids"]) if col else set()


def expected_ids(settings: Settings) -> set[str]:
    return {c.id for e in load_corpus(settings.corpus_dir).entries for c in chunk_entry(e)}


def test_full_then_no_change_then_edit_then_delete(settings):
    emb = CountingEmbedder()
    first = ingest_corpus(settings, progress=False, embedder=emb)
    assert first.added == first.chunks == len(expected_ids(settings)) and first.deleted == 0
    assert emb.embedded == first.chunks
    assert stored_ids(settings) == expected_ids(settings)

    emb.embedded = 0
    again = ingest_corpus(settings, progress=False, embedder=emb)
    assert (again.added, again.deleted, emb.embedded) == (0, 0, 0)
    assert "无需重新嵌入" in again.summary()

    # Edit one entry's answer: only that entry's changed chunks are embedded.
    path = settings.corpus_dir / "1.基础" / "注意力.md"
    kv_before = {c.id for c in chunk_entry(load_corpus(settings.corpus_dir).get("kv-cache"))}
    path.write_text(path.read_text(encoding="utf-8").replace("避免重复计算", "避免对历史 token 重复计算"),
                    encoding="utf-8")
    kv_after = {c.id for c in chunk_entry(load_corpus(settings.corpus_dir).get("kv-cache"))}
    changed = kv_after - kv_before
    assert changed and all(cid.startswith("kv-cache#") for cid in changed)
    emb.embedded = 0
    edit = ingest_corpus(settings, progress=False, embedder=emb)
    assert emb.embedded == edit.added == len(changed)
    assert edit.deleted == len(kv_before - kv_after)
    assert stored_ids(settings) == expected_ids(settings)

    # Delete an entry: its chunks leave the index, nothing is embedded.
    opt = settings.corpus_dir / "2.训练" / "优化.md"
    opt.unlink()
    emb.embedded = 0
    gone = ingest_corpus(settings, progress=False, embedder=emb)
    assert emb.embedded == 0 and gone.deleted > 0
    assert not any(i.startswith("warmup#") for i in stored_ids(settings))

    retriever = load_retriever(settings)
    assert retriever.search("键值缓存", 1).hits[0].entry.id == "kv-cache"
    assert retriever.index.collection is not None  # the dense side really came from Chroma


def test_switching_embedders_never_mixes_vectors(settings, tmp_path):
    ingest_corpus(settings, progress=False)

    class Wide(HashingEmbedder):
        def __init__(self):
            super().__init__(dim=256)
            self.name = "hashing-wide"

    ingest_corpus(settings, progress=False, embedder=Wide())
    client = chroma_client(settings)
    names = {c.name if hasattr(c, "name") else c for c in client.list_collections()}
    assert {collection_name(HashingEmbedder().name, 1024), "tutor-hashing-wide-256"} <= names
    wide = client.get_collection("tutor-hashing-wide-256")
    assert wide.metadata["dim"] == 256 and wide.metadata["embedder"] == "hashing-wide"


def test_broken_corpus_leaves_index_untouched(settings):
    ingest_corpus(settings, progress=False)
    before = stored_ids(settings)
    path = settings.corpus_dir / "2.训练" / "优化.md"
    path.write_text(path.read_text(encoding="utf-8").replace("### 要点", "### 要 点"), encoding="utf-8")
    from tutor.corpus import CorpusError

    with pytest.raises(CorpusError):
        ingest_corpus(settings, progress=False)
    assert stored_ids(settings) == before


SLOW_INGEST = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from ingest.pipeline import ingest_corpus
    from ingest import pipeline
    from tutor.embeddings import HashingEmbedder
    from tutor.settings import Settings

    class Slow(HashingEmbedder):
        calls = 0

        def embed_documents(self, texts):
            Slow.calls += 1
            if Slow.calls == 2:  # batch 1 is stored by now; the test kills us while we wait here
                print("second batch", flush=True)
                time.sleep(60)
            return super().embed_documents(texts)

    pipeline.BATCH_SIZE = 2
    s = Settings(corpus_dir=Path(sys.argv[1]), data_dir=Path(sys.argv[2]), chroma_url=sys.argv[3] or None)
    ingest_corpus(s, progress=False, embedder=Slow())
""")


def test_ingest_killed_half_way_leaves_a_usable_index(settings, tmp_path):
    ingest_corpus(settings, progress=False)
    old_ids = stored_ids(settings)
    # Rewrite every answer so the next ingest has many chunks to add, then kill it mid-way.
    for path in settings.corpus_dir.rglob("*.md"):
        path.write_text(path.read_text(encoding="utf-8").replace("。", "。补充说明。"), encoding="utf-8")
    script = tmp_path / "slow_ingest.py"
    script.write_text(SLOW_INGEST, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(settings.corpus_dir), str(settings.data_dir), settings.chroma_url or ""],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout.readline().strip() == "second batch"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    half = stored_ids(settings)
    assert old_ids <= half, "an interrupted ingest must not remove old chunks"
    assert half != old_ids, "the killed ingest should have stored at least one new batch"
    assert half != expected_ids(settings), "the ingest really was interrupted"

    # The index is fully usable: every entry is still found, with its vectors.
    retriever = load_retriever(settings)
    for entry_id, query in [("kv-cache", "KV Cache 是什么"), ("warmup", "学习率预热"),
                            ("scaled-attention", "注意力 除以根号d")]:
        assert retriever.search(query, 1).hits[0].entry.id == entry_id

    # The next run finishes the job: exactly the current chunks remain.
    report = ingest_corpus(settings, progress=False)
    assert report.deleted >= len(old_ids - expected_ids(settings)) > 0
    assert stored_ids(settings) == expected_ids(settings)


def test_common_misconceptions_get_a_chunk_of_their_own():
    """Questions are often asked from a wrong belief; the 常见误区 pairs are embedded so such a
    question finds its entry (eval/README.md: the misconception-phrased queries)."""
    from ingest.chunking import chunk_entry
    from tutor.corpus import load_corpus
    from tutor.settings import PROJECT_ROOT

    entry = load_corpus(PROJECT_ROOT / "corpus", strict=False).get("gradient-clipping")
    chunks = [c for c in chunk_entry(entry) if c.metadata["section"] == "常见误区"]
    assert len(chunks) == 1 and chunks[0].text.startswith(entry.question)
    for m in entry.misconceptions:
        assert f"误：{m.claim}；正：{m.correction}" in chunks[0].text
