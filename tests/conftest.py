"""Shared test fixtures: small audio files made with numpy + soundfile (no speech synthesis)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def write_tone(path: Path, seconds: float = 1.0, rate: int = 16000, channels: int = 1, amplitude: float = 0.3,
               freq: float = 220.0) -> Path:
    """Write a sine tone (with a little noise so it is not perfectly periodic) as 16-bit PCM."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(int(freq))
    mono = amplitude * (np.sin(2 * np.pi * freq * t) + 0.03 * rng.standard_normal(t.size))
    data = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype(np.float32), rate, subtype="PCM_16")
    return path


@pytest.fixture
def tone(tmp_path: Path):
    """Factory fixture: ``tone("a.wav", seconds=1.0, ...)`` writes a tone under ``tmp_path``."""

    def make(name: str, **kwargs) -> Path:
        return write_tone(tmp_path / name, **kwargs)

    return make
