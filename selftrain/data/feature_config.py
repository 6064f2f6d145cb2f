"""The acoustic front-end's settings, apart from the front-end (:mod:`selftrain.data.features`) so
that configs holding them import without torch."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FeatureConfig"]


@dataclass
class FeatureConfig:
    """Front-end settings.

    ``norm``: ``"global"`` (corpus statistics, estimated before training) or ``"utterance"``
    (per-utterance mean and variance, no state).
    """

    sample_rate: int = 16000
    n_mels: int = 80
    win_length_ms: float = 25.0
    hop_length_ms: float = 10.0
    norm: str = "global"
