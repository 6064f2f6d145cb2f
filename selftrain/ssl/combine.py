"""Strategies that combine the supervised (CTC) and self-supervised losses into parameter gradients.

Each strategy owns the backward pass, because some of them reshape per-task gradients. Tasks are
named losses, normally ``ctc`` (CTC, plus distillation when enabled) and ``ssl`` (the weighted sum
of the SSL objectives); a task missing from a batch is simply left out.

- ``fixed``: ``ctc_weight * ctc + ssl_weight * ssl``.
- ``curriculum``: SSL-heavy first; the CTC weight ramps linearly from
  ``curriculum_ctc_start * ctc_weight`` to ``ctc_weight`` while the SSL weight falls from
  ``ssl_weight`` to ``curriculum_ssl_end`` over ``curriculum_steps`` steps, then both stay
  (curriculum learning, Bengio et al. 2009).
- ``gradnorm``: learned task weights that equalise the tasks' gradient norms on the last shared
  encoder layer, pulled towards their relative training rates (GradNorm, Chen et al. 2018,
  arXiv 1711.02257); weights sum to the number of tasks.
- ``pcgrad``: per-task gradients of the shared encoder; when two conflict (negative dot product) each
  is projected onto the other's normal plane before summing (PCGrad, Yu et al. 2020,
  arXiv 2001.06782).
- ``bl_just``: penalty-based bilevel gradient descent (BL-JUST, arXiv 2412.08548): the SSL loss is
  the lower level, CTC the upper level. Each step first takes a plain gradient step on the SSL loss
  (``bl_just_lower_lr``), then an optimizer step on ``ctc + gamma * ssl`` with a penalty ``gamma``
  growing linearly from ``bl_just_gamma_start`` to ``bl_just_gamma_end`` over
  ``bl_just_gamma_steps`` steps. The training loop runs the lower step (it needs its own forward).
"""

from __future__ import annotations

import random

import torch
from torch import nn

from selftrain.errors import ConfigError

__all__ = ["Combiner", "FixedWeights", "Curriculum", "GradNorm", "PCGrad", "BLJust", "build_combiner", "STRATEGIES"]

STRATEGIES = ("fixed", "curriculum", "gradnorm", "pcgrad", "bl_just")


def _ramp(start: float, end: float, step: int, steps: int) -> float:
    frac = min(1.0, max(0.0, step / max(1, steps)))
    return start + (end - start) * frac


class Combiner(nn.Module):
    """Base class. :meth:`backward` fills ``.grad`` of the parameters and returns the combined loss."""

    bilevel = False

    def __init__(self, ctc_weight: float = 1.0, ssl_weight: float = 0.3):
        super().__init__()
        self.ctc_weight = ctc_weight
        self.ssl_weight = ssl_weight
        self.last_weights: dict[str, float] = {}

    def weights(self, step: int) -> dict[str, float]:
        """Current weight of each task."""
        return {"ctc": self.ctc_weight, "ssl": self.ssl_weight}

    def backward(self, losses: dict[str, torch.Tensor], step: int, shared: list[nn.Parameter], last_shared: list[nn.Parameter]) -> torch.Tensor:
        weights = self.weights(step)
        self.last_weights = {k: weights.get(k, 1.0) for k in losses}
        total = torch.stack([self.last_weights[k] * v for k, v in losses.items()]).sum()
        total.backward()
        return total.detach()


class FixedWeights(Combiner):
    """``ctc_weight * ctc + ssl_weight * ssl``."""


class Curriculum(Combiner):
    """SSL-heavy first, CTC weight ramping up (see the module docstring)."""

    def __init__(self, ctc_weight: float, ssl_weight: float, steps: int, ctc_start: float, ssl_end: float):
        super().__init__(ctc_weight, ssl_weight)
        self.steps, self.ctc_start, self.ssl_end = steps, ctc_start, ssl_end

    def weights(self, step: int) -> dict[str, float]:
        return {
            "ctc": _ramp(self.ctc_start * self.ctc_weight, self.ctc_weight, step, self.steps),
            "ssl": _ramp(self.ssl_weight, self.ssl_end, step, self.steps),
        }


def _grad_norm(loss: torch.Tensor, params: list[nn.Parameter]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    squares = [(g.float() ** 2).sum() for g in grads if g is not None]
    return torch.sqrt(torch.stack(squares).sum() + 1e-12) if squares else torch.tensor(1e-6)


class GradNorm(Combiner):
    """GradNorm task weights (state: ``task_weights``, ``initial_losses`` buffers, checkpointed)."""

    TASKS = ("ctc", "ssl")
    task_weights: torch.Tensor
    initial_losses: torch.Tensor

    def __init__(self, alpha: float = 1.5, lr: float = 0.025):
        super().__init__()
        self.alpha, self.lr = alpha, lr
        self.register_buffer("task_weights", torch.ones(len(self.TASKS)))
        self.register_buffer("initial_losses", torch.zeros(len(self.TASKS)))

    def weights(self, step: int) -> dict[str, float]:
        return {t: float(w) for t, w in zip(self.TASKS, self.task_weights, strict=True)}

    def backward(self, losses, step, shared, last_shared):
        present = [i for i, t in enumerate(self.TASKS) if t in losses]
        if len(present) == 2:
            self._update_weights([losses[t] for t in self.TASKS], last_shared)
        return super().backward(losses, step, shared, last_shared)

    @torch.no_grad()
    def _update_weights(self, task_losses: list[torch.Tensor], last_shared: list[nn.Parameter]) -> None:
        with torch.enable_grad():
            norms = torch.stack([_grad_norm(loss, last_shared) for loss in task_losses])
        values = torch.stack([loss.detach().float() for loss in task_losses])
        if bool((self.initial_losses == 0).any()):
            self.initial_losses.copy_(values.clamp(min=1e-8))
        ratios = values / self.initial_losses
        relative = ratios / ratios.mean()
        weighted = self.task_weights * norms
        target = weighted.mean() * relative**self.alpha
        # d|w_i g_i - target_i| / d w_i = sign(.) * g_i  (the target is held constant, as in the paper)
        self.task_weights -= self.lr * torch.sign(weighted - target) * norms / norms.mean().clamp(min=1e-12)
        self.task_weights.clamp_(min=1e-3)
        self.task_weights *= len(self.TASKS) / self.task_weights.sum()


class PCGrad(Combiner):
    """Projects conflicting per-task gradients of the shared parameters (PCGrad)."""

    def backward(self, losses, step, shared, last_shared):
        weights = self.weights(step)
        self.last_weights = {k: weights.get(k, 1.0) for k in losses}
        weighted = {k: self.last_weights[k] * v for k, v in losses.items()}
        total = torch.stack(list(weighted.values())).sum()
        if len(weighted) < 2:
            total.backward()
            return total.detach()
        shared_ids = {id(p) for p in shared}
        flat = []
        for loss in weighted.values():
            grads = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
            flat.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, shared, strict=True)]))
        projected = []
        for i, g in enumerate(flat):
            g = g.clone()
            others = [j for j in range(len(flat)) if j != i]
            random.shuffle(others)
            for j in others:
                dot = torch.dot(g, flat[j])
                if dot < 0:
                    g -= dot / flat[j].pow(2).sum().clamp(min=1e-12) * flat[j]
            projected.append(g)
        combined = torch.stack(projected).sum(dim=0)
        # Non-shared parameters (heads) get the ordinary gradient of the weighted sum.
        others = [p for p in _graph_params(total) if id(p) not in shared_ids]
        if others:
            for p, g in zip(others, torch.autograd.grad(total, others, retain_graph=True, allow_unused=True), strict=True):
                if g is not None:
                    p.grad = g if p.grad is None else p.grad + g
        offset = 0
        for p in shared:
            n = p.numel()
            g = combined[offset : offset + n].view_as(p)
            p.grad = g.clone() if p.grad is None else p.grad + g
            offset += n
        return total.detach()


def _graph_params(total: torch.Tensor) -> list[nn.Parameter]:
    """Leaf parameters that ``total`` depends on (walks the autograd graph once)."""
    seen, found, stack = set(), [], [total.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        variable = getattr(fn, "variable", None)
        if variable is not None and variable.requires_grad:
            found.append(variable)
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return found


class BLJust(Combiner):
    """Upper-level step of BL-JUST: ``ctc + gamma(step) * ssl``; :attr:`bilevel` asks for the lower step."""

    bilevel = True

    def __init__(self, gamma_start: float, gamma_end: float, gamma_steps: int, lower_lr: float):
        super().__init__()
        self.gamma_start, self.gamma_end, self.gamma_steps, self.lower_lr = gamma_start, gamma_end, gamma_steps, lower_lr

    def weights(self, step: int) -> dict[str, float]:
        return {"ctc": 1.0, "ssl": _ramp(self.gamma_start, self.gamma_end, step, self.gamma_steps)}

    @torch.no_grad()
    def lower_step(self, ssl_loss: torch.Tensor, params: list[nn.Parameter]) -> None:
        """One plain gradient step on the SSL (lower-level) loss: ``theta -= lower_lr * grad``."""
        params = [p for p in params if p.requires_grad]
        with torch.enable_grad():
            grads = torch.autograd.grad(ssl_loss, params, allow_unused=True)
        for p, g in zip(params, grads, strict=True):
            if g is not None:
                p.sub_(self.lower_lr * g)


def build_combiner(config) -> Combiner:
    """The strategy named by ``config.strategy`` (a :class:`~selftrain.train.config.CombineConfig`)."""
    s = config.strategy
    if s == "fixed":
        return FixedWeights(config.ctc_weight, config.ssl_weight)
    if s == "curriculum":
        return Curriculum(config.ctc_weight, config.ssl_weight, config.curriculum_steps, config.curriculum_ctc_start, config.curriculum_ssl_end)
    if s == "gradnorm":
        return GradNorm(config.gradnorm_alpha, config.gradnorm_lr)
    if s == "pcgrad":
        return PCGrad(config.ctc_weight, config.ssl_weight)
    if s == "bl_just":
        return BLJust(config.bl_just_gamma_start, config.bl_just_gamma_end, config.bl_just_gamma_steps, config.bl_just_lower_lr)
    raise ConfigError(f"combine.strategy must be one of {STRATEGIES}, not {s!r}")
