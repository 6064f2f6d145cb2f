"""What the student optimises and how dev judges it: the model and its SSL heads as one module, the
CTC losses (per utterance, and over runs of an utterance), greedy decoding and the dev score that
picks checkpoints. The Brain that uses them is :mod:`selftrain.train.brain`."""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from selftrain.models.acoustic import CTCModel
from selftrain.ssl.objectives import SSLObjective

__all__ = ["CHECKPOINT_METRICS", "SelfTrainer", "dev_score", "greedy_decode", "runs_ctc_loss", "weighted_ctc_loss"]

CHECKPOINT_METRICS = ("wer", "cer", "wer+cer", "lm_wer")


def dev_score(wer: float, cer: float, metric: str, lm_wer: float = math.nan) -> float:
    """The dev figure that picks checkpoints and drives early stopping (lower is better).

    ``wer+cer`` (their mean) is the default because WER alone cannot rank young models: one that
    emits almost nothing and one that already spells most characters both score a WER near 1.
    ``lm_wer`` is the WER of the LM beam search (:mod:`selftrain.train.dev_lm`).
    """
    if metric == "lm_wer":
        return lm_wer
    if metric == "wer":
        return wer
    if metric == "cer":
        return cer
    return 0.5 * (wer + cer)


class SelfTrainer(nn.Module):
    """The model and its SSL heads as one module, so one (DDP-wrapped) forward covers every loss."""

    def __init__(self, model: CTCModel, objectives: nn.ModuleDict):
        super().__init__()
        self.model = model
        self.objectives = objectives

    def forward(self, feats, rel_lens, mask, targets: dict, separate_ctc_pass: bool, latents=None):
        """``(ctc log_probs [B,T',V], {objective: loss})`` for normalised (augmented) features, or for
        ``latents`` already computed (a frozen, cached front: ``feats`` is then None)."""
        if latents is None:
            latents = self.model.subsample(feats, rel_lens)
        encoded = self.model.encode(latents, rel_lens, mask if len(self.objectives) else None)
        ssl = {name: cast(SSLObjective, obj).loss(encoded, latents, mask, targets.get(name)) for name, obj in self.objectives.items()}
        if separate_ctc_pass and len(self.objectives):
            encoded = self.model.encode(latents, rel_lens)
        return self.model.ctc_log_probs(encoded), ssl


def weighted_ctc_loss(log_probs, frames, tokens, num_tokens, weights) -> torch.Tensor:
    """CTC (``zero_infinity``) per utterance, divided by its target length, times its weight, averaged
    over the rows that have targets; 0 (still connected to the graph) when there are none."""
    rows = (num_tokens > 0) & (weights > 0)
    if not bool(rows.any()):
        return log_probs.sum() * 0.0
    lp = log_probs[rows].transpose(0, 1)
    losses = F.ctc_loss(lp, tokens[rows], frames[rows], num_tokens[rows], blank=0, reduction="none", zero_infinity=True)
    losses = losses / num_tokens[rows].clamp(min=1)
    return (losses * weights[rows]).sum() / rows.sum()


def runs_ctc_loss(log_probs, frames, tokens, num_tokens, weights, spans) -> torch.Tensor:
    """:func:`weighted_ctc_loss` for batches in which some rows train runs of their audio only
    (``spans[b]``: ``(start, end, tokens)`` per run, start and end as fractions of the row's frames,
    ``tokens`` the run's share of the row's tokens in order; empty: the whole row). Each run's frames
    are aligned to its tokens alone, so the frames between runs train no character; a row's loss is
    the sum over its runs divided by its tokens, so a row without spans weighs as in
    :func:`weighted_ctc_loss`. CTC over spans of one utterance: by hand, no library does it."""
    pieces, targets, owners = [], [], []
    for b, row_spans in enumerate(spans):
        count = int(num_tokens[b])
        if count == 0 or float(weights[b]) <= 0:
            continue
        n, offset = int(frames[b]), 0
        for start, end, run_tokens in row_spans or [(0.0, 1.0, count)]:
            first = min(n - 1, math.floor(start * n))
            last = max(first + 1, min(n, math.ceil(end * n)))
            pieces.append(log_probs[b, first:last])
            targets.append(tokens[b, offset : offset + run_tokens])
            owners.append(b)
            offset += run_tokens
    if not pieces:
        return log_probs.sum() * 0.0
    input_lengths = torch.tensor([p.shape[0] for p in pieces], device=log_probs.device)
    target_lengths = torch.tensor([t.shape[0] for t in targets], device=log_probs.device)
    losses = F.ctc_loss(pad_sequence(pieces), pad_sequence(targets, batch_first=True), input_lengths, target_lengths,
                        blank=0, reduction="none", zero_infinity=True)
    owner = torch.tensor(owners, device=log_probs.device)
    per_row = torch.zeros(len(spans), device=log_probs.device, dtype=losses.dtype).index_add(0, owner, losses)
    rows = torch.unique(owner)
    return (per_row[rows] / num_tokens[rows].clamp(min=1) * weights[rows]).sum() / len(rows)


def greedy_decode(log_probs: torch.Tensor, frames: torch.Tensor) -> list[list[int]]:
    """Best-path CTC decoding: argmax, collapse repeats, drop blanks (token 0)."""
    best = log_probs.argmax(dim=-1).cpu()
    out = []
    for seq, n in zip(best, frames.tolist(), strict=True):
        ids = torch.unique_consecutive(seq[:n]).tolist()
        out.append([i for i in ids if i != 0])
    return out
