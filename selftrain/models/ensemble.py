"""Several acoustic models as one teacher: their CTC posteriors averaged frame by frame.

Independently trained models make different errors; the average of their posteriors, decoded once
with the LM, labels better than any one of them (docs/experiments/2026-12-03-teacher-ensemble.md:
two teachers trained with different augmentation). Members must
share the output alphabet, sample rate and frame rate; models trained with different seeds of one
preset do. Averaging probabilities (not log-probabilities) keeps a token that one member is sure of
and another doubts likely, as a mixture of the members would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from selftrain.errors import CheckpointError
from selftrain.models.api import AcousticModel
from selftrain.models.export import load_acoustic_model

__all__ = ["EnsembleModel", "load_ensemble"]


class EnsembleModel:
    """:class:`~selftrain.models.api.AcousticModel` whose posteriors are the mean of its members'."""

    def __init__(self, members: Sequence[AcousticModel], names: Sequence[str] | None = None):
        if not members:
            raise CheckpointError("an ensemble needs at least one model")
        self.members = list(members)
        self.names = [str(n) for n in names] if names is not None else [f"member{k}" for k in range(len(members))]
        first = self.members[0]
        for name, member in zip(self.names[1:], self.members[1:], strict=True):
            _check_compatible(self.names[0], first, name, member)
        self.tokenizer = first.tokenizer
        self.sample_rate = first.sample_rate
        self.frame_shift_seconds = first.frame_shift_seconds

    def log_probs(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log of the members' mean posterior ``[B, T, V]`` and the valid frame counts ``[B]``."""
        outputs = [member.log_probs(wavs, wav_lens) for member in self.members]
        frames = outputs[0][1]
        for name, (log_probs, member_frames) in zip(self.names, outputs, strict=True):
            if log_probs.shape != outputs[0][0].shape or not torch.equal(member_frames.cpu(), frames.cpu()):
                raise CheckpointError(f"ensemble member {name} gives {tuple(log_probs.shape)} outputs, "
                                      f"{self.names[0]} {tuple(outputs[0][0].shape)}: their frame rates differ")
        stacked = torch.stack([log_probs.float() for log_probs, _ in outputs])
        return torch.logsumexp(stacked, dim=0) - math.log(len(outputs)), frames

    def train(self, mode: bool = True) -> EnsembleModel:
        """Dropout on or off in every member."""
        for member in self.members:
            member.train(mode)
        return self

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """The first member's parameters (where they live tells decoding which device runs it)."""
        module = getattr(self.members[0], "model", None)
        return iter(module.parameters()) if isinstance(module, torch.nn.Module) else iter(())


def _check_compatible(first_name: str, first: AcousticModel, name: str, member: AcousticModel) -> None:
    if member.tokenizer.ctc_labels() != first.tokenizer.ctc_labels():
        raise CheckpointError(f"ensemble member {name} has another output alphabet than {first_name}")
    if member.sample_rate != first.sample_rate:
        raise CheckpointError(f"ensemble member {name} expects {member.sample_rate} Hz audio, {first_name} {first.sample_rate}")
    if not math.isclose(member.frame_shift_seconds, first.frame_shift_seconds):
        raise CheckpointError(f"ensemble member {name} has a frame shift of {member.frame_shift_seconds} s, "
                              f"{first_name} {first.frame_shift_seconds} s")


def load_ensemble(model_dirs: Sequence[str | Path], device: str | torch.device = "cpu",
                  state_cache: str | Path | None = None) -> AcousticModel:
    """Load model folders as one teacher: the model itself for one folder, an :class:`EnsembleModel`
    for several (checked to share alphabet, sample rate and frame rate). ``state_cache``: see
    :func:`~selftrain.models.load_acoustic_model`."""
    if not model_dirs:
        raise CheckpointError("no model folder given")
    models = [load_acoustic_model(d, device, state_cache) for d in model_dirs]
    if len(models) == 1:
        return models[0]
    return EnsembleModel(models, [str(d) for d in model_dirs])
