"""Noisy-student augmentation: noise from a CSV or generated, speed perturbation, SpecAugment."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from selftrain.errors import ConfigError
from selftrain.train.augment import StudentAugment
from selftrain.train.config import AugmentConfig


def test_noise_from_a_csv_changes_the_student_input_only(tmp_path):
    noise = tmp_path / "n.wav"
    sf.write(str(noise), (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32), 16000)
    (tmp_path / "noise.csv").write_text(f"ID,duration,wav,wav_format,wav_opts\nn1,0.5,{noise},wav,\n")
    augment = StudentAugment(AugmentConfig(noise_prob=1.0, noise_csv=str(tmp_path / "noise.csv"), noise_snr_low=0, noise_snr_high=0), 16000)
    wavs = torch.sin(torch.arange(16000.0)).repeat(2, 1) * 0.5
    clean, student, changed = augment.waveform(wavs, torch.ones(2))
    assert clean is wavs and not changed
    assert student.shape == wavs.shape and not torch.allclose(student, wavs)


@pytest.mark.parametrize("color", ["white", "pink"])
def test_generated_noise_respects_noise_prob(color):
    augment = StudentAugment(AugmentConfig(noise_prob=0.0001, noise_color=color), 16000)
    wavs = torch.randn(4, 4000)
    _, student, _ = augment.waveform(wavs, torch.ones(4))
    assert torch.equal(student, wavs)  # (almost) nobody drew noise


def test_speed_perturbation_changes_the_length_and_says_so():
    augment = StudentAugment(AugmentConfig(speed_perturb=True, speeds=[80]), 16000)
    clean, student, changed = augment.waveform(torch.randn(2, 16000), torch.ones(2))
    assert changed and clean.shape[1] == student.shape[1] == 20000


def test_specaugment_masks_features_with_zeros():
    torch.manual_seed(0)
    feats = torch.ones(2, 200, 80)
    masked = StudentAugment(AugmentConfig(time_masks=2, freq_masks=2), 16000).features(feats)
    assert masked.shape == feats.shape and (masked == 0).any() and (masked == 1).any()
    assert torch.equal(StudentAugment(AugmentConfig(specaugment=False), 16000).features(feats), feats)


def test_bad_noise_settings_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="noise_color"):
        StudentAugment(AugmentConfig(noise_prob=0.5, noise_color="brown"), 16000)
    with pytest.raises(ConfigError, match="does not exist"):
        StudentAugment(AugmentConfig(noise_prob=0.5, noise_csv=str(tmp_path / "none.csv")), 16000)


@pytest.mark.parametrize("color", ["white", "pink"])
def test_generated_noise_hits_the_drawn_snr_over_valid_samples(color):
    from selftrain.train.augment import GeneratedNoise

    torch.manual_seed(0)
    wavs = torch.randn(3, 8000)
    wavs[2, 4000:] = 0.0
    noisy = GeneratedNoise(color, 12.0, 12.0)(wavs, torch.tensor([1.0, 1.0, 0.5]))
    noise = noisy - wavs
    assert torch.all(noise[2, 4000:] == 0)  # padding stays silent
    for row, n in ((0, 8000), (2, 4000)):
        snr = 10 * torch.log10(wavs[row, :n].pow(2).sum() / noise[row, :n].pow(2).sum())
        assert float(snr) == pytest.approx(12.0, abs=1e-3)
    if color == "pink":  # 1/f: more power in the lowest tenth of the spectrum than in the highest
        spectrum = torch.fft.rfft(noise[0]).abs().pow(2)
        tenth = spectrum.shape[0] // 10
        assert spectrum[:tenth].sum() > 5 * spectrum[-tenth:].sum()
