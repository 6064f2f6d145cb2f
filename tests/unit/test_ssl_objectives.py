"""SSL objectives on a tiny batch: finite losses, gradients into the shared encoder, masks, caching."""

from __future__ import annotations

import pytest
import torch

from selftrain.errors import ConfigError
from selftrain.models.acoustic import build_model, output_lengths
from selftrain.models.config import ModelConfig
from selftrain.ssl.masking import span_mask
from selftrain.ssl.objectives import BestRQ, TargetCache, build_objectives, stack_frames
from selftrain.train.brain import SelfTrainer
from selftrain.train.config import SSLConfig

SMALL = {"d_model": 32, "num_layers": 2, "lstm_hidden": 16, "d_ffn": 64, "num_heads": 2, "conv_kernel": 3, "subsample_channels": 4}


def _batch(model, seconds=(1.0, 0.6)):
    torch.manual_seed(0)
    longest = int(max(seconds) * 16000)
    wavs = torch.randn(len(seconds), longest) * 0.1
    rel = torch.tensor([s / max(seconds) for s in seconds])
    feats = model.features(wavs, rel)
    num = model.num_latent_frames(feats.shape[1])
    return feats, rel, num, output_lengths(rel, num)


@pytest.mark.parametrize("encoder", ["lstm", "conformer"])
@pytest.mark.parametrize("name", ["reconstruction", "best_rq", "contrastive"])
def test_objective_is_finite_and_trains_the_shared_encoder(encoder, name):
    model = build_model(ModelConfig.from_dict({"encoder": encoder, **SMALL}), 6)
    objectives = build_objectives([name], model.encoder_dim, 32, 80, SSLConfig(best_rq_codebook=16))
    trainer = SelfTrainer(model, objectives)
    feats, rel, num, frames = _batch(model)
    mask = span_mask(frames, num, 0.3, 3)
    targets = {name: objectives[name].targets(feats, num)} if objectives[name].cacheable else {}
    _, losses = trainer(feats, rel, mask, targets, separate_ctc_pass=False)
    loss = losses[name]
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    for part in (model.subsampler, model.encoder):
        grads = [p.grad for p in part.parameters() if p.grad is not None]
        assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    assert model.mask_embedding.grad is not None and float(model.mask_embedding.grad.abs().sum()) > 0
    assert model.ctc_head.weight.grad is None  # the SSL loss does not touch the CTC head


def test_span_mask_stays_inside_each_utterance():
    frames = torch.tensor([40, 20, 12])
    torch.manual_seed(0)
    mask = span_mask(frames, 40, 0.3, 4)
    assert mask.shape == (3, 40)
    for row, n in zip(mask, frames.tolist(), strict=True):
        assert row[:n].any() and not row[n:].any()
    assert not span_mask(frames, 40, 0.0, 4).any()
    assert span_mask(torch.tensor([1, 5]), 5, 0.5, 3).sum() == 0  # too short to mask


def test_losses_only_count_masked_frames():
    model = build_model(ModelConfig.from_dict(SMALL), 6)
    objectives = build_objectives(["reconstruction"], model.encoder_dim, 32, 80, SSLConfig())
    feats, rel, num, frames = _batch(model)
    encoded = torch.randn(2, num, model.encoder_dim)
    mask = torch.zeros(2, num, dtype=torch.bool)
    mask[0, 2:5] = True
    targets = objectives["reconstruction"].targets(feats, num)
    base = objectives["reconstruction"].loss(encoded, None, mask, targets)
    encoded2 = encoded.clone()
    encoded2[:, 6:] += 100.0  # unmasked frames change: the loss must not
    assert torch.allclose(base, objectives["reconstruction"].loss(encoded2, None, mask, targets))


def test_best_rq_codes_are_frozen_deterministic_and_depend_on_the_input():
    a, b = BestRQ(32, 80, 64, 8, seed=3), BestRQ(32, 80, 64, 8, seed=3)
    assert torch.equal(a.quantizer.P, b.quantizer.P)
    assert not any(p.requires_grad for p in a.quantizer.parameters())
    feats = torch.randn(2, 40, 80)
    codes = a.targets(feats, 10)
    assert codes.shape == (2, 10) and torch.equal(codes, b.targets(feats, 10))
    assert len(codes.unique()) > 1
    # the nearest code by dot product is the nearest by distance (unit vectors)
    stacked = torch.nn.functional.normalize(stack_frames(feats, 10) @ a.quantizer.P, dim=-1)
    distance = torch.cdist(stacked, a.quantizer.CB.unsqueeze(0).expand(2, -1, -1))
    assert torch.equal(distance.argmin(-1), codes)


def test_target_cache_round_trip_trims_to_valid_frames():
    cache = TargetCache()
    assert cache.get(["a", "b"], ["best_rq"]) is None
    codes = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]])
    cache.put(["a", "b"], "best_rq", codes, torch.tensor([4, 2]))
    assert cache.store["b"]["best_rq"].tolist() == [5, 6]
    found = cache.get(["b", "a"], ["best_rq"])
    assert TargetCache.pad(found, "best_rq", 4, torch.device("cpu")).tolist() == [[5, 6, 0, 0], [1, 2, 3, 4]]
    assert cache.hits == 1 and cache.misses == 1
    recon = torch.randn(1, 3, 8)
    cache.put(["c"], "reconstruction", recon, torch.tensor([3]))
    assert cache.store["c"]["reconstruction"].dtype == torch.float16


def test_unknown_objective_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown SSL objective"):
        build_objectives(["wav2vec3"], 32, 32, 80, SSLConfig())
