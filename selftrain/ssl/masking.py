"""Span masks over the subsampled latent frames (SpeechBrain's wav2vec 2.0 ``compute_mask``)."""

from __future__ import annotations

import torch

__all__ = ["span_mask"]


def span_mask(frames: torch.Tensor, max_frames: int, mask_prob: float, span: int) -> torch.Tensor:
    """``[B, max_frames]`` bool mask: about ``mask_prob`` of the shortest utterance's frames, in spans.

    Every utterance gets the same number of spans (as in wav2vec 2.0), all inside its valid
    frames; utterances too short for a span get a shorter one. Returns all-False when
    ``mask_prob`` is 0.
    """
    from speechbrain.lobes.models.wav2vec import compute_mask

    lens = [int(n) for n in frames.tolist()]
    if mask_prob <= 0 or min(lens) < 2:
        return torch.zeros(len(lens), max_frames, dtype=torch.bool, device=frames.device)
    length = max(1, min(span, min(lens) - 1))
    mask = compute_mask((len(lens), max_frames), lens, mask_prob, length)
    return torch.as_tensor(mask, dtype=torch.bool, device=frames.device)
