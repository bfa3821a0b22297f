"""Hybrid retrieval over the real corpus: paraphrases, syllabus wording, abstention, LangChain face."""

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from ingest.pipeline import ingest_corpus
from tutor.corpus import load_corpus
from tutor.retriever import BM25, load_retriever
from tutor.settings import Settings
from tutor.text import compact

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
SYLLABUS_LINE = re.compile(r"^-\s+(.+?)\s+(?:→|->)\s+`?([a-z0-9-]+)`?\s*$")


def test_bm25_matches_rank_bm25_reference():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(60)]
    docs = [[rng.choice(vocab[: rng.randint(5, 60)]) for _ in range(rng.randint(1, 40))] for _ in range(80)]
    ours, ref = BM25(docs), BM25Okapi(docs)
    for _ in range(30):
        query = [rng.choice(vocab) for _ in range(rng.randint(1, 6))]
        np.testing.assert_allclose(ours.scores(query), ref.get_scores(query), rtol=1e-9, atol=1e-12)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("retrieval-data")
    ingest_corpus(Settings(corpus_dir=CORPUS, data_dir=data), progress=False, strict=False)
    return data


@pytest.fixture(scope="module")
def retriever(data_dir):
    return load_retriever(Settings(corpus_dir=CORPUS, data_dir=data_dir))


def char_overlap(a: str, b: str) -> float:
    sa, sb = set(compact(a)), set(compact(b))
    return len(sa & sb) / len(sa | sb)


# Queries phrased the way candidates talk, sharing few characters with the entry's title.
PARAPHRASES = [
    ("点积算完之后为啥还得缩放一下再过 softmax", "attention-scaling"),
    ("NLP 模型里为啥一般不用批归一化", "layernorm-vs-batchnorm"),
    ("LLaMA 里的归一化层为什么不减均值了", "rmsnorm"),
]


@pytest.mark.parametrize("query,expected", PARAPHRASES)
def test_paraphrased_queries_find_their_entry(retriever, query, expected):
    entry = retriever.corpus.get(expected)
    assert entry is not None
    assert char_overlap(query, entry.question) < 0.35, "the query must really be a paraphrase"
    result = retriever.search(query, 5)
    assert result.relevant and result.hits[0].entry.id == expected, [h.entry.id for h in result.hits]


@pytest.mark.parametrize("query", ["红烧肉怎么做才好吃", "明天北京天气怎么样", "how do I renew my passport",
                                   "Kubernetes 的 pod 调度策略", "推荐几部科幻电影"])
def test_off_topic_queries_abstain(retriever, query):
    assert not retriever.search(query, 5).relevant


def test_empty_query_abstains(retriever):
    result = retriever.search("   ", 5)
    assert not result.relevant and result.hits == []


def test_langchain_interface(retriever):
    docs = retriever.invoke("为什么注意力要除以根号d")
    assert docs and docs[0].metadata["entry_id"] == "attention-scaling"
    assert "softmax" in docs[0].page_content
    assert retriever.invoke("红烧肉怎么做才好吃") == []


def syllabus_items() -> list[tuple[str, str, str]]:
    items = []
    for path in sorted((CORPUS / "syllabus").glob("*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = SYLLABUS_LINE.match(line.strip())
            if m:
                items.append((path.name, m.group(1), m.group(2)))
    return items


def test_syllabus_files_exist_and_map_to_valid_entries():
    items = syllabus_items()
    assert len(items) >= 100, "every syllabus item of both seed documents is listed"
    corpus = load_corpus(CORPUS)  # strict: every entry passes validation
    missing = [(f, text, eid) for f, text, eid in items if corpus.get(eid) is None]
    assert not missing, missing


def test_syllabus_wording_returns_its_entry_first(retriever):
    misses = []
    for file, text, expected in syllabus_items():
        hits = retriever.search(text, 5).hits
        if not hits or hits[0].entry.id != expected:
            misses.append((file, text, expected, [h.entry.id for h in hits[:3]]))
    assert not misses, "\n".join(map(str, misses))


def run_cli(*args, stdin=None, env_data=None):
    env = {**__import__("os").environ, "TUTOR_DATA_DIR": str(env_data)}
    return subprocess.run([sys.executable, "-m", "tutor.cli", "search", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


def test_cli_json_and_batch(tmp_path, data_dir):
    proc = run_cli("为什么注意力要除以根号d", "-k", "3", "--json", env_data=data_dir)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["results"][0]["id"] == "attention-scaling" and len(out["results"]) == 3
    assert {"id", "title", "path", "score", "citation"} <= out["results"][0].keys()

    queries = tmp_path / "q.txt"
    queries.write_text("LN 和 BN 区别？\n\n红烧肉怎么做\n", encoding="utf-8")
    proc = run_cli("--batch", str(queries), "-k", "2", "--no-sync", env_data=data_dir)
    lines = [json.loads(l) for l in proc.stdout.splitlines()]
    assert [l["query"] for l in lines] == ["LN 和 BN 区别？", "红烧肉怎么做"]
    assert lines[0]["results"][0]["id"] == "layernorm-vs-batchnorm" and lines[1]["relevant"] is False

    proc = run_cli("--batch", "-", "--no-sync", stdin="RMSNorm 好在哪\n用 PyTorch 实现 RMSNorm\n", env_data=data_dir)
    first, second = [json.loads(l)["results"][0]["id"] for l in proc.stdout.splitlines()]
    assert first == "rmsnorm"  # an explanation question gets the explanation entry
    assert CORPUS_CODE_TAG in load_corpus(CORPUS).get(second).tags  # a code request gets the code entry

    proc = run_cli("为什么注意力要除以根号d", "--no-sync", env_data=data_dir)
    assert "attention-scaling" in proc.stdout and "注意力机制.md#attention-scaling" in proc.stdout


CORPUS_CODE_TAG = "手撕代码"


def test_cli_without_query_explains(tmp_path):
    proc = run_cli(env_data=tmp_path)
    assert proc.returncode == 2 and "请给出查询" in proc.stderr


def test_english_typos_are_corrected_against_the_corpus_vocabulary(retriever):
    from tutor.retriever import _within_edits

    assert _within_edits("attentoin", "attention", 1)  # an adjacent swap is one edit
    assert not _within_edits("attention", "retention", 1)
    for query, expected in [("flash attentoin 省显存的原理", "flash-attention"), ("transfomer 的整体结构", None)]:
        terms = [retriever.index._correct(t) for t in __import__("tutor.text", fromlist=["tokenize"]).tokenize(query)]
        assert "attentoin" not in terms and "transfomer" not in terms, terms
        if expected:
            assert retriever.search(query, 3).hits[0].entry.id == expected


def test_huge_query_is_judged_by_its_opening(retriever):
    from tutor.retriever import MAX_QUERY_CHARS

    huge = "注意力为什么除以根号d，" * 20000
    result = retriever.search(huge, 3)
    assert result.query == huge.strip()  # nothing the user typed is lost
    assert [h.entry.id for h in result.hits] == [h.entry.id for h in retriever.search(huge[:MAX_QUERY_CHARS], 3).hits]
    assert result.hits[0].entry.id == "attention-scaling"
