"""Computable claims of the B2 entries (alignment/RL, optimisers and schedules, mixed precision,
memory and distributed training, DeepSeek and LLM losses).

Every number asserted against the corpus text is recomputed here, and the code the entries show
(KL estimators, DPO loss, GRPO advantages, PPO clip loss, AdamW step, warmup-cosine schedule,
gradient clipping, causal-LM loss) is executed from the markdown and compared with an independent
reference (PyTorch built-ins or a direct implementation of the formula).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.corpus.codeblocks import CORPUS_ROOT, corpus, entry, exec_entry
from tests.corpus.sections import own_file_problems, syllabus_items as _parse_syllabus

OWN_FILES = {
    "3.对齐与强化学习/RLHF与PPO.md",
    "3.对齐与强化学习/DPO与GRPO.md",
    "3.对齐与强化学习/推理模型与自我博弈.md",
    "2.大模型优化技术/训练优化.md",
    "2.大模型优化技术/分布式训练与显存.md",
    "1.大模型算法基础/主流模型演进.md",
}
SYLLABUS = CORPUS_ROOT / "syllabus" / "b2-alignment-training.md"
GB = 1e9


def text_of(entry_id: str) -> str:
    e = entry(entry_id)
    return "\n".join([e.answer, *e.key_points])


def fmt_num(x: float, nd: int) -> str:
    """Format like the entries do: fixed decimals, trailing zeros (and a bare point) dropped."""
    s = f"{x:.{nd}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


# ---------------------------------------------------------------- structure and syllabus


def test_own_files_are_valid():
    problems = own_file_problems(CORPUS_ROOT, OWN_FILES, corpus())
    assert not problems, "\n".join(problems)


def test_syllabus_items_are_unique_aliases_of_their_entry():
    items = _parse_syllabus(SYLLABUS)
    assert len(items) == 36  # 2 + 20 + 2 questions from the list, 12 outline items
    for item, entry_id in items:
        e = entry(entry_id)
        assert item in e.aliases, f"{item!r} is not an alias of {entry_id}"
        others = [x.id for x in corpus().entries if x.id != entry_id and item in x.aliases]
        assert not others, f"{item!r} is also an alias of {others}"


def test_syllabus_items_retrieve_their_entry_first():
    from tutor.retriever import HybridIndex

    index = HybridIndex(corpus())  # lexical + exact-phrasing signals; no vector store needed
    for item, entry_id in _parse_syllabus(SYLLABUS):
        hits = index.search(item, 3).hits
        assert hits and hits[0].entry.id == entry_id, (item, [h.entry.id for h in hits])


# ---------------------------------------------------------------- KL estimators


@pytest.fixture(scope="module")
def kl_fn():
    return exec_entry("kl-estimators")["kl_estimators"]


def test_kl_estimators_on_samples_match_exact_kl(kl_fn):
    torch.manual_seed(0)
    base = torch.randn(8, dtype=torch.float64)
    q = torch.softmax(base, 0)
    p = torch.softmax(base + 0.3 * torch.randn(8, dtype=torch.float64), 0)  # close, as in RLHF
    exact = (q * (q / p).log()).sum()
    x = torch.multinomial(q, 200_000, replacement=True)
    k1, k2, k3 = kl_fn(q.log()[x], p.log()[x])

    def within(k, target):
        se = k.std() / math.sqrt(k.numel())
        return abs(k.mean() - target) < 4 * se

    assert within(k1, exact) and within(k3, exact)  # unbiased
    k2_mean = (q * 0.5 * (p / q).log() ** 2).sum()  # what k2 estimates instead
    assert within(k2, k2_mean)
    assert abs(k2_mean - exact) > 4 * k2.std() / math.sqrt(k2.numel())  # biased, visibly
    assert (k3 >= 0).all() and (k2 >= 0).all()
    assert (k1 < 0).any()
    assert k3.std() < 0.5 * k1.std() and k2.std() < 0.5 * k1.std()


def test_k3_variance_can_exceed_k1_when_distributions_are_far_apart():
    stats = _gaussian_stats(2.0)  # p = N(2,1): r = p/q becomes huge in q's tail
    assert stats["k3"][1] > stats["k1"][1]
    assert stats["k3"][1] ** 2 == pytest.approx(math.exp(4) - 1 - 4, rel=1e-4)
    assert "甚至超过 k1" in entry("kl-estimators").answer


def _gaussian_stats(mu: float):
    """Exact mean/std of k1, k2, k3 for q=N(0,1), p=N(mu,1), x~q, by quadrature."""
    x = torch.linspace(-20, 20, 400_001, dtype=torch.float64)
    w = torch.exp(-x**2 / 2) / math.sqrt(2 * math.pi) * (x[1] - x[0])
    log_r = mu * x - mu**2 / 2
    out = {}
    for name, k in zip(("k1", "k2", "k3"), (-log_r, 0.5 * log_r**2, torch.expm1(log_r) - log_r)):
        m = (w * k).sum()
        out[name] = (m.item(), ((w * (k - m) ** 2).sum().sqrt()).item())
    return out


@pytest.mark.parametrize("mu,label", [(0.1, r"$p=\mathcal N(0.1,1)$"), (1.0, r"$p=\mathcal N(1,1)$")])
def test_kl_estimator_table_matches_computed_bias_and_std(mu, label):
    kl = mu**2 / 2
    stats = _gaussian_stats(mu)
    row = next(line for line in entry("kl-estimators").answer.splitlines() if line.startswith(f"| {label}"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert float(cells[1]) == pytest.approx(kl)
    for cell, name in zip(cells[2:], ("k1", "k2", "k3")):
        bias_txt, std_txt = [t.strip() for t in cell.split("/")]
        mean, std = stats[name]
        rel_bias = (mean - kl) / kl
        if bias_txt == "0":
            assert abs(rel_bias) < 1e-6, (name, rel_bias)
        else:
            assert bias_txt.endswith("%")
            assert float(bias_txt[:-1]) == pytest.approx(100 * rel_bias, rel=1e-3), (name, rel_bias)
        nd = len(std_txt.split(".")[1]) if "." in std_txt else 0
        assert f"{std / kl:.{nd}f}" == std_txt, (name, std / kl, std_txt)
    # The closed forms the entry states.
    assert stats["k1"][1] == pytest.approx(mu, rel=1e-6)
    assert stats["k2"][0] == pytest.approx(0.5 * (mu**2 + mu**4 / 4), rel=1e-6)
    assert stats["k3"][1] ** 2 == pytest.approx(math.exp(mu**2) - 1 - mu**2, rel=1e-6)


def test_kl_estimators_as_losses_have_the_stated_expected_gradients(kl_fn):
    torch.manual_seed(1)
    logits = torch.randn(6, dtype=torch.float64, requires_grad=True)
    log_p = torch.log_softmax(torch.randn(6, dtype=torch.float64), 0)
    x = torch.arange(6)

    def expected_grad(which: int) -> torch.Tensor:
        log_q = torch.log_softmax(logits, 0)
        weights = log_q.exp().detach()  # samples come from q; sampling is not differentiated
        k = kl_fn(log_q[x], log_p[x])[which]
        (g,) = torch.autograd.grad((weights * k).sum(), logits)
        return g

    def grad_of(fn) -> torch.Tensor:
        (g,) = torch.autograd.grad(fn(torch.log_softmax(logits, 0)), logits)
        return g

    reverse = grad_of(lambda lq: (lq.exp() * (lq - log_p)).sum())  # KL(q||p)
    forward = grad_of(lambda lq: (log_p.exp() * (log_p - lq)).sum())  # KL(p||q)
    assert torch.allclose(expected_grad(0), torch.zeros(6, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(expected_grad(1), reverse, atol=1e-10)
    assert torch.allclose(expected_grad(2), forward, atol=1e-10)
    assert not torch.allclose(reverse, forward, atol=1e-3)


# ---------------------------------------------------------------- DPO, GRPO, PPO


@pytest.fixture(scope="module")
def dpo_fn():
    return exec_entry("dpo-formula")["dpo_loss"]


def test_dpo_loss_matches_independent_computation(dpo_fn):
    torch.manual_seed(2)
    b, beta = 16, 0.1
    pc, pr, rc, rr = (torch.randn(b, dtype=torch.float64) * 20 - 150 for _ in range(4))
    loss, chosen_reward, rejected_reward = dpo_fn(pc, pr, rc, rr, beta=beta)
    z = beta * ((pc - pr) - (rc - rr))  # beta * (policy log-ratio - reference log-ratio)
    assert loss.item() == pytest.approx((-F.logsigmoid(z)).mean().item(), rel=1e-12)
    assert loss.item() == pytest.approx(torch.log1p(torch.exp(-z)).mean().item(), rel=1e-10)
    assert torch.allclose(chosen_reward, beta * (pc - rc))
    assert torch.allclose(rejected_reward, beta * (pr - rr))
    # Z(x) cancels: shifting both implicit rewards of a pair by the same amount changes nothing.
    shift = torch.randn(b, dtype=torch.float64) * 5
    shifted, _, _ = dpo_fn(pc, pr, rc - shift, rr - shift, beta=beta)
    assert shifted.item() == pytest.approx(loss.item(), rel=1e-12)


def test_dpo_gradient_sign_and_weight(dpo_fn):
    torch.manual_seed(3)
    b, beta = 8, 0.1
    pc = (torch.randn(b, dtype=torch.float64) - 100).requires_grad_()
    pr = (torch.randn(b, dtype=torch.float64) - 100).requires_grad_()
    rc, rr = torch.randn(b, dtype=torch.float64) - 100, torch.randn(b, dtype=torch.float64) - 100
    loss, _, _ = dpo_fn(pc, pr, rc, rr, beta=beta)
    loss.backward()
    # Gradient descent raises the chosen log-prob and lowers the rejected one.
    assert (pc.grad < 0).all() and (pr.grad > 0).all()
    r_w, r_l = beta * (pc - rc), beta * (pr - rr)
    weight = torch.sigmoid(r_l - r_w).detach()  # sigma(r_hat_l - r_hat_w), as in the entry
    assert torch.allclose(pc.grad, -beta * weight / b)
    assert torch.allclose(pr.grad, beta * weight / b)
    # Mis-ranked pairs get larger updates than well-ranked ones.
    wrong = (r_w < r_l).detach()
    if wrong.any() and (~wrong).any():
        assert pc.grad[wrong].abs().min() > pc.grad[~wrong].abs().max()


def test_grpo_advantages_are_group_normalised():
    adv_fn = exec_entry("grpo-objective")["grpo_advantages"]
    torch.manual_seed(4)
    rewards = torch.randint(0, 2, (5, 16)).float()
    rewards[0] = 1.0  # a group where every answer is right
    rewards[1, :8], rewards[1, 8:] = 0.0, 1.0
    adv = adv_fn(rewards)
    assert torch.allclose(adv.mean(dim=1), torch.zeros(5), atol=1e-6)
    assert torch.equal(adv[0], torch.zeros(16))  # no signal from an all-equal group
    mixed = rewards.std(dim=1) > 0
    assert torch.allclose(adv[mixed].std(dim=1), torch.ones(int(mixed.sum())), atol=1e-4)
    ref = (rewards[1] - rewards[1].mean()) / rewards[1].std()
    assert torch.allclose(adv[1], ref, atol=1e-5)


def test_ppo_clip_loss_gradients_vanish_only_on_the_clipped_side():
    ppo = exec_entry("ppo-formula")["ppo_clip_loss"]
    eps = 0.2

    def grad(ratio: float, adv: float) -> float:
        logp_new = torch.tensor([math.log(ratio)], dtype=torch.float64, requires_grad=True)
        loss = ppo(logp_new, torch.zeros(1, dtype=torch.float64), torch.tensor([adv], dtype=torch.float64), eps)
        ref = -min(ratio * adv, min(max(ratio, 1 - eps), 1 + eps) * adv)
        assert loss.item() == pytest.approx(ref)
        loss.backward()
        return logp_new.grad.item()

    assert grad(1.5, 1.0) == 0.0  # A>0, ratio above 1+eps: no further push
    assert grad(0.5, -1.0) == 0.0  # A<0, ratio below 1-eps
    assert grad(0.5, 1.0) != 0.0  # A>0 but ratio fell: the pessimistic min keeps the gradient
    assert grad(1.5, -1.0) != 0.0
    assert grad(1.1, 1.0) == pytest.approx(-1.1)  # inside the range: d(-r*A)/dlogp = -r*A


# ---------------------------------------------------------------- memory


def test_adam_states_are_8_bytes_per_param_and_7b_totals():
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))
    n = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(4, 64)).sum().backward()
    opt.step()
    state_bytes = sum(
        t.numel() * t.element_size()
        for s in opt.state.values() for k, t in s.items() if k in ("exp_avg", "exp_avg_sq")
    )
    assert state_bytes == 8 * n

    psi = 7e9
    per_param = {"fp16 权重": 2, "fp16 梯度": 2, "fp32 主权重": 4, "m": 4, "v": 4}
    assert sum(per_param.values()) == 16
    total = 16 * psi / GB
    text = text_of("estimate-7b-memory")
    assert f"{fmt_num(total, 1)} GB" in text
    for nbytes in set(per_param.values()):
        assert f"| {fmt_num(nbytes * psi / GB, 1)} GB |" in text
    for bytes_per_param in (4, 2, 1, 0.5):  # fp32, fp16, int8, int4 weights
        assert f"{fmt_num(bytes_per_param * psi / GB, 1)} GB" in text
    assert "16 字节" in text
    assert f"{fmt_num(total, 1)} GB" in text_of("mixed-precision-training") or "16 字节" in text_of(
        "mixed-precision-training"
    )
    assert f"{fmt_num(8 * psi / GB, 1)} GB" in text_of("adam-optimizer")  # optimizer states only


def test_kv_cache_per_token_for_llama2_7b():
    layers, hidden, fp16 = 32, 4096, 2
    per_token = 2 * layers * hidden * fp16
    text = text_of("estimate-7b-memory")
    assert str(per_token) in text
    assert per_token / 2**20 == 0.5 and "0.5 MiB" in text
    assert per_token * 4096 / 2**30 == 2.0 and "2 GiB" in text
    assert per_token * 4096 * 8 / 2**30 == 16.0 and "16 GiB" in text


def zero_per_gpu(psi: float, n: int, k: int = 12) -> dict[str, float]:
    return {
        "dp": (2 + 2 + k) * psi,
        "zero1": (2 + 2 + k / n) * psi,
        "zero2": (2 + (2 + k) / n) * psi,
        "zero3": (2 + 2 + k) * psi / n,
    }


def test_zero_stage_memory_examples():
    text = text_of("deepspeed-zero-stages")
    ours = zero_per_gpu(7e9, 8)
    assert ours["dp"] / GB == 112 and "112 GB" in text
    for stage, decimals in (("zero1", 2), ("zero2", 2), ("zero3", 2)):
        assert f"{fmt_num(ours[stage] / GB, decimals)} GB" in text, (stage, ours[stage] / GB)
    assert (ours["zero1"], ours["zero2"], ours["zero3"]) == (38.5 * GB, 26.25 * GB, 14 * GB)
    # The ZeRO paper's example: 7.5B parameters on 64 GPUs.
    paper = zero_per_gpu(7.5e9, 64)
    expected = "、".join(f"{fmt_num(paper[s] / GB, 1)} GB" for s in ("dp", "zero1", "zero2", "zero3"))
    assert expected == "120 GB、31.4 GB、16.6 GB、1.9 GB" and expected in text
    # Same formulas as written in the key points (Ψ-coefficients).
    assert "(4+12/N)Ψ" in text and "(2+14/N)Ψ" in text and "16Ψ/N" in text
    assert "14 GB" in text_of("estimate-7b-memory")


def test_activation_memory_worked_example():
    s, b, h, a, layers = 4096, 1, 4096, 32, 32
    text = text_of("training-memory-estimate").replace("$", "").replace("\\approx", "≈")
    coeff = 34 + 5 * a * s / h
    assert coeff == 194 and "194" in text
    per_layer = s * b * h * coeff
    assert f"{per_layer / GB:.2f} GB" in text  # 3.25 GB
    assert f"{round(per_layer * layers / GB)} GB" in text  # 104 GB
    flash = s * b * h * 34
    assert f"{flash / GB:.2f} GB" in text  # 0.57 GB
    assert f"{round(flash * layers / GB)} GB" in text  # 18 GB
    inputs = 2 * s * b * h
    assert f"{inputs / 1e6:.1f} MB" in text  # 33.5 MB
    assert f"{inputs * layers / GB:.2f} GB" in text  # 1.07 GB


# ---------------------------------------------------------------- fp16 / bf16


def test_fp16_bf16_ranges_and_precision_match_the_entry():
    f16, b16, f32 = torch.finfo(torch.float16), torch.finfo(torch.bfloat16), torch.finfo(torch.float32)
    assert f16.max == 65504 and f16.eps == 2**-10 and f16.tiny == 2**-14
    assert b16.eps == 2**-7 and b16.tiny == f32.tiny
    assert b16.max == pytest.approx(3.39e38, rel=1e-3) and f32.max == pytest.approx(3.40e38, rel=1e-3)
    text = text_of("fp16-vs-bf16")
    assert "65504" in text and "≈3.39e38" in text and "≈3.40e38" in text
    assert f"{f16.eps:.2e}".replace("e-04", "") in text  # 9.77
    assert f"{f16.tiny:.2e}".startswith("6.10") and "6.10" in text
    assert b16.eps == 7.8125e-3 and "7.8125\\times10^{-3}" in text
    assert "2^{-10}" in text and "2^{-7}" in text and "1 / 5 / 10" in text and "1 / 8 / 7" in text


def test_rounding_and_overflow_claims():
    one16 = torch.tensor(1.0, dtype=torch.float16)
    assert (one16 + 1e-4).item() == 1.0  # a small update is swallowed in fp16
    assert (one16 + 1e-3).item() != 1.0
    assert torch.nextafter(one16, torch.tensor(2.0, dtype=torch.float16)).item() - 1 == 2**-10
    one_bf = torch.tensor(1.0, dtype=torch.bfloat16)
    assert (one_bf + 2**-9).item() == 1.0
    assert torch.isinf(torch.tensor(70000.0).to(torch.float16))
    assert torch.isfinite(torch.tensor(70000.0).to(torch.bfloat16))
    assert torch.tensor(2.0**-24, dtype=torch.float16).item() > 0  # smallest fp16 subnormal
    assert torch.tensor(2.0**-26, dtype=torch.float16).item() == 0  # underflow -> why loss scaling
    mp = text_of("mixed-precision-training")
    assert "9.8\\times10^{-4}" in mp and "2^{-24}" in mp and "2^{16}" in mp


# ---------------------------------------------------------------- optimisers


def test_entry_adamw_step_matches_torch():
    adamw_step = exec_entry("adam-optimizer")["adamw_step"]
    torch.manual_seed(5)
    p_ref = torch.randn(20, dtype=torch.float64, requires_grad=True)
    p_ours = p_ref.detach().clone()
    m, v = torch.zeros_like(p_ours), torch.zeros_like(p_ours)
    opt = torch.optim.AdamW([p_ref], lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    for t in range(1, 8):
        g = torch.randn(20, dtype=torch.float64)
        p_ref.grad = g.clone()
        opt.step()
        adamw_step(p_ours, g, m, v, t, lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)
    assert torch.allclose(p_ours, p_ref.detach(), atol=1e-12)


def test_adam_bias_correction_numbers():
    b1, b2 = 0.9, 0.999
    uncorrected = (1 - b1) / math.sqrt(1 - b2)
    assert f"{uncorrected:.2f}" in text_of("adam-optimizer")  # 3.16
    # With correction the first step is lr * sign(g).
    p = torch.zeros(5, requires_grad=True)
    opt = torch.optim.Adam([p], lr=0.01, betas=(b1, b2))
    p.grad = torch.tensor([3.0, -0.2, 1e-3, -50.0, 0.7])
    opt.step()
    assert torch.allclose(p.detach(), -0.01 * torch.sign(p.grad), rtol=1e-4)


def _one_update(opt_name: str, lr: float, loss_scale: float, clip: float | None = None) -> torch.Tensor:
    torch.manual_seed(6)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))
    x, y = torch.randn(32, 8), torch.randn(32, 1)
    before = torch.cat([p.detach().flatten() for p in model.parameters()])
    opt = (torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9) if opt_name == "sgd"
           else torch.optim.Adam(model.parameters(), lr=lr))
    for _ in range(3):
        opt.zero_grad()
        (loss_scale * F.mse_loss(model(x), y)).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()]) - before


def test_scaling_loss_vs_lr_by_ten():
    base_lr = 1e-3
    sgd_loss10 = _one_update("sgd", base_lr, 10.0)
    sgd_lr10 = _one_update("sgd", 10 * base_lr, 1.0)
    assert torch.allclose(sgd_loss10, sgd_lr10, rtol=1e-4, atol=1e-8)  # SGD(+momentum): identical

    adam_base = _one_update("adam", base_lr, 1.0)
    adam_loss10 = _one_update("adam", base_lr, 10.0)
    adam_lr10 = _one_update("adam", 10 * base_lr, 1.0)
    assert torch.allclose(adam_loss10, adam_base, rtol=1e-3, atol=1e-7)  # scale-invariant up to eps
    ratio = adam_lr10.norm() / adam_base.norm()
    assert 8 < ratio < 12  # about 10x larger steps

    # With gradient clipping even SGD no longer treats the two the same way.
    clipped_loss10 = _one_update("sgd", base_lr, 10.0, clip=0.5)
    clipped_lr10 = _one_update("sgd", 10 * base_lr, 1.0, clip=0.5)
    assert not torch.allclose(clipped_loss10, clipped_lr10, rtol=1e-2)
    assert "完全相同" in text_of("loss-vs-lr-scaling") and "几乎不变" in text_of("loss-vs-lr-scaling")


def test_warmup_cosine_schedule():
    lr_fn = exec_entry("lr-schedule-strategies")["warmup_cosine_lr"]
    max_lr, min_lr, warm, total = 3e-4, 3e-5, 100, 1100
    assert lr_fn(0, max_lr, min_lr, warm, total) == 0.0
    assert lr_fn(50, max_lr, min_lr, warm, total) == pytest.approx(max_lr / 2)
    assert lr_fn(warm, max_lr, min_lr, warm, total) == pytest.approx(max_lr)
    assert lr_fn(warm + 500, max_lr, min_lr, warm, total) == pytest.approx((max_lr + min_lr) / 2)
    assert lr_fn(total, max_lr, min_lr, warm, total) == pytest.approx(min_lr)
    # After warmup it coincides with PyTorch's CosineAnnealingLR.
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=max_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warm, eta_min=min_lr)
    for step in range(warm, total + 1, 1):
        if (step - warm) % 97 == 0:
            assert lr_fn(step, max_lr, min_lr, warm, total) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-6)
        opt.step()
        sched.step()


def test_entry_clip_grad_norm_matches_torch():
    clip = exec_entry("gradient-clipping")["clip_grad_norm"]
    torch.manual_seed(7)
    for max_norm in (0.5, 1e3):
        a = [nn.Parameter(torch.randn(5, 3)), nn.Parameter(torch.randn(7))]
        b = [nn.Parameter(t.detach().clone()) for t in a]
        for pa, pb in zip(a, b):
            g = torch.randn_like(pa) * 3
            pa.grad, pb.grad = g.clone(), g.clone()
        before = torch.cat([p.grad.flatten() for p in a]).clone()
        ours = clip(a, max_norm)
        ref = torch.nn.utils.clip_grad_norm_(b, max_norm)
        assert ours.item() == pytest.approx(ref.item(), rel=1e-6)  # pre-clip norm is returned
        for pa, pb in zip(a, b):
            assert torch.allclose(pa.grad, pb.grad, atol=1e-6)
        after = torch.cat([p.grad.flatten() for p in a])
        assert after.norm().item() <= max_norm * (1 + 1e-5)
        assert F.cosine_similarity(after, before, dim=0).item() == pytest.approx(1.0)  # direction kept


# ---------------------------------------------------------------- throughput and losses


def test_mfu_and_training_time_example():
    n, peak, mfu, tokens = 7e9, 312e12, 0.4, 2e12
    tok_per_s = peak * mfu / (6 * n)
    gpu_hours = 6 * n * tokens / (peak * mfu) / 3600
    text = text_of("training-speedup")
    assert f"{tok_per_s:.0f}" in text  # 2971
    assert f"{gpu_hours / 1e4:.1f} 万" in text  # 18.7 万 GPU 小时
    assert abs(gpu_hours - 184_320) / 184_320 < 0.05  # same order as Llama 2 7B's reported hours


def test_decode_is_bandwidth_bound_numbers():
    weights, bw, peak = 14e9, 2.039e12, 312e12
    t = weights / bw
    text = text_of("train-vs-inference-acceleration")
    assert f"{t * 1e3:.1f} ms" in text  # 6.9 ms
    assert f"{1 / t:.0f} token/s" in text  # 146
    assert f"{peak / bw:.0f}" in text  # ridge point ~153 FLOP/byte
    assert "2 次浮点运算" in text  # a 2-byte fp16 weight gives 2 FLOPs at batch 1 -> ~1 FLOP/byte


def test_causal_lm_loss_code_matches_manual_cross_entropy():
    lm_loss = exec_entry("llm-loss-functions")["causal_lm_loss"]
    torch.manual_seed(8)
    B, T, V = 2, 7, 11
    logits = torch.randn(B, T, V, dtype=torch.float64)
    labels = torch.randint(0, V, (B, T))
    labels[0, :3] = -100  # prompt tokens are not scored
    loss = lm_loss(logits, labels)
    nll, count = 0.0, 0
    for bi in range(B):
        for t in range(T - 1):
            target = labels[bi, t + 1].item()
            if target == -100:
                continue
            row = logits[bi, t]
            nll += (torch.logsumexp(row, 0) - row[target]).item()
            count += 1
    assert loss.item() == pytest.approx(nll / count, rel=1e-12)
    assert math.exp(loss.item()) == pytest.approx(math.exp(nll / count))  # perplexity = exp(loss)


def test_deepseek_numbers_are_consistent():
    text = text_of("deepseek-v1-v3")
    mha = 2 * 128 * 128  # K and V, 128 heads of 128 dims
    mla = 512 + 64  # latent c_KV plus decoupled RoPE key
    assert str(mha) in text and str(mla) in text
    assert mla / mha < 0.02
    v3 = text_of("deepseek-v3-balancing-mtp")
    assert "0.001" in v3 and "0.0001" in v3 and "D=1" in v3
    # GPU hours x $2 = the quoted cost.
    assert 2.788e6 * 2 == pytest.approx(5.576e6) and "278.8 万" in text and "557.6 万" in text


def test_gradient_accumulation_matches_full_batch_token_mean():
    accumulate = exec_entry("gradient-accumulation")["accumulate_token_mean_grads"]
    torch.manual_seed(9)
    V, D = 13, 6
    model = nn.Sequential(nn.Embedding(V, D), nn.Linear(D, V))
    x = torch.randint(0, V, (4, 10))
    y = torch.randint(0, V, (4, 10))
    y[0, :8] = -100  # micro-batches with very different numbers of scored tokens
    y[1, :9] = -100
    micro = [(x[:2], y[:2]), (x[2:], y[2:])]

    def grads():
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    model.zero_grad()
    logits = model(x)
    F.cross_entropy(logits.reshape(-1, V), y.reshape(-1), ignore_index=-100).backward()
    full = grads().clone()

    model.zero_grad()
    accumulate(model, micro)
    assert torch.allclose(grads(), full, atol=1e-6)

    model.zero_grad()  # the common mistake: mean per micro-batch, then divide by k
    for xb, yb in micro:
        lb = model(xb)
        (F.cross_entropy(lb.reshape(-1, V), yb.reshape(-1), ignore_index=-100) / len(micro)).backward()
    assert not torch.allclose(grads(), full, atol=1e-4)


def test_majority_vote_and_best_of_n_numbers():
    def majority(p: float, n: int) -> float:
        return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n // 2 + 1, n + 1))

    text = text_of("test-time-scaling")
    up = [majority(0.6, n) for n in (1, 5, 25, 101)]
    down = [majority(0.4, n) for n in (1, 5, 25, 101)]
    assert up == sorted(up) and down == sorted(down, reverse=True)
    assert "、".join(fmt_num(v, 3) for v in up) in text  # 0.6、0.683、0.846、0.979
    assert "、".join(fmt_num(v, 3) for v in down) in text  # 0.4、0.317、0.154、0.021
    assert f"{majority(0.6, 25):.3f}" in text and f"{majority(0.4, 25):.3f}" in text
    # Monte Carlo agrees with the binomial formula.
    torch.manual_seed(10)
    votes = (torch.rand(20_000, 25) < 0.6).sum(dim=1) > 12
    assert votes.float().mean().item() == pytest.approx(majority(0.6, 25), abs=0.01)
    assert f"{1 - 0.7**8:.3f}" in text  # best-of-8 with a perfect verifier at p = 0.3


def test_fp8_formats_match_the_entry():
    e4m3, e5m2 = torch.finfo(torch.float8_e4m3fn), torch.finfo(torch.float8_e5m2)
    assert (e4m3.max, e4m3.eps) == (448.0, 2**-3)
    assert (e5m2.max, e5m2.eps) == (57344.0, 2**-2)
    text = text_of("fp8-training")
    assert "| 1 / 4 / 3 | 448 |" in text and "| 1 / 5 / 2 | 57344 |" in text
    assert "2^{-3}=0.125" in text and "2^{-2}=0.25" in text
    # Block-wise (1x128) scaling keeps one outlier from crushing everyone else's resolution,
    # which is what a single per-tensor scale does.
    torch.manual_seed(11)
    x = torch.randn(8, 512)
    x[0, 0] = 1e5  # five orders of magnitude above the rest
    normal = torch.ones_like(x, dtype=torch.bool)
    normal[0, :128] = False  # judge the error on values outside the outlier's block

    def quant_error(blocks: torch.Tensor) -> float:
        scale = blocks.abs().amax(dim=-1, keepdim=True) / e4m3.max
        deq = ((blocks / scale).to(torch.float8_e4m3fn).float() * scale).reshape_as(x)
        return ((deq - x).abs()[normal].sum() / x.abs()[normal].sum()).item()

    per_tensor = quant_error(x.reshape(1, -1))
    per_block = quant_error(x.reshape(8, -1, 128))
    assert per_block < 0.1 and per_tensor > 3 * per_block
