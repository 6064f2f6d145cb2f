"""Self-supervised objectives sharing the CTC model's encoder.

All three mask spans of the subsampled latents (the encoder sees a learned mask embedding there,
:meth:`selftrain.models.acoustic.CTCModel.encode`) and are scored on masked, valid frames only:

- ``reconstruction``: predict the clean, normalised fbank frames under each masked latent frame
  (the 4 stacked input frames) with an L1 loss (masked acoustic modelling, as in Mockingjay,
  arXiv 1910.12638).
- ``best_rq``: predict the code of each masked frame given by a frozen random-projection quantizer
  of the stacked clean fbank frames (BEST-RQ, arXiv 2202.01855; SpeechBrain's quantizer buffers).
- ``contrastive``: InfoNCE between the encoder output at a masked frame and the unmasked latent of
  that frame, against negatives drawn from other frames of the same utterance (wav2vec 2.0,
  arXiv 2006.11477, with continuous targets instead of a Gumbel quantizer).

Targets of ``reconstruction`` and ``best_rq`` depend only on the clean audio and the frozen feature
statistics, so :class:`TargetCache` stores them per utterance (trimmed to its valid frames; BEST-RQ
codes as int16, reconstruction targets as fp16) and they are computed once. Batches whose audio was
speed-perturbed (the frame count changes) bypass the cache. Contrastive targets come from the
current latents and are never cached.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selftrain.errors import ConfigError

__all__ = [
    "SSLObjective",
    "MaskedReconstruction",
    "BestRQ",
    "Contrastive",
    "TargetCache",
    "build_objectives",
    "stack_frames",
    "OBJECTIVES",
]

OBJECTIVES = ("reconstruction", "best_rq", "contrastive")


def stack_frames(feats: torch.Tensor, num_frames: int, factor: int = 4) -> torch.Tensor:
    """``[B, T, F] -> [B, num_frames, factor*F]``: the input frames under each subsampled frame."""
    needed = num_frames * factor
    if feats.shape[1] < needed:
        feats = F.pad(feats, (0, 0, 0, needed - feats.shape[1]))
    return feats[:, :needed].reshape(feats.shape[0], num_frames, factor * feats.shape[2])


class SSLObjective(nn.Module):
    """Base class: ``targets`` (from clean features; may be cached) and ``loss`` on masked frames."""

    name = ""
    cacheable = False

    def targets(self, feats: torch.Tensor, num_frames: int) -> torch.Tensor | None:
        """Targets ``[B, T', ...]`` from clean normalised features (None when not feature-based)."""
        return None

    def loss(self, encoded: torch.Tensor, latents: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        """Mean loss over the frames where ``mask`` (``[B, T']``, valid frames only) is True."""
        raise NotImplementedError


class MaskedReconstruction(SSLObjective):
    """L1 reconstruction of the clean fbank frames under masked latents."""

    name = "reconstruction"
    cacheable = True

    def __init__(self, encoder_dim: int, n_mels: int, factor: int = 4):
        super().__init__()
        self.factor = factor
        self.head = nn.Linear(encoder_dim, factor * n_mels)

    def targets(self, feats: torch.Tensor, num_frames: int) -> torch.Tensor:
        return stack_frames(feats, num_frames, self.factor)

    def loss(self, encoded, latents, mask, targets):
        pred = self.head(encoded[mask]).float()
        return F.l1_loss(pred, targets[mask].float())


class BestRQ(SSLObjective):
    """Masked prediction of frozen random-projection codes (BEST-RQ)."""

    name = "best_rq"
    cacheable = True

    def __init__(self, encoder_dim: int, n_mels: int, codebook: int, code_dim: int, factor: int = 4, seed: int = 0):
        super().__init__()
        from speechbrain.nnet.quantisers import RandomProjectionQuantizer

        self.factor = factor
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # the frozen quantizer depends on the seed only
        self.quantizer = RandomProjectionQuantizer(factor * n_mels, code_dim, codebook)
        torch.random.set_rng_state(state)
        self.head = nn.Linear(encoder_dim, codebook)

    @torch.no_grad()
    def targets(self, feats: torch.Tensor, num_frames: int) -> torch.Tensor:
        stacked = stack_frames(feats.float(), num_frames, self.factor)
        projected = F.normalize(stacked @ self.quantizer.P, dim=-1)
        # Nearest unit-norm code = largest dot product; avoids SpeechBrain's [B, V, T, D] distance tensor.
        return (projected @ self.quantizer.CB.T).argmax(dim=-1)

    def loss(self, encoded, latents, mask, targets):
        logits = self.head(encoded[mask]).float()
        return F.cross_entropy(logits, targets[mask].long())


class Contrastive(SSLObjective):
    """InfoNCE between context vectors at masked frames and the unmasked latents (wav2vec 2.0 style)."""

    name = "contrastive"

    def __init__(self, encoder_dim: int, latent_dim: int, proj_dim: int, negatives: int, temperature: float):
        super().__init__()
        self.context_proj = nn.Linear(encoder_dim, proj_dim)
        self.target_proj = nn.Linear(latent_dim, proj_dim)
        self.negatives = negatives
        self.temperature = temperature

    def loss(self, encoded, latents, mask, targets):
        context = self.context_proj(encoded).float()  # [B, T, P]
        target = self.target_proj(latents.detach()).float()
        batch, frames = mask.shape
        valid = mask.sum(dim=1)
        losses = []
        for b in range(batch):  # negatives come from the same utterance's masked frames
            idx = mask[b].nonzero().squeeze(1)
            if idx.numel() < 2:
                continue
            n = idx.numel()
            num_neg = min(self.negatives, n - 1)
            draw = torch.randint(0, n - 1, (n, num_neg), device=idx.device)
            draw = draw + (draw >= torch.arange(n, device=idx.device)[:, None]).long()  # skip the positive
            pos = target[b, idx]  # [n, P]
            cands = torch.cat([pos.unsqueeze(1), pos[draw]], dim=1)  # [n, 1+K, P]
            sims = F.cosine_similarity(context[b, idx].unsqueeze(1), cands, dim=-1) / self.temperature
            losses.append(F.cross_entropy(sims, torch.zeros(n, dtype=torch.long, device=idx.device), reduction="sum"))
        if not losses:
            return context.sum() * 0.0
        return torch.stack(losses).sum() / valid.clamp(min=1).sum()


class TargetCache:
    """Per-utterance cache of fixed SSL targets (CPU, compact dtypes), keyed by utterance ID."""

    def __init__(self) -> None:
        self.store: dict[str, dict[str, torch.Tensor]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, ids: list[str], names: list[str]) -> list[dict[str, torch.Tensor]] | None:
        """The cached targets of every ID, or None when any is missing."""
        found = [self.store.get(i) for i in ids]
        if any(f is None or any(n not in f for n in names) for f in found):
            self.misses += 1
            return None
        self.hits += 1
        return found  # type: ignore[return-value]

    def put(self, ids: list[str], name: str, targets: torch.Tensor, frames: torch.Tensor) -> None:
        small = targets.to(torch.int16) if not targets.is_floating_point() else targets.to(torch.float16)
        for i, utt in enumerate(ids):
            self.store.setdefault(utt, {})[name] = small[i, : int(frames[i])].cpu()

    @staticmethod
    def pad(items: list[dict[str, torch.Tensor]], name: str, max_frames: int, device: torch.device) -> torch.Tensor:
        """Stack cached targets back into ``[B, max_frames, ...]``."""
        first = items[0][name]
        out = torch.zeros((len(items), max_frames, *first.shape[1:]), dtype=first.dtype)
        for i, item in enumerate(items):
            t = item[name][:max_frames]
            out[i, : t.shape[0]] = t
        return out.to(device)


def build_objectives(names: list[str], encoder_dim: int, latent_dim: int, n_mels: int, ssl_config) -> nn.ModuleDict:
    """The named objectives as a ``ModuleDict`` (name -> :class:`SSLObjective`)."""
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise ConfigError(f"unknown SSL objective(s) {unknown}; choose from {list(OBJECTIVES)}")
    objectives = nn.ModuleDict()
    for name in names:
        if name == "reconstruction":
            objectives[name] = MaskedReconstruction(encoder_dim, n_mels)
        elif name == "best_rq":
            objectives[name] = BestRQ(encoder_dim, n_mels, ssl_config.best_rq_codebook, ssl_config.best_rq_dim)
        else:
            objectives[name] = Contrastive(
                encoder_dim, latent_dim, ssl_config.contrastive_dim, ssl_config.contrastive_negatives,
                ssl_config.contrastive_temperature,
            )
    return objectives
