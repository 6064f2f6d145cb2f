"""LoRA adapters on the encoder's linear layers, for fine-tuning a pretrained encoder cheaply.

Uses SpeechBrain's :class:`speechbrain.nnet.adapters.LoRA` (the wrapped layer is frozen, the
up-projection starts at zero so the adapted model starts equal to the pretrained one). With
adapters on, the encoder's own weights are frozen; the front-end, the CTC head and the SSL heads
keep training. :func:`merge_adapters` folds the low-rank updates back into plain ``nn.Linear``
layers so an exported model needs no adapter code.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from selftrain.errors import ConfigError

__all__ = ["add_adapters", "merge_adapters"]


def add_adapters(model, rank: int, alpha: float = 1.0) -> int:
    """Wrap every ``nn.Linear`` of ``model.encoder`` with LoRA of ``rank``; freeze the rest of the
    encoder. Returns the number of adapted layers (:class:`ConfigError` when there is none)."""
    from speechbrain.nnet.adapters import LoRA, replace_module

    # A Whisper encoder adapts its pretrained blocks only; its BiLSTM head, new, trains in full.
    target = model.encoder.blocks if model.config.encoder == "whisper" else model.encoder
    # nn.MultiheadAttention reads its out_proj.weight directly, so that layer cannot be wrapped.
    names = [n for n, m in target.named_modules()
             if isinstance(m, nn.Linear) and not isinstance(m, nn.modules.linear.NonDynamicallyQuantizableLinear)]
    if not names:
        raise ConfigError(f"model.adapter_rank: the {model.config.encoder} encoder has no linear layers to adapt")
    for p in target.parameters():
        p.requires_grad_(False)
    if model.config.encoder == "whisper":
        model.encoder.ln_post.requires_grad_(False)
    for name in names:
        replace_module(target, name, LoRA(target.get_submodule(name), rank=rank, alpha=alpha))
    return len(names)


@torch.no_grad()
def merge_adapters(model):
    """A copy of ``model`` with each LoRA folded into its linear layer (``W + s * up @ down``)."""
    from speechbrain.nnet.adapters import LoRA, replace_module

    merged = copy.deepcopy(model)
    lora_names = [n for n, m in merged.encoder.named_modules() if isinstance(m, LoRA)]
    for name in lora_names:
        lora = merged.encoder.get_submodule(name)
        base = lora.pretrained_module
        delta = lora.adapter_up_proj.weight @ lora.adapter_down_proj.weight
        base.weight += lora.scaling * delta
        replace_module(merged.encoder, name, base)
    for p in merged.parameters():
        p.requires_grad_(True)
    if merged.config.encoder == "whisper":
        merged.subsampler.requires_grad_(False)
    merged.config = copy.deepcopy(model.config)
    merged.config.adapter_rank = 0
    return merged
