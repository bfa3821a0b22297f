"""The offline grader must not fail a good answer: each entry's own reference answer, as prose, is the
best answer a candidate could give. (A stuffing detector that split text on every space once capped
most of them at 2/10.)"""

import re
import statistics
from pathlib import Path

import pytest

from tutor.corpus import load_corpus
from tutor.grading import build_grader
from tutor.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    settings = Settings(corpus_dir=ROOT / "corpus", data_dir=tmp_path_factory.mktemp("grading-ref"), grader="offline")
    corpus = load_corpus(settings.corpus_dir)
    grader = build_grader(settings, corpus)
    return [grader.grade(e, re.sub(r"```.*?```", " ", e.answer, flags=re.S)) for e in corpus.entries]


def test_reference_answers_score_high(graded):
    scores = [g.score for g in graded]
    assert statistics.median(scores) >= 9.0
    assert sum(s < 6 for s in scores) <= 0.1 * len(scores), sorted((g.score, g.entry_id) for g in graded)[:20]


def test_reference_answers_are_not_keyword_stuffing(graded):
    flagged = [g.entry_id for g in graded if "keyword_stuffing" in g.flags]
    assert len(flagged) <= 0.05 * len(graded), flagged
