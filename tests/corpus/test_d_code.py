"""Tests for corpus part D (手撕代码): the code shown in the entries is extracted and run.

Nothing here re-implements the entries: `exec_entry` compiles the ```python blocks of an entry
into a fresh namespace, and each test compares what that code computes against PyTorch's own
implementation (or against the defining formula, computed independently here).
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.corpus.codeblocks import CORPUS_ROOT, corpus, entry, exec_entry, python_blocks
from tests.corpus.sections import own_file_problems, syllabus_items

OWN_FILES = [
    "5.手撕代码/注意力与Transformer.md",
    "5.手撕代码/归一化与激活.md",
    "5.手撕代码/位置编码.md",
    "5.手撕代码/分词器.md",
    "5.手撕代码/数据与训练.md",
    "1.大模型算法基础/PyTorch搭建神经网络.md",
]
SYLLABUS = CORPUS_ROOT / "syllabus" / "d-code.md"
CODE_ENTRIES = [
    "code-mha", "code-cross-attention", "code-transformer-encoder", "code-gpt-from-scratch",
    "code-layernorm", "code-rmsnorm", "code-swiglu", "code-sinusoidal-pe", "code-rope",
    "code-bpe-tokenizer", "code-cross-entropy", "code-sft-dataloader", "code-trainer",
    "pytorch-build-train-network",
]
ATOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny matrices: thread hand-offs cost more than they save, and 2 shared cores get contended.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


# ---------------------------------------------------------------- format and syllabus

@pytest.mark.parametrize("rel", OWN_FILES)
def test_own_files_validate(rel):
    problems = own_file_problems(CORPUS_ROOT, [rel], corpus())
    assert not problems, "\n".join(problems)


def _syllabus_items():
    return syllabus_items(SYLLABUS)


def test_syllabus_items_are_verbatim_aliases_of_exactly_one_entry():
    items = _syllabus_items()
    assert len(items) == 14
    for text, entry_id in items:
        e = entry(entry_id)
        assert text in e.aliases, (text, entry_id)
        others = [o.id for o in corpus().entries if o.id != entry_id and text in o.aliases]
        assert not others, f"{text!r} is also an alias of {others}"


@pytest.mark.parametrize("entry_id", CODE_ENTRIES)
def test_every_code_entry_has_runnable_python(entry_id):
    assert python_blocks(entry_id), entry_id
    exec_entry(entry_id)  # the blocks run top to bottom without error


# ---------------------------------------------------------------- attention

def _sdpa_heads(x_q, x_kv, q_proj, k_proj, v_proj, o_proj, n_heads, mask=None, is_causal=False):
    """Reference: the entry's projections, PyTorch's fused attention in between."""
    B, Tq, d = x_q.shape
    Tk = x_kv.shape[1]
    q = q_proj(x_q).view(B, Tq, n_heads, -1).transpose(1, 2)
    k = k_proj(x_kv).view(B, Tk, n_heads, -1).transpose(1, 2)
    v = v_proj(x_kv).view(B, Tk, n_heads, -1).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    return o_proj(out.transpose(1, 2).reshape(B, Tq, -1))


def _right_padding(lengths, T):
    return torch.arange(T)[None, :] >= torch.tensor(lengths)[:, None]  # True = padding


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_mha_equals_scaled_dot_product_attention(causal, padded):
    ns = exec_entry("code-mha")
    torch.manual_seed(1)
    B, T, d, h = 3, 7, 32, 4
    mha = ns["MultiHeadAttention"](d_model=d, n_heads=h).eval()
    x = torch.randn(B, T, d)
    pad = _right_padding([7, 4, 2], T) if padded else None

    allowed = torch.ones(B, 1, T, T, dtype=torch.bool)
    if causal:
        allowed &= torch.ones(T, T, dtype=torch.bool).tril()
    if padded:
        allowed &= ~pad[:, None, None, :]
    ref = _sdpa_heads(x, x, mha.q_proj, mha.k_proj, mha.v_proj, mha.o_proj, h, mask=allowed)
    got = mha(x, key_padding_mask=pad, is_causal=causal)
    assert got.shape == (B, T, d)
    torch.testing.assert_close(got, ref, atol=ATOL, rtol=1e-4)
    if causal and not padded:  # the is_causal fast path of SDPA agrees as well
        ref2 = _sdpa_heads(x, x, mha.q_proj, mha.k_proj, mha.v_proj, mha.o_proj, h, is_causal=True)
        torch.testing.assert_close(got, ref2, atol=ATOL, rtol=1e-4)


def test_mha_equals_nn_multiheadattention_and_param_count():
    ns = exec_entry("code-mha")
    torch.manual_seed(2)
    B, T, d, h = 2, 6, 24, 3
    mha = ns["MultiHeadAttention"](d_model=d, n_heads=h).eval()
    ref = nn.MultiheadAttention(d, h, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mha.q_proj.weight, mha.k_proj.weight, mha.v_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([mha.q_proj.bias, mha.k_proj.bias, mha.v_proj.bias]))
        ref.out_proj.weight.copy_(mha.o_proj.weight)
        ref.out_proj.bias.copy_(mha.o_proj.bias)
    x = torch.randn(B, T, d)
    pad = _right_padding([6, 3], T)
    causal_blocked = torch.ones(T, T, dtype=torch.bool).triu(1)  # nn.MultiheadAttention: True = blocked
    want, _ = ref(x, x, x, key_padding_mask=pad, attn_mask=causal_blocked, need_weights=False)
    got = mha(x, key_padding_mask=pad, is_causal=True)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=1e-4)
    # parameter count 4d^2 + 4d, as the entry states
    n = sum(p.numel() for p in mha.parameters())
    assert n == 4 * d * d + 4 * d == sum(p.numel() for p in ref.parameters())
    assert "4d^2+4d" in _compact(entry("code-mha").answer)


def test_mha_mask_fill_value_claims():
    """The entry fills masked scores with finfo.min: a fully masked row (left padding + causal)
    stays finite where -inf gives NaN, and -1e9 does not even fit in fp16."""
    ns = exec_entry("code-mha")
    torch.manual_seed(16)
    mha = ns["MultiHeadAttention"](d_model=16, n_heads=2).eval()
    x = torch.randn(2, 5, 16)
    left_pad = torch.tensor([[True, True, False, False, False], [False] * 5])
    out = mha(x, key_padding_mask=left_pad, is_causal=True)
    assert torch.isfinite(out).all()
    # rows that have at least one visible key agree with SDPA
    allowed = torch.ones(5, 5, dtype=torch.bool).tril() & ~left_pad[:, None, None, :]
    ref = _sdpa_heads(x, x, mha.q_proj, mha.k_proj, mha.v_proj, mha.o_proj, 2, mask=allowed)
    torch.testing.assert_close(out[0, 2:], ref[0, 2:], atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(out[1], ref[1], atol=ATOL, rtol=1e-4)
    # the alternatives the entry warns about
    row = torch.full((3,), float("-inf")).softmax(-1)
    assert torch.isnan(row).all()
    with pytest.raises(RuntimeError):
        torch.zeros(2, dtype=torch.half).masked_fill(torch.tensor([True, False]), -1e9)
    assert "65504" in entry("code-mha").answer and torch.finfo(torch.half).max == 65504
    # mask dtype: ~ on a 0/1 integer mask is a bitwise not, and SDPA adds a float mask as a bias
    assert (~torch.tensor([0, 1])).tolist() == [-1, -2]
    q = k = v = torch.randn(1, 1, 3, 4)
    keep = torch.tensor([True, True, False]).expand(3, 3)
    as_bool = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    as_float = F.scaled_dot_product_attention(q, k, v, attn_mask=keep.float())
    assert not torch.allclose(as_bool, as_float)
    assert "偏置" in entry("code-mha").answer


def test_cross_attention_equals_sdpa_with_different_lengths_and_dims():
    ns = exec_entry("code-cross-attention")
    torch.manual_seed(3)
    B, Tq, Tk, d, d_kv, h = 3, 4, 9, 32, 20, 4
    xattn = ns["CrossAttention"](d_model=d, n_heads=h, d_kv=d_kv).eval()
    x = torch.randn(B, Tq, d)
    memory = torch.randn(B, Tk, d_kv)
    for pad in (None, _right_padding([9, 5, 1], Tk)):
        mask = None if pad is None else ~pad[:, None, None, :]
        ref = _sdpa_heads(x, memory, xattn.q_proj, xattn.k_proj, xattn.v_proj, xattn.o_proj, h, mask=mask)
        got = xattn(x, memory, pad)
        assert got.shape == (B, Tq, d)
        torch.testing.assert_close(got, ref, atol=ATOL, rtol=1e-4)
        # the cached memory K/V path gives the same result
        kv = xattn.project_memory(memory)
        torch.testing.assert_close(xattn(x, memory_kv=kv, memory_padding_mask=pad), got)
    # no causal mask: the first query sees the last memory token; padded memory tokens are ignored
    pad = _right_padding([9, 5, 1], Tk)
    base = xattn(x, memory, pad)
    bumped = memory.clone()
    bumped[0, -1] += 5.0   # valid token of sample 0
    bumped[1, -1] += 5.0   # padding of sample 1
    out = xattn(x, bumped, pad)
    assert not torch.allclose(out[0, 0], base[0, 0])
    torch.testing.assert_close(out[1], base[1])


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_equals_torch_transformer_encoder_layer(norm_first, activation):
    ns = exec_entry("code-transformer-encoder")
    torch.manual_seed(4)
    B, T, d, h, d_ff = 3, 7, 32, 4, 64
    mine = ns["EncoderLayer"](d, h, d_ff, dropout=0.0, activation=activation, norm_first=norm_first)
    ref = nn.TransformerEncoderLayer(d, h, d_ff, dropout=0.0, activation=activation,
                                     batch_first=True, norm_first=norm_first)
    with torch.no_grad():
        for p in ref.parameters():  # non-default LayerNorm affine params, so a swapped norm shows
            p.copy_(torch.randn_like(p) * 0.3)
        mine.qkv.weight.copy_(ref.self_attn.in_proj_weight)
        mine.qkv.bias.copy_(ref.self_attn.in_proj_bias)
        mine.out_proj.load_state_dict(ref.self_attn.out_proj.state_dict())
        mine.ff1.load_state_dict(ref.linear1.state_dict())
        mine.ff2.load_state_dict(ref.linear2.state_dict())
        mine.norm1.load_state_dict(ref.norm1.state_dict())
        mine.norm2.load_state_dict(ref.norm2.state_dict())
    assert sum(p.numel() for p in mine.parameters()) == sum(p.numel() for p in ref.parameters())
    x = torch.randn(B, T, d)
    pad = _right_padding([7, 5, 3], T)
    # training mode keeps PyTorch on its reference (non-fused) path; dropout is 0
    mine.train(), ref.train()
    torch.testing.assert_close(mine(x), ref(x), atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(mine(x, key_padding_mask=pad), ref(x, src_key_padding_mask=pad),
                               atol=ATOL, rtol=1e-4)
    blocked = torch.ones(T, T, dtype=torch.bool).triu(1)
    torch.testing.assert_close(mine(x, key_padding_mask=pad, is_causal=True),
                               ref(x, src_mask=blocked, src_key_padding_mask=pad, is_causal=True),
                               atol=ATOL, rtol=1e-4)


def test_encoder_layer_parameter_count_in_text():
    ns = exec_entry("code-transformer-encoder")
    d, d_ff = 512, 2048
    mine = ns["EncoderLayer"](d, 8, d_ff)
    n = sum(p.numel() for p in mine.parameters())
    assert n == sum(p.numel() for p in nn.TransformerEncoderLayer(d, 8, d_ff).parameters())
    assert n == (4 * d * d + 4 * d) + (2 * d * d_ff + d_ff + d) + 4 * d
    assert f"{n:,}" in entry("code-transformer-encoder").answer


# ---------------------------------------------------------------- norms and activations

def test_layernorm_equals_torch_forward_and_backward():
    ns = exec_entry("code-layernorm")
    torch.manual_seed(5)
    d = 16
    mine, ref = ns["LayerNorm"](d, eps=1e-5), nn.LayerNorm(d, eps=1e-5)
    with torch.no_grad():
        ref.weight.copy_(torch.randn(d))
        ref.bias.copy_(torch.randn(d))
        mine.weight.copy_(ref.weight)
        mine.bias.copy_(ref.bias)
    x = (torch.randn(4, 5, d) * 3 + 1).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    y, y_ref = mine(x), ref(x2)
    torch.testing.assert_close(y, y_ref, atol=ATOL, rtol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(mine.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-4)
    # the biased-variance pitfall the entry warns about is real: unbiased variance gives other values
    unbiased = (x2 - x2.mean(-1, keepdim=True)) / torch.sqrt(x2.var(-1, keepdim=True) + 1e-5)
    assert not torch.allclose(unbiased * ref.weight + ref.bias, y_ref, atol=1e-3)


def test_layernorm_text_numbers():
    # "d=8 时方差差 8/7 倍、输出差约 7%": the ratio of the two standard deviations
    d = 8
    assert round((math.sqrt(d / (d - 1)) - 1) * 100) == 7
    assert "8/7" in entry("code-layernorm").answer and "7%" in entry("code-layernorm").answer
    # "nn.RMSNorm 的 eps 默认是 None"
    assert nn.RMSNorm(4).eps is None and "`None`" in entry("code-rmsnorm").answer


@pytest.mark.parametrize("eps", [1e-6, 1e-5])
def test_rmsnorm_equals_torch_rmsnorm(eps):
    ns = exec_entry("code-rmsnorm")
    torch.manual_seed(6)
    d = 16
    mine, ref = ns["RMSNorm"](d, eps=eps), nn.RMSNorm(d, eps=eps)
    with torch.no_grad():
        ref.weight.copy_(torch.randn(d))
        mine.weight.copy_(ref.weight)
    x = torch.randn(3, 4, d) * 2 + 0.5
    torch.testing.assert_close(mine(x), ref(x), atol=ATOL, rtol=1e-5)
    assert sum(p.numel() for p in mine.parameters()) == d  # no bias


def test_swiglu_matches_formula_and_llama_hidden_dim():
    ns = exec_entry("code-swiglu")
    torch.manual_seed(7)
    d, hid = 16, 40
    ffn = ns["SwiGLUFFN"](d, hidden_dim=hid)
    x = torch.randn(2, 3, d)
    W = ffn.gate_proj.weight.T   # (d, hid)
    V = ffn.up_proj.weight.T     # (d, hid)
    W2 = ffn.down_proj.weight.T  # (hid, d)
    gate = x @ W
    want = ((gate * torch.sigmoid(gate)) * (x @ V)) @ W2   # (SiLU(xW) ⊙ xV) W2
    torch.testing.assert_close(ffn(x), want, atol=ATOL, rtol=1e-5)
    assert all(m.bias is None for m in (ffn.gate_proj, ffn.up_proj, ffn.down_proj))
    # LLaMA-7B: 8d/3 rounded up to a multiple of 256
    d7 = 4096
    expected = math.ceil(int(8 * d7 / 3) / 256) * 256
    assert ns["swiglu_hidden_dim"](d7) == expected
    assert str(expected) in entry("code-swiglu").answer
    # three matrices of d x 8d/3 have (about) the parameters of two of d x 4d
    assert abs(3 * d7 * expected - 2 * d7 * 4 * d7) / (2 * d7 * 4 * d7) < 0.01


# ---------------------------------------------------------------- position encodings

def test_sinusoidal_pe_values_at_known_positions():
    ns = exec_entry("code-sinusoidal-pe")
    L, d = 50, 16
    pe = ns["sinusoidal_position_encoding"](L, d)
    assert pe.shape == (L, d)
    # position 0: sin(0)=0 on even dims, cos(0)=1 on odd dims
    assert pe[0, 0::2].abs().max() == 0 and torch.equal(pe[0, 1::2], torch.ones(d // 2))
    for pos in (1, 7, 49):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)
    # PE(pos + k) is PE(pos) rotated by omega_i * k in every (sin, cos) pair
    k = 5
    omega = torch.tensor([10000 ** (-2 * i / d) for i in range(d // 2)])
    s, c = pe[:-k, 0::2], pe[:-k, 1::2]
    torch.testing.assert_close(pe[k:, 0::2], s * torch.cos(omega * k) + c * torch.sin(omega * k), atol=1e-5, rtol=0)
    torch.testing.assert_close(pe[k:, 1::2], c * torch.cos(omega * k) - s * torch.sin(omega * k), atol=1e-5, rtol=0)
    # the module adds the table as a non-trainable, non-persistent buffer
    mod = ns["PositionalEncoding"](d, max_len=L, dropout=0.0)
    x = torch.randn(2, 9, d)
    torch.testing.assert_close(mod(x), x + pe[:9])
    assert not list(mod.parameters()) and "pe" not in mod.state_dict()


def test_rope_preserves_norm_and_scores_depend_on_relative_position():
    ns = exec_entry("code-rope")
    torch.manual_seed(8)
    d, L = 16, 256
    rope = ns["RotaryEmbedding"](head_dim=d, max_len=L)
    x = torch.randn(2, 3, 10, d)  # (B, h, T, d)
    pos = torch.arange(100, 110)
    rx = rope(x, pos)
    torch.testing.assert_close(rx.norm(dim=-1), x.norm(dim=-1), atol=1e-4, rtol=1e-5)

    q, k = torch.randn(d), torch.randn(d)

    def score(m, n):
        qm = rope(q.view(1, 1, 1, d), torch.tensor([m]))
        kn = rope(k.view(1, 1, 1, d), torch.tensor([n]))
        return (qm * kn).sum().item()

    for m, n in [(3, 0), (10, 17), (40, 40)]:
        for shift in (1, 25, 150):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), abs=1e-4)
    assert score(3, 0) != pytest.approx(score(0, 3), abs=1e-3)  # genuinely position dependent

    # independent reference: pair dim i with dim i + d/2 as a complex number, rotate by m * theta_i
    theta = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    z = torch.complex(x[..., : d // 2].double(), x[..., d // 2:].double())
    zr = z * torch.polar(torch.ones_like(theta), pos.double()[:, None] * theta)
    want = torch.cat([zr.real, zr.imag], dim=-1).float()
    torch.testing.assert_close(rx, want, atol=1e-4, rtol=1e-4)
    # per-sample positions (B, T) give the same as shared positions (T,)
    torch.testing.assert_close(rope(x, pos.expand(2, -1)), rx)


# ---------------------------------------------------------------- tokenizer

TRAIN_TEXT = (
    "大模型的分词器把文本切成 token。Tokenizers split text into tokens, and byte-level BPE never "
    "needs an <unk>! 中文、English 和 emoji 😀🚀 混在一起也能处理。The quick brown fox jumps over "
    "the lazy dog; 快速的棕色狐狸跳过了懒狗。 123 456 7890\n\t多行文本\n"
) * 8


def test_bpe_round_trips_and_is_deterministic():
    ns = exec_entry("code-bpe-tokenizer")
    Tok = ns["ByteLevelBPE"]
    a = Tok().train(TRAIN_TEXT, vocab_size=256 + 120)
    b = Tok().train(TRAIN_TEXT, vocab_size=256 + 120)
    assert list(a.merges.items()) == list(b.merges.items())
    assert len(a.merges) == 120 and len(a.vocab) == 256 + 120
    for text in [
        TRAIN_TEXT,
        "没见过的字：龘靐齉 + emoji 🧑‍💻👨‍👩‍👧 + café naïve — “quotes” ½ \u00a0 \r\n end",
        "",
        " leading and trailing spaces   ",
    ]:
        ids = a.encode(text)
        assert a.decode(ids) == text
        assert b"".join(a.vocab[i] for i in ids) == text.encode("utf-8")  # byte-exact
    # training compresses the training text
    assert len(a.encode(TRAIN_TEXT)) < 0.6 * len(TRAIN_TEXT.encode("utf-8"))
    # GPT-2's vocabulary as the entry counts it: 256 bytes + 50000 merges + <|endoftext|>
    assert 256 + 50000 + 1 == 50257 and "50257" in entry("code-bpe-tokenizer").answer
    # every learned token is the concatenation of the pair it merged
    for (x, y), new in a.merges.items():
        assert a.vocab[new] == a.vocab[x] + a.vocab[y] and new >= 256


# ---------------------------------------------------------------- loss, data, training

def test_cross_entropy_equals_torch():
    ns = exec_entry("code-cross-entropy")
    ce = ns["cross_entropy"]
    torch.manual_seed(9)
    logits = torch.randn(2, 6, 11) * 4
    target = torch.randint(0, 11, (2, 6))
    target[0, :2] = -100
    target[1, -1] = -100
    for ls in (0.0, 0.1, 0.3):
        for red in ("mean", "sum", "none"):
            want = F.cross_entropy(logits.view(-1, 11), target.view(-1), ignore_index=-100,
                                   label_smoothing=ls, reduction=red)
            torch.testing.assert_close(ce(logits, target, label_smoothing=ls, reduction=red), want,
                                       atol=1e-5, rtol=1e-5)
    # gradients agree too
    z1 = logits.view(-1, 11).clone().requires_grad_()
    z2 = z1.detach().clone().requires_grad_()
    ce(z1, target.view(-1), label_smoothing=0.1).backward()
    F.cross_entropy(z2, target.view(-1), label_smoothing=0.1).backward()
    torch.testing.assert_close(z1.grad, z2.grad, atol=1e-6, rtol=1e-5)
    # huge logits stay finite (log-sum-exp) and still agree
    big = torch.randn(5, 7) * 1000
    t = torch.randint(0, 7, (5,))
    out = ce(big, t)
    assert torch.isfinite(out)
    torch.testing.assert_close(out, F.cross_entropy(big, t), atol=1e-3, rtol=1e-5)


def test_cross_entropy_overflow_threshold_in_text():
    assert torch.isfinite(torch.exp(torch.tensor(88.7))) and torch.isinf(torch.exp(torch.tensor(88.8)))
    assert "88.7" in entry("code-cross-entropy").answer


def _expected_labels(tokens, prompt_len):
    return [tokens[t + 1] if t + 1 < len(tokens) and t + 1 >= prompt_len else -100 for t in range(len(tokens))]


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_sft_collate_pads_masks_and_shifts_labels(padding_side):
    ns = exec_entry("code-sft-dataloader")
    g = torch.Generator().manual_seed(10)
    EOS, PAD, MAX = 2, 0, 12
    pairs = []
    for _ in range(6):
        p = torch.randint(3, 50, (int(torch.randint(1, 6, (1,), generator=g)),), generator=g).tolist()
        r = torch.randint(3, 50, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).tolist()
        pairs.append((p, r))
    pairs.append(([7] * 11, [8, 9, 10]))  # truncated inside the response
    ds = ns["SFTDataset"](pairs, eos_id=EOS, max_len=MAX)
    batch = ns["collate_causal_lm"]([ds[i] for i in range(len(ds))], pad_id=PAD, padding_side=padding_side)
    full = [(p + r + [EOS])[:MAX] for p, r in pairs]
    Lmax = max(map(len, full))
    for key in ("input_ids", "attention_mask", "labels"):
        assert batch[key].shape == (len(pairs), Lmax) and batch[key].dtype == torch.long
    for b, ((p, _), toks) in enumerate(zip(pairs, full)):
        n_pad = Lmax - len(toks)
        row_ids, row_mask, row_lab = (batch[k][b].tolist() for k in ("input_ids", "attention_mask", "labels"))
        labels = _expected_labels(toks, min(len(p), len(toks)))
        if padding_side == "right":
            assert row_ids == toks + [PAD] * n_pad
            assert row_mask == [1] * len(toks) + [0] * n_pad
            assert row_lab == labels + [-100] * n_pad
        else:
            assert row_ids == [PAD] * n_pad + toks
            assert row_mask == [0] * n_pad + [1] * len(toks)
            assert row_lab == [-100] * n_pad + labels
        # every supervised position is a response (or EOS) token, and exactly those are supervised
        supervised = [x for x in row_lab if x != -100]
        assert supervised == toks[min(len(p), len(toks)):]
    # through a real DataLoader
    loader = ns["make_sft_loader"](pairs, eos_id=EOS, pad_id=PAD, max_len=MAX, batch_size=4, shuffle=False)
    first = next(iter(loader))
    assert first["input_ids"].shape[0] == 4


def test_warmup_cosine_schedule_and_weight_decay_groups():
    ns = exec_entry("code-gpt-from-scratch", "code-trainer")
    model = ns["GPT"](vocab_size=20, d_model=16, n_heads=2, n_layers=1, max_len=8)
    peak, warm, total, r = 1e-3, 10, 50, 0.1
    tr = ns["Trainer"](model, [], lr=peak, warmup_steps=warm, total_steps=total)
    lrs = []
    for _ in range(total + 5):
        lrs.append(tr.optimizer.param_groups[0]["lr"])
        tr.optimizer.step()
        tr.scheduler.step()
    for s, lr in enumerate(lrs):
        if s < warm:
            want = peak * (s + 1) / warm
        else:
            prog = min(1.0, (s - warm) / (total - warm))
            want = peak * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * prog)))
        assert lr == pytest.approx(want, rel=1e-9)
    assert max(lrs) == pytest.approx(peak) and lrs[-1] == pytest.approx(r * peak)
    assert all(a <= b for a, b in zip(lrs[:warm], lrs[1:warm]))
    assert all(a >= b for a, b in zip(lrs[warm - 1:], lrs[warm:]))
    # weight decay only on matrices; the tied embedding appears once
    decay, no_decay = tr.optimizer.param_groups
    assert decay["weight_decay"] > 0 and no_decay["weight_decay"] == 0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    n_opt = sum(p.numel() for g in tr.optimizer.param_groups for p in g["params"])
    assert n_opt == sum(p.numel() for p in model.parameters())


V, BOS, SEP, EOS, PAD = 16, 1, 2, 3, 0


def _copy_pairs(n, seed, lo=3, hi=7):
    """Toy SFT task: prompt = BOS x SEP, response = x (copy the sequence)."""
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(n):
        seq = torch.randint(4, V, (int(torch.randint(lo, hi, (1,), generator=g)),), generator=g).tolist()
        pairs.append(([BOS] + seq + [SEP], seq))
    return pairs


def test_gradient_accumulation_equals_one_big_batch():
    ns = exec_entry("code-gpt-from-scratch", "code-sft-dataloader", "code-trainer")
    torch.manual_seed(11)
    model = ns["GPT"](vocab_size=V, d_model=16, n_heads=2, n_layers=1, max_len=32)
    tr = ns["Trainer"](model, [], lr=1e-3)
    ds = ns["SFTDataset"](_copy_pairs(4, 12, lo=1, hi=8), eos_id=EOS, max_len=32)
    collate = ns["collate_causal_lm"]
    samples = [ds[i] for i in range(4)]
    mb1, mb2 = collate(samples[:1], pad_id=PAD), collate(samples[1:], pad_id=PAD)
    big = collate(samples, pad_id=PAD)
    assert int((mb1["labels"] != -100).sum()) != int((mb2["labels"] != -100).sum())

    def grads(batches):
        model.zero_grad(set_to_none=True)
        loss = tr.accumulate(batches)
        return loss, [p.grad.clone() for p in model.parameters()]

    loss_acc, g_acc = grads([mb1, mb2])
    loss_big, g_big = grads([big])
    assert loss_acc == pytest.approx(loss_big, rel=1e-5)
    assert loss_big == pytest.approx(ns["causal_lm_loss"](model, big).item(), rel=1e-5)
    for a, b in zip(g_acc, g_big):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_gradient_clipping_happens_before_the_optimizer_step():
    ns = exec_entry("code-gpt-from-scratch", "code-sft-dataloader", "code-trainer")
    torch.manual_seed(13)
    model = ns["GPT"](vocab_size=V, d_model=16, n_heads=2, n_layers=1, max_len=32)
    loader = ns["make_sft_loader"](_copy_pairs(8, 14), eos_id=EOS, pad_id=PAD, batch_size=4)
    tr = ns["Trainer"](model, loader, lr=1e-3, max_grad_norm=1e-3, total_steps=3)
    seen = []

    def record_grad_norm(optimizer, args, kwargs):  # runs right before optimizer.step()
        norms = [p.grad.norm() for p in model.parameters() if p.grad is not None]
        seen.append(torch.norm(torch.stack(norms)).item())

    tr.optimizer.register_step_pre_hook(record_grad_norm)
    _, pre_clip = tr.train_step([next(iter(loader))])
    assert pre_clip > 1e-3 and seen[0] == pytest.approx(1e-3, rel=1e-3)
    assert all(p.grad is None for p in model.parameters())  # zeroed after the step


def test_gpt_kv_cache_logits_equal_full_forward():
    ns = exec_entry("code-gpt-from-scratch")
    torch.manual_seed(15)
    model = ns["GPT"](vocab_size=30, d_model=32, n_heads=4, n_layers=2, max_len=24).eval()
    idx = torch.randint(0, 30, (2, 12))
    with torch.no_grad():
        full, _ = model(idx)
        logits, kvs = model(idx[:, :5])           # prefill
        steps = [logits]
        for t in range(5, 12):                    # decode one token at a time
            logits, kvs = model(idx[:, t:t + 1], kvs)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)
    assert kvs[0][0].shape == (2, 4, 12, 8)       # (B, h, S, d_head)


def test_trainer_learns_copy_task_and_cached_generation_matches():
    ns = exec_entry("code-gpt-from-scratch", "code-sft-dataloader", "code-trainer")
    torch.manual_seed(0)
    model = ns["GPT"](vocab_size=V, d_model=64, n_heads=4, n_layers=2, max_len=32)
    loader = ns["make_sft_loader"](_copy_pairs(512, 1), eos_id=EOS, pad_id=PAD, max_len=32, batch_size=16)
    tr = ns["Trainer"](model, loader, lr=5e-3, weight_decay=0.01, warmup_steps=20, total_steps=100,
                       grad_accum_steps=2, max_grad_norm=1.0, log_every=1000)
    history = tr.fit()
    assert len(history) == 100 and tr.step == 100
    first, last = sum(history[:5]) / 5, sum(history[-5:]) / 5
    assert first > 2.0  # starts near ln(16) = 2.77
    assert last < 0.3 * first, (first, last)

    val = ns["make_sft_loader"](_copy_pairs(64, 2), eos_id=EOS, pad_id=PAD, batch_size=32, shuffle=False)
    assert tr.evaluate(val) < 0.5 * first
    model.eval()
    copied = 0
    for prompt, response in _copy_pairs(20, 3):
        x = torch.tensor([prompt])
        with_cache = model.generate(x, len(response) + 1, use_cache=True)
        without = model.generate(x, len(response) + 1, use_cache=False)
        assert torch.equal(with_cache, without)
        copied += with_cache[0, len(prompt):].tolist() == response + [EOS]
    print(f"copied {copied}/20")
    assert copied >= 6  # 15/20 on the reference machine; an untrained model copies ~never


def test_kv_cache_memory_figure_in_text():
    layers, d, fp16_bytes = 32, 4096, 2   # LLaMA-2-7B
    per_token = 2 * layers * d * fp16_bytes
    assert per_token == 512 * 1024
    assert (4096 * per_token) == 2 * 1024**3
    text = entry("code-gpt-from-scratch").answer
    assert "512 KiB" in text and "2 GiB" in text


# ---------------------------------------------------------------- PyTorch basics

def test_pytorch_basics_train_eval_save_load(tmp_path):
    ns = exec_entry("pytorch-build-train-network")
    model, history = ns["fit"]()
    train_loss, val_loss, val_acc = history[-1]
    assert val_acc > 0.95 and history[-1][0] < history[0][0]

    n = sum(p.numel() for p in model.parameters())
    assert n == (2 * 64 + 64) + (64 * 64 + 64) + (64 * 2 + 2)
    assert str(n) in entry("pytorch-build-train-network").answer
    # buffers: saved, moved, not trained
    names = {name for name, _ in model.named_parameters()}
    assert "x_mean" in model.state_dict() and "x_mean" not in names

    x = torch.randn(32, 2)
    model.train()
    torch.manual_seed(0)
    a = model(x)
    b = model(x)
    assert not torch.equal(a, b)      # dropout active in train mode
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))

    path = tmp_path / "mlp.pt"
    ns["save"](model, path)
    loaded = ns["load"](path, in_dim=2, hidden=64, n_classes=2)
    assert not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)
    torch.testing.assert_close(loaded.x_std, model.x_std)
