"""Exponential moving average of the student's weights (a mean teacher), accumulated in fp32."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["EMATeacher"]


class EMATeacher(nn.Module):
    """Keeps ``shadow = decay * shadow + (1 - decay) * weights`` after every optimizer step.

    The shadow model is a frozen fp32 copy (buffers such as feature statistics are copied as is).
    Being an ``nn.Module``, it is checkpointed like any other recoverable.
    """

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        self.decay = decay
        self.shadow = copy.deepcopy(model).float().eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for shadow, param in zip(self.shadow.parameters(), model.parameters(), strict=True):
            shadow.mul_(self.decay).add_(param.detach().float(), alpha=1.0 - self.decay)
        for shadow_buf, buf in zip(self.shadow.buffers(), model.buffers(), strict=True):
            shadow_buf.copy_(buf)

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Start over from ``model``'s weights (e.g. when a teacher starts labeling after a warm-up)."""
        for shadow, param in zip(self.shadow.parameters(), model.parameters(), strict=True):
            shadow.copy_(param.detach().float())
        for shadow_buf, buf in zip(self.shadow.buffers(), model.buffers(), strict=True):
            shadow_buf.copy_(buf)
