"""The corpus's common misconceptions (### 常见误区) and the grader check built on them.

Three kinds of test: the corpus format (a malformed item is reported with file and line); the matching
rules on sentences written for these tests, each with a correct sentence it must NOT flag; and the
whole corpus checked against itself: every listed misconception must be recognisable in its own words,
while its correction and the entry's reference answer must (almost) never be flagged.
"""

from __future__ import annotations

import re

import pytest

from tutor.corpus import CorpusError, Misconception, load_corpus
from tutor.grading_llm import build_messages
from tutor.grading_misconceptions import find, prepare
from tutor.grading_offline import OfflineGrader
from tutor.settings import Settings
from tutor.textnorm import get_analyzer
from tutor.ui.render import entry_markdown

ENTRY = """# 归一化

## LayerNorm 和 BatchNorm 有什么区别？

- id: ln-vs-bn
- 难度: 1
- 标签: layernorm

### 别名
- LN 和 BN 区别

### 答案
BatchNorm 在 batch 维上统计，LayerNorm 在特征维上统计。

### 要点
- BatchNorm 在 batch 维上统计均值和方差
- LayerNorm 在特征维上统计均值和方差
- LayerNorm 训练和推理的计算一致

### 常见误区
{items}

### 追问
- 为什么 Transformer 用 LN？
- RMSNorm 有什么不同？

### 来源
- Layer Normalization, 2016, arXiv:1607.06450
"""


def write_corpus(tmp_path, items: str):
    (tmp_path / "a").mkdir(parents=True)
    (tmp_path / "a" / "norm.md").write_text(ENTRY.format(items=items), encoding="utf-8")
    return tmp_path


def test_misconceptions_are_parsed(tmp_path):
    corpus = load_corpus(write_corpus(tmp_path, "- 误：LayerNorm 在 batch 维上统计 ｜ 正：LayerNorm 在特征维上统计"))
    (m,) = corpus.get("ln-vs-bn").misconceptions
    assert m.claim == "LayerNorm 在 batch 维上统计" and m.correction == "LayerNorm 在特征维上统计"
    # ASCII separators are accepted too
    corpus = load_corpus(write_corpus(tmp_path / "b", "- 误: BN 推理时用当前 batch 的统计量 | 正: BN 推理时用训练中累计的统计量"))
    assert corpus.get("ln-vs-bn").misconceptions[0].correction == "BN 推理时用训练中累计的统计量"


def test_a_malformed_misconception_is_reported_with_file_and_line(tmp_path):
    root = write_corpus(tmp_path, "- 误：LayerNorm 在 batch 维上统计 ｜ 正：LayerNorm 在特征维上统计\n- LayerNorm 不依赖 batch")
    with pytest.raises(CorpusError) as exc:
        load_corpus(root)
    text = str(exc.value)
    line = ENTRY.format(items="x\n- LayerNorm 不依赖 batch").splitlines().index("- LayerNorm 不依赖 batch") + 1
    assert f"norm.md:{line}:" in text and "误：" in text


def test_too_many_misconceptions_are_reported(tmp_path):
    items = "\n".join(f"- 误：LayerNorm 在第 {i} 维上统计 ｜ 正：LayerNorm 在特征维上统计" for i in range(7))
    with pytest.raises(CorpusError, match="常见误区应有 1-6 条"):
        load_corpus(write_corpus(tmp_path, items))


@pytest.fixture(scope="module")
def analyzer():
    return get_analyzer()


def flagged(analyzer, claim: str, correction: str, answer: str) -> bool:
    prepared = prepare(analyzer, lambda t: 3.0, [Misconception(claim=claim, correction=correction)], [])
    assert prepared, "the pair has a crux"
    return bool(find(analyzer, prepared, answer))


@pytest.mark.parametrize("claim, correction, wrong, right", [
    # a word only the claim says, its subject named
    ("梯度裁剪主要是为了解决梯度消失", "梯度裁剪主要是为了防止梯度爆炸，对梯度消失没有帮助",
     "梯度裁剪主要是解决梯度消失问题的。", "梯度裁剪是防止梯度爆炸的，对梯度消失没用。"),
    # the subject in the clause before ("参数少了……" is about ALBERT)
    ("ALBERT 跨层共享参数后计算量也等比例下降", "ALBERT 跨层共享参数后计算量不变，只是参数量变少",
     "ALBERT 那种跨层参数共享，参数少了计算量也跟着等比例下降。", "ALBERT 跨层共享参数只减少参数量，计算量不变。"),
    # a symbol as the subject; another symbol's clause is about that one
    ("k1 估计是有偏的", "k1 估计是无偏的，只是方差大",
     "k1 = -log r 是有偏的，方差最小。", "k1 方差大，k2 是有偏的。"),
    # order: the neighbours of 之后 are the crux
    ("梯度裁剪放在 optimizer.step() 之后", "梯度裁剪放在 backward 之后、optimizer.step() 之前",
     "梯度裁剪要放在 optimizer.step() 之后。", "梯度裁剪放在 loss.backward() 之后、step() 之前。"),
    # the opposite condition is not the claim
    ("温度越高分布越尖锐", "温度越高分布越平坦",
     "温度越高，softmax 分布越尖锐。", "温度越低分布越尖锐。"),
    # words of the correction's reason in the sentence: it is saying the correction
    ("MQA/GQA 能显著减少注意力分数的计算量", "MQA/GQA 主要省 KV Cache 显存，注意力分数的计算量基本不变",
     "MQA/GQA 能显著减少注意力分数的计算量。", "所以注意力分数的计算量基本不变。"),
    # same words, one side negated
    ("LoRA 的 rank 越大效果一定越好", "LoRA 的 rank 越大效果不一定越好",
     "LoRA 的 rank 越大效果一定越好。", "LoRA 的 rank 越大效果不一定越好。"),
])
def test_a_misconception_is_flagged_and_its_correct_neighbour_is_not(analyzer, claim, correction, wrong, right):
    assert flagged(analyzer, claim, correction, wrong)
    assert not flagged(analyzer, claim, correction, right)
    assert not flagged(analyzer, claim, correction, correction)


@pytest.mark.parametrize("answer", [
    "很多人以为梯度裁剪是解决梯度消失的，其实是防止爆炸。",  # reporting the mistake
    "不要说梯度裁剪能解决梯度消失。",
    "梯度裁剪不能解决梯度消失。",  # the claim negated
    "DPO 想绕过两件事：训练奖励模型，和梯度裁剪解决梯度消失。",  # a list under 绕过
    "梯度裁剪解决不了梯度消失。",  # V不了 is a negation
    "梯度裁剪是否能解决梯度消失，要看情况。",  # a whether-clause asks
    "前向 → 梯度裁剪 → 解决梯度消失 → step",  # a sequence of steps, not a claim
])
def test_sentences_that_do_not_hold_the_claim_are_not_flagged(analyzer, answer):
    assert not flagged(analyzer, "梯度裁剪主要是为了解决梯度消失", "梯度裁剪主要是为了防止梯度爆炸", answer)


@pytest.fixture(scope="module")
def real():
    corpus = load_corpus(Settings().corpus_dir, strict=False)
    return corpus, OfflineGrader(corpus.entries)


def test_the_corpus_lists_misconceptions_the_grader_can_use(real):
    """Measured 2026-11-22 (after review): 658 items in 171 entries; 14 unusable (their claim has no word
    or polarity of its own), 23 not recognised in their own words, no correction flagged by a sibling item."""
    corpus, grader = real
    items = usable = recognised = corrections_flagged = 0
    for e in corpus.entries:
        prepared = grader._prepare(e).misconceptions
        items += len(e.misconceptions)
        usable += len(prepared)
        recognised += sum(1 for m in prepared if any(x is m for x, _ in find(grader.analyzer, [m], m.claim)))
        corrections_flagged += sum(1 for m in e.misconceptions if find(grader.analyzer, prepared, m.correction))
    non_code = [e for e in corpus.entries if not e.section.startswith("5.")]
    assert sum(1 for e in non_code if e.misconceptions) >= 0.9 * len(non_code)
    assert usable >= 0.95 * items
    assert recognised >= 0.95 * usable
    assert corrections_flagged <= 0.01 * items


def test_reference_answers_rarely_trip_a_misconception(real):
    """A false alarm costs a correct candidate points: the entries' own answers are the check.
    Measured 2026-11-22: 6 sentences in 184 reference answers."""
    corpus, grader = real
    tripped = [(e.id, q) for e in corpus.entries
               for _, q in find(grader.analyzer, grader._prepare(e).misconceptions,
                                re.sub(r"```.*?```", " ", e.answer, flags=re.S))]
    assert len(tripped) <= 0.1 * len(corpus.entries), tripped


def test_grader_turns_a_listed_misconception_into_a_false_statement(real):
    corpus, grader = real
    checked = 0
    for e in corpus.entries:
        prepared = grader._prepare(e).misconceptions
        m = next((m for m in prepared if find(grader.analyzer, [m], m.claim)), None)
        if m is None:
            continue
        base = grader.grade(e, e.key_points[0] + "。")
        worse = grader.grade(e, e.key_points[0] + "。" + m.claim + "。")
        assert any(f.correction == m.correction or f.quote in m.claim for f in worse.false_statements), e.id
        assert worse.score <= base.score, e.id
        checked += 1
        if checked == 25:
            break
    assert checked == 25


def test_a_key_point_stated_correctly_elsewhere_keeps_its_credit(real):
    """The false sentence costs points and is listed, but the key point earned by a different,
    correct sentence stays covered (its evidence is that sentence)."""
    corpus, grader = real
    entry = corpus.get("gradient-clipping")
    right = "梯度裁剪是为了防止异常大的梯度让一步更新走得太远，把训练搞崩。"
    grade = grader.grade(entry, right + "另外，用了 Adam 就不需要梯度裁剪了。")
    assert [f.quote for f in grade.false_statements] == ["用了 Adam 就不需要梯度裁剪了"]
    assert grade.key_points[0].verdict == "covered" and grade.key_points[0].evidence in right
    assert grade.score < grader.grade(entry, right).score


def test_misconceptions_reach_the_llm_prompt_and_the_entry_page(real):
    corpus, _ = real
    e = next(e for e in corpus.entries if e.misconceptions)
    prompt = build_messages(e, "回答")[1]["content"]
    page = entry_markdown(e, corpus)
    m = e.misconceptions[0]
    assert "常见误区" in prompt and m.claim in prompt and m.correction in prompt
    assert "### 常见误区" in page and m.claim in page and m.correction in page
