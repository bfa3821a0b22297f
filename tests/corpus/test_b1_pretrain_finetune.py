"""Computable claims of the B1 entries (pre-training, fine-tuning, PEFT, generalisation, knowledge, data).

Every number asserted against the corpus text is recomputed here, and the code the entries show
(LoRA linear, SFT loss, PCGrad, ROME update, repetition penalties) is executed from the markdown
and compared with an independent reference.
"""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.corpus.codeblocks import CORPUS_ROOT, corpus, entry, exec_entry
from tests.corpus.sections import own_file_problems, syllabus_items as _parse_syllabus

OWN_FILES = {
    "1.大模型算法基础/预训练与微调.md",
    "1.大模型算法基础/高效微调.md",
    "1.大模型算法基础/泛化能力与鲁棒性.md",
    "1.大模型算法基础/知识表示与存储.md",
    "4.大模型应用/幻觉与复读.md",
    "4.大模型应用/数据构建与合成.md",
}
SYLLABUS = CORPUS_ROOT / "syllabus" / "b1-pretrain-finetune.md"

# LLaMA-7B shapes used by the worked examples in the entries.
LAYERS, D, D_FF, VOCAB = 32, 4096, 11008, 32000


def fmt(n: int) -> str:
    return f"{n:,}"


def text_of(entry_id: str) -> str:
    e = entry(entry_id)
    return "\n".join([e.answer, *e.key_points]).replace("{,}", ",")  # LaTeX thousands separator


def llama7b_params() -> int:
    per_layer = 4 * D * D + 3 * D * D_FF + 2 * D  # attention, SwiGLU FFN, two RMSNorms
    return 2 * VOCAB * D + LAYERS * per_layer + D  # embedding + lm_head, layers, final norm


# ---------------------------------------------------------------- structure


def test_own_files_are_valid():
    problems = own_file_problems(CORPUS_ROOT, OWN_FILES, corpus())
    assert not problems, "\n".join(problems)


def test_syllabus_items_are_unique_aliases_of_their_entry():
    items = _parse_syllabus(SYLLABUS)
    assert len(items) == 32
    for item, entry_id in items:
        e = entry(entry_id)
        assert item in e.aliases, f"{item!r} is not an alias of {entry_id}"
        others = [x.id for x in corpus().entries if x.id != entry_id and item in x.aliases]
        assert not others, f"{item!r} is also an alias of {others}"


# ---------------------------------------------------------------- LoRA


@pytest.fixture(scope="module")
def lora_ns():
    return exec_entry("lora-initialization")


def test_lora_zero_init_update_then_one_step_changes_output(lora_ns):
    torch.manual_seed(0)
    LoRALinear = lora_ns["LoRALinear"]
    base = nn.Linear(64, 48)
    frozen = nn.Linear(64, 48)
    frozen.load_state_dict(base.state_dict())
    layer = LoRALinear(base, r=8, alpha=16.0)
    x = torch.randn(10, 64)

    # B = 0, so the adapted layer is exactly the frozen layer at init.
    assert torch.count_nonzero(layer.lora_B) == 0
    assert torch.count_nonzero(layer.lora_A) > 0
    out0 = layer(x)
    assert torch.equal(out0, frozen(x))

    # Only A and B are trainable.
    trainable = [n for n, p in layer.named_parameters() if p.requires_grad]
    assert sorted(trainable) == ["lora_A", "lora_B"]

    # First step: dL/dA = (alpha/r) B^T g x^T = 0, dL/dB != 0.
    target = torch.randn(10, 48)
    loss = F.mse_loss(out0, target)
    loss.backward()
    assert torch.count_nonzero(layer.lora_A.grad) == 0
    assert layer.lora_B.grad.abs().sum() > 0
    assert base.weight.grad is None

    # One plain SGD step, written out (torch.optim's first step lazily imports torch._dynamo, ~5 s).
    with torch.no_grad():
        for p in (layer.lora_A, layer.lora_B):
            p -= 0.1 * p.grad
    out1 = layer(x)
    assert not torch.allclose(out1, frozen(x))
    assert torch.equal(base.weight, frozen.weight)  # W0 untouched

    # Merging W0 + (alpha/r) B A reproduces the adapted layer.
    merged = F.linear(x, layer.merged_weight(), base.bias)
    assert torch.allclose(merged, out1, atol=1e-5)


def lora_trainable(lora_ns, d_in: int, d_out: int, r: int = 8) -> int:
    base = nn.Linear(d_in, d_out, bias=False, device="meta")  # shapes only, no memory
    layer = lora_ns["LoRALinear"](base, r=r, alpha=2 * r)
    return sum(p.numel() for p in layer.parameters() if p.requires_grad)


def test_lora_parameter_counts_match_formula_and_text(lora_ns):
    r = 8
    q_proj = lora_trainable(lora_ns, D, D, r)
    assert q_proj == r * (D + D) == 65_536
    up = lora_trainable(lora_ns, D, D_FF, r)
    down = lora_trainable(lora_ns, D_FF, D, r)
    assert up == down == r * (D + D_FF)

    qv_model = LAYERS * 2 * q_proj
    per_layer_all = 4 * q_proj + 2 * up + down  # q,k,v,o + gate,up + down
    all_model = LAYERS * per_layer_all

    text = text_of("lora-initialization")
    for n in (q_proj, qv_model, per_layer_all, all_model):
        assert fmt(n) in text, f"{fmt(n)} not in lora-initialization"
    total = llama7b_params()
    assert f"{100 * qv_model / total:.2f}%" == "0.06%" and "0.06%" in text
    assert f"{100 * all_model / total:.1f}%" == "0.3%" and "0.3%" in text
    # why-lora / lora-hyperparameters quote the all-linear count as ~20M.
    assert round(all_model / 1e6) == 20
    assert "20M" in entry("lora-hyperparameters").answer


def test_full_finetune_memory_16_bytes_per_param():
    bytes_per_param = 2 + 2 + 4 + 4 + 4  # bf16 weight, bf16 grad, fp32 master, Adam m, Adam v
    assert bytes_per_param == 16
    gb = 7e9 * bytes_per_param / 1e9
    assert f"{gb:.0f} GB" in text_of("finetuning-methods-overview")


def test_p_tuning_v2_prefix_parameter_count():
    m = 128
    n = m * LAYERS * 2 * D
    text = text_of("p-tuning-v2")
    assert fmt(n) in text
    assert f"{n / 1e6:.1f}M" in text
    assert f"{100 * n / llama7b_params():.1f}%" in text


# ---------------------------------------------------------------- SFT loss


@pytest.fixture(scope="module")
def sft_ns():
    return exec_entry("sft-loss-masking")


def test_sft_loss_is_mean_over_response_tokens(sft_ns):
    torch.manual_seed(0)
    build_example, sft_loss = sft_ns["build_example"], sft_ns["sft_loss"]
    ignore = sft_ns["IGNORE_INDEX"]
    assert ignore == -100
    prompt, response = [5, 9, 2, 7, 3], [11, 4, 8, 1]  # 1 plays the EOS
    input_ids, labels = build_example(prompt, response)
    assert input_ids.tolist() == prompt + response
    assert labels.tolist() == [-100] * len(prompt) + response

    vocab = 16
    logits = torch.randn(1, len(input_ids), vocab)
    got = sft_loss(logits, labels[None])

    # Reference: position t predicts token t+1; only response tokens count.
    logp = torch.log_softmax(logits[0], dim=-1)
    terms = [-logp[t, input_ids[t + 1]] for t in range(len(input_ids) - 1) if t + 1 >= len(prompt)]
    assert len(terms) == len(response)
    assert torch.allclose(got, torch.stack(terms).mean(), atol=1e-6)

    # The unmasked loss over all tokens is different, and prompt-only logits do not matter.
    full = F.cross_entropy(logits[0, :-1], input_ids[1:])
    assert not torch.allclose(got, full)
    perturbed = logits.clone()
    perturbed[0, : len(prompt) - 1] += 5 * torch.randn(len(prompt) - 1, vocab)
    assert torch.allclose(sft_loss(perturbed, labels[None]), got, atol=1e-6)


def test_sft_loss_batch_is_token_mean_not_sample_mean(sft_ns):
    torch.manual_seed(1)
    build_example, sft_loss = sft_ns["build_example"], sft_ns["sft_loss"]
    a_ids, a_lab = build_example([3, 4], [5, 6, 7, 8, 9, 1])  # long answer
    b_ids, b_lab = build_example([3, 4, 5, 6, 7], [2, 1])  # short answer
    T = max(len(a_ids), len(b_ids))
    pad = lambda t, v: F.pad(t, (0, T - len(t)), value=v)  # noqa: E731
    ids = torch.stack([pad(a_ids, 0), pad(b_ids, 0)])
    labels = torch.stack([pad(a_lab, -100), pad(b_lab, -100)])
    logits = torch.randn(2, T, 12)
    got = sft_loss(logits, labels)

    per_token = F.cross_entropy(logits[:, :-1].reshape(-1, 12), labels[:, 1:].reshape(-1),
                                ignore_index=-100, reduction="none")
    valid = labels[:, 1:].reshape(-1) != -100
    assert int(valid.sum()) == 6 + 2
    assert torch.allclose(got, per_token[valid].mean(), atol=1e-6)
    per_sample = per_token.view(2, -1).sum(1) / (labels[:, 1:] != -100).sum(1)
    assert not torch.allclose(got, per_sample.mean())  # the two averaging schemes differ
    assert ids.shape == labels.shape


# ---------------------------------------------------------------- training time, emergence, sampling


def hours(n_params: float, tokens: float, gpus: int, peak: float = 312e12, mfu: float = 0.4) -> float:
    return 6 * n_params * tokens / (gpus * peak * mfu) / 3600


def test_training_time_estimates():
    text = text_of("training-experience-story")
    sft_flops = 6 * 7e9 * 3e8
    assert sft_flops == pytest.approx(1.26e19)
    assert r"1.26\times10^{19}" in text
    sft_h = hours(7e9, 3e8, 8)
    assert round(sft_h, 1) == 3.5 and "3.5 小时" in text
    assert f"{round(sft_h * 3600, -2):,.0f}" == "12,600" and "12,600 秒" in text
    pre_h = hours(7e9, 1e12, 256)
    assert round(pre_h) == 365 and "365 小时" in text
    assert round(pre_h / 24) == 15 and "15 天" in text
    assert r"4.2\times10^{22}" in text
    # The model answer's numbers must be self-consistent: 1.5e8 tokens x 3 epochs on 8 A100s.
    story_h = hours(7e9, 4.5e8, 8)
    assert 5 <= story_h <= 6 and "5-6 小时" in text


def test_multistep_emergence_example():
    low, high = 0.5**10, 0.9**10
    text = text_of("emergence-and-catastrophic-forgetting")
    assert f"{100 * low:.1f}%" == "0.1%" and "0.1%" in text
    assert f"{100 * high:.1f}%" in text


def test_temperature_sampling_example():
    n = torch.tensor([900_000.0, 100_000.0])
    for tau, expected in ((1.0, (0.9, 0.1)), (2.0, (0.75, 0.25))):
        p = n ** (1 / tau)
        p = p / p.sum()
        assert torch.allclose(p, torch.tensor(expected), atol=1e-6)
    p_inf = n ** 0.0 / (n ** 0.0).sum()
    assert torch.allclose(p_inf, torch.tensor([0.5, 0.5]))
    assert "0.75:0.25" in text_of("multi-task-learning")


def test_pcgrad_projection_from_entry():
    ns = exec_entry("multi-task-transfer-interference")
    pcgrad_pair = ns["pcgrad_pair"]
    torch.manual_seed(0)
    g_j = torch.randn(50)
    g_i = -g_j + 0.3 * torch.randn(50)  # conflicting
    assert torch.dot(g_i, g_j) < 0
    proj = pcgrad_pair(g_i, g_j)
    assert torch.dot(proj, g_j).abs() < 1e-4  # orthogonal after projection
    ref = g_i - torch.dot(g_i, g_j) / torch.dot(g_j, g_j) * g_j
    assert torch.allclose(proj, ref, atol=1e-6)
    g_ok = g_j + 0.3 * torch.randn(50)  # no conflict: unchanged
    assert torch.equal(pcgrad_pair(g_ok, g_j), g_ok)


# ---------------------------------------------------------------- knowledge


def test_ffn_share_of_layer_parameters():
    attn, ffn = 4 * D * D, 3 * D * D_FF
    text = text_of("implicit-knowledge-encoding")
    assert f"{attn / 1e4:.0f} 万" == "6711 万" and "6711 万" in text
    assert f"{ffn / 1e8:.2f} 亿" == "1.35 亿" and "1.35 亿" in text
    assert f"{100 * ffn / (attn + ffn):.1f}%" in text


def test_rome_rank_one_update_inserts_fact_and_keeps_orthogonal_keys():
    ns = exec_entry("explicit-knowledge-storage-update")
    update = ns["rome_rank_one_update"]
    torch.manual_seed(0)
    d_in, d_out = 16, 12
    W = torch.randn(d_out, d_in, dtype=torch.float64)
    K = torch.randn(d_in, 200, dtype=torch.float64)
    C = K @ K.T  # key covariance, symmetric positive definite
    k_star = torch.randn(d_in, dtype=torch.float64)
    v_star = torch.randn(d_out, dtype=torch.float64)
    W_hat = update(W, C, k_star, v_star)
    assert torch.allclose(W_hat @ k_star, v_star, atol=1e-9)
    assert torch.linalg.matrix_rank(W_hat - W) == 1
    u = torch.linalg.solve(C, k_star)
    k = torch.randn(d_in, dtype=torch.float64)
    k = k - (u @ k) / (u @ u) * u  # (C^{-1} k*)^T k = 0
    assert torch.allclose(W_hat @ k, W @ k, atol=1e-9)


# ---------------------------------------------------------------- repetition penalties


def test_repetition_penalties_from_entry():
    ns = exec_entry("llm-repetition")
    rep, freq_pres = ns["apply_repetition_penalty"], ns["apply_frequency_presence_penalty"]
    torch.manual_seed(0)
    logits = torch.randn(20) * 3
    logits[3], logits[7] = 2.0, -2.0  # one positive and one negative seen logit
    original = logits.clone()
    generated = torch.tensor([3, 7, 7, 12, 3, 3])
    out = rep(logits, generated, penalty=1.2)
    assert torch.equal(logits, original)  # the input is not modified in place
    assert out[3] == pytest.approx(2.0 / 1.2) and out[7] == pytest.approx(-2.4)

    ref = logits.clone()
    for tok in set(generated.tolist()):
        z = float(logits[tok])
        ref[tok] = z / 1.2 if z > 0 else z * 1.2
    assert torch.allclose(out, ref)
    seen = torch.tensor(sorted(set(generated.tolist())))
    assert torch.all(out[seen] < logits[seen])  # both signs are pushed down
    unseen = torch.tensor([i for i in range(20) if i not in set(generated.tolist())])
    assert torch.equal(out[unseen], logits[unseen])

    fp = freq_pres(logits, generated, alpha_freq=0.5, alpha_presence=0.25)
    ref2 = logits.clone()
    for tok in range(20):
        c = int((generated == tok).sum())
        ref2[tok] = logits[tok] - 0.5 * c - 0.25 * (c > 0)
    assert torch.allclose(fp, ref2)


# ---------------------------------------------------------------- data


def test_cohen_kappa_example():
    # Two annotators on 10 binary items: each says "yes" 5 times, they agree on 8 items.
    a = torch.tensor([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
    b = torch.tensor([1, 1, 1, 1, 0, 1, 0, 0, 0, 0])
    p_o = (a == b).float().mean()
    p_e = a.float().mean() * b.float().mean() + (1 - a.float().mean()) * (1 - b.float().mean())
    kappa = (p_o - p_e) / (1 - p_e)
    assert (round(float(p_o), 2), round(float(p_e), 2), round(float(kappa), 2)) == (0.8, 0.5, 0.6)
    text = text_of("domain-dataset-construction")
    assert "p_o=0.8" in text and "p_e=0.5" in text and r"\kappa=0.6" in text
