"""Model folders: write a trained :class:`CTCModel` for inference, and load it back safely.

A model folder holds ``model.pt`` (a plain state dict, loaded with ``torch.load(weights_only=True)``
so no pickled code ever runs), ``model.json`` (architecture, vocabulary size, sample rate, frame
shift) and ``tokenizer.json`` (plus the SentencePiece model when there is one).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch

from selftrain.data.tokenizer import Tokenizer, load_tokenizer
from selftrain.errors import CheckpointError, ConfigError, TextError
from selftrain.io import atomic_write, atomic_write_json
from selftrain.models.acoustic import CTCModel
from selftrain.models.config import ModelConfig

__all__ = ["export_model", "load_acoustic_model", "load_ctc_model", "load_weights", "InferenceModel", "MODEL_FORMAT"]

MODEL_FORMAT = 1


def export_model(model: CTCModel, tokenizer: Tokenizer, out_dir: str | Path, extra: dict | None = None) -> Path:
    """Write ``model.pt``, ``model.json`` and ``tokenizer.json`` into ``out_dir``; returns the folder."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    with atomic_write(out_dir / "model.pt", mode="wb") as handle:
        torch.save(state, handle)
    tokenizer.save(out_dir / "tokenizer.json")
    meta = {
        "format": MODEL_FORMAT,
        "model": model.config.to_dict(),
        "vocab_size": model.vocab_size,
        "sample_rate": model.config.features.sample_rate,
        "frame_shift_seconds": model.frame_shift_seconds,
        **(extra or {}),
    }
    atomic_write_json(out_dir / "model.json", meta)
    return out_dir


def _read_meta(model_dir: Path) -> dict:
    path = model_dir / "model.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise CheckpointError(f"{path}: unsupported model format {found!r}")
    return meta


def _build(model_dir: Path, meta: dict) -> CTCModel:
    try:
        return CTCModel(ModelConfig.from_dict(meta["model"]), int(meta["vocab_size"]))
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{model_dir / 'model.json'}: not a model description ({exc!r})") from exc


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """A state dict of tensors, read with ``torch.load(weights_only=True)``: a file holding anything
    else (pickled objects, code) is refused with :class:`CheckpointError` and nothing in it runs."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"refusing {path}: it holds more than tensors, which could run code ({exc})") from exc
    except (OSError, RuntimeError, ValueError, EOFError) as exc:
        raise CheckpointError(f"cannot load {path}: {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return state


def load_ctc_model(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[CTCModel, Tokenizer, dict]:
    """Rebuild the :class:`CTCModel` of a model folder (eval mode) with its tokenizer and metadata.

    Raises :class:`CheckpointError` naming the file when the folder is missing, incomplete, corrupt
    or unsafe (``model.pt`` must hold tensors only: see :func:`load_weights`).
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise CheckpointError(f"model folder not found: {model_dir}")
    meta = _read_meta(model_dir)
    try:
        tokenizer = load_tokenizer(model_dir / "tokenizer.json")
    except TextError as exc:
        raise CheckpointError(f"{model_dir}: {exc}") from exc
    state = load_weights(model_dir / "model.pt", device)
    model = _build(model_dir, meta)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{model_dir}: weights do not match model.json ({exc})") from exc
    if tokenizer.vocab_size != model.vocab_size:
        raise CheckpointError(f"{model_dir}: tokenizer has {tokenizer.vocab_size} tokens, model {model.vocab_size}")
    return model.to(device).eval(), tokenizer, meta


class InferenceModel:
    """:class:`~selftrain.models.api.AcousticModel` over a :class:`CTCModel`."""

    def __init__(self, model: CTCModel, tokenizer: Tokenizer, device: str | torch.device = "cpu"):
        self.model = model
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.sample_rate = model.config.features.sample_rate
        self.frame_shift_seconds = model.frame_shift_seconds

    def log_probs(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC log-posteriors ``[B,T,V]`` and valid frame counts ``[B]`` (gradients off)."""
        with torch.no_grad():
            return self.model(wavs.to(self.device), wav_lens.to(self.device))

    def train(self, mode: bool = True) -> InferenceModel:
        """Dropout on (``True``) or off; the front-end statistics never change."""
        self.model.train(mode)
        return self


def load_acoustic_model(model_dir: str | Path, device: str | torch.device = "cpu",
                        state_cache: str | Path | None = None) -> InferenceModel:
    """Load a model folder as an :class:`~selftrain.models.api.AcousticModel` (in eval mode).

    ``state_cache``: a folder for the on-disk cache of a pretrained encoder's frozen bottom
    (:mod:`selftrain.models.state_cache`); models that have none ignore it.

    >>> model = load_acoustic_model("run/model")            # doctest: +SKIP
    >>> log_probs, frames = model.log_probs(wavs, wav_lens)  # doctest: +SKIP
    """
    model, tokenizer, _ = load_ctc_model(model_dir, device)
    if state_cache and model.frozen_front:
        from selftrain.models.state_cache import FrozenStateCache

        model.state_cache = FrozenStateCache(state_cache, model)
    return InferenceModel(model, tokenizer, device)
