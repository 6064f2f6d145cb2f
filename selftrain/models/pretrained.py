"""Initialising a model from a local pretrained checkpoint (nothing is ever downloaded).

Accepted: a selftrain model folder (``model.pt`` + ``model.json``), a SpeechBrain checkpoint
folder (``CKPT+...`` with ``trainer.ckpt``/``model.ckpt``/...) or a single state-dict file
(``.pt``/``.ckpt``/``.bin``). Files are read with ``torch.load(weights_only=True)``. Tensor names
are matched after removing common wrapper prefixes (``module.``, ``model.``, ``trainer.model.``);
every front-end, subsampling and encoder tensor whose name and shape match is copied, the rest
(e.g. a CTC head for another vocabulary) is skipped and counted. ``with_head=True`` also copies the
CTC output layer: a student that starts from its teacher with the same tokenizer keeps a working
output layer instead of relearning it from random weights.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import torch

from selftrain.errors import CheckpointError

__all__ = ["LoadReport", "load_pretrained_encoder", "read_state_dict"]

PREFIXES = ("module.", "trainer.", "model.", "encoder_model.")
COPIED = ("norm.", "subsampler.", "encoder.", "mask_embedding")
HEAD = ("ctc_head.",)


@dataclass
class LoadReport:
    """How many tensors were copied and which were not (name -> why)."""

    loaded: int = 0
    skipped: int = 0
    reasons: dict[str, str] = field(default_factory=dict)


def _strip(name: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix) :], True
    return name


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file or folder (see the module docstring), weights only."""
    path = Path(path)
    if path.is_dir():
        candidates = [path / n for n in ("model.pt", "trainer.ckpt", "model.ckpt", "encoder.ckpt", "wav2vec2.ckpt")]
        found = [c for c in candidates if c.exists()]
        if not found:
            raise CheckpointError(f"{path}: no model.pt or *.ckpt state dict found")
        path = found[0]
    if not path.exists():
        raise CheckpointError(f"pretrained checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"refusing {path}: it holds more than tensors, which could run code ({exc})") from exc
    except (OSError, RuntimeError, ValueError, EOFError) as exc:
        raise CheckpointError(f"cannot load {path} as a weights-only state dict: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return state


def load_pretrained_encoder(model, path: str | Path, with_head: bool = False) -> LoadReport:
    """Copy matching front-end/encoder tensors (and the CTC head with ``with_head``) from ``path``
    into ``model`` (a CTCModel)."""
    source = {_strip(k): v for k, v in read_state_dict(path).items()}
    target = model.state_dict()
    copied = COPIED + HEAD if with_head else COPIED
    report = LoadReport()
    updates = {}
    for name, tensor in source.items():
        if not name.startswith(copied):
            report.skipped += 1
            report.reasons[name] = "not part of the encoder"
        elif name not in target:
            report.skipped += 1
            report.reasons[name] = "no such tensor in this model"
        elif target[name].shape != tensor.shape:
            report.skipped += 1
            report.reasons[name] = f"shape {tuple(tensor.shape)} != {tuple(target[name].shape)}"
        else:
            updates[name] = tensor
    if not updates:
        raise CheckpointError(f"{path}: no tensor matches this model's encoder (wrong architecture or preset?)")
    model.load_state_dict(updates, strict=False)
    report.loaded = len(updates)
    return report
