"""Noise generation and SNR mixing of the synthetic corpus (numpy only, no synthesis)."""

from __future__ import annotations

import numpy as np
import pytest

from selftrain.synth.effects import (
    Conditions,
    babble_noise,
    colored_noise,
    mix_at_snr,
    set_level,
    snr_db,
    sox_chain,
    to_pcm16,
)
from selftrain.synth.errors import SynthError

RATE = 16000


def _speech_like(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A voiced-sounding test signal: harmonics under a syllable-rate envelope, with pauses."""
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(seed)
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 10))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (rng.random() + 0.5)
    return (0.1 * voiced * envelope).astype(np.float32)


@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
@pytest.mark.parametrize("target", [5.0, 12.5, 25.0])
def test_mix_at_snr_hits_the_target_within_half_a_db(kind, target):
    speech = _speech_like()
    noise = colored_noise(kind, speech.size, np.random.default_rng(1))
    mixed = mix_at_snr(speech, noise, target)
    assert abs(snr_db(speech, mixed - speech) - target) < 0.5


def test_mix_at_snr_with_babble():
    clips = [_speech_like(1.0 + 0.3 * i, seed=i) for i in range(5)]
    speech = _speech_like(seed=9)
    babble = babble_noise(clips, speech.size, talkers=4, rng=np.random.default_rng(2))
    assert abs(snr_db(speech, mix_at_snr(speech, babble, 10.0) - speech) - 10.0) < 0.5


def test_colored_noise_spectra_tilt_as_expected():
    rng = np.random.default_rng(0)

    def low_to_high(kind: str) -> float:
        power = np.abs(np.fft.rfft(colored_noise(kind, 2**16, rng))) ** 2
        freqs = np.fft.rfftfreq(2**16, 1 / RATE)
        return power[(freqs > 50) & (freqs < 500)].mean() / power[(freqs > 4000) & (freqs < 7000)].mean()

    white, pink, brown = low_to_high("white"), low_to_high("pink"), low_to_high("brown")
    assert 0.7 < white < 1.4
    assert pink > 5 * white
    assert brown > 10 * pink


def test_colored_noise_is_deterministic_and_unit_variance():
    a = colored_noise("pink", 8000, np.random.default_rng(3))
    b = colored_noise("pink", 8000, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert abs(float(a.std()) - 1.0) < 1e-3
    with pytest.raises(SynthError):
        colored_noise("purple", 100, np.random.default_rng(0))


def test_set_level_and_pcm16_quantisation():
    signal = set_level(_speech_like(), -20.0)
    rms_db = 20 * np.log10(np.sqrt(np.mean(signal.astype(np.float64) ** 2)))
    assert abs(rms_db + 20.0) < 1e-3
    loud = np.array([0.0, 2.0, -1.0], dtype=np.float32)
    pcm = to_pcm16(loud)
    assert (
        pcm.dtype == np.int16 and int(pcm[1]) == round(0.98 * 32767) and int(pcm[2]) == -round(0.49 * 32767)
    )
    with pytest.raises(SynthError):
        set_level(np.zeros(10, dtype=np.float32), -20.0)


def test_mix_rejects_mismatched_or_silent_noise():
    with pytest.raises(SynthError):
        mix_at_snr(np.ones(10, dtype=np.float32), np.ones(9, dtype=np.float32), 10.0)
    with pytest.raises(SynthError):
        mix_at_snr(np.ones(10, dtype=np.float32), np.zeros(10, dtype=np.float32), 10.0)


def test_sox_chain_and_description_follow_the_conditions():
    clean = Conditions()
    assert sox_chain(clean, RATE) == ["channels", "1", "rate", "-h", "16000", "norm", "-3"]
    degraded = Conditions(tempo=1.1, pitch_cents=-80, noise="pink", snr_db=12.34, reverb=40, telephone=True)
    chain = sox_chain(degraded, RATE)
    assert chain[chain.index("tempo") + 2] == "1.1000" and "reverb" in chain and "300-3400" in chain
    assert degraded.degraded and not clean.degraded
    assert degraded.describe() == "tempo=1.100,pitch=-80,reverb=40,telephone,pink@12.3dB"
