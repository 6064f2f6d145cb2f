"""Acoustic front-end: 80-dim log-mel filterbanks and mean-variance normalisation.

Fbank computation is SpeechBrain's (:class:`speechbrain.lobes.features.Fbank`). Global
normalisation keeps its statistics in registered buffers so that they travel inside the model's
plain state dict (``model.pt``, loaded with ``weights_only=True``); SpeechBrain's
``InputNormalization`` keeps them in ordinary attributes saved by its own checkpoint hook, which a
state-dict export would lose. The statistics are estimated once, before training, from the training
audio (:meth:`GlobalNorm.fit`), so they never drift and features computed from clean audio can be
cached (see :mod:`selftrain.ssl`).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from selftrain.data.feature_config import FeatureConfig

__all__ = ["FeatureConfig", "Fbank", "GlobalNorm", "UtteranceNorm", "build_normalizer", "num_feature_frames"]


def num_feature_frames(num_samples: int | torch.Tensor, config: FeatureConfig) -> int | torch.Tensor:
    """Frames of a (centred) STFT with the configured hop for ``num_samples`` samples."""
    hop = int(round(config.sample_rate * config.hop_length_ms / 1000))
    return num_samples // hop + 1


class Fbank(nn.Module):
    """Log-mel filterbank features ``[B, T, n_mels]`` from waveforms ``[B, S]`` (SpeechBrain's Fbank)."""

    def __init__(self, config: FeatureConfig):
        super().__init__()
        from speechbrain.lobes.features import Fbank as SBFbank

        self.config = config
        self.fbank = SBFbank(
            sample_rate=config.sample_rate,
            n_mels=config.n_mels,
            win_length=config.win_length_ms,
            hop_length=config.hop_length_ms,
        )

    @torch.no_grad()
    def forward(self, wavs: torch.Tensor) -> torch.Tensor:
        # Filterbanks are computed in fp32 even under autocast (log of tiny energies).
        with torch.autocast(device_type=wavs.device.type, enabled=False):
            return self.fbank(wavs.float())


def _masked_mean_var(feats: torch.Tensor, rel_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    steps = torch.arange(feats.shape[1], device=feats.device)
    mask = (steps[None, :] < (rel_lens * feats.shape[1]).round()[:, None]).unsqueeze(-1).float()
    count = mask.sum(dim=1).clamp(min=1.0)
    mean = (feats * mask).sum(dim=1) / count
    var = (((feats - mean[:, None]) ** 2) * mask).sum(dim=1) / count
    return mean, var


class UtteranceNorm(nn.Module):
    """Per-utterance mean-variance normalisation over the valid (unpadded) frames."""

    def forward(self, feats: torch.Tensor, rel_lens: torch.Tensor) -> torch.Tensor:
        mean, var = _masked_mean_var(feats, rel_lens)
        return (feats - mean[:, None]) / var.clamp(min=1e-5).sqrt()[:, None]


class GlobalNorm(nn.Module):
    """Corpus-level mean-variance normalisation with statistics in buffers (``mean``, ``std``)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, n_mels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))

    @torch.no_grad()
    def fit(self, feature_batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Estimate the statistics from ``(feats [B,T,F], rel_lens [B])`` batches (valid frames only)."""
        total = torch.zeros_like(self.mean, dtype=torch.float64)
        total_sq = torch.zeros_like(total)
        count = 0.0
        for feats, rel_lens in feature_batches:
            steps = torch.arange(feats.shape[1])
            mask = steps[None, :] < (rel_lens * feats.shape[1]).round()[:, None]
            valid = feats[mask].double()
            total += valid.sum(dim=0)
            total_sq += (valid**2).sum(dim=0)
            count += valid.shape[0]
        if count == 0:
            return
        mean = total / count
        self.mean.copy_(mean.float())
        self.std.copy_((total_sq / count - mean**2).clamp(min=1e-5).sqrt().float())

    def forward(self, feats: torch.Tensor, rel_lens: torch.Tensor) -> torch.Tensor:
        return (feats - self.mean) / self.std


def build_normalizer(config: FeatureConfig) -> nn.Module:
    """The normaliser named by ``config.norm``."""
    from selftrain.errors import ConfigError

    if config.norm == "global":
        return GlobalNorm(config.n_mels)
    if config.norm == "utterance":
        return UtteranceNorm()
    raise ConfigError(f"features.norm must be 'global' or 'utterance', not {config.norm!r}")
