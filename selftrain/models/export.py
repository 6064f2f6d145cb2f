"""Model folders: write a trained :class:`CTCModel` for inference, and load it back safely.

A model folder holds ``model.pt`` (a plain state dict, loaded with ``torch.load(weights_only=True)``
so no pickled code ever runs), ``model.json`` (architecture, vocabulary size, sample rate, frame
shift) and ``tokenizer.json`` (plus the SentencePiece model when there is one).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from selftrain.data.tokenizer import Tokenizer, load_tokenizer
from selftrain.errors import CheckpointError
from selftrain.io import atomic_write, atomic_write_json
from selftrain.models.acoustic import CTCModel
from selftrain.models.config import ModelConfig

__all__ = ["export_model", "load_acoustic_model", "load_ctc_model", "InferenceModel", "MODEL_FORMAT"]

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
    if meta.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{path}: unsupported model format {meta.get('format')!r}")
    return meta


def load_ctc_model(model_dir: str | Path, device: str | torch.device = "cpu") -> tuple[CTCModel, Tokenizer, dict]:
    """Rebuild the :class:`CTCModel` of a model folder (eval mode) with its tokenizer and metadata."""
    model_dir = Path(model_dir)
    meta = _read_meta(model_dir)
    tokenizer = load_tokenizer(model_dir / "tokenizer.json")
    try:
        state = torch.load(model_dir / "model.pt", map_location=device, weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"cannot load {model_dir / 'model.pt'}: {exc}") from exc
    model = CTCModel(ModelConfig.from_dict(meta["model"]), int(meta["vocab_size"]))
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


def load_acoustic_model(model_dir: str | Path, device: str | torch.device = "cpu") -> InferenceModel:
    """Load a model folder as an :class:`~selftrain.models.api.AcousticModel` (in eval mode).

    >>> model = load_acoustic_model("run/model")            # doctest: +SKIP
    >>> log_probs, frames = model.log_probs(wavs, wav_lens)  # doctest: +SKIP
    """
    model, tokenizer, _ = load_ctc_model(model_dir, device)
    return InferenceModel(model, tokenizer, device)
