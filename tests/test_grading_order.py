"""The offline grader's ordering: complete > partial > wrong, and the checks that make partial > wrong.

Two kinds of test. On the dev split of the calibration set (the split the parameters are tuned on), the
ordering a candidate sees must hold: a short correct answer above a fluent wrong one, on average and
entry by entry. Then each relation check on sentences we wrote for these tests (none copied from the
calibration set), each with a correct sentence it must NOT flag: a false alarm costs a right answer
points, which is worse than a missed contradiction.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict

import pytest

from tutor.corpus import Entry, load_corpus
from tutor.grading import build_grader
from tutor.grading_offline import OfflineGrader
from tutor.grading_reference_checks import (misconception_claims, number_conflict, reference_sentences,
                                            relation_conflict, sentence_relations)
from tutor.settings import PROJECT_ROOT, Settings
from tutor.textnorm import canonical_text, clauses, get_analyzer

CALIBRATION = PROJECT_ROOT / "eval" / "data" / "grading_calibration.jsonl"


@pytest.fixture(scope="module")
def dev_scores():
    corpus = load_corpus(Settings().corpus_dir, strict=False)
    grader = build_grader(Settings(grader="offline", llm_model=None), corpus)
    by_entry: dict[str, dict[str, float]] = defaultdict(dict)
    for line in CALIBRATION.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        if r["split"] == "dev" and corpus.get(r["entry_id"]) is not None:
            by_entry[r["entry_id"]][r["kind"]] = grader.grade(corpus.get(r["entry_id"]), r["answer"]).score
    assert len(by_entry) >= 20
    return by_entry


def test_partial_ranks_above_wrong_on_dev(dev_scores):
    pairs = [(s["partial"], s["wrong"]) for s in dev_scores.values() if "partial" in s and "wrong" in s]
    partial = statistics.fmean(p for p, _ in pairs)
    wrong = statistics.fmean(w for _, w in pairs)
    # measured 2026-11-22 after tuning: see docs/GRADING.md; thresholds are that minus a margin
    assert partial > wrong + 0.4, (partial, wrong)  # measured 2.28 vs 1.46
    above = sum(p > w for p, w in pairs)
    below = sum(p < w for p, w in pairs)
    assert above >= 0.45 * len(pairs), (above, below, len(pairs))  # measured 14 of 26
    assert above >= 2 * below, (above, below)


def test_complete_still_on_top_on_dev(dev_scores):
    excellent = [s["excellent"] for s in dev_scores.values()]
    assert statistics.fmean(excellent) >= 9.0
    for kind in ("stuffing", "echo", "offtopic", "injection"):
        scores = [s[kind] for s in dev_scores.values() if kind in s]
        if scores:
            assert statistics.fmean(scores) <= 2.5, (kind, scores)


# --- the relation checks on our own sentences -----------------------------------------------------

def rels(text: str):
    analyzer = get_analyzer()
    out = []
    for sent in re.split(r"[。；]", text):
        parts = [canonical_text(sent[a:b]) for a, b in clauses(sent)]
        out += sentence_relations([(analyzer.tokens(c, canonicalized=True), c) for c in parts])
    return out


def heavy(text: str) -> set[str]:
    return {t for r in rels(text) for t in r.terms | r.subjects}


@pytest.mark.parametrize("reference, wrong, right", [
    # equality in the reference, a difference in the answer
    ("分组卷积的输出形状与普通卷积相同", "分组卷积的输出形状比普通卷积小", "分组卷积的输出形状和普通卷积一样"),
    # comparative direction, stated plainly in the reference
    ("int4 的显存占用小、误差大", "int4 的显存占用比 int8 大", "int4 的显存占用比 int8 小"),
    # a monotone relation the reference denies
    ("warmup 步数不是越多越好", "warmup 步数越多越好", "warmup 步数太多反而浪费训练预算"),
])
def test_relation_conflicts(reference, wrong, right):
    unit = rels(reference)
    assert relation_conflict(unit, rels(wrong), heavy(reference)), wrong
    assert relation_conflict(unit, rels(right), heavy(reference)) is None, right


def test_equality_is_about_the_named_attribute():
    unit = rels("分组卷积的输出形状与普通卷积相同")
    # another attribute of the same subjects: not a contradiction of "输出形状相同"
    assert relation_conflict(unit, rels("分组卷积的参数比普通卷积少"), heavy("分组卷积的输出形状与普通卷积相同")) is None
    # "相同预算下" is a condition, not an equality claim
    cond = rels("相同预算下随机搜索是很强的基线")
    assert not any(r.equal for r in cond)


def test_number_conflict():
    ref = rels("ResNet-50 的卷积层数为 49")[0]
    known = {50.0, 49.0}
    terms = ref.terms | ref.subjects
    assert number_conflict(rels("ResNet-50 的卷积层数为 152")[0], ref, known, terms)
    assert number_conflict(rels("ResNet-50 的卷积层数为 49")[0], ref, known, terms) is None
    # a rough or ranged reference number is never questioned
    rough = rels("ResNet-50 的卷积层数约为 49")[0]
    assert number_conflict(rels("ResNet-50 的卷积层数为 48")[0], rough, known, terms) is None


def test_misconception_claims_are_read_from_the_reference():
    assert misconception_claims('常见误区："dropout 在推理时也要开启"是错的') == ["dropout 在推理时也要开启"]
    assert misconception_claims("在激活之后再做归一化是错误做法") == ["在激活之后再做归一化"]
    assert misconception_claims("dropout 在推理时关闭") == []


def test_reference_sentences_skip_code_formulas_tables_and_questions():
    answer = ("**作用。** 训练时随机丢弃激活。\n```python\nx = f(y)\n```\n$$a=b$$\n| 列 | 值 |\n"
              "**为什么推理时关闭？** 推理要确定性的输出。")
    sents = reference_sentences(answer)
    assert "训练时随机丢弃激活" in sents and "推理要确定性的输出" in sents
    assert not any("x = f" in s or "列" in s or "为什么" in s for s in sents)


# --- end to end on an entry we wrote -------------------------------------------------------------

ENTRY = Entry(
    id="dropout-train-vs-infer", question="Dropout 在训练和推理时有什么不同？", aliases=[], tags=["dropout"],
    level=1, sources=[], follow_ups=[], path="test.md", line=1, topic="测试", section="测试",
    key_points=[
        "训练时 Dropout 以概率 p 随机把激活置零",
        "推理时关闭 Dropout，不再随机置零",
        "inverted dropout 训练时把保留的激活除以 1-p，推理时不用缩放",
        "每个激活的期望在训练和推理时相同",
    ],
    answer=("训练时，Dropout 以概率 p 把每个激活随机置零，相当于每一步都在训练一个随机的子网络，"
            "起到集成和正则化的作用。推理时关闭 Dropout，所有神经元都参与计算，输出是确定的。"
            "为了让期望一致，inverted dropout 在训练时把保留下来的激活除以 1-p，推理时就不用再缩放。"
            '常见误区："推理时也要随机丢弃神经元"是错的。'),
)


@pytest.fixture(scope="module")
def toy():
    return OfflineGrader([ENTRY])


def test_correct_answers_carry_no_false_statement(toy):
    full = ("训练时按概率 p 随机把激活置零，推理时关掉 Dropout。用 inverted dropout 的话训练时除以 1-p，"
            "推理时不用缩放，这样激活的期望在训练和推理时相同。")
    g = toy.grade(ENTRY, full)
    assert not g.false_statements, g.to_markdown()
    assert g.score >= 7
    short = toy.grade(ENTRY, "训练时随机把一部分激活置零，推理时关闭。")
    assert not short.false_statements and short.score > 0, short.to_markdown()


def test_wrong_answers_are_caught(toy):
    repeated = toy.grade(ENTRY, "推理时也要随机丢弃神经元，这样结果更稳。")
    assert repeated.false_statements, repeated.to_markdown()
    unequal = toy.grade(ENTRY, "训练时随机置零，所以每个激活的期望在训练时比推理时小。")
    assert unequal.false_statements, unequal.to_markdown()
    short = toy.grade(ENTRY, "训练时随机把一部分激活置零，推理时关闭。")
    assert repeated.score < short.score and unequal.score < short.score


def test_quoting_a_misconception_to_reject_it_is_not_flagged(toy):
    g = toy.grade(ENTRY, "有人认为推理时也要随机丢弃神经元，这不对：推理时要关闭 Dropout。")
    assert not g.false_statements, g.to_markdown()


HOLDOUTS = {"holdout": PROJECT_ROOT / "eval" / "data" / "grading_holdout.jsonl",
            "holdout2": PROJECT_ROOT / "eval" / "data" / "grading_holdout2.jsonl",
            "holdout3": PROJECT_ROOT / "eval" / "data" / "grading_holdout3.jsonl",
            "holdout4": PROJECT_ROOT / "eval" / "data" / "grading_holdout4.jsonl"}


@pytest.mark.parametrize("split", sorted(HOLDOUTS))
def test_held_out_answers_complete_above_partial_and_adversarial_low(split):
    """On answers written blind to the grader (30 entries outside the calibration set): complete >
    good > partial on average, and bare keywords, echoes and off-topic text stay low. (partial > wrong
    does NOT hold there: e.g. 2.51 vs 3.43 on holdout4; docs/GRADING.md has every set. It is a limit of
    lexical grading, and the offline grade card says so.) holdout2, holdout3 and
    holdout4: 30 entries each, other writers, blind to the grader; see docs/GRADING.md for when each
    was graded."""
    corpus = load_corpus(Settings().corpus_dir, strict=False)
    grader = build_grader(Settings(grader="offline", llm_model=None), corpus)
    rows = [json.loads(line) for line in HOLDOUTS[split].read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == 240 and {r["split"] for r in rows} == {split}
    assert all(corpus.get(r["entry_id"]) is not None and r["band"][0] <= r["band"][1] for r in rows)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(grader.grade(corpus.get(r["entry_id"]), r["answer"]).score)
    mean = {k: statistics.fmean(v) for k, v in by_kind.items()}
    assert mean["excellent"] >= 9.0 and mean["excellent"] > mean["good"] + 1.0 > mean["partial"] + 2.0
    assert max(mean["stuffing"], mean["echo"], mean["offtopic"]) <= 2.5
