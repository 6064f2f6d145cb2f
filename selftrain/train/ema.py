"""Exponential moving average of the student's weights (a mean teacher), accumulated in fp32, and a
frozen snapshot of a model's weights taken at a chosen step (the labeling teacher at its best)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMATeacher", "WeightSnapshot"]


class EMATeacher(nn.Module):
    """Keeps ``shadow = decay * shadow + (1 - decay) * weights`` after every optimizer step.

    The shadow model is a frozen fp32 copy (buffers such as feature statistics are copied as is).
    Being an ``nn.Module``, it is checkpointed like any other recoverable.
    """

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.shadow = _frozen_copy(model)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for shadow, param in zip(self.shadow.parameters(), model.parameters(), strict=True):
            shadow.mul_(self.decay).add_(param.detach().float(), alpha=1.0 - self.decay)
        for shadow_buf, buf in zip(self.shadow.buffers(), model.buffers(), strict=True):
            shadow_buf.copy_(buf)

    def reset(self, model: nn.Module) -> None:
        """Start over from ``model``'s weights (e.g. when a teacher starts labeling after a warm-up)."""
        _copy_weights(self.shadow, model)


def _frozen_copy(model: nn.Module) -> nn.Module:
    copied = copy.deepcopy(model).float().eval()
    for p in copied.parameters():
        p.requires_grad_(False)
    return copied


@torch.no_grad()
def _copy_weights(target: nn.Module, source: nn.Module) -> None:
    for target_param, param in zip(target.parameters(), source.parameters(), strict=True):
        target_param.copy_(param.detach().float())
    for target_buf, buf in zip(target.buffers(), source.buffers(), strict=True):
        target_buf.copy_(buf)


class WeightSnapshot(nn.Module):
    """A frozen fp32 copy of ``model``'s weights, retaken by :meth:`take` (with the step it was taken
    at; -1 until then). An ``nn.Module``, so it is checkpointed like any other recoverable."""

    step: torch.Tensor  # a registered buffer, so it follows the weights into checkpoints

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = _frozen_copy(model)
        self.register_buffer("step", torch.tensor(-1, dtype=torch.long))

    def take(self, model: nn.Module, step: int) -> None:
        _copy_weights(self.model, model)
        self.step.fill_(step)

    @property
    def taken(self) -> bool:
        return int(self.step) >= 0
