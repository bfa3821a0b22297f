"""The offline grader's corpus statistics, cached on disk per entry content hash."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tutor import grading_stats
from tutor.corpus import load_corpus
from tutor.grading_matching import domain_terms
from tutor.grading_stats import corpus_stats
from tutor.textnorm import get_analyzer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def entries():
    return load_corpus(ROOT / "corpus").entries[:30]


def build(entries, cache_dir):
    grading_stats._MEMORY.clear()  # as in a fresh process: only the disk cache may help
    return corpus_stats(entries, get_analyzer(domain_terms(entries)), cache_dir)


def test_cached_statistics_equal_fresh_ones_and_are_read_back(entries, tmp_path):
    fresh = build(entries, None)
    first = build(entries, tmp_path)
    assert (first.n_docs, first.term_df, first.bigram_df) == (fresh.n_docs, fresh.term_df, fresh.bigram_df)
    [cache] = tmp_path.glob("grader-terms-*.json")
    docs = json.loads(cache.read_text(encoding="utf-8"))
    assert set(docs) == {e.content_hash() for e in entries}
    # A marker planted in one entry's cached terms shows up: the second build read the file.
    docs[entries[0].content_hash()][0].append("planted-marker")
    cache.write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
    assert build(entries, tmp_path).term_df["planted-marker"] == 1


def test_an_edited_entry_is_analysed_again_and_others_are_kept(entries, tmp_path):
    build(entries, tmp_path)
    [cache] = tmp_path.glob("grader-terms-*.json")
    docs = json.loads(cache.read_text(encoding="utf-8"))
    for e in entries[:2]:
        docs[e.content_hash()][0].append("planted-marker")
    cache.write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
    edited = [entries[0].model_copy(update={"answer": entries[0].answer + "\n补充：梯度累积。"}), *entries[1:]]
    stats = build(edited, tmp_path)
    assert stats.term_df["planted-marker"] == 1  # entry 1 still from the cache, entry 0 analysed afresh
    assert set(json.loads(cache.read_text(encoding="utf-8"))) == {e.content_hash() for e in edited}


def test_new_corpus_terms_start_a_new_cache_and_damage_is_repaired(entries, tmp_path):
    build(entries, tmp_path)
    [old] = tmp_path.glob("grader-terms-*.json")
    tagged = [entries[0].model_copy(update={"tags": [*entries[0].tags, "全新术语标签"]}), *entries[1:]]
    build(tagged, tmp_path)
    [new] = tmp_path.glob("grader-terms-*.json")
    assert new.name != old.name  # the analyser's dictionary changed: nothing old is trusted
    new.write_text("{not json", encoding="utf-8")
    again = build(tagged, tmp_path)
    fresh = build(tagged, None)
    assert (again.term_df, again.bigram_df) == (fresh.term_df, fresh.bigram_df)
