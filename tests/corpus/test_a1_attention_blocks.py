"""Computable claims of the A1 corpus entries (attention, Transformer blocks, normalization).

Each test computes something (with torch) and checks the corpus against it: either the numbers
and formulas the entry states, or the code the entry shows (run via `exec_entry`). A test fails if
the corpus text drifts from the computation, or if the computation contradicts the text.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from tests.corpus.codeblocks import CORPUS_ROOT, corpus, entry, exec_entry
from tests.corpus.sections import own_file_problems, phrasing_owners, syllabus_items
from tutor.corpus import parse_file
from tutor.text import compact

SYLLABUS = CORPUS_ROOT / "syllabus" / "a1-attention-blocks.md"
OWN_FILES = [
    "1.大模型算法基础/Transformer模型结构.md",
    "1.大模型算法基础/注意力机制.md",
    "1.大模型算法基础/归一化.md",
    "1.大模型算法基础/注意力可视化与分析.md",
    "2.大模型优化技术/模型结构优化.md",
]


def squash(text: str) -> str:
    """Whitespace removed, so LaTeX can be matched regardless of spacing."""
    return re.sub(r"\s+", "", text)


def has_formula(entry_id: str, snippet: str) -> bool:
    return squash(snippet) in squash(entry(entry_id).answer)


def text_of(entry_id: str) -> str:
    e = entry(entry_id)
    return "\n".join([e.answer, *e.key_points])


# ---------------------------------------------------------------------------------------------
# Structure: own files parse cleanly, links resolve, syllabus items are owned by one entry.
# ---------------------------------------------------------------------------------------------

def test_own_files_have_no_format_problems():
    problems = own_file_problems(CORPUS_ROOT, OWN_FILES, corpus())
    assert not problems, "\n".join(problems)


def _syllabus_items() -> list[tuple[str, str]]:
    return syllabus_items(SYLLABUS)


def test_syllabus_items_are_verbatim_aliases_of_exactly_one_entry():
    items = _syllabus_items()
    assert len(items) >= 45
    owners = phrasing_owners(corpus())
    for item, entry_id in items:
        e = entry(entry_id)  # raises if the id does not exist
        assert item in e.aliases or item == e.question, f"{item!r} is not verbatim in {entry_id}"
        assert owners[compact(item)] == {entry_id}, f"{item!r} is also a phrasing of {owners[compact(item)]}"


# ---------------------------------------------------------------------------------------------
# attention-scaling: variance of q·k, softmax Jacobian, why √d_k and not d_k.
# ---------------------------------------------------------------------------------------------

def test_dot_product_variance_equals_dk():
    assert has_formula("attention-scaling", r"\mathrm{Var}(q\cdot k)=\sum_{i=1}^{d_k}\mathrm{Var}(q_ik_i)=d_k")
    g = torch.Generator().manual_seed(0)
    variances = {}
    for d in (16, 64, 256):
        q = torch.randn(20000, d, generator=g, dtype=torch.float64)
        k = torch.randn(20000, d, generator=g, dtype=torch.float64)
        dots = (q * k).sum(-1)
        variances[d] = dots.var().item()
        assert variances[d] == pytest.approx(d, rel=0.06)
        assert (dots / math.sqrt(d)).var().item() == pytest.approx(1.0, rel=0.06)
    assert variances[16] < variances[64] < variances[256]
    # "以 d_k=128 为例，logit 的典型幅度约为 11"
    assert round(math.sqrt(128)) == 11 and "约为 11" in entry("attention-scaling").answer


def test_softmax_jacobian_formula_and_saturation():
    assert has_formula("attention-scaling", r"\partial p_i/\partial z_j = p_i(\delta_{ij}-p_j)")
    torch.manual_seed(0)
    z = torch.randn(6, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: torch.softmax(t, -1), z)
    p = torch.softmax(z, -1)
    assert torch.allclose(jac, torch.diag(p) - torch.outer(p, p))
    # Unscaled logits of a large d_k saturate softmax: the Jacobian is much smaller than after scaling.
    d, n = 512, 16
    q, keys = torch.randn(d, dtype=torch.float64), torch.randn(n, d, dtype=torch.float64)
    logits = keys @ q

    def jac_norm(t):
        pr = torch.softmax(t, -1)
        return torch.linalg.matrix_norm(torch.diag(pr) - torch.outer(pr, pr)).item()

    assert jac_norm(logits) < 0.2 * jac_norm(logits / math.sqrt(d))


def test_dividing_by_dk_makes_attention_nearly_uniform():
    torch.manual_seed(0)
    d, n = 512, 64
    q, keys = torch.randn(200, d, dtype=torch.float64), torch.randn(n, d, dtype=torch.float64)
    logits = q @ keys.T

    def normalized_entropy(t):
        pr = torch.softmax(t, -1)
        return (-(pr * pr.log()).sum(-1) / math.log(n)).mean().item()

    assert normalized_entropy(logits / d) > 0.99
    assert normalized_entropy(logits / math.sqrt(d)) < 0.9
    assert "除以 d_k 会缩得过头" in text_of("attention-scaling")


# ---------------------------------------------------------------------------------------------
# Normalization formulas as written in the entries vs torch.
# ---------------------------------------------------------------------------------------------

def test_layernorm_formula_matches_torch_and_is_the_biased_variance():
    for snippet in (r"\sigma^2 = \frac{1}{d}\sum_{k=1}^{d}(x_k-\mu)^2",
                    r"y_k = \gamma_k\frac{x_k-\mu}{\sqrt{\sigma^2+\epsilon}} + \beta_k"):
        assert has_formula("layernorm-vs-batchnorm", snippet)
    assert has_formula("layernorm-necessity", r"\sigma^2=\frac1d\sum_{k=1}^d(x_k-\mu)^2")
    torch.manual_seed(0)
    d, eps = 32, 1e-5
    x = torch.randn(4, 7, d)
    ln = nn.LayerNorm(d, eps=eps)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).sum(-1, keepdim=True) / d                     # 1/d, as the entries write it
    ours = ln.weight * (x - mu) / torch.sqrt(var + eps) + ln.bias
    assert torch.allclose(ours, ln(x), atol=1e-5)
    unbiased = ((x - mu) ** 2).sum(-1, keepdim=True) / (d - 1)         # the wrong formula is detected
    assert not torch.allclose(ln.weight * (x - mu) / torch.sqrt(unbiased + eps) + ln.bias, ln(x), atol=1e-4)


def test_batchnorm_formula_matches_torch_in_training_mode_and_eval_uses_running_stats():
    for snippet in (r"\sigma_j^2 = \frac{1}{m}\sum_{i=1}^{m}(x_{ij}-\mu_j)^2",
                    r"y_{ij} = \gamma_j\frac{x_{ij}-\mu_j}{\sqrt{\sigma_j^2+\epsilon}} + \beta_j"):
        assert has_formula("layernorm-vs-batchnorm", snippet)
    torch.manual_seed(0)
    m, c, eps = 16, 8, 1e-5
    x = torch.randn(m, c) * 3 + 1
    bn = nn.BatchNorm1d(c, eps=eps)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    bn.train()
    out = bn(x)
    mu = x.mean(0)
    var = ((x - mu) ** 2).sum(0) / m
    assert torch.allclose(bn.weight * (x - mu) / torch.sqrt(var + eps) + bn.bias, out, atol=1e-5)
    # Inference uses the running statistics, so the same batch gives a different output.
    bn.eval()
    eval_out = bn(x)
    expected = bn.weight * (x - bn.running_mean) / torch.sqrt(bn.running_var + eps) + bn.bias
    assert torch.allclose(eval_out, expected, atol=1e-5)
    assert not torch.allclose(eval_out, out, atol=1e-2)
    assert "running mean/var" in entry("layernorm-vs-batchnorm").answer


def test_rmsnorm_formula_matches_torch_rms_norm_and_equals_layernorm_for_zero_mean():
    assert has_formula("rmsnorm", r"\mathrm{RMS}(x) = \sqrt{\frac{1}{d}\sum_{k=1}^{d} x_k^2 + \epsilon}")
    assert has_formula("rmsnorm", r"y_k = \frac{x_k}{\mathrm{RMS}(x)}\,g_k")
    torch.manual_seed(0)
    d, eps = 64, 1e-6
    x = torch.randn(3, 5, d, dtype=torch.float64) + 0.7
    g = torch.rand(d, dtype=torch.float64) + 0.5
    ours = x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps) * g
    assert torch.allclose(ours, F.rms_norm(x, (d,), weight=g, eps=eps))
    # "当 x 的均值为 0 时 RMSNorm 与 LayerNorm（不含 β）完全相同；一般情况下两者不等价"
    centered = x - x.mean(-1, keepdim=True)
    assert torch.allclose(F.rms_norm(centered, (d,), weight=g, eps=eps),
                          F.layer_norm(centered, (d,), weight=g, bias=None, eps=eps))
    assert not torch.allclose(F.rms_norm(x, (d,), weight=g, eps=eps),
                              F.layer_norm(x, (d,), weight=g, bias=None, eps=eps), atol=1e-3)


def test_layernorm_scale_and_shift_invariance_and_gradient_scaling():
    assert has_formula("layernorm-necessity", r"\mathrm{LN}(\alpha x)=\mathrm{LN}(x)")
    assert has_formula("layernorm-necessity", r"\mathrm{LN}(x+c\mathbf{1})=\mathrm{LN}(x)")
    torch.manual_seed(0)
    d = 48
    x = torch.randn(10, d, dtype=torch.float64, requires_grad=True)
    ln = lambda t: F.layer_norm(t, (d,), eps=1e-12)  # noqa: E731
    alpha = 7.0
    assert torch.allclose(ln(alpha * x), ln(x), atol=1e-9)
    assert torch.allclose(ln(x + 3.0), ln(x), atol=1e-9)
    w = torch.randn(10, d, dtype=torch.float64)
    (grad_x,) = torch.autograd.grad((ln(x) * w).sum(), x)
    x_big = (alpha * x).detach().requires_grad_(True)
    (grad_big,) = torch.autograd.grad((ln(x_big) * w).sum(), x_big)
    assert torch.allclose(grad_big, grad_x / alpha, atol=1e-9)  # "对输入的梯度缩小为 1/α"


def test_adanorm_phi_averages_to_C():
    assert has_formula("adanorm", r"\phi(y_i)=C\,(1-k\,y_i)")
    assert "$k$ 取 $1/10$" in entry("adanorm").answer
    torch.manual_seed(0)
    d, C, k = 256, 2.0, 0.1
    x = torch.randn(32, d, dtype=torch.float64) * 4 + 3
    y = (x - x.mean(-1, keepdim=True)) / x.std(-1, unbiased=False, keepdim=True)
    phi = C * (1 - k * y)
    assert torch.allclose(phi.mean(-1), torch.full((32,), C, dtype=torch.float64))
    assert bool((phi > 0).all()) and y.abs().max() < 10  # φ > 0 while |y| < 1/k = 10
    z = phi * y
    assert z.shape == x.shape and "7 个上优于 LayerNorm" in entry("adanorm").answer


def test_pre_ln_residual_stream_grows_and_dilutes_later_layers():
    assert has_formula("pre-norm-vs-post-norm", r"x_{l+1}=x_l+F\big(\mathrm{LN}(x_l)\big)")
    torch.manual_seed(0)
    d, layers = 64, 48
    x = torch.randn(16, d)
    start = x.norm(dim=-1).mean()
    ratios = []
    with torch.no_grad():
        for _ in range(layers):
            update = nn.Linear(d, d)(F.layer_norm(x, (d,)))
            ratios.append((update.norm(dim=-1) / x.norm(dim=-1)).mean().item())
            x = x + update
    assert x.norm(dim=-1).mean() > 2.5 * start            # the stream's norm grows with depth
    assert ratios[-1] < 0.5 * ratios[0]                   # each new layer's relative share shrinks


# ---------------------------------------------------------------------------------------------
# Self-attention, multi-head attention (code run from the entry), complexity.
# ---------------------------------------------------------------------------------------------

def test_self_attention_is_permutation_equivariant_and_xxT_prefers_self():
    torch.manual_seed(0)
    n, d = 12, 32
    x = torch.randn(n, d)
    wq, wk, wv = (torch.randn(d, d) / math.sqrt(d) for _ in range(3))

    def attn(t):
        q, k, v = t @ wq, t @ wk, t @ wv
        return torch.softmax(q @ k.T / math.sqrt(d), -1) @ v

    perm = torch.randperm(n)
    assert torch.allclose(attn(x)[perm], attn(x[perm]), atol=1e-5)  # needs positional encoding
    s = x @ x.T
    assert torch.allclose(s, s.T)
    assert (s.argmax(-1) == torch.arange(n)).float().mean() == 1.0  # Q=K=X: each token picks itself
    assert "置换等变" in entry("self-attention").answer


def _mha_module():
    return exec_entry("multi-head-attention-formula")["MultiHeadAttention"]


def test_entry_mha_matches_torch_multihead_attention():
    MultiHeadAttention = _mha_module()
    torch.manual_seed(0)
    d, h, n = 32, 4, 7
    ours = MultiHeadAttention(d, h).eval()
    ref = nn.MultiheadAttention(d, h, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
        ref.out_proj.weight.copy_(ours.w_o.weight)
        ref.out_proj.bias.copy_(ours.w_o.bias)
    x = torch.randn(2, n, d)
    mask = torch.ones(n, n, dtype=torch.bool).triu(1)
    out, weights = ours(x, x, x, mask=mask)
    ref_out, ref_w = ref(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
    assert torch.allclose(out, ref_out, atol=1e-5)
    assert torch.allclose(weights, ref_w, atol=1e-5)
    # cross-attention use: query length differs from key length
    mem = torch.randn(2, 11, d)
    out_x, w_x = ours(x, mem, mem)
    assert out_x.shape == (2, n, d) and w_x.shape == (2, h, n, 11)


def test_mha_parameter_count_is_4d2_and_independent_of_heads():
    MultiHeadAttention = _mha_module()
    d = 64
    counts = {h: sum(p.numel() for p in MultiHeadAttention(d, h).parameters()) for h in (1, 4, 8)}
    assert set(counts.values()) == {4 * d * d + 4 * d}
    assert has_formula("multi-head-attention-formula", r"共 $4d_{model}^2$")
    # LLaMA-2-7B attention weights per layer
    assert f"{4 * 4096 ** 2:,}".replace(",", "{,}") in entry("mha-parallel-computation").answer
    # One big projection reshaped into heads == h separate d×d_k projections.
    torch.manual_seed(0)
    h, dk, x = 8, 8, torch.randn(5, d)
    w = torch.randn(d, d)
    big = (x @ w).view(5, h, dk).transpose(0, 1)
    for i in range(h):
        assert torch.allclose(big[i], x @ w[:, i * dk:(i + 1) * dk], atol=1e-5)


def test_per_head_score_rank_is_bounded_by_dk():
    torch.manual_seed(0)
    n, d, dk = 32, 64, 4
    x = torch.randn(n, d, dtype=torch.float64)
    s = (x @ torch.randn(d, dk, dtype=torch.float64)) @ (x @ torch.randn(d, dk, dtype=torch.float64)).T
    assert torch.linalg.matrix_rank(s).item() == dk
    assert "low-rank bottleneck" in entry("why-multi-head-attention").answer


class MatmulFlops(TorchFunctionMode):
    """Counts 2·m·k·n FLOPs for every matrix product (linear layers and @) run inside it."""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name == "linear":
            x, w = args[0], args[1]
            self.flops += 2 * x.shape[:-1].numel() * w.shape[1] * w.shape[0]
        elif name in ("matmul", "__matmul__"):
            a, b = args[0], args[1]
            self.flops += 2 * a.shape[:-1].numel() * a.shape[-1] * b.shape[-1]
        return func(*args, **(kwargs or {}))


def test_layer_flops_match_24nd2_plus_4n2d():
    MultiHeadAttention = _mha_module()
    torch.manual_seed(0)
    n, d, h = 32, 64, 4
    attn = MultiHeadAttention(d, h)
    ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Linear(4 * d, d))
    x = torch.randn(1, n, d)
    counter = MatmulFlops()
    with counter, torch.no_grad():
        ffn(attn(x, x, x)[0])
    assert counter.flops == 24 * n * d ** 2 + 4 * n ** 2 * d
    assert has_formula("attention-complexity", r"$24nd^2+4n^2d$")
    # crossover n = 6d, the 7B example and the n = d share
    d7b = 4096
    n_cross = 6 * d7b
    assert 4 * n_cross ** 2 * d7b == 24 * n_cross * d7b ** 2
    assert has_formula("attention-complexity", rf"$6\times4096={6 * 4096}$")
    assert round(100 * Fraction(4, 28)) == 14 and has_formula("attention-complexity", r"$4/28\approx14\%$")
    score_bytes = 32 * 8192 ** 2 * 2
    assert score_bytes == 4 * 2 ** 30 and "= 4 GiB" in entry("attention-complexity").answer


# ---------------------------------------------------------------------------------------------
# Causal mask and dot-product vs additive (code and claims).
# ---------------------------------------------------------------------------------------------

def test_entry_causal_attention_matches_sdpa_and_kv_cache_suffix():
    causal_attention = exec_entry("causal-mask")["causal_attention"]
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 9, 16) for _ in range(3))
    full = causal_attention(q, k, v)
    assert torch.allclose(full, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-5)
    # Queries for the last 4 positions over all 9 cached keys == last 4 rows of the full result.
    assert torch.allclose(causal_attention(q[..., -4:, :], k, v), full[..., -4:, :], atol=1e-5)
    # One new token needs no mask: equals plain attention over every key.
    one = causal_attention(q[..., -1:, :], k, v)
    plain = torch.softmax(q[..., -1:, :] @ k.transpose(-2, -1) / 4.0, -1) @ v
    assert torch.allclose(one, plain, atol=1e-5)
    # Changing future tokens does not change earlier outputs.
    k2, v2 = k.clone(), v.clone()
    k2[..., 5:, :] += 10
    v2[..., 5:, :] -= 10
    assert torch.allclose(causal_attention(q, k2, v2)[..., :5, :], full[..., :5, :], atol=1e-5)


def test_masking_after_softmax_breaks_normalisation():
    torch.manual_seed(0)
    s = torch.randn(6, 6)
    future = torch.ones(6, 6, dtype=torch.bool).triu(1)
    wrong = torch.softmax(s, -1).masked_fill(future, 0.0)
    right = torch.softmax(s.masked_fill(future, float("-inf")), -1)
    assert torch.allclose(right.sum(-1), torch.ones(6))
    assert (wrong.sum(-1)[:-1] < 1 - 1e-3).all()
    assert "softmax 之后再乘 0" in entry("multi-head-attention-formula").answer or \
        "softmax 之后再把未来位置乘 0" in entry("causal-mask").answer


def test_plain_additive_score_ignores_the_query_but_tanh_does_not():
    assert has_formula("dot-product-vs-additive-attention", r"e_{ij}=w^\top(q_i+k_j)=w^\top q_i+w^\top k_j")
    torch.manual_seed(0)
    d, n = 16, 10
    q, keys, w = torch.randn(5, d), torch.randn(n, d), torch.randn(d)
    linear = torch.softmax((q[:, None, :] + keys[None, :, :]) @ w, -1)     # (5, n)
    assert torch.allclose(linear, linear[0].expand_as(linear), atol=1e-6)  # same for every query
    w1, w2 = torch.randn(d, d), torch.randn(d, d)
    additive = torch.softmax(torch.tanh(q[:, None, :] @ w1.T + keys[None, :, :] @ w2.T) @ w, -1)
    assert not torch.allclose(additive, additive[0].expand_as(additive), atol=1e-3)


# ---------------------------------------------------------------------------------------------
# KV cache formula and MHA / GQA / MQA / MLA numbers.
# ---------------------------------------------------------------------------------------------

def kv_cache_bytes(layers, kv_heads, head_dim, seq_len, batch, bytes_per_elem):
    return 2 * layers * kv_heads * head_dim * seq_len * batch * bytes_per_elem


def human(nbytes: int) -> str:
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if nbytes >= size:
            return f"{nbytes / size:g} {unit}"
    return f"{nbytes} B"


def test_kv_cache_formula_against_real_tensors():
    # The formula counts exactly the bytes of the K and V tensors a decoder keeps.
    layers, kv_heads, head_dim, seq, batch = 3, 2, 8, 5, 4
    cache = [(torch.zeros(batch, kv_heads, seq, head_dim, dtype=torch.float16),
              torch.zeros(batch, kv_heads, seq, head_dim, dtype=torch.float16)) for _ in range(layers)]
    assert sum(k.nbytes + v.nbytes for k, v in cache) == kv_cache_bytes(layers, kv_heads, head_dim, seq, batch, 2)
    assert has_formula("mha-mqa-gqa-mla",
                       r"2\times L\times n_{kv}\times d_h\times s\times b\times \text{bytes}")


def test_llama2_kv_cache_numbers_and_ratios():
    text = entry("mha-mqa-gqa-mla").answer
    gqa = kv_cache_bytes(80, 8, 128, 1, 1, 2)
    mha = kv_cache_bytes(80, 64, 128, 1, 1, 2)
    mqa = kv_cache_bytes(80, 1, 128, 1, 1, 2)
    assert f"{gqa:,}".replace(",", "{,}") in text
    assert human(gqa) == "320 KiB" and "= 320 KiB" in text
    assert human(gqa * 4096) == "1.25 GiB" and "1.25 GiB" in text
    assert human(mha) == "2.5 MiB" and "每 token 2.5 MiB" in text
    assert human(mha * 4096) == "10 GiB" and "4096 长度要 10 GiB" in text
    assert human(mqa) == "40 KiB" and "每 token 40 KiB" in text
    assert Fraction(gqa, mha) == Fraction(1, 8) and "8/64 = 1/8" in text
    assert Fraction(mqa, mha) == Fraction(1, 64) and "为 MHA 的 1/64" in text
    llama7b = kv_cache_bytes(32, 32, 128, 1, 1, 2)
    assert human(llama7b) == "512 KiB" and human(llama7b * 4096) == "2 GiB"
    assert "每 token 512 KiB，4096 长度 2 GiB" in text
    assert any("1/8" in kp and "320 KiB" in kp for kp in entry("mha-mqa-gqa-mla").key_points)


def test_mla_cache_ratio_for_deepseek_v2():
    text = entry("mha-mqa-gqa-mla").answer
    n_h, d_h, d_c, d_rope = 128, 128, 512, 64
    mla, mha = d_c + d_rope, 2 * n_h * d_h
    assert (mla, mha) == (576, 32768)
    assert f"{100 * mla / mha:.2f}%" == "1.76%" and "约为 1.76%" in text
    assert mla / (2 * d_h) == 2.25 and "2.25 组" in text
    assert "512+64=576" in squash(text) and "2\\times128\\times128=32768" in squash(text)


# ---------------------------------------------------------------------------------------------
# FFN, SwiGLU and activations.
# ---------------------------------------------------------------------------------------------

def test_ffn_and_swiglu_sizes():
    ffn = entry("ffn-structure").answer
    assert f"{2 * 512 * 2048:,}".replace(",", "{,}") in ffn
    d = 4096
    raw = 8 * d / 3
    d_ff = math.ceil(raw / 256) * 256
    assert round(raw) == 10923 and d_ff == 11008
    assert r"\frac{8}{3}\times4096\approx10923" in squash(ffn) and "d_{ff}=11008" in ffn
    assert f"{3 * d * d_ff:,}".replace(",", "{,}") in ffn
    assert Fraction(8, 8 + 4) == Fraction(2, 3) and "2/3" in ffn  # FFN share of 8d² + 4d² per layer
    assert "d_{ff}=11008" in entry("swiglu-vs-relu").answer


def test_entry_swiglu_matches_formula_and_matches_ffn_parameter_count():
    SwiGLUFeedForward = exec_entry("swiglu-vs-relu")["SwiGLUFeedForward"]
    assert has_formula("swiglu-vs-relu", r"\mathrm{Swish}_\beta(x)=x\,\sigma(\beta x)")
    torch.manual_seed(0)
    d = 96
    d_ff = 8 * d // 3
    ffn = SwiGLUFeedForward(d, d_ff)
    x = torch.randn(3, 5, d)
    gate = x @ ffn.gate_proj.weight.T
    expected = ((gate * torch.sigmoid(gate)) * (x @ ffn.up_proj.weight.T)) @ ffn.down_proj.weight.T
    assert torch.allclose(ffn(x), expected, atol=1e-5)
    assert sum(p.numel() for p in ffn.parameters()) == 3 * d * d_ff == 8 * d * d


def test_activation_numbers():
    x = torch.linspace(-6, 6, 1_200_001, dtype=torch.float64)
    gelu = x * 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    silu = x * torch.sigmoid(x)
    i, j = gelu.argmin(), silu.argmin()
    assert round(gelu[i].item(), 2) == -0.17 and round(x[i].item(), 2) == -0.75
    assert round(silu[j].item(), 2) == -0.28 and round(x[j].item(), 2) == -1.28
    tanh_approx = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    err = (gelu - tanh_approx).abs().max().item()
    assert 3e-4 < err < 7e-4                                          # "约 5×10^-4"
    assert (gelu - x * torch.sigmoid(1.702 * x)).abs().max().item() < 0.025   # GELU ≈ Swish with β=1.702
    sig = torch.sigmoid(x)
    assert (sig * (1 - sig)).max().item() == pytest.approx(0.25)
    assert f"{0.25 ** 10:.1e}" == "9.5e-07"
    relu_text = entry("relu-vanishing-gradient").answer
    assert r"0.25^{10}\approx9.5\times10^{-7}" in squash(relu_text)
    gelu_text = entry("ffn-activation-relu-gelu").answer
    assert "最小值约 $-0.17$（在 $x\\approx-0.75$ 处）" in gelu_text and "5\\times10^{-4}" in gelu_text
    comp = entry("activation-functions-comparison").answer
    assert "SiLU 最小值约 $-0.28$（$x\\approx-1.28$）" in comp and "1.702" in comp


def _grad_ratio(act, init_std, depth=20, width=256):
    torch.manual_seed(0)
    h0 = torch.randn(64, width, requires_grad=True)
    h, second_moments = h0, []
    for _ in range(depth):
        h = act(h @ (torch.randn(width, width) * init_std))
        second_moments.append(h.pow(2).mean().item())
    out_grad = torch.randn_like(h)
    (g0,) = torch.autograd.grad(h, h0, out_grad)
    return (g0.norm() / out_grad.norm()).item(), second_moments


def test_relu_with_he_init_keeps_gradients_while_sigmoid_vanishes():
    width = 256
    relu_ratio, relu_m2 = _grad_ratio(torch.relu, math.sqrt(2 / width))
    sig_ratio, _ = _grad_ratio(torch.sigmoid, math.sqrt(1 / width))
    assert 0.1 < relu_ratio < 10
    assert sig_ratio < 1e-6
    assert 0.2 < relu_m2[-1] / relu_m2[0] < 5
    assert "$2/n_{in}$" in entry("relu-vanishing-gradient").answer


def test_residual_connection_keeps_gradient_flowing():
    torch.manual_seed(0)
    d, depth = 64, 30
    weights = [torch.randn(d, d) * 0.5 / math.sqrt(d) for _ in range(depth)]

    def grad_norm(residual: bool) -> float:
        x0 = torch.randn(8, d, requires_grad=True)
        x = x0
        for w in weights:
            fx = torch.tanh(x @ w)
            x = x + fx if residual else fx
        g = torch.ones_like(x)
        (gx,) = torch.autograd.grad(x, x0, g)
        return (gx.norm() / g.norm()).item()

    assert grad_norm(residual=True) > 0.5
    assert grad_norm(residual=False) < 1e-6
    assert has_formula("residual-connection", r"\left(I+\frac{\partial F}{\partial x}\right)")


def test_noam_learning_rate_schedule_peaks_at_warmup():
    assert has_formula("transformer-overfitting-gradient",
                       r"lr=d_{model}^{-0.5}\cdot\min(\text{step}^{-0.5},\ \text{step}\cdot\text{warmup}^{-1.5})")
    d, warmup = 512, 4000
    lr = [d ** -0.5 * min(s ** -0.5, s * warmup ** -1.5) for s in range(1, 20001)]
    assert max(range(len(lr)), key=lr.__getitem__) + 1 == warmup
    assert "warmup 4000 步" in entry("transformer-overfitting-gradient").answer


# ---------------------------------------------------------------------------------------------
# Efficient attention: linear attention code, sliding-window receptive field.
# ---------------------------------------------------------------------------------------------

def test_entry_linear_attention_recurrence_equals_quadratic_form():
    ns = exec_entry("linear-attention")
    causal_linear_attention, feature_map = ns["causal_linear_attention"], ns["feature_map"]
    torch.manual_seed(0)
    n, d, dv = 20, 8, 6
    q, k, v = torch.randn(n, d, dtype=torch.float64), torch.randn(n, d, dtype=torch.float64), \
        torch.randn(n, dv, dtype=torch.float64)
    pq, pk = feature_map(q), feature_map(k)
    scores = (pq @ pk.T).tril()
    quadratic = (scores @ v) / (scores.sum(-1, keepdim=True) + 1e-6)
    assert torch.allclose(causal_linear_attention(q, k, v), quadratic, atol=1e-8)
    # non-causal: associativity (φ(Q)φ(K)^T)V = φ(Q)(φ(K)^T V)
    assert torch.allclose((pq @ pk.T) @ v, pq @ (pk.T @ v))
    assert has_formula("linear-attention", r"S_i=S_{i-1}+\phi(k_i)v_i^\top")


def test_sliding_window_receptive_field():
    window, layers, n = 4, 3, 32
    i = torch.arange(n)
    allowed = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)   # i-W < j <= i
    reach = torch.eye(n, dtype=torch.bool)
    for _ in range(layers):
        reach = (allowed.float() @ reach.float()) > 0
    last = n - 1
    farthest = last - int(reach[last].nonzero().min())
    assert farthest == layers * (window - 1)          # ≈ W × L for a large window
    assert 4096 * 32 == 131072 and abs(32 * 4095 - 131072) / 131072 < 1e-3
    assert "4096\\times32=131072" in squash(entry("sparse-attention").answer)


# ---------------------------------------------------------------------------------------------
# Attention analysis: rollout, statistics, non-identifiability.
# ---------------------------------------------------------------------------------------------

def test_entry_attention_rollout_is_row_stochastic():
    attention_rollout = exec_entry("attention-visualization")["attention_rollout"]
    torch.manual_seed(0)
    n = 6
    attns = [torch.softmax(torch.randn(2, n, n), -1) for _ in range(4)]
    r = attention_rollout(attns)
    assert torch.allclose(r.sum(-1), torch.ones(n), atol=1e-6) and bool((r >= 0).all())
    expected = torch.eye(n)
    for a in attns:
        expected = (0.5 * a.mean(0) + 0.5 * torch.eye(n)) @ expected
    assert torch.allclose(r, expected, atol=1e-6)
    assert torch.allclose(attention_rollout([torch.eye(n).expand(2, n, n)] * 3), torch.eye(n))


def test_entry_attention_stats_on_uniform_and_one_hot():
    attention_stats = exec_entry("attention-statistics")["attention_stats"]
    n = 8
    uniform = torch.ones(n, n, dtype=torch.float64).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True))[None]
    entropy, distance, sink, max_w = attention_stats(uniform)
    rows = torch.arange(n, dtype=torch.float64)
    assert torch.allclose(entropy[0], torch.log(rows + 1))     # log m for m visible positions
    assert torch.allclose(distance[0], rows / 2)
    assert torch.allclose(sink[0], 1 / (rows + 1)) and torch.allclose(max_w[0], 1 / (rows + 1))
    one_hot = torch.eye(n, dtype=torch.float64)[None]
    assert torch.allclose(attention_stats(one_hot)[0], torch.zeros(1, n, dtype=torch.float64))
    assert "最初 4 个 token" in entry("attention-statistics").answer


def test_attention_is_not_identifiable_when_n_exceeds_dv():
    assert "$\\Delta V=0$" in entry("attention-interpretability").answer
    torch.manual_seed(0)
    n, dv = 10, 4
    v = torch.randn(n, dv, dtype=torch.float64)
    a = torch.softmax(torch.randn(n, n, dtype=torch.float64), -1)
    constraints = torch.cat([v, torch.ones(n, 1, dtype=torch.float64)], dim=1)   # Δ V = 0 and Δ 1 = 0
    _, s, vh = torch.linalg.svd(constraints.T)
    null = vh[(s > 1e-10).sum():]                                               # (n - dv - 1, n)
    assert null.shape[0] == n - dv - 1
    delta = torch.randn(n, null.shape[0], dtype=torch.float64) @ null
    delta *= 0.5 * a.min() / delta.abs().max()
    other = a + delta
    assert bool((other >= 0).all()) and torch.allclose(other.sum(-1), torch.ones(n, dtype=torch.float64))
    assert torch.allclose(other @ v, a @ v)                   # same output ...
    assert (other - a).abs().max() > 1e-4                     # ... from a different attention matrix


def test_own_entries_are_reachable_from_syllabus_or_links():
    """Every entry in the A1 files is either a syllabus target or linked from another entry."""
    targets = {eid for _, eid in _syllabus_items()}
    linked = {f.entry_id for e in corpus().entries for f in e.follow_ups if f.entry_id}
    for rel in OWN_FILES:
        entries, _ = parse_file(Path(CORPUS_ROOT / rel), CORPUS_ROOT)
        for e in entries:
            assert e.id in targets or e.id in linked, e.id
