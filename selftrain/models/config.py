"""Model architecture settings and named presets.

Every number lives in :class:`ModelConfig`; a preset is a named set of overrides. ``cpu-small`` is
the BiLSTM because, trained alike on 2 shared CPU cores, it ended level with the Conformer at a
lower cost per step and slowed down less when other processes shared the cores (a comparison made
before results files were kept; no file holds its figures). ``cpu-small-conformer`` stays
available. ``cpu-whisper-tiny`` fine-tunes a pretrained encoder instead of training from scratch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

from selftrain.data.feature_config import FeatureConfig
from selftrain.errors import ConfigError

__all__ = ["ModelConfig", "PRESETS", "WHISPER_SIZES", "model_preset", "ENCODERS", "update_dataclass"]

ENCODERS = ("lstm", "conformer", "transformer", "whisper")


@dataclass
class ModelConfig:
    """Acoustic model: fbank front-end, 4x conv subsampling, an encoder, a CTC head.

    ``encoder``: ``"lstm"`` (bidirectional LSTM, CRDNN-like with the conv front-end),
    ``"conformer"`` or ``"transformer"`` (SpeechBrain lobes), or ``"whisper"`` (a pretrained Whisper
    encoder, :mod:`selftrain.models.whisper`). ``d_model`` is the width after subsampling (and of the
    attention layers); ``lstm_hidden`` the LSTM size per direction.

    Whisper: ``d_model``, ``num_layers``, ``num_heads`` and ``d_ffn`` are the checkpoint's (checked
    when its weights load); the front-end is Whisper's own log-mel (``features`` keeps only the
    sample rate and mel count) and frames are 20 ms. ``pretrained``: a local Whisper checkpoint
    (CTranslate2 or Hugging Face folder, openai ``.pt``; empty: the bundled tiny.en), read when
    training starts from scratch. ``frozen_layers``: Whisper blocks kept frozen, with the
    convolutional front-end (always frozen), and cached on disk; the blocks above fine-tune at
    ``optim.pretrained_lr_scale`` times the learning rate, or through LoRA adapters
    (``adapter_rank``). ``head_layers``: BiLSTM layers (``lstm_hidden`` units) between the encoder
    and the CTC output; 0: a linear CTC head.
    """

    encoder: str = "lstm"
    d_model: int = 144
    num_layers: int = 3
    num_heads: int = 4
    d_ffn: int = 576
    conv_kernel: int = 15
    lstm_hidden: int = 192
    subsample_channels: int = 32
    dropout: float = 0.1
    features: FeatureConfig = field(default_factory=FeatureConfig)
    adapter_rank: int = 0  # >0: LoRA-style adapters on the encoder's linear layers (see models.adapters)
    pretrained: str = ""  # whisper: local checkpoint of the encoder; empty: the bundled Whisper tiny.en
    frozen_layers: int = 0  # whisper: blocks frozen (with the conv front-end) and cached
    head_layers: int = 0  # whisper: BiLSTM layers on top of the encoder (0: linear CTC head)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        config = cls()
        update_dataclass(config, data, "model")
        return config


# Whisper encoders' sizes (Radford et al. 2022, table 1): width, blocks, heads; the MLP is 4x the width.
WHISPER_SIZES: dict[str, dict[str, int]] = {
    name: {"d_model": width, "num_layers": layers, "num_heads": heads, "d_ffn": 4 * width}
    for name, (width, layers, heads) in {"tiny": (384, 4, 6), "base": (512, 6, 8), "small": (768, 12, 12),
                                         "medium": (1024, 24, 16)}.items()
}

PRESETS: dict[str, dict[str, Any]] = {
    # 2.4M parameters (30 tokens): a teacher trains on the synthetic corpus in minutes on 2 CPU cores
    # (docs/experiments/2026-12-02-self-training-benchmark.md, wall time).
    "cpu-small": {"encoder": "lstm", "d_model": 144, "num_layers": 3, "lstm_hidden": 192, "subsample_channels": 32},
    # 2.1M parameters, for comparison with cpu-small.
    "cpu-small-conformer": {"encoder": "conformer", "d_model": 144, "num_layers": 4, "num_heads": 4, "d_ffn": 576,
                            "conv_kernel": 15, "subsample_channels": 32},
    # 26k parameters: for tests and smoke runs only (trains in seconds, learns little).
    "tiny": {"encoder": "lstm", "d_model": 32, "num_layers": 1, "lstm_hidden": 32, "subsample_channels": 8, "dropout": 0.0},
    # 30.7M parameters: a GPU preset.
    "gpu-base": {"encoder": "conformer", "d_model": 320, "num_layers": 12, "num_heads": 4, "d_ffn": 1280,
                 "conv_kernel": 31, "subsample_channels": 128},
    # Whisper tiny.en (bundled, 7.6M parameters): the bottom 2 of its 4 blocks frozen and cached, the
    # top 2 fine-tuned under a linear CTC head (a BiLSTM head stayed on CTC's blank plateau far longer:
    # docs/experiments/2026-12-06-pretrained-encoder.md): fits 2 CPU cores.
    "cpu-whisper-tiny": {**WHISPER_SIZES["tiny"], "encoder": "whisper", "frozen_layers": 2, "head_layers": 0,
                         "dropout": 0.1},
    # GPU presets: point ``model.pretrained`` at a local whisper-base / whisper-small checkpoint.
    "gpu-whisper-base": {**WHISPER_SIZES["base"], "encoder": "whisper", "frozen_layers": 2, "head_layers": 0},
    "gpu-whisper-small": {**WHISPER_SIZES["small"], "encoder": "whisper", "frozen_layers": 4, "head_layers": 0},
}


def model_preset(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of a named preset; raises :class:`ConfigError` for unknown names."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return ModelConfig.from_dict(PRESETS[name])


def update_dataclass(obj: Any, values: dict[str, Any], where: str) -> None:
    """Set nested dataclass fields from a dict; unknown keys raise :class:`ConfigError`."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in fields(obj)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown config key {where}.{key} (known: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if is_dataclass(current):
            update_dataclass(current, value, f"{where}.{key}")
            continue
        optional = _optional_scalar(type(obj), key)
        if optional is not None and isinstance(value, str) and value.strip().lower() in ("null", "none"):
            value = None  # ``--set key=null`` turns an optional setting off
        setattr(obj, key, _coerce(value, current, f"{where}.{key}", optional))


def _optional_scalar(cls: type, name: str) -> type | None:
    """``X`` when the field is annotated ``X | None`` with a scalar ``X`` (so a value given as text,
    as ``--set`` gives it, can be converted even while the field holds None), else None."""
    import types
    import typing

    try:
        hint = typing.get_type_hints(cls).get(name)
    except (NameError, TypeError):  # an annotation this module cannot resolve: leave the value as given
        return None
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return None
    members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if len(members) == 1 and members[0] in (bool, int, float, str) and len(typing.get_args(hint)) == 2:
        return members[0]
    return None


def _coerce(value: Any, current: Any, where: str, optional: type | None = None) -> Any:
    """Convert ``value`` to the type of the field's current value (strings from ``--set`` included);
    a field that holds None converts to ``optional``, the scalar type of its ``X | None`` annotation."""
    kind = type(current) if current is not None else optional
    if value is None or kind is None:
        return value
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("true", "1", "yes"):
                    return True
                if value.lower() in ("false", "0", "no"):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind in (int, float):
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
            if kind is int:
                if number != int(number):
                    raise ValueError(value)
                return int(number)
            return number
        if kind is str:
            return str(value)
        if kind is list:
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return list(value)
        if kind is dict:
            return dict(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot use {value!r} as {kind.__name__}") from exc
    return value
