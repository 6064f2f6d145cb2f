"""Loss-combination strategies: finite, gradients reach the shared encoder, schedules as documented."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from selftrain.errors import ConfigError
from selftrain.models.acoustic import build_model
from selftrain.models.config import ModelConfig
from selftrain.ssl.combine import BLJust, Curriculum, GradNorm, PCGrad, build_combiner
from selftrain.ssl.masking import span_mask
from selftrain.ssl.objectives import build_objectives
from selftrain.train.brain import SelfTrainer, weighted_ctc_loss
from selftrain.train.config import CombineConfig, SSLConfig

SMALL = {"d_model": 32, "num_layers": 2, "lstm_hidden": 16, "subsample_channels": 4}


def _losses(seed=0):
    torch.manual_seed(seed)
    model = build_model(ModelConfig.from_dict(SMALL), 6)
    trainer = SelfTrainer(model, build_objectives(["best_rq"], model.encoder_dim, 32, 80, SSLConfig(best_rq_codebook=16)))
    rel = torch.tensor([1.0, 0.8])
    feats = model.features(torch.randn(2, 16000) * 0.1, rel)
    num = model.num_latent_frames(feats.shape[1])
    frames = (rel * num).round().long()
    mask = span_mask(frames, num, 0.3, 3)
    targets = {"best_rq": trainer.objectives["best_rq"].targets(feats, num)}
    log_probs, ssl = trainer(feats, rel, mask, targets, separate_ctc_pass=False)
    tokens = torch.tensor([[2, 3, 4], [5, 2, 0]])
    ctc = weighted_ctc_loss(log_probs, frames, tokens, torch.tensor([3, 2]), torch.tensor([1.0, 0.5]))
    return model, {"ctc": ctc, "ssl": ssl["best_rq"]}


@pytest.mark.parametrize("strategy", ["fixed", "curriculum", "gradnorm", "pcgrad", "bl_just"])
def test_each_strategy_fills_finite_gradients_of_encoder_and_heads(strategy):
    model, losses = _losses()
    combiner = build_combiner(CombineConfig(strategy=strategy))
    total = combiner.backward(losses, 0, model.shared_parameters(), model.last_shared_parameters())
    assert torch.isfinite(total)
    shared = [p.grad for p in model.shared_parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in shared)
    assert sum(float(g.abs().sum()) for g in shared) > 0
    assert model.ctc_head.weight.grad is not None and float(model.ctc_head.weight.grad.abs().sum()) > 0
    assert set(combiner.last_weights) == {"ctc", "ssl"}


def test_fixed_weights_give_the_weighted_sum_gradient():
    model, losses = _losses()
    expected = torch.autograd.grad(1.0 * losses["ctc"] + 0.3 * losses["ssl"], model.shared_parameters(), retain_graph=True)
    build_combiner(CombineConfig(strategy="fixed", ctc_weight=1.0, ssl_weight=0.3)).backward(losses, 0, model.shared_parameters(), [])
    for g, p in zip(expected, model.shared_parameters(), strict=True):
        assert torch.allclose(g, p.grad, atol=1e-6)


def test_curriculum_starts_ssl_heavy_and_ramps_ctc_up():
    c = Curriculum(ctc_weight=1.0, ssl_weight=0.5, steps=100, ctc_start=0.1, ssl_end=0.05)
    assert c.weights(0) == pytest.approx({"ctc": 0.1, "ssl": 0.5})
    assert c.weights(50) == pytest.approx({"ctc": 0.55, "ssl": 0.275})
    assert c.weights(100) == c.weights(10_000) == pytest.approx({"ctc": 1.0, "ssl": 0.05})


def test_bl_just_penalty_grows_and_lower_step_reduces_the_ssl_loss():
    b = BLJust(gamma_start=0.1, gamma_end=1.0, gamma_steps=10, lower_lr=0.05)
    assert b.weights(0)["ssl"] == pytest.approx(0.1)
    assert b.weights(5)["ssl"] == pytest.approx(0.55)
    assert b.weights(50)["ssl"] == pytest.approx(1.0) and b.weights(50)["ctc"] == 1.0
    w = nn.Parameter(torch.tensor([2.0, -1.0]))
    loss = (w**2).sum()
    b.lower_step(loss, [w])
    assert torch.allclose(w.detach(), torch.tensor([2.0, -1.0]) * (1 - 2 * 0.05))


def test_pcgrad_removes_the_conflicting_component():
    w = nn.Parameter(torch.zeros(2))
    losses = {"ctc": (w * torch.tensor([1.0, 0.0])).sum(), "ssl": (w * torch.tensor([-1.0, 1.0])).sum()}
    PCGrad(1.0, 1.0).backward(losses, 0, [w], [w])
    # g1=(1,0), g2=(-1,1): dot<0 -> g1'=(0.5,0.5), g2'=(0,1); sum=(0.5,1.5)
    assert torch.allclose(w.grad, torch.tensor([0.5, 1.5]))
    w.grad = None
    agree = {"ctc": (w * torch.tensor([1.0, 0.0])).sum(), "ssl": (w * torch.tensor([1.0, 1.0])).sum()}
    PCGrad(1.0, 1.0).backward(agree, 0, [w], [w])
    assert torch.allclose(w.grad, torch.tensor([2.0, 1.0]))  # no conflict: plain sum


def test_gradnorm_moves_weight_towards_the_task_with_the_smaller_gradient():
    w = nn.Parameter(torch.ones(2))
    g = GradNorm(alpha=0.0, lr=0.1)
    for _ in range(5):
        losses = {"ctc": (w * torch.tensor([10.0, 0.0])).sum(), "ssl": (w * torch.tensor([0.0, 1.0])).sum()}
        w.grad = None
        g.backward(losses, 0, [w], [w])
    weights = g.weights(0)
    assert weights["ssl"] > weights["ctc"]
    assert sum(weights.values()) == pytest.approx(2.0)
    assert set(g.state_dict()) == {"task_weights", "initial_losses"}  # checkpointed state


def test_unknown_strategy_is_a_config_error():
    with pytest.raises(ConfigError, match="strategy"):
        build_combiner(CombineConfig(strategy="magic"))


def test_runs_ctc_loss_trains_the_runs_frames_only_and_equals_whole_rows_without_runs():
    from selftrain.train.brain import runs_ctc_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 40, 5, requires_grad=True)
    log_probs = logits.log_softmax(-1)
    frames, tokens = torch.tensor([40, 30]), torch.tensor([[1, 2, 3, 4], [2, 3, 0, 0]])
    num_tokens, weights = torch.tensor([4, 2]), torch.tensor([1.0, 0.5])
    whole = weighted_ctc_loss(log_probs, frames, tokens, num_tokens, weights)
    assert runs_ctc_loss(log_probs, frames, tokens, num_tokens, weights, [[], []]).item() == pytest.approx(whole.item())
    one_run = runs_ctc_loss(log_probs, frames, tokens, num_tokens, weights, [[(0.0, 1.0, 4)], []])
    assert one_run.item() == pytest.approx(whole.item())

    # row 0 trains two runs: frames [0, 10) against tokens 1 2, frames [30, 40) against 3 4
    loss = runs_ctc_loss(log_probs, frames, tokens, num_tokens, weights, [[(0.0, 0.25, 2), (0.75, 1.0, 2)], []])
    loss.backward()
    per_frame = logits.grad[0].abs().sum(-1)
    assert per_frame[10:30].sum() == 0  # the doubtful words' frames train nothing
    assert per_frame[:10].sum() > 0 and per_frame[30:].sum() > 0
