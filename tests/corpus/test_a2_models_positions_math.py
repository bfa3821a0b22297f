"""Computable claims of corpus part A2 (model families, position encodings, tokenisation, basic
math, parameter counts), checked against independent computation.

Each test either runs the code an entry shows (via `exec_entry`) against a reference written here
or in PyTorch, or recomputes a number the entry states and checks that the entry states it.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.corpus.codeblocks import CORPUS_ROOT, corpus, entry, exec_entry
from tests.corpus.sections import own_file_problems, syllabus_items

OWN_FILES = {
    "1.大模型算法基础/位置编码.md",
    "1.大模型算法基础/主流模型架构.md",
    "1.大模型算法基础/BERT与预训练目标.md",
    "1.大模型算法基础/分词与词表.md",
    "1.大模型算法基础/基础数学.md",
    "1.大模型算法基础/解码策略.md",
    "1.大模型算法基础/参数量与计算量.md",
}
SYLLABUS = CORPUS_ROOT / "syllabus" / "a2-models-positions-math.md"


def text_of(entry_id: str) -> str:
    e = entry(entry_id)
    return "\n".join([e.answer, *e.key_points])


def plain(s: str) -> str:
    """Entry text with LaTeX thousands separators and spaces removed, for number look-ups."""
    return s.replace("{,}", ",").replace(" ", "")


# --------------------------------------------------------------------------- format and syllabus


def test_own_files_have_no_problems():
    problems = own_file_problems(CORPUS_ROOT, OWN_FILES, corpus())
    assert not problems, "\n".join(problems)


def test_syllabus_items_are_verbatim_aliases_of_their_entry_only():
    items = syllabus_items(SYLLABUS)
    assert len(items) >= 31
    owners: dict[str, set[str]] = {}
    for e in corpus().entries:
        for phrasing in [e.question, *e.aliases]:
            owners.setdefault(phrasing, set()).add(e.id)
    for item, entry_id in items:
        assert corpus().get(entry_id) is not None, entry_id
        assert owners.get(item) == {entry_id}, (item, owners.get(item))
    # The seed's double space must survive.
    assert ("BERT 原理与 NSP 和  MLM", "bert-mlm-nsp") in items


# --------------------------------------------------------------------------- position encodings


def rotation_matrix(m: int, d: int, base: float = 10000.0) -> torch.Tensor:
    """R_m from the RoPE formula: block diagonal, block i rotates by m * base^(-2i/d)."""
    R = torch.zeros(d, d, dtype=torch.float64)
    for i in range(d // 2):
        a = m * base ** (-2 * i / d)
        R[2 * i : 2 * i + 2, 2 * i : 2 * i + 2] = torch.tensor(
            [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64
        )
    return R


def test_rope_entry_code_matches_formula_and_is_relative():
    apply_rope = exec_entry("rope")["apply_rope"]
    torch.manual_seed(0)
    d = 64
    q, k = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)

    def at(x, m):
        return apply_rope(x[None, :], torch.tensor([m]))[0]

    # The code is the block-diagonal rotation written in the formula.
    for m in (0, 1, 7, 300):
        assert torch.allclose(at(q, m), rotation_matrix(m, d) @ q, atol=1e-10)
    # R_m^T R_n = R_{n-m}
    assert torch.allclose(rotation_matrix(5, d).T @ rotation_matrix(12, d), rotation_matrix(7, d), atol=1e-10)
    # Orthogonal: norms are preserved.
    assert torch.isclose(at(q, 1234).norm(), q.norm())
    # q_m . k_n depends only on m - n ...
    for m, n in [(3, 0), (10, 4), (100, 57)]:
        ref = at(q, m) @ at(k, n)
        for s in (1, 17, 999):
            assert torch.isclose(at(q, m + s) @ at(k, n + s), ref, atol=1e-9)
    # ... and actually changes with m - n (the property is not vacuous).
    assert not torch.isclose(at(q, 3) @ at(k, 0), at(q, 4) @ at(k, 0), atol=1e-6)

    t = text_of("rope")
    assert r"\theta_i = b^{-2i/d}" in t and "b=10000" in t
    # Stated wavelength range for d = 128: 2π to about 54,000 positions.
    longest = 2 * math.pi / (10000 ** (-(128 - 2) / 128))
    assert round(longest, -3) == 54000 and "54,000" in plain(t)


def test_forward_pass_rope_agrees_with_rope_entry():
    """The decoder entry's `rotate` must be the same RoPE as the rope entry's `apply_rope`."""
    rotate = exec_entry("decoder-only-forward-pass")["rotate"]
    apply_rope = exec_entry("rope")["apply_rope"]
    torch.manual_seed(1)
    x = torch.randn(2, 3, 10, 16)
    assert torch.allclose(rotate(x), apply_rope(x, torch.arange(10)), atol=1e-5)


def test_sinusoidal_shift_is_a_rotation():
    d, w = 16, None
    i = torch.arange(d // 2, dtype=torch.float64)
    w = 10000.0 ** (-2 * i / d)

    def pe(pos):
        out = torch.empty(d, dtype=torch.float64)
        out[0::2], out[1::2] = torch.sin(pos * w), torch.cos(pos * w)
        return out

    for pos, k in [(0, 3), (17, 5), (200, 41)]:
        M = torch.zeros(d, d, dtype=torch.float64)
        for j in range(d // 2):
            c, s = math.cos(k * w[j]), math.sin(k * w[j])
            M[2 * j : 2 * j + 2, 2 * j : 2 * j + 2] = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
        assert torch.allclose(M @ pe(pos), pe(pos + k), atol=1e-10)
    t = text_of("absolute-position-encoding-limits")
    assert r"\cos k\omega_i & \sin k\omega_i\\ -\sin k\omega_i & \cos k\omega_i" in t


def test_ntk_base_change_keeps_highest_and_interpolates_lowest_frequency():
    d, b, s = 128, 10000.0, 8.0
    b_new = b * s ** (d / (d - 2))
    theta = lambda base, i: base ** (-2 * i / d)  # noqa: E731
    assert math.isclose(theta(b_new, 0), theta(b, 0))
    assert math.isclose(theta(b_new, d // 2 - 1), theta(b, d // 2 - 1) / s, rel_tol=1e-12)
    # Intermediate frequencies are scaled by a factor strictly between 1 and s.
    mid = theta(b, d // 4) / theta(b_new, d // 4)
    assert 1 < mid < s
    assert "b' = b\\cdot s^{d/(d-2)}" in text_of("rope-length-extrapolation")


def test_alibi_slopes():
    H = 8
    slopes = [2 ** (-8 * h / H) for h in range(1, H + 1)]
    assert slopes == [1 / 2 ** k for k in range(1, 9)]
    t = text_of("alibi")
    assert "m_h = 2^{-8h/H}" in t and r"\tfrac1{256}" in t


# --------------------------------------------------------------------------- softmax / cross-entropy


def test_softmax_entry_matches_torch_and_is_stable():
    ns = exec_entry("softmax-formula")
    softmax, log_softmax = ns["softmax"], ns["log_softmax"]
    torch.manual_seed(0)
    z = torch.randn(5, 11) * 4
    assert torch.allclose(softmax(z), torch.softmax(z, -1), atol=1e-6)
    assert torch.allclose(log_softmax(z), torch.log_softmax(z, -1), atol=1e-5)
    assert torch.allclose(softmax(z, dim=0), torch.softmax(z, 0), atol=1e-6)
    # Shift invariance.
    assert torch.allclose(softmax(z + 123.0), softmax(z), atol=1e-6)
    # Large logits: the naive formula overflows to nan, the max-subtracted one does not.
    big = torch.tensor([[1000.0, 0.0, -5.0]])
    naive = torch.exp(big) / torch.exp(big).sum(-1, keepdim=True)
    assert torch.isnan(naive).any()
    assert torch.allclose(softmax(big), torch.softmax(big, -1))
    assert torch.isfinite(log_softmax(torch.tensor([[0.0, -2000.0]]))).all()
    # The overflow thresholds the entry states (float32 ~88.7, fp16 ~11.1).
    assert torch.isinf(torch.exp(torch.tensor(88.8))) and torch.isfinite(torch.exp(torch.tensor(88.7)))
    assert math.log(65504) == pytest.approx(11.09, abs=0.01)
    t = plain(text_of("softmax-formula"))
    assert "z>88.7" in t and "z>11.1" in t


def test_softmax_jacobian():
    torch.manual_seed(0)
    z = torch.randn(6, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda v: torch.softmax(v, -1), z)
    p = torch.softmax(z, -1)
    assert torch.allclose(J, torch.diag(p) - torch.outer(p, p))
    assert r"J=\mathrm{diag}(p)-pp^\top" in entry("softmax-formula").answer


def test_cross_entropy_entry_matches_torch():
    cross_entropy = exec_entry("cross-entropy-formula")["cross_entropy"]
    torch.manual_seed(0)
    logits = torch.randn(32, 10) * 3
    target = torch.randint(10, (32,))
    target[::5] = -100
    for eps in (0.0, 0.1, 0.3):
        ours = cross_entropy(logits, target, label_smoothing=eps)
        ref = F.cross_entropy(logits, target, label_smoothing=eps, ignore_index=-100)
        assert torch.allclose(ours, ref, atol=1e-5), eps
    # Stable for huge logits.
    huge = torch.tensor([[1e4, 0.0, -1e4]])
    assert torch.allclose(cross_entropy(huge, torch.tensor([1])), F.cross_entropy(huge, torch.tensor([1])))


def test_cross_entropy_gradient_kl_and_initial_loss():
    torch.manual_seed(0)
    z = torch.randn(4, 7, requires_grad=True)
    y = torch.tensor([0, 3, 6, 2])
    F.cross_entropy(z, y, reduction="sum").backward()
    assert torch.allclose(z.grad, torch.softmax(z, -1).detach() - F.one_hot(y, 7).float(), atol=1e-6)
    # H(p, q) = H(p) + KL(p || q)
    p = torch.softmax(torch.randn(9, dtype=torch.float64), -1)
    q = torch.softmax(torch.randn(9, dtype=torch.float64), -1)
    assert torch.isclose(-(p * q.log()).sum(), -(p * p.log()).sum() + (p * (p / q).log()).sum())
    # A uniform prediction over V = 32000 gives loss ln V ≈ 10.37 (stated in the entry).
    V = 32000
    uniform_loss = F.cross_entropy(torch.zeros(1, V), torch.tensor([123])).item()
    assert uniform_loss == pytest.approx(math.log(V)) and round(uniform_loss, 2) == 10.37
    t = text_of("cross-entropy-formula")
    assert "10.37" in t and r"H(p,q)=H(p)+D_{\mathrm{KL}}(p\,\|\,q)" in t


# --------------------------------------------------------------------------- decoding


def test_top_k_top_p_temperature_filtering():
    ns = exec_entry("top-k-top-p-temperature")
    filter_logits, sample_next = ns["filter_logits"], ns["sample_next"]
    torch.manual_seed(0)
    for _ in range(20):
        logits = torch.randn(50) * 2
        # Top-K keeps exactly the K largest.
        kept = torch.isfinite(filter_logits(logits, top_k=7))
        assert kept.sum() == 7 and set(kept.nonzero().flatten().tolist()) == set(logits.topk(7).indices.tolist())
        # Top-P keeps the smallest prefix of the sorted distribution whose mass reaches p,
        # computed on the temperature-scaled distribution.
        for T, p in [(1.0, 0.9), (0.7, 0.5), (1.5, 0.95)]:
            probs = torch.softmax(logits / T, -1)
            order = probs.argsort(descending=True)
            csum = probs[order].cumsum(0)
            n_ref = int((csum < p).sum()) + 1
            kept = torch.isfinite(filter_logits(logits, temperature=T, top_p=p))
            assert set(kept.nonzero().flatten().tolist()) == set(order[:n_ref].tolist())
        # The renormalised distribution is proportional to the original on the kept set.
        out = torch.softmax(filter_logits(logits, top_k=5), -1)
        top = logits.topk(5).indices
        assert torch.allclose(out[top], torch.softmax(logits[top], -1), atol=1e-6)
    # Temperature keeps the ranking and sharpens / flattens the distribution.
    logits = torch.randn(30)
    cold, hot = torch.softmax(logits / 0.5, -1), torch.softmax(logits / 2.0, -1)
    assert torch.equal(cold.argsort(), hot.argsort())
    assert cold.max() > torch.softmax(logits, -1).max() > hot.max()
    assert sample_next(logits, temperature=0) == int(logits.argmax())
    torch.manual_seed(0)
    assert sample_next(logits, temperature=1.0, top_k=1) == int(logits.argmax())


# --------------------------------------------------------------------------- parameter counts


def reference_param_count(V, d, L, n_h, n_kv, d_ff, tied=False):
    """Written independently of the entry: the table in `llm-parameter-count`."""
    d_h = d // n_h
    per_layer = d * d + d * n_kv * d_h + d * n_kv * d_h + d * d + 3 * d * d_ff + 2 * d
    return V * d + L * per_layer + d + (0 if tied else V * d)


LLAMA2 = {  # published configs: (V, d, L, heads, kv_heads, d_ff)
    "7B": (32000, 4096, 32, 32, 32, 11008),
    "13B": (32000, 5120, 40, 40, 40, 13824),
    "70B": (32000, 8192, 80, 64, 8, 28672),
}


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("cfg", [(97, 48, 3, 6, 6, 128), (101, 64, 2, 8, 2, 176), (50, 32, 1, 4, 1, 64)])
def test_param_formula_matches_model_numel(cfg, tied):
    ns = exec_entry("llm-parameter-count", "decoder-only-forward-pass")
    V, d, L, n_h, n_kv, d_ff = cfg
    torch.manual_seed(0)
    model = ns["DecoderOnlyLM"](V, d, L, n_h, n_kv, d_ff, tie_embeddings=tied)
    numel = sum(p.numel() for p in model.parameters())
    assert numel == ns["llama_param_count"](V, d, L, n_h, n_kv, d_ff, tie_embeddings=tied)
    assert numel == reference_param_count(V, d, L, n_h, n_kv, d_ff, tied)
    if tied:
        assert model.lm_head.weight is model.embed.weight
    logits = model(torch.randint(V, (2, 5)))
    assert logits.shape == (2, 5, V)


def test_forward_pass_is_causal():
    ns = exec_entry("decoder-only-forward-pass")
    torch.manual_seed(0)
    model = ns["DecoderOnlyLM"](64, 32, 2, 4, 2, 96).eval()
    ids = torch.randint(64, (1, 10))
    changed = ids.clone()
    changed[0, 6:] = (changed[0, 6:] + 1) % 64
    with torch.no_grad():
        a, b = model(ids), model(changed)
    assert torch.allclose(a[0, :6], b[0, :6], atol=1e-5)
    assert not torch.allclose(a[0, 6:], b[0, 6:], atol=1e-3)


def test_llama2_parameter_counts_stated_in_entry():
    ns = exec_entry("llm-parameter-count", "decoder-only-forward-pass")
    t = plain(text_of("llm-parameter-count"))
    stated = {"7B": "6,738,415,616", "13B": "13,015,864,320", "70B": "68,976,648,192"}
    for name, cfg in LLAMA2.items():
        n = ns["llama_param_count"](*cfg)
        assert n == reference_param_count(*cfg)
        assert f"{n:,}" == stated[name] and stated[name] in t
    # The real-size model built from the entry's code (on the meta device: no memory) agrees.
    with torch.device("meta"):
        model = ns["DecoderOnlyLM"](*LLAMA2["7B"])
    assert sum(p.numel() for p in model.parameters()) == 6_738_415_616
    assert round(6_738_415_616 / 1e9, 2) == 6.74 and "6.74B" in t
    # Per-layer breakdown stated for 7B.
    assert all(s in t for s in ("131,072,000", "67,108,864", "135,266,304", "202,383,360"))
    # fp16 weights of 6.74B parameters ≈ 13.5 GB (12.6 GiB).
    assert round(6_738_415_616 * 2 / 1e9, 1) == 13.5 and round(6_738_415_616 * 2 / 2**30, 1) == 12.6
    assert "13.5GB" in t and "12.6GiB" in t
    # 12 L d^2 approximation for GPT-3.
    assert f"{12 * 96 * 12288**2:.2e}" == "1.74e+11" and r"1.74\times10^{11}" in t


def test_llama2_ffn_dims_follow_the_stated_rounding_rule():
    def ffn_dim(d, multiple_of, multiplier=1.0):
        h = int(2 * 4 * d / 3 * multiplier)
        return multiple_of * ((h + multiple_of - 1) // multiple_of)

    assert ffn_dim(4096, 256) == 11008
    assert ffn_dim(5120, 256) == 13824
    assert ffn_dim(8192, 4096, 1.3) == 28672
    t = plain(text_of("llama2-architecture"))
    assert r"\lceil10922/256\rceil\times256=11008" in t and "28672" in t


def test_bert_and_gpt2_counts_from_torch_modules():
    """BERT/GPT-2 layers have the same parameter set as nn.TransformerEncoderLayer (biases + 2 LNs)."""

    def count(m):
        return sum(p.numel() for p in m.parameters())

    with torch.device("meta"):
        base_layer = count(nn.TransformerEncoderLayer(768, 12, 3072))
        large_layer = count(nn.TransformerEncoderLayer(1024, 16, 4096))

    def bert(V, d, L, layer):
        embeddings = V * d + 512 * d + 2 * d + 2 * d  # token + position + segment + LayerNorm
        pooler = d * d + d
        return embeddings + L * layer + pooler

    bert_base, bert_large = bert(30522, 768, 12, base_layer), bert(30522, 1024, 24, large_layer)
    gpt2 = 50257 * 768 + 1024 * 768 + 12 * base_layer + 2 * 768  # tied LM head adds nothing
    t = plain(text_of("llm-parameter-count"))
    for n in (bert_base, bert_large, gpt2):
        assert f"{n:,}" in t
    assert (bert_base, bert_large, gpt2) == (109_482_240, 335_141_888, 124_439_808)


def test_lstm_param_formula():
    for d_x, d_h in [(10, 20), (64, 32)]:
        lstm = nn.LSTM(d_x, d_h)
        assert sum(p.numel() for p in lstm.parameters()) == 4 * (d_h * d_x + d_h**2 + 2 * d_h)
    assert "4(d_hd_x+d_h^2+2d_h)" in plain(entry("lstm-pros-cons").answer)


def test_kv_cache_and_embedding_numbers():
    L, n_kv, d_h = 32, 32, 128
    per_token = 2 * L * n_kv * d_h * 2
    assert per_token == 524288 == 0.5 * 2**20
    assert per_token * 4096 == 2 * 2**30
    assert "524288" in plain(entry("decoder-only-forward-pass").answer)
    t = plain(entry("embedding-improvements").answer)
    # LLaMA-2-7B: 2 V d = 2.6e8, ≈ 3.9 % of 6.74B.
    assert round(2 * 32000 * 4096 / 6_738_415_616 * 100, 1) == 3.9 and "3.9%" in t
    # Qwen2-0.5B embedding 151936 x 896 ≈ 1.36 亿; Gemma-2B 256000 x 2048 ≈ 5.2 亿.
    assert round(151936 * 896 / 1e8, 2) == 1.36 and "1.36亿" in t
    assert round(256000 * 2048 / 1e8, 1) == 5.2 and "5.2亿" in t


# --------------------------------------------------------------------------- FLOPs and scaling laws


def test_flops_2n_forward_6n_training():
    from torch.utils.flop_counter import FlopCounterMode

    ns = exec_entry("decoder-only-forward-pass")
    torch.manual_seed(0)
    V, d, L, n_h, n_kv, d_ff = 128, 64, 2, 4, 2, 160
    model = ns["DecoderOnlyLM"](V, d, L, n_h, n_kv, d_ff)
    # Parameters that take part in matrix multiplies: all but the embedding table and norm scales.
    n_matmul = sum(p.numel() for name, p in model.named_parameters() if p.dim() == 2 and "embed" not in name)
    B, T = 2, 8
    ids = torch.randint(V, (B, T))
    with FlopCounterMode(display=False) as fwd:
        model(ids)
    with FlopCounterMode(display=False) as both:
        model(ids).float().pow(2).mean().backward()
    f, total = fwd.get_total_flops(), both.get_total_flops()
    # Linear layers: exactly 2 FLOPs per parameter per token forward, 6 with backward. Attention
    # score/value matmuls come on top (the CPU SDPA kernel may or may not be counted).
    attn = L * 4 * B * T * T * d
    assert 2 * B * T * n_matmul <= f <= 2 * B * T * n_matmul + attn
    assert 6 * B * T * n_matmul <= total <= 6 * B * T * n_matmul + 3 * attn
    t = text_of("flops-inference-estimate")
    assert "2N" in t and "6N" in t and "C\\approx6ND" in t.replace(" ", "")


def test_llama2_training_compute_and_decode_speed_stated():
    N, D = 6_738_415_616, 2e12
    C = 6 * N * D
    assert f"{C:.1e}" == "8.1e+22"
    gpu_hours = C / (312e12 * 0.4) / 3600
    assert round(gpu_hours, -4) == 180_000  # "约 18 万 GPU 小时"; the paper reports 184,320
    tok_s = 2.039e12 / (N * 2)
    assert int(tok_s) == 151
    attn_term = 2 * 32 * 4096 * 4096
    assert f"{attn_term:.2e}" == "1.07e+09" and round(attn_term / (2 * N) * 100) == 8
    t = plain(text_of("flops-inference-estimate"))
    for s in (r"8.1\times10^{22}", "18万GPU小时", "184,320", "151", r"1.07\times10^9", "约占8%"):
        assert s in t, s


def test_scaling_law_numbers():
    E, A, B, alpha, beta = 1.69, 406.4, 410.7, 0.34, 0.28

    def loss(N, D):
        return E + A / N**alpha + B / D**beta

    chinchilla, gopher = loss(70e9, 1.4e12), loss(280e9, 300e9)
    assert chinchilla < gopher
    assert (round(chinchilla, 2), round(gopher, 2)) == (1.94, 1.99)
    C = 6 * 70e9 * 1.4e12
    assert f"{C:.2e}" == "5.88e+23"
    n_opt = math.sqrt(C / 120)  # C = 6 N D with D = 20 N
    assert n_opt == pytest.approx(70e9) and 20 * n_opt == pytest.approx(1.4e12)
    # Tokens per parameter stated for LLaMA models.
    assert round(1e12 / 6.7e9, -1) == 150
    assert round(2e12 / 6.74e9, -2) == 300
    assert round(15e12 / 8.03e9, -2) == 1900
    t = plain(text_of("scaling-laws"))
    for s in ("E=1.69", "A=406.4", "B=410.7", r"\alpha=0.34", r"\beta=0.28", "约1.94", "约1.99",
              "C=120N^2", r"5.88\times10^{23}", "约150", "约300", "约1900"):
        assert s in t, s


# --------------------------------------------------------------------------- BERT, tokenisation


def test_mlm_masking_proportions():
    mlm_mask = exec_entry("masked-language-modeling")["mlm_mask"]
    g = torch.Generator().manual_seed(0)
    V, MASK = 1000, 3
    ids = torch.randint(10, V, (200, 256), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    inputs, labels = mlm_mask(ids, V, MASK, special, generator=g)
    chosen = labels != -100
    assert not chosen[special].any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    n = chosen.sum().item()
    assert n / (~special).sum().item() == pytest.approx(0.15, abs=0.005)
    masked = (inputs[chosen] == MASK).float().mean().item()
    unchanged = (inputs[chosen] == ids[chosen]).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.01)
    assert unchanged == pytest.approx(0.1, abs=0.01)  # 10% kept (+ ~0.1% random hits on the original)
    assert 1 - masked - unchanged == pytest.approx(0.1, abs=0.01)


def test_wordpiece_matches_tokenizers_library():
    from tokenizers.models import WordPiece

    wordpiece = exec_entry("bert-text-to-ids")["wordpiece"]
    vocab_list = ["[UNK]", "un", "##aff", "##able", "a", "##a", "##b", "b", "play", "##ing", "##in", "##g",
                  "affable", "##ffable", "p", "##l", "##a", "##y"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab_list))}
    assert wordpiece("unaffable", set(vocab)) == ["un", "##aff", "##able"]
    assert wordpiece("zzz", set(vocab)) == ["[UNK]"]
    assert wordpiece("a" * 101, set(vocab)) == ["[UNK]"]
    ref = WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100)
    for word in ["unaffable", "playing", "aab", "bab", "affable", "plays", "ab", "unplay", "xyz"]:
        expected = [t.value for t in ref.tokenize(word)]
        assert wordpiece(word, set(vocab)) == expected, word
    t = text_of("bert-text-to-ids")
    for s in ("30522", "21128", "[CLS]=101", "[SEP]=102", "[MASK]=103", "[PAD]=0", "[UNK]=100"):
        assert s in t, s


def test_bert_embedding_sum_equals_concatenated_one_hot_times_stacked_table():
    torch.manual_seed(0)
    V, S, P, d = 30, 2, 12, 8
    tok, seg, pos = torch.randn(V, d), torch.randn(S, d), torch.randn(P, d)
    x, s, i = torch.tensor([4, 17, 29]), torch.tensor([0, 1, 1]), torch.tensor([0, 1, 2])
    summed = tok[x] + seg[s] + pos[i]
    one_hot = torch.cat([F.one_hot(x, V), F.one_hot(s, S), F.one_hot(i, P)], dim=-1).float()
    assert torch.allclose(one_hot @ torch.cat([tok, seg, pos]), summed, atol=1e-6)
    # Concatenating dense vectors and projecting = projecting each and adding.
    a, b = torch.randn(d), torch.randn(d)
    W1, W2 = torch.randn(d, d), torch.randn(d, d)
    assert torch.allclose(torch.cat([a, b]) @ torch.cat([W1, W2]), a @ W1 + b @ W2, atol=1e-5)
    assert r"o_i^\top W = E_{\text{tok}}[x_i]+E_{\text{seg}}[s_i]+E_{\text{pos}}[i]" in entry("bert-embeddings-sum").answer


def test_prefix_lm_mask():
    ns = exec_entry("causal-lm-vs-prefix-lm")
    causal_mask, prefix_lm_mask = ns["causal_mask"], ns["prefix_lm_mask"]
    T = 7
    assert torch.equal(causal_mask(T), torch.ones(T, T).tril().bool())
    assert torch.equal(prefix_lm_mask(T, 0), causal_mask(T))
    assert prefix_lm_mask(T, T).all()
    P = 3
    m = prefix_lm_mask(T, P)
    for i in range(T):
        for j in range(T):
            assert m[i, j] == (j <= i or j < P)
    # A causal mask (lower triangular, positive diagonal) makes any softmax attention full rank.
    torch.manual_seed(0)
    scores = torch.randn(T, T).masked_fill(~causal_mask(T), float("-inf"))
    assert torch.linalg.matrix_rank(torch.softmax(scores, -1)) == T
