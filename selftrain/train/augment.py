"""Noisy-student augmentation of the student's input (SpeechBrain augmenters).

Waveform level: speed perturbation (``SpeedPerturb``, the whole batch at one speed) then additive
noise at a random SNR (``AddNoise``: clips from a noise CSV, or generated white/pink noise) on a
share of the utterances. Feature level: SpecAugment-style
time and frequency masks (``SpectrogramDrop``). Masks replace normalised features with zeros,
which is the mean after normalisation.
"""

from __future__ import annotations

from pathlib import Path

import torch

from selftrain.train.config import AugmentConfig

__all__ = ["StudentAugment"]


class GeneratedNoise:
    """White or pink (1/f power) Gaussian noise mixed in at an SNR drawn per utterance from a range.

    Written by hand because SpeechBrain's ``AddNoise`` without a noise file sets the level from mean
    absolute amplitudes, which is not the power SNR the corpus is described by (the two differ
    whenever speech and noise have differently shaped amplitude distributions), and also fills the
    padding of shorter utterances with noise. Here the SNR is the power ratio over each
    utterance's valid samples, as the synthetic corpus defines it, and padding stays silent, at a
    cost alike to SpeechBrain's (compared once on 2 CPU cores; no results file holds the timing).
    """

    def __init__(self, color: str, snr_low: float, snr_high: float):
        self.color, self.snr_low, self.snr_high = color, snr_low, snr_high

    def noise(self, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        white = torch.randn(shape, device=device)
        if self.color == "white":
            return white
        spectrum = torch.fft.rfft(white, dim=1)
        freqs = torch.arange(1, spectrum.shape[1] + 1, device=device, dtype=white.dtype)
        return torch.fft.irfft(spectrum / freqs.sqrt(), n=shape[1], dim=1)

    def __call__(self, wavs: torch.Tensor, rel_lens: torch.Tensor) -> torch.Tensor:
        lengths = (rel_lens * wavs.shape[1]).round().clamp(min=1)
        valid = torch.arange(wavs.shape[1], device=wavs.device)[None, :] < lengths[:, None]
        noise = self.noise((wavs.shape[0], wavs.shape[1]), wavs.device) * valid
        signal_power = (wavs.pow(2) * valid).sum(1) / lengths
        noise_power = noise.pow(2).sum(1) / lengths
        snr = torch.empty(wavs.shape[0], device=wavs.device).uniform_(self.snr_low, self.snr_high)
        scale = torch.sqrt(signal_power / (noise_power.clamp(min=1e-12) * 10 ** (snr / 10)))
        return wavs + scale[:, None] * noise


class StudentAugment:
    """Applies the configured augmentations; ``waveform`` reports whether lengths changed."""

    def __init__(self, config: AugmentConfig, sample_rate: int):
        from speechbrain.augment.freq_domain import SpectrogramDrop
        from speechbrain.augment.time_domain import SpeedPerturb

        self.config = config
        self.speed = SpeedPerturb(sample_rate, speeds=list(config.speeds)) if config.speed_perturb else None
        self.noise = self._noise(config, sample_rate) if config.noise_prob > 0 else None
        self.time_drop = self.freq_drop = None
        if config.specaugment and config.time_masks > 0:
            self.time_drop = SpectrogramDrop(drop_length_low=1, drop_length_high=max(1, config.time_mask_frames),
                                             drop_count_low=0, drop_count_high=config.time_masks, dim=1)
        if config.specaugment and config.freq_masks > 0:
            self.freq_drop = SpectrogramDrop(drop_length_low=1, drop_length_high=max(1, config.freq_mask_bins),
                                             drop_count_low=0, drop_count_high=config.freq_masks, dim=2)
        self.state_drops = [SpectrogramDrop(drop_length_low=1, drop_length_high=max(1, width), drop_count_low=0,
                                            drop_count_high=count, dim=dim)
                            for count, width, dim in ((config.state_time_masks, config.state_time_mask_frames, 1),
                                                      (config.state_channel_masks, config.state_channel_width, 2))
                            if config.specaugment and count > 0]

    @staticmethod
    def _noise(config: AugmentConfig, sample_rate: int):
        from speechbrain.augment.time_domain import AddNoise

        from selftrain.errors import ConfigError

        if config.noise_color not in ("white", "pink"):
            raise ConfigError(f"augment.noise_color must be white or pink, not {config.noise_color!r}")
        if config.noise_csv and not Path(config.noise_csv).exists():
            raise ConfigError(f"augment.noise_csv: {config.noise_csv} does not exist")
        if not config.noise_csv:
            return GeneratedNoise(config.noise_color, config.noise_snr_low, config.noise_snr_high)
        return AddNoise(
            csv_file=config.noise_csv,
            snr_low=config.noise_snr_low,
            snr_high=config.noise_snr_high,
            pad_noise=True,
            noise_sample_rate=sample_rate,
            clean_sample_rate=sample_rate,
        )

    def waveform(self, wavs: torch.Tensor, rel_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """``(speed-perturbed clean, student input, speed_changed)``; relative lengths are unchanged."""
        changed = False
        if self.speed is not None:
            before = wavs.shape[1]
            wavs = self.speed(wavs)
            changed = wavs.shape[1] != before
        student = wavs
        if self.noise is not None:
            noisy = self.noise(wavs, rel_lens)
            pick = (torch.rand(wavs.shape[0], device=wavs.device) < self.config.noise_prob).unsqueeze(1)
            student = torch.where(pick, noisy, wavs)
        return wavs, student, changed

    def states(self, states: torch.Tensor) -> torch.Tensor:
        """Time and channel masks, then dropout, on cached encoder states ``[B, T, D]``."""
        for drop in self.state_drops:
            states = drop(states)
        return torch.nn.functional.dropout(states, self.config.state_dropout, training=True)

    def features(self, feats: torch.Tensor) -> torch.Tensor:
        """SpecAugment time and frequency masks."""
        if self.time_drop is not None:
            feats = self.time_drop(feats)
        if self.freq_drop is not None:
            feats = self.freq_drop(feats)
        return feats
