"""Tone "speech" for training tests: one tone per character (a = 300 Hz, b = 600 Hz, space = silence),
0.2 s each, with a little noise, and SpeechBrain CSV manifests of such clips."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

FREQUENCIES = {"a": 300.0, "b": 600.0, " ": 0.0}
RATE = 16000
CHAR_SAMPLES = 3200  # 0.2 s a character
EDGE_SAMPLES = 1600  # 0.1 s of silence before and after


def tone_clip(path: Path, text: str, seed: int) -> str:
    """Write ``text`` as tones to ``path`` (noise drawn from ``seed``); returns the path as text."""
    rng = np.random.default_rng(seed)
    parts = [np.sin(2 * np.pi * FREQUENCIES[c] * np.arange(CHAR_SAMPLES) / RATE) * 0.3 for c in text]
    data = np.concatenate([np.zeros(EDGE_SAMPLES), *parts, np.zeros(EDGE_SAMPLES)])
    data += 0.01 * rng.standard_normal(data.shape[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype(np.float32), RATE)
    return str(path)


def tone_manifest(path: Path, rows: list[tuple[str, str, str]], extra: dict | None = None) -> str:
    """A SpeechBrain CSV of ``(id, wav, text)`` rows, with ``extra`` columns of the same value in every row."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "duration", "wav", "spk_id", "wrd", *(extra or {})])
        writer.writerows([utt, "1.0", wav, "s", text, *(extra or {}).values()] for utt, wav, text in rows)
    return str(path)


def tiny_config(values: dict, **overrides):
    """The ``tiny`` preset's TrainConfig from ``values``, with ``overrides`` given as dotted keys
    (``**{"optim.lr": 1e-3}``) set over them."""
    from selftrain.train import load_train_config

    for key, value in overrides.items():
        node = values
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return load_train_config("tiny", overrides=values)
