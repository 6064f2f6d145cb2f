"""Acoustic conditions: sox for tempo/pitch/reverb/band-pass/GSM and resampling, numpy for noise.

Signal-domain effects (tempo, pitch, reverb, telephone band, GSM codec, resampling) go through the
sox binary, the standard tool for them. Noise is mixed in numpy so its level is exact: the noise is
scaled to the requested SNR, defined as the ratio of mean speech power to mean noise power over the
whole clip. sox runs in repeatable mode (``-R``) without dither (``-D``) and writes float samples;
quantisation to 16 bits happens once, in numpy, so the output is bit-exact for a seed.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.fft import next_fast_len

from selftrain.synth.errors import SynthError

__all__ = [
    "Conditions",
    "sox_chain",
    "apply_sox",
    "colored_noise",
    "babble_noise",
    "mix_at_snr",
    "set_level",
    "to_pcm16",
    "snr_db",
]

TELEPHONE_BAND = (300, 3400)
_NOISE_EXPONENT = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power spectrum ~ 1 / f**exponent


@dataclass(frozen=True)
class Conditions:
    """The effects drawn for one utterance (``noise`` is ``None`` when clean)."""

    tempo: float = 1.0
    pitch_cents: float = 0.0
    level_dbfs: float = -25.0
    noise: str | None = None
    snr_db: float | None = None
    reverb: float | None = None
    telephone: bool = False
    gsm: bool = False

    @property
    def degraded(self) -> bool:
        """True when anything beyond speed, pitch and level was applied."""
        return bool(self.noise or self.reverb or self.telephone or self.gsm)

    def describe(self) -> str:
        """Compact text for the manifest's ``effects`` column, e.g. ``tempo=1.04,pitch=-20,pink@12.5dB``."""
        parts = [f"tempo={self.tempo:.3f}", f"pitch={self.pitch_cents:+.0f}"]
        if self.reverb:
            parts.append(f"reverb={self.reverb:.0f}")
        if self.telephone:
            parts.append("telephone")
        if self.gsm:
            parts.append("gsm")
        if self.noise:
            parts.append(f"{self.noise}@{self.snr_db:.1f}dB")
        return ",".join(parts)


def sox_chain(conditions: Conditions, sample_rate: int) -> list[str]:
    """The sox effect arguments for ``conditions`` ending at ``sample_rate`` mono (GSM is separate)."""
    chain = ["channels", "1"]
    if abs(conditions.tempo - 1.0) > 1e-4:
        chain += ["tempo", "-s", f"{conditions.tempo:.4f}"]
    if abs(conditions.pitch_cents) >= 1.0:
        chain += ["pitch", f"{conditions.pitch_cents:.0f}"]
    if conditions.reverb:
        chain += ["reverb", f"{conditions.reverb:.0f}"]
    if conditions.telephone:
        chain += ["sinc", f"{TELEPHONE_BAND[0]}-{TELEPHONE_BAND[1]}"]
    chain += ["rate", "-h", str(sample_rate), "norm", "-3"]
    return chain


def _sox(args: Sequence[str]) -> None:
    try:
        result = subprocess.run(["sox", "-R", "-D", *args], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SynthError(f"sox failed: {exc}") from exc
    if result.returncode != 0:
        raise SynthError(f"sox exited with {result.returncode}: {result.stderr.strip()[-300:]}")


def apply_sox(raw: str | Path, conditions: Conditions, sample_rate: int) -> np.ndarray:
    """Run ``raw`` through the sox chain (and a GSM round trip when asked); return float32 samples."""
    with tempfile.TemporaryDirectory(prefix="selftrain-sox-") as tmp:
        out = Path(tmp, "out.wav")
        _sox([str(raw), "-e", "floating-point", "-b", "32", str(out), *sox_chain(conditions, sample_rate)])
        if conditions.gsm:
            gsm = Path(tmp, "out.gsm")
            _sox([str(out), "-r", "8000", "-c", "1", "-e", "gsm-full-rate", str(gsm)])
            _sox([str(gsm), "-e", "floating-point", "-b", "32", str(out), "rate", "-h", str(sample_rate)])
        samples, rate = sf.read(out, dtype="float32", always_2d=False)
    if rate != sample_rate or samples.ndim != 1 or samples.size == 0:
        raise SynthError(f"sox produced unexpected audio ({rate} Hz, shape {samples.shape}) from {raw}")
    return samples


def colored_noise(kind: str, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink or brown Gaussian noise (unit variance) by spectral shaping of white noise.

    Written with numpy's FFT: a few lines, and no extra dependency for three spectra.
    """
    if kind not in _NOISE_EXPONENT:
        raise SynthError(f"unknown noise kind {kind!r} (known: {sorted(_NOISE_EXPONENT)}, babble)")
    exponent = _NOISE_EXPONENT[kind]
    if not exponent:
        white = rng.standard_normal(num_samples)
    else:
        size = next_fast_len(num_samples, real=True)  # FFTs of awkward lengths are slow
        spectrum = np.fft.rfft(rng.standard_normal(size))
        freqs = np.fft.rfftfreq(size)
        freqs[0] = freqs[1] if size > 1 else 1.0
        white = np.fft.irfft(spectrum / freqs ** (exponent / 2), n=size)[:num_samples]
    white -= white.mean()
    return (white / (white.std() + 1e-12)).astype(np.float32)


def babble_noise(
    clips: Sequence[np.ndarray], num_samples: int, talkers: int, rng: np.random.Generator
) -> np.ndarray:
    """Sum ``talkers`` clips (each looped from a random offset, equal power) into unit-variance babble."""
    if not clips:
        raise SynthError("no babble clips to make babble from")
    chosen = rng.choice(len(clips), size=min(talkers, len(clips)), replace=False)
    total = np.zeros(num_samples, dtype=np.float64)
    for index in chosen:
        clip = clips[int(index)]
        start = int(rng.integers(0, clip.size))
        looped = np.resize(np.roll(clip, -start), num_samples)
        total += looped / (looped.std() + 1e-12)
    total -= total.mean()
    return (total / (total.std() + 1e-12)).astype(np.float32)


def _power(signal: np.ndarray) -> float:
    return float(np.mean(np.square(signal, dtype=np.float64)))


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """Speech-to-noise power ratio in dB over the whole clip."""
    return 10.0 * np.log10(_power(speech) / max(_power(noise), 1e-20))


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, target_snr_db: float) -> np.ndarray:
    """Return ``speech + g * noise`` with ``g`` chosen so the mix has exactly ``target_snr_db``."""
    if speech.shape != noise.shape:
        raise SynthError(f"speech and noise differ in shape: {speech.shape} vs {noise.shape}")
    noise_power = _power(noise)
    if noise_power <= 0:
        raise SynthError("noise is silent")
    gain = np.sqrt(_power(speech) / (noise_power * 10.0 ** (target_snr_db / 10.0)))
    return (speech + gain * noise).astype(np.float32)


def set_level(signal: np.ndarray, level_dbfs: float) -> np.ndarray:
    """Scale ``signal`` to an RMS level of ``level_dbfs`` (dB relative to full scale)."""
    rms = np.sqrt(_power(signal))
    if rms <= 0:
        raise SynthError("cannot set the level of a silent signal")
    return (signal * (10.0 ** (level_dbfs / 20.0) / rms)).astype(np.float32)


def to_pcm16(signal: np.ndarray, peak: float = 0.98) -> np.ndarray:
    """Quantise to int16, scaling the whole clip down first if any sample would exceed ``peak``."""
    top = float(np.max(np.abs(signal))) if signal.size else 0.0
    if top > peak:
        signal = signal * (peak / top)
    return np.round(signal * 32767.0).astype(np.int16)
