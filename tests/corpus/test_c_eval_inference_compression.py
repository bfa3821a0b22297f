"""Computable claims of the C corpus entries (evaluation metrics, inference optimisation,
parallelism/serving, model compression, RAG evaluation).

Each test computes something (with torch or exact fractions) and checks the corpus against it: the
worked examples and numbers the entries state, or the code the entries show (run via `exec_entry`).
The metric implementations below (BLEU, ROUGE, retrieval metrics) are written from the formulas in
the entries, and checked on worked examples whose expected values are derived by hand in comments.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from fractions import Fraction

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.corpus.codeblocks import CORPUS_ROOT, corpus, entry, exec_entry
from tests.corpus.sections import own_file_problems, phrasing_owners, syllabus_items
from tutor.text import compact

SYLLABUS = CORPUS_ROOT / "syllabus" / "c-eval-inference-compression.md"
OWN_FILES = [
    "1.大模型算法基础/评估指标.md",
    "2.大模型优化技术/推理优化.md",
    "2.大模型优化技术/模型压缩技术.md",
    "2.大模型优化技术/并行与推理框架.md",
    "4.大模型应用/RAG与模型评测.md",
]
GiB, MiB, KiB = 2**30, 2**20, 2**10


def text_of(entry_id: str) -> str:
    e = entry(entry_id)
    return "\n".join([e.answer, *e.key_points])


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def mentions(entry_id: str, *snippets: str) -> None:
    body = squash(text_of(entry_id))
    for s in snippets:
        assert squash(s) in body, f"{entry_id}: expected to find {s!r}"


# ---------------------------------------------------------------------------------------------
# Structure: own files parse cleanly, links resolve, syllabus items are owned by exactly one entry.
# ---------------------------------------------------------------------------------------------

def test_own_files_have_no_format_problems():
    problems = own_file_problems(CORPUS_ROOT, OWN_FILES, corpus())
    assert not problems, "\n".join(problems)


def _syllabus_items() -> list[tuple[str, str, str]]:
    return syllabus_items(SYLLABUS, with_section=True)


def test_syllabus_items_are_verbatim_aliases_of_exactly_one_entry():
    items = _syllabus_items()
    assert len(items) >= 45
    owners = phrasing_owners(corpus())
    for _, item, entry_id in items:
        e = entry(entry_id)  # raises if the id does not exist
        assert item in e.aliases, f"{item!r} is not verbatim in {entry_id}"
        assert owners[compact(item)] == {entry_id}, f"{item!r} is also a phrasing of {owners[compact(item)]}"


def test_duplicated_outline_wording_has_one_owner_and_parent_qualified_items():
    # "指标的定义与计算方法" occurs under two parents in the outline: it belongs to the BLEU/ROUGE entry
    # only, and each parent's occurrence is listed as "<parent> · <item>" mapped to the right entry.
    holders = [e.id for e in corpus().entries if "指标的定义与计算方法" in e.aliases]
    assert holders == ["bleu-rouge"]
    mapping = {item: eid for _, item, eid in _syllabus_items()}
    assert mapping["BLEU、ROUGE等生成任务评估指标 · 指标的定义与计算方法"] == "bleu-rouge"
    assert mapping["精确率、召回率、F1等分类任务评估指标 · 指标的定义与计算方法"] == "precision-recall-f1"
    assert mapping["困惑度(Perplexity) · 定义与计算方法"] == "perplexity"
    # The question-list item appears under 模型评测 and 公式; both map to the same entry.
    sections = {s for s, item, eid in _syllabus_items() if item == "BLEU 和 ROUGH 的计算公式"}
    assert sections == {"面试题清单 · 模型评测", "面试题清单 · 公式"}


# ---------------------------------------------------------------------------------------------
# perplexity: PPL = exp(mean token cross-entropy), on a toy torch language model.
# ---------------------------------------------------------------------------------------------

class ToyLM(nn.Module):
    def __init__(self, vocab: int = 11, dim: int = 8):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.rnn = nn.GRU(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids):
        h, _ = self.rnn(self.emb(ids))
        return self.head(h)


def _manual_ppl(logits, ids, mask):
    """exp of the mean over every predicted, unmasked token of −log p(x_t | x_<t), by explicit loops."""
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    total, count = 0.0, 0
    for b in range(ids.shape[0]):
        for t in range(1, ids.shape[1]):
            if mask[b, t]:
                total += -log_probs[b, t - 1, ids[b, t]].item()
                count += 1
    return math.exp(total / count), total, count


def test_entry_perplexity_code_equals_exp_of_mean_token_cross_entropy():
    ns = exec_entry("perplexity")
    torch.manual_seed(0)
    model = ToyLM()
    ids = torch.randint(0, 11, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0  # padded tail of the second sequence
    mask[2, 4:] = 0
    with torch.no_grad():
        logits = model(ids)
    ref, total, count = _manual_ppl(logits, ids, mask)
    assert count == 8 + 5 + 3
    assert ns["perplexity"](logits, ids, mask).item() == pytest.approx(ref, rel=1e-5)
    # No mask: identical to exp(F.cross_entropy) on the shifted logits, i.e. exp(training loss).
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, 11), ids[:, 1:].reshape(-1))
    assert ns["perplexity"](logits, ids).item() == pytest.approx(math.exp(loss.item()), rel=1e-5)
    # Forgetting the mask changes the number, so the mask matters.
    assert abs(ns["perplexity"](logits, ids).item() - ref) > 1e-3


def test_perplexity_worked_example_uniform_case_and_jensen():
    probs = torch.tensor([0.5, 0.25, 0.5, 0.125], dtype=torch.float64)
    mean_nll = -probs.log().mean().item()
    assert mean_nll == pytest.approx(1.75 * math.log(2))
    ppl = math.exp(mean_nll)
    assert ppl == pytest.approx(2 ** 1.75) and ppl == pytest.approx(128 ** 0.25)
    mentions("perplexity", f"{mean_nll:.3f}", f"{ppl:.2f}", "128^{1/4}")
    assert f"{math.exp(2.0):.2f}" in entry("perplexity").answer and f"{math.exp(1.5):.2f}" in entry("perplexity").answer
    # Uniform prediction over V tokens gives PPL exactly V.
    ns = exec_entry("perplexity")
    V = 37
    ids = torch.randint(0, V, (2, 12))
    assert ns["perplexity"](torch.zeros(2, 12, V), ids).item() == pytest.approx(V, rel=1e-5)
    # Averaging per-sentence PPLs is not the corpus PPL. Equal lengths: Jensen makes it never lower.
    torch.manual_seed(1)
    for _ in range(20):
        nll = [torch.rand(8, dtype=torch.float64) * 4 for _ in range(3)]
        corpus_ppl = math.exp(torch.cat(nll).mean().item())
        assert sum(math.exp(x.mean().item()) for x in nll) / 3 >= corpus_ppl
    # Unequal lengths: sentences are weighted equally instead of by tokens, so it can even be lower.
    nll = [torch.full((3,), 0.5, dtype=torch.float64), torch.full((40,), 3.0, dtype=torch.float64)]
    corpus_ppl = math.exp(torch.cat(nll).mean().item())
    mean_of_ppls = (math.exp(0.5) + math.exp(3.0)) / 2
    assert mean_of_ppls < corpus_ppl
    mentions("perplexity", "逐句 PPL 的平均值也不小于语料级 PPL")


def test_bits_per_byte_is_tokenizer_independent():
    # The same text scored with two tokenisations that give the same total NLL has the same BPB,
    # while per-token PPL differs: the reason the entry gives for BPB.
    total_nll, n_bytes = 600.0, 1000
    per_token = {n_tok: total_nll / n_tok for n_tok in (250, 400)}
    ppl = {n: math.exp(v) for n, v in per_token.items()}
    bpb = {n: n * per_token[n] / (n_bytes * math.log(2)) for n in per_token}
    assert ppl[250] > ppl[400]
    assert bpb[250] == pytest.approx(bpb[400])
    assert r"\mathrm{BPB}=\frac{N_{\text{tok}}\cdot \bar\ell}{B\cdot\ln 2}" in entry("perplexity-limitations").answer


# ---------------------------------------------------------------------------------------------
# BLEU / ROUGE implemented from the formulas in bleu-rouge, checked on the entry's worked example.
# ---------------------------------------------------------------------------------------------

def ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def modified_precision(cand: list[str], refs: list[list[str]], n: int) -> Fraction:
    """p_n = Σ_g min(Cnt_c(g), max_r Cnt_r(g)) / Σ_g Cnt_c(g)."""
    c = ngrams(cand, n)
    max_ref = Counter()
    for r in refs:
        for g, k in ngrams(r, n).items():
            max_ref[g] = max(max_ref[g], k)
    return Fraction(sum(min(k, max_ref[g]) for g, k in c.items()), sum(c.values()))


def brevity_penalty(c: int, r: int) -> float:
    return 1.0 if c > r else math.exp(1 - r / c)


def bleu(cand: list[str], refs: list[list[str]], N: int = 4) -> float:
    r = min((len(x) for x in refs), key=lambda length: (abs(length - len(cand)), length))
    ps = [modified_precision(cand, refs, n) for n in range(1, N + 1)]
    if min(ps) == 0:
        return 0.0
    return brevity_penalty(len(cand), r) * math.exp(sum(math.log(p) / N for p in ps))


def rouge_n(cand: list[str], ref: list[str], n: int) -> tuple[Fraction, Fraction, Fraction]:
    c, r = ngrams(cand, n), ngrams(ref, n)
    overlap = sum(min(k, c[g]) for g, k in r.items())
    R, P = Fraction(overlap, sum(r.values())), Fraction(overlap, sum(c.values()))
    return R, P, 2 * P * R / (P + R)


def lcs(a: list[str], b: list[str]) -> int:
    dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            dp[i + 1][j + 1] = dp[i][j] + 1 if x == y else max(dp[i][j + 1], dp[i + 1][j])
    return dp[-1][-1]


def rouge_l(cand: list[str], ref: list[str], beta: Fraction = Fraction(1)):
    m = lcs(cand, ref)
    R, P = Fraction(m, len(ref)), Fraction(m, len(cand))
    return R, P, (1 + beta**2) * R * P / (R + beta**2 * P)


REF = "the cat sat on a red mat".split()
CAND = "the cat sat on the mat".split()


def test_bleu_worked_example_by_hand():
    # Hand count (reference 7 words, candidate 6 words):
    #   1-grams: the×2 (clipped to 1), cat, sat, on, mat → 5 of 6
    #   2-grams: the cat, cat sat, sat on match; on the, the mat do not → 3 of 5
    #   3-grams: the cat sat, cat sat on → 2 of 4;   4-grams: the cat sat on → 1 of 3
    hand = [Fraction(5, 6), Fraction(3, 5), Fraction(2, 4), Fraction(1, 3)]
    assert [modified_precision(CAND, [REF], n) for n in range(1, 5)] == hand
    product = hand[0] * hand[1] * hand[2] * hand[3]
    assert product == Fraction(1, 12)                       # 5/6·3/5 = 1/2, ·1/2 = 1/4, ·1/3 = 1/12
    geo = float(product) ** 0.25                            # (1/12)^(1/4)
    bp = math.exp(1 - 7 / 6)                                # c = 6 ≤ r = 7
    assert bleu(CAND, [REF]) == pytest.approx(bp * geo)
    mentions("bleu-rouge", "5/6", "3/5", "2/4", "1/3", "(1/12)^{1/4}", f"{geo:.3f}", f"{bp:.3f}",
             f"{bp * geo:.3f}", f"{100 * bp * geo:.1f}")


def test_bleu_clipping_brevity_and_zero_precision():
    # Clipping: "the the the the" against "the cat" scores 1/4, not 4/4.
    assert modified_precision("the the the the".split(), ["the cat".split()], 1) == Fraction(1, 4)
    # Brevity penalty: 1 for longer candidates, exp(1 − r/c) otherwise; shorter means lower.
    assert brevity_penalty(8, 7) == 1.0 and brevity_penalty(7, 7) == 1.0
    assert brevity_penalty(3, 7) < brevity_penalty(6, 7) < 1.0
    # Sentence-level BLEU is 0 when some p_n is 0 (no 4-gram match), as the entry warns.
    assert bleu("the cat is on the mat".split(), ["the cat sat on the mat".split()]) == 0.0
    mentions("bleu-rouge", r"e^{\,1-r/c}", r"w_n=\tfrac14")


def test_rouge_worked_example_by_hand():
    # ROUGE-1: reference unigrams 7, overlap 5 → R = 5/7, P = 5/6, F1 = 2·5/(6+7) = 10/13
    assert rouge_n(CAND, REF, 1) == (Fraction(5, 7), Fraction(5, 6), Fraction(10, 13))
    # ROUGE-2: reference bigrams 6, candidate bigrams 5, overlap 3 → R = 1/2, P = 3/5, F1 = 6/11
    assert rouge_n(CAND, REF, 2) == (Fraction(1, 2), Fraction(3, 5), Fraction(6, 11))
    # ROUGE-L: LCS = "the cat sat on mat" = 5 → same R, P, F as ROUGE-1 here
    assert lcs(CAND, REF) == 5
    assert rouge_l(CAND, REF) == (Fraction(5, 7), Fraction(5, 6), Fraction(10, 13))
    # Reversed reference: every unigram matches, but the LCS is a single word → ROUGE-L R = 1/7.
    rev = list(reversed(REF))
    assert " ".join(rev) == "mat red a on sat cat the"
    assert rouge_n(rev, REF, 1)[0] == 1 and rouge_l(rev, REF)[0] == Fraction(1, 7)
    mentions("bleu-rouge", "5/7", f"{5 / 7:.3f}", f"{5 / 6:.3f}", "10/13", f"{10 / 13:.3f}", "6/11",
             f"{6 / 11:.3f}", f"{1 / 7:.3f}", "mat red a on sat cat the")


# ---------------------------------------------------------------------------------------------
# precision / recall / F1 and the imbalanced-data example.
# ---------------------------------------------------------------------------------------------

def labels_from_counts(tp: int, fp: int, fn: int, tn: int) -> tuple[torch.Tensor, torch.Tensor]:
    y_true = torch.tensor([1] * tp + [0] * fp + [1] * fn + [0] * tn)
    y_pred = torch.tensor([1] * tp + [1] * fp + [0] * fn + [0] * tn)
    return y_true, y_pred


def prf(y_true: torch.Tensor, y_pred: torch.Tensor) -> dict[str, float]:
    tp = int(((y_pred == 1) & (y_true == 1)).sum())
    fp = int(((y_pred == 1) & (y_true == 0)).sum())
    fn = int(((y_pred == 0) & (y_true == 1)).sum())
    tn = int(((y_pred == 0) & (y_true == 0)).sum())
    p = tp / (tp + fp) if tp + fp else 0.0  # 0/0 reported as 0 (sklearn's zero_division=0)
    r = tp / (tp + fn)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    tnr = tn / (tn + fp)
    return {"p": p, "r": r, "f1": f1, "acc": (tp + tn) / len(y_true), "fpr": fp / (fp + tn),
            "bal_acc": (r + tnr) / 2, "f1_counts": 2 * tp / (2 * tp + fp + fn)}


def test_precision_recall_f1_worked_example():
    m = prf(*labels_from_counts(tp=40, fp=10, fn=20, tn=930))
    assert m["p"] == pytest.approx(0.8) and m["r"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(m["f1_counts"]) == pytest.approx(80 / 110)
    assert m["acc"] == pytest.approx(0.97)
    mentions("precision-recall-f1", "40/50=0.80", f"{m['r']:.3f}", "80/110", f"{m['f1']:.3f}", "970/1000=0.97")
    # Harmonic vs arithmetic mean for P = 1, R = 0.01.
    f1 = 2 * 1 * 0.01 / 1.01
    mentions("precision-recall-f1", f"{(1 + 0.01) / 2:.3f}", f"{f1:.4f}")


def test_micro_f1_equals_accuracy_for_single_label_multiclass():
    torch.manual_seed(0)
    y_true, y_pred = torch.randint(0, 5, (500,)), torch.randint(0, 5, (500,))
    tp = fp = fn = 0
    for c in range(5):
        tp += int(((y_pred == c) & (y_true == c)).sum())
        fp += int(((y_pred == c) & (y_true != c)).sum())
        fn += int(((y_pred != c) & (y_true == c)).sum())
    micro_f1 = 2 * tp / (2 * tp + fp + fn)
    assert micro_f1 == pytest.approx((y_true == y_pred).float().mean().item())
    mentions("precision-recall-f1", "单标签多分类时 micro-F1 等于准确率")


def test_imbalanced_example_all_negative_and_useful_classifier():
    a = prf(*labels_from_counts(tp=0, fp=0, fn=10, tn=990))
    assert a["acc"] == pytest.approx(0.99) and a["r"] == 0 and a["f1"] == 0 and a["bal_acc"] == pytest.approx(0.5)
    b = prf(*labels_from_counts(tp=8, fp=40, fn=2, tn=950))
    assert b["acc"] == pytest.approx(0.958) and b["acc"] < a["acc"]
    assert b["r"] == pytest.approx(0.8) and b["p"] == pytest.approx(8 / 48)
    assert b["f1"] == pytest.approx(16 / 58)
    assert b["fpr"] == pytest.approx(40 / 990)
    mentions("imbalanced-classification-metrics", "99\\%", "95.8\\%", "8/48", f"{b['p']:.3f}", "16/58",
             f"{b['f1']:.3f}", "40/990", f"{b['fpr']:.3f}", f"{b['bal_acc']:.2f}", "16.7%")


def _roc_auc(scores: torch.Tensor, y: torch.Tensor) -> float:
    pos, neg = scores[y == 1], scores[y == 0]
    return (pos[:, None] > neg[None, :]).double().mean().item()


def _average_precision(scores: torch.Tensor, y: torch.Tensor) -> float:
    order = torch.argsort(scores, descending=True)
    hits = y[order].double()
    precision_at = hits.cumsum(0) / torch.arange(1, len(y) + 1)
    return (precision_at * hits).sum().item() / hits.sum().item()


def test_random_classifier_baselines_pr_auc_is_prevalence_roc_auc_is_half():
    torch.manual_seed(0)
    n, rate = 40_000, 0.01
    y = (torch.rand(n) < rate).long()
    scores = torch.rand(n)
    assert _roc_auc(scores, y) == pytest.approx(0.5, abs=0.05)
    assert _average_precision(scores, y) == pytest.approx(y.float().mean().item(), abs=0.005)
    mentions("imbalanced-classification-metrics", "PR-AUC 基线等于正例比例", "ROC-AUC 基线则永远是 0.5")


# ---------------------------------------------------------------------------------------------
# INT8 quantisation: the entry's quantise/dequantise code, error bounds and worked example.
# ---------------------------------------------------------------------------------------------

def test_symmetric_int8_error_is_at_most_half_a_step():
    ns = exec_entry("quantization-principle")
    torch.manual_seed(0)
    x = torch.randn(10_000) * 3
    q, scale = ns["quantize_symmetric"](x)
    assert q.dtype == torch.int8 and int(q.abs().max()) == 127
    assert scale.item() == pytest.approx(x.abs().max().item() / 127)
    err = (ns["dequantize"](q, scale) - x).abs().max().item()
    assert err <= scale.item() / 2 + 1e-6
    assert err > scale.item() / 4  # the bound is tight on a dense tensor, not vacuous


def test_asymmetric_uint8_error_bound_and_advantage_on_skewed_tensor():
    ns = exec_entry("quantization-principle")
    torch.manual_seed(0)
    x = torch.relu(torch.randn(10_000)) * 2            # one-sided, like a post-ReLU activation
    q, scale, zp = ns["quantize_asymmetric"](x)
    assert q.dtype == torch.uint8 and int(q.min()) == 0 and int(q.max()) == 255
    err_asym = (ns["dequantize"](q, scale, zp) - x).abs().max().item()
    assert err_asym <= scale.item() / 2 + 1e-6
    qs, ss = ns["quantize_symmetric"](x)
    err_sym = (ns["dequantize"](qs, ss) - x).abs().max().item()
    assert scale.item() == pytest.approx(ss.item() * 127 / 255)   # twice as many usable codes
    assert err_asym < 0.6 * err_sym
    # A range that does not contain 0 is widened to include it, so 0 stays exact.
    y = torch.linspace(-3.0, -1.0, 101)
    q, scale, zp = ns["quantize_asymmetric"](y)
    assert (ns["dequantize"](q, scale, zp) - y).abs().max().item() <= scale.item() / 2 + 1e-6
    zero = ns["dequantize"](torch.clamp(torch.round(torch.tensor(0.0) / scale) + zp, 0, 255), scale, zp)
    assert zero.item() == 0.0
    # 4-bit through the same code obeys the same bound.
    q4, s4, z4 = ns["quantize_asymmetric"](x, bits=4)
    assert int(q4.max()) == 15
    assert (ns["dequantize"](q4, s4, z4) - x).abs().max().item() <= s4.item() / 2 + 1e-6


def test_quantization_worked_example_numbers():
    ns = exec_entry("quantization-principle")
    x = torch.tensor([0.0, 0.2, 0.5, 2.55])
    _, s_sym = ns["quantize_symmetric"](x)
    q, s_asym, zp = ns["quantize_asymmetric"](x)
    assert s_sym.item() == pytest.approx(2.55 / 127) and s_asym.item() == pytest.approx(0.01) and zp.item() == 0
    assert (ns["dequantize"](q, s_asym, zp) - x).abs().max().item() <= 0.005 + 1e-6
    mentions("quantization-principle", f"{2.55 / 127:.4f}", f"{2.55 / 127 / 2:.4f}", "s=2.55/255=0.01", "0.005")
    # Group-wise INT4 with an FP16 scale per 128 weights.
    mentions("quantization-principle", f"16/128={16 / 128:.3f}", f"{4 + 16 / 128:.3f}")


def test_quantization_memory_and_bandwidth_numbers():
    params = 7e9
    gb = {bits: params * bits / 8 / 1e9 for bits in (16, 8, 4)}
    assert gb == {16: 14.0, 8: 7.0, 4: 3.5}
    mentions("quantization-impact", "约 14 GB", "约 7 GB", "约 3.5 GB", "140 GB")
    tokens_per_s = 2000 / gb[16]                      # 2 TB/s ÷ 14 GB read per decoded token
    assert round(tokens_per_s, -1) == 140
    mentions("quantization-impact", "2000/14\\approx 140$ token/s", "624 TOPS", "312 TFLOPS")
    assert 624 / 312 == 2


# ---------------------------------------------------------------------------------------------
# Low-rank decomposition: the entry's svd_compress, Eckart–Young, parameter and FLOP counts.
# ---------------------------------------------------------------------------------------------

def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_svd_compress_is_exact_for_low_rank_weights_and_counts_r_m_plus_n():
    ns = exec_entry("low-rank-decomposition")
    torch.manual_seed(0)
    m, n, true_rank = 48, 64, 8
    lin = nn.Linear(n, m).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(m, true_rank, dtype=torch.float64) @ torch.randn(true_rank, n, dtype=torch.float64))
    comp = ns["svd_compress"](lin, true_rank)
    x = torch.randn(5, n, dtype=torch.float64)
    assert torch.allclose(comp(x), lin(x), atol=1e-9)
    assert _count(comp) == true_rank * (m + n) + m            # r(m+n) weights plus the bias
    assert _count(lin) == m * n + m


def test_truncated_svd_error_matches_eckart_young():
    ns = exec_entry("low-rank-decomposition")
    torch.manual_seed(0)
    lin = nn.Linear(40, 30, bias=False).double()
    W = lin.weight.data
    S = torch.linalg.svdvals(W)
    for r in (1, 5, 12):
        comp = ns["svd_compress"](lin, r)
        W_r = comp[1].weight.data @ comp[0].weight.data
        err = torch.linalg.matrix_norm(W - W_r).item()
        assert err == pytest.approx(S[r:].pow(2).sum().sqrt().item(), rel=1e-9)
        # Any other rank-r matrix (here: a random rank-r projection of W) does no better.
        Q, _ = torch.linalg.qr(torch.randn(40, r, dtype=torch.float64))
        assert torch.linalg.matrix_norm(W - W @ Q @ Q.T).item() >= err - 1e-12


def test_low_rank_savings_for_a_4096_square_layer():
    m = n = 4096
    r = 256
    dense = nn.Linear(n, m, bias=False, device="meta")
    factored = nn.Sequential(nn.Linear(n, r, bias=False, device="meta"), nn.Linear(r, m, bias=False, device="meta"))
    assert _count(dense) == m * n == 16_777_216
    assert _count(factored) == r * (m + n) == 2_097_152
    assert _count(factored) / _count(dense) == 0.125
    flops_dense = 2 * sum(l.in_features * l.out_features for l in [dense])
    flops_fact = 2 * sum(l.in_features * l.out_features for l in factored)
    assert flops_dense == 33_554_432 and flops_fact == 4_194_304
    break_even = m * n // (m + n)
    assert break_even == 2048
    assert 2048 * (m + n) == m * n and 1024 * (m + n) * 2 == m * n     # r = 1024 saves exactly half
    mentions("low-rank-decomposition", "16,777,216", "256\\times8192=2{,}097{,}152", "12.5%", "3355 万",
             "419 万", "4096^2/8192=2048")
    mentions("low-rank-impact", "临界秩是 2048", "$r=1024$ 时省一半", "$r=256$ 时省到 12.5%")


def test_tucker2_conv_parameter_count():
    T = S = 256
    k, R = 3, 64
    conv = nn.Conv2d(S, T, k, bias=False, device="meta")
    tucker = nn.Sequential(nn.Conv2d(S, R, 1, bias=False, device="meta"),
                           nn.Conv2d(R, R, k, bias=False, device="meta"),
                           nn.Conv2d(R, T, 1, bias=False, device="meta"))
    assert _count(conv) == T * S * k * k == 589_824
    assert _count(tucker) == S * R + R * R * k * k + R * T == 69_632
    mentions("low-rank-decomposition", "589,824", "16{,}384+36{,}864+16{,}384=69{,}632",
             f"{100 * 69_632 / 589_824:.1f}%")


# ---------------------------------------------------------------------------------------------
# Parameter sharing: ALBERT factorisation numbers, the entry's SharedEncoder, tied embeddings.
# ---------------------------------------------------------------------------------------------

def test_albert_embedding_factorisation_and_tied_embedding_counts():
    V, H, E = 30_000, 4096, 128
    # (meta tensors passed as _weight: no memory, and no slow random init on the meta device)
    full = nn.Embedding(V, H, _weight=torch.empty(V, H, device="meta"))
    factored = nn.Sequential(nn.Embedding(V, E, _weight=torch.empty(V, E, device="meta")),
                             nn.Linear(E, H, bias=False, device="meta"))
    assert _count(full) == 122_880_000 and _count(factored) == 4_364_288
    mentions("parameter-sharing", "30000\\times4096=122{,}880{,}000", "30000\\times128+128\\times4096=4{,}364{,}288")
    # Tied LM head: 32000 × 4096 parameters saved ≈ 1.31 亿.
    assert round(32_000 * 4096 / 1e8, 2) == 1.31
    mentions("parameter-sharing", "约 1.31 亿参数")
    # One BERT-large layer (H = 1024, FFN 4H): 12H² weights ≈ 1260 万; 24 layers ≈ 3 亿.
    layer = nn.TransformerEncoderLayer(1024, 16, 4096, device="meta")
    assert 12 * 1024**2 <= _count(layer) <= 12 * 1024**2 + 20 * 1024
    assert round(_count(layer) / 1e4, -1) == 1260 and round(24 * _count(layer) / 1e8) == 3
    mentions("parameter-sharing", "12H^2\\approx1260", "24 层约 3 亿")


def test_shared_encoder_stores_one_layer_but_computes_all():
    ns = exec_entry("parameter-sharing")
    torch.manual_seed(0)
    layer = nn.Linear(16, 16)
    enc = ns["SharedEncoder"](layer, 6)
    assert _count(enc) == _count(layer)                         # parameters: one layer
    calls = []
    layer.register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(3, 16)
    y = enc(x)
    assert len(calls) == 6                                       # compute: six layer applications
    ref = x
    for _ in range(6):
        ref = layer(ref)
    assert torch.allclose(y, ref)
    # Gradients of all six uses accumulate into the single shared weight.
    enc.zero_grad()
    y.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    mentions("parameter-sharing-impact", "前向 FLOPs 不变")


# ---------------------------------------------------------------------------------------------
# KV cache: memory formula and numbers, the entry's decode step vs full causal attention.
# ---------------------------------------------------------------------------------------------

def kv_bytes(layers, kv_heads, head_dim, seq, batch=1, nbytes=2):
    return 2 * layers * kv_heads * head_dim * seq * batch * nbytes


def test_kv_cache_memory_numbers():
    per_tok_7b = kv_bytes(32, 32, 128, 1)
    assert per_tok_7b == 524_288 == MiB // 2
    assert kv_bytes(32, 32, 128, 4096) == 2 * GiB
    assert kv_bytes(32, 32, 128, 4096, batch=16) == 32 * GiB
    per_tok_70b = kv_bytes(80, 8, 128, 1)
    assert per_tok_70b == 327_680 == 320 * KiB
    assert kv_bytes(80, 8, 128, 4096) == int(1.25 * GiB)
    mentions("kv-cache", "2\\times32\\times32\\times128\\times2=524{,}288", "0.5 MiB", "2 GiB/序列", "32 GiB",
             "2\\times80\\times8\\times128\\times2=327{,}680", "320 KiB", "1.25 GiB")
    # A paged block of 16 tokens holds 16 × 0.5 MiB = 8 MiB across all layers of LLaMA-2-7B.
    assert 16 * per_tok_7b == 8 * MiB
    mentions("paged-attention-vllm", "0.5 MiB", "8 MiB", f"{100 * (1 - 300 / 2048):.0f}\\%")


def test_kv_cache_formula_matches_real_cache_tensors():
    L, h_kv, d, s, b = 3, 2, 16, 10, 4
    cache = [(torch.zeros(b, h_kv, s, d, dtype=torch.float16), torch.zeros(b, h_kv, s, d, dtype=torch.float16))
             for _ in range(L)]
    actual = sum(t.numel() * t.element_size() for kv in cache for t in kv)
    assert actual == kv_bytes(L, h_kv, d, s, b, 2)


def test_decode_step_with_cache_equals_full_causal_attention():
    ns = exec_entry("kv-cache")
    torch.manual_seed(0)
    B, T, d = 2, 7, 16
    x = torch.randn(B, T, d, dtype=torch.float64)
    w_q, w_k, w_v = (torch.randn(d, d, dtype=torch.float64) / 4 for _ in range(3))
    q, k, v = x @ w_q, x @ w_k, x @ w_v
    scores = q @ k.transpose(1, 2) / math.sqrt(d)
    scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    full = torch.softmax(scores, -1) @ v
    cache = {"k": torch.zeros(B, 0, d, dtype=torch.float64), "v": torch.zeros(B, 0, d, dtype=torch.float64)}
    steps = [ns["decode_step"](x[:, t:t + 1], w_q, w_k, w_v, cache) for t in range(T)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-12)
    assert cache["k"].shape == (B, T, d)


# ---------------------------------------------------------------------------------------------
# FlashAttention: the entry's block-wise online-softmax attention is exact.
# ---------------------------------------------------------------------------------------------

def test_blockwise_online_softmax_attention_is_exact():
    ns = exec_entry("flash-attention")
    torch.manual_seed(0)
    n, m, d = 50, 130, 32
    q, k = torch.randn(n, d, dtype=torch.float64) * 3, torch.randn(m, d, dtype=torch.float64) * 3
    v = torch.randn(m, 24, dtype=torch.float64)
    ref = torch.softmax(q @ k.T / math.sqrt(d), dim=-1) @ v
    for block in (7, 16, 64, 200):
        out = ns["blockwise_attention"](q, k, v, block=block)
        assert torch.allclose(out, ref, atol=1e-12), block
    mentions("flash-attention", "精确注意力", r"e^{m-m'}")


# ---------------------------------------------------------------------------------------------
# Speculative decoding: the accept/resample rule reproduces the target distribution exactly.
# ---------------------------------------------------------------------------------------------

def test_speculative_sampling_output_distribution_is_the_target():
    torch.manual_seed(0)
    V = 12
    p = torch.softmax(torch.randn(V, dtype=torch.float64) * 2, -1)   # target
    q = torch.softmax(torch.randn(V, dtype=torch.float64) * 2, -1)   # draft
    beta = torch.minimum(p, q).sum()
    residual = torch.clamp(p - q, min=0)
    assert residual.sum().item() == pytest.approx(1 - beta.item())
    p_res = residual / residual.sum()
    analytic = q * torch.clamp(p / q, max=1) + (1 - beta) * p_res
    assert torch.allclose(analytic, p, atol=1e-12)
    # Monte Carlo of the same rule.
    n = 400_000
    draft = torch.multinomial(q, n, replacement=True)
    accept = torch.rand(n, dtype=torch.float64) < torch.clamp(p[draft] / q[draft], max=1)
    resampled = torch.multinomial(p_res, n, replacement=True)
    out = torch.where(accept, draft, resampled)
    freq = torch.bincount(out, minlength=V).double() / n
    assert (freq - p).abs().max().item() < 0.005
    assert (freq - q).abs().max().item() > 0.02                       # and it is not the draft's
    mentions("speculative-decoding", r"\min\Big(1,\frac{p(x)}{q(x)}\Big)", r"\max(0,\,p(x)-q(x))")


def test_speculative_expected_tokens_and_speedup():
    alpha, gamma, c = 0.8, 4, 0.05
    closed = (1 - alpha ** (gamma + 1)) / (1 - alpha)
    assert closed == pytest.approx(sum(alpha**i for i in range(gamma + 1)))
    speedup = closed / (gamma * c + 1)
    mentions("speculative-decoding", f"{closed:.2f}", f"约 {speedup:.1f} 倍")


# ---------------------------------------------------------------------------------------------
# Knowledge distillation: the entry's kd_loss and the T² scaling argument.
# ---------------------------------------------------------------------------------------------

def test_kd_loss_t_squared_keeps_soft_gradient_scale_at_high_temperature():
    ns = exec_entry("knowledge-distillation")
    torch.manual_seed(0)
    N = 10
    v = torch.randn(1, N, dtype=torch.float64)
    v = v - v.mean()
    z0 = torch.randn(1, N, dtype=torch.float64)
    z0 = z0 - z0.mean()
    label = torch.tensor([3])
    grads = {}
    limit = (z0 - v) / N            # high-temperature limit of T²·(1/T)(p_s − p_t), independent of T
    errors = []
    for T in (50.0, 200.0, 1000.0):
        z = z0.clone().requires_grad_(True)
        ns["kd_loss"](z, v, label, T=T, alpha=1.0).backward()
        grads[T] = z.grad
        errors.append((z.grad - limit).abs().max().item())
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.01 * limit.abs().max().item()
    assert torch.allclose(grads[200.0], grads[1000.0], rtol=0.02, atol=1e-3)
    # Without the T² factor the soft gradient would shrink by (200/50)² = 16.
    z = z0.clone().requires_grad_(True)
    F.kl_div(F.log_softmax(z / 200.0, -1), F.softmax(v / 200.0, -1), reduction="batchmean").backward()
    assert z.grad.norm().item() == pytest.approx(grads[200.0].norm().item() / 200.0**2, rel=1e-6)
    # alpha = 0 leaves plain cross-entropy.
    z = z0.clone()
    assert ns["kd_loss"](z, v, label, T=4.0, alpha=0.0).item() == pytest.approx(F.cross_entropy(z, label).item())


# ---------------------------------------------------------------------------------------------
# Parallelism: the entry's column/row tensor-parallel MLP, pipeline bubble by simulation.
# ---------------------------------------------------------------------------------------------

def test_tensor_parallel_mlp_matches_dense_and_row_split_before_gelu_does_not():
    ns = exec_entry("model-parallelism")
    torch.manual_seed(0)
    h = 16
    x = torch.randn(5, h, dtype=torch.float64)
    A, B = torch.randn(h, 4 * h, dtype=torch.float64), torch.randn(4 * h, h, dtype=torch.float64)
    dense = F.gelu(x @ A) @ B
    for t in (1, 2, 4, 8):
        assert torch.allclose(ns["tensor_parallel_mlp"](x, A, B, t), dense, atol=1e-10)
    # Splitting A by rows gives partial sums; applying GeLU to each part before summing is wrong.
    xs, As = x.chunk(2, dim=1), A.chunk(2, dim=0)
    wrong = sum(F.gelu(xi @ Ai) for xi, Ai in zip(xs, As)) @ B
    assert not torch.allclose(wrong, dense, atol=1e-3)


def test_gpipe_bubble_fraction_by_schedule_simulation():
    def idle_fraction(p: int, m: int) -> Fraction:
        slots = m + p - 1                   # forward pass: stage s works on micro-batch t − s
        busy = sum(1 for t in range(slots) for s in range(p) if 0 <= t - s < m)
        return Fraction(p * slots - busy, p * slots)

    for p, m in ((4, 8), (4, 32), (8, 8), (2, 1)):
        assert idle_fraction(p, m) == Fraction(p - 1, m + p - 1)
    mentions("model-parallelism", r"\frac{p-1}{m+p-1}", f"3/11\\approx{100 * 3 / 11:.0f}\\%",
             f"3/35\\approx{100 * 3 / 35:.1f}\\%")


def test_inference_latency_and_roofline_numbers():
    e2e = 0.2 + (500 - 1) * 0.025
    assert e2e == pytest.approx(12.675)
    mentions("inference-acceleration-impact", "0.2+499\\times0.025=12.675")
    ridge = 312e12 / 2.039e12                # A100 80GB: FP16 dense TFLOPS / HBM bandwidth
    assert 140 < ridge < 160
    mentions("inference-acceleration-impact", "\\approx150")


# ---------------------------------------------------------------------------------------------
# Scalable attention: the Longformer mask grows linearly with length.
# ---------------------------------------------------------------------------------------------

def test_longformer_mask_nonzeros_are_linear_in_length():
    ns = exec_entry("scalable-attention")
    w = 64
    half = w // 2
    for n in (256, 512, 1024):
        mask = ns["longformer_mask"](n, w)
        assert int(mask.sum()) == n * (2 * half + 1) - half * (half + 1)   # band minus the corners
        assert torch.equal(mask, mask.T)
    small, big = (int(ns["longformer_mask"](n, w).sum()) for n in (512, 1024))
    assert 1.9 < big / small < 2.1                                      # O(n·w), not O(n²)
    g = ns["longformer_mask"](512, w, global_idx=(0,))
    assert bool(g[0].all()) and bool(g[:, 0].all())
    assert int(g.sum()) - small <= 2 * 512


# ---------------------------------------------------------------------------------------------
# RAG retrieval metrics from the formulas in rag-evaluation; evaluation statistics.
# ---------------------------------------------------------------------------------------------

def hit_at_k(ranked, relevant, k):
    return float(any(d in relevant for d in ranked[:k]))


def recall_at_k(ranked, relevant, k):
    return len(set(ranked[:k]) & set(relevant)) / len(relevant)


def reciprocal_rank(ranked, relevant):
    return next((1 / i for i, d in enumerate(ranked, 1) if d in relevant), 0.0)


def ndcg_at_k(ranked, relevant, k):
    dcg = sum(1 / math.log2(i + 1) for i, d in enumerate(ranked[:k], 1) if d in relevant)
    idcg = sum(1 / math.log2(i + 1) for i in range(1, min(k, len(relevant)) + 1))
    return dcg, idcg, dcg / idcg


def test_rag_retrieval_metrics_worked_example():
    ranked, relevant = ["C", "A", "D", "B", "E"], {"A", "B"}
    assert hit_at_k(ranked, relevant, 5) == 1 and hit_at_k(ranked, relevant, 1) == 0
    assert recall_at_k(ranked, relevant, 5) == 1 and recall_at_k(ranked, relevant, 1) == 0
    assert reciprocal_rank(ranked, relevant) == 0.5
    assert reciprocal_rank(["C", "D"], relevant) == 0.0
    dcg, idcg, ndcg = ndcg_at_k(ranked, relevant, 5)
    # By hand: DCG = 1/log2(3) + 1/log2(5) (ranks 2 and 4); IDCG = 1/log2(2) + 1/log2(3) (ranks 1, 2).
    assert dcg == pytest.approx(1 / math.log2(3) + 1 / math.log2(5))
    assert idcg == pytest.approx(1 + 1 / math.log2(3))
    assert ndcg_at_k(["A", "B", "C"], relevant, 5)[2] == pytest.approx(1.0)
    mentions("rag-evaluation", f"{1 / math.log2(3):.3f}", f"{1 / math.log2(5):.3f}", f"{dcg:.3f}",
             f"{idcg:.3f}", f"\\mathrm{{nDCG@5}}\\approx{ndcg:.3f}")
    mentions("rag-evaluation", "python -m eval retrieval --queries", '"relevant": []', "tutor eval")


def test_eval_set_confidence_interval_and_pass_at_k():
    se = math.sqrt(0.8 * 0.2 / 400)
    assert se == pytest.approx(0.02)
    torch.manual_seed(0)
    sims = torch.distributions.Binomial(400, torch.tensor(0.8)).sample((20_000,)) / 400
    assert sims.std().item() == pytest.approx(se, rel=0.05)
    mentions("eval-dataset-construction", f"\\pm1.96\\times0.02\\approx\\pm{100 * 1.96 * se:.1f}")
    # pass@k unbiased estimator = probability that a random k-subset of the n samples has a pass.
    n, c, k = 6, 2, 3
    samples = [1] * c + [0] * (n - c)
    brute = Fraction(sum(any(samples[i] for i in sub) for sub in itertools.combinations(range(n), k)),
                     math.comb(n, k))
    assert brute == 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert float(brute) != pytest.approx(1 - (1 - c / n) ** k)        # the naive formula is biased
    assert r"1-\frac{\binom{n-c}{k}}{\binom{n}{k}}" in entry("llm-evaluation-metrics").answer
