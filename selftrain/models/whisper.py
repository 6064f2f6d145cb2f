"""Whisper's audio encoder in PyTorch, as the pretrained bottom of a CTC model.

Written here rather than taken from a library because the two that hold one need what this machine
lacks: ``transformers`` (SpeechBrain's Whisper lobe wraps it and loads from a hub) and
``openai-whisper`` (an extra dependency with its own downloader). The module is small: Whisper's
log-mel front-end (80 mels, 25 ms windows, 10 ms hop, Slaney mel scale, log10 floored at the
utterance's maximum minus 8, then ``(x + 4) / 4``), two convolutions (the second of stride 2, so
20 ms frames), sinusoidal positions cut to the input's length, and pre-LN Transformer blocks.

Differences from Whisper's own use, chosen for CTC on short utterances:
- inputs are not padded to 30 s; a padded batch masks attention to each utterance's own frames and
  zeroes the padding between the convolutions, so an utterance encodes the same alone or in a
  batch (what the on-disk cache of frozen states relies on);
- inputs over 30 s (1500 encoder frames, the positional table's length) are refused.

Weights come from local files only (see :mod:`selftrain.models.whisper_weights`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from selftrain.errors import AudioError

__all__ = ["WhisperLogMel", "WhisperMelNorm", "WhisperStem", "WhisperBlock", "WhisperTop", "MAX_SECONDS",
           "key_padding"]

N_FFT = 400
HOP = 160
SAMPLE_RATE = 16000
MAX_FRAMES = 1500  # encoder frames in Whisper's positional table: 30 s at 20 ms
MAX_SECONDS = MAX_FRAMES * 2 * HOP / SAMPLE_RATE
DYNAMIC_RANGE = 8.0  # log10 units kept below the utterance's loudest bin


def key_padding(frames: torch.Tensor, max_frames: int) -> torch.Tensor:
    """``[B, T]`` bool, True on padded frames."""
    return torch.arange(max_frames, device=frames.device)[None, :] >= frames[:, None]


class WhisperLogMel(nn.Module):
    """Log10 mel power spectrogram ``[B, T, 80]`` (Whisper's, before its range clamp).

    The mel filters are torchaudio's Slaney-scale, Slaney-normalised bank, which is the bank Whisper
    was trained with; the STFT is centred with reflection padding and its last frame dropped, as in
    Whisper.
    """

    window: torch.Tensor
    filters: torch.Tensor

    def __init__(self, n_mels: int = 80):
        super().__init__()
        from torchaudio.functional import melscale_fbanks

        self.n_mels = n_mels
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        bank = melscale_fbanks(N_FFT // 2 + 1, 0.0, SAMPLE_RATE / 2, n_mels, SAMPLE_RATE, norm="slaney", mel_scale="slaney")
        self.register_buffer("filters", bank, persistent=False)

    @torch.no_grad()
    def forward(self, wavs: torch.Tensor) -> torch.Tensor:
        if wavs.shape[-1] <= N_FFT // 2:  # the centred STFT's reflection needs more: pad a very short clip with silence
            wavs = F.pad(wavs, (0, N_FFT // 2 + 1 - wavs.shape[-1]))
        with torch.autocast(device_type=wavs.device.type, enabled=False):
            spec = torch.stft(wavs.float(), N_FFT, HOP, window=self.window, return_complex=True)
            power = spec[..., :-1].abs() ** 2  # [B, F, T]
            mel = torch.matmul(power.transpose(1, 2), self.filters)  # [B, T, n_mels]
            return torch.log10(mel.clamp(min=1e-10))


class WhisperMelNorm(nn.Module):
    """Whisper's range clamp and scaling, per utterance over its valid frames: ``(max(x, top - 8) + 4) / 4``."""

    def forward(self, feats: torch.Tensor, rel_lens: torch.Tensor) -> torch.Tensor:
        frames = (rel_lens * feats.shape[1]).round().long().clamp(min=1)
        padded = key_padding(frames, feats.shape[1]).unsqueeze(-1)
        top = feats.masked_fill(padded, float("-inf")).amax(dim=(1, 2), keepdim=True)
        return (torch.maximum(feats, top - DYNAMIC_RANGE) + 4.0) / 4.0


class WhisperAttention(nn.Module):
    """Multi-head self-attention with Whisper's fused q/k/v projection (the key has no bias in
    Whisper; here the fused bias holds zeros in the key's third, loaded as such)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, padded: torch.Tensor | None) -> torch.Tensor:
        batch, steps, width = x.shape
        q, k, v = self.qkv(x).view(batch, steps, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if padded is None else ~padded[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(batch, steps, width))


class WhisperBlock(nn.Module):
    """Pre-LN Transformer block: attention, then a GELU MLP of ``ffn`` units, each with a residual."""

    def __init__(self, width: int, heads: int, ffn: int):
        super().__init__()
        self.attn_ln = nn.LayerNorm(width)
        self.attn = WhisperAttention(width, heads)
        self.mlp_ln = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, ffn), nn.GELU(), nn.Linear(ffn, width))

    def forward(self, x: torch.Tensor, padded: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.attn_ln(x), padded)
        return x + self.mlp(self.mlp_ln(x))


def sinusoids(length: int, width: int) -> torch.Tensor:
    """Whisper's positional table: sines then cosines of geometrically spaced timescales (max 10000)."""
    increment = math.log(10000) / (width // 2 - 1)
    scales = torch.exp(-increment * torch.arange(width // 2))
    angles = torch.arange(length)[:, None] * scales[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class WhisperStem(nn.Module):
    """Convolutions, positions and the bottom ``frozen_layers`` blocks: ``[B, T, 80] -> [B, ceil(T/2), W]``.

    These parts stay frozen during fine-tuning, so their output depends on the audio alone and can
    be cached (:mod:`selftrain.models.state_cache`).
    """

    positions: torch.Tensor

    def __init__(self, n_mels: int, width: int, heads: int, ffn: int, frozen_layers: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(width, width, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positions", sinusoids(MAX_FRAMES, width))
        self.blocks = nn.ModuleList(WhisperBlock(width, heads, ffn) for _ in range(frozen_layers))

    def forward(self, feats: torch.Tensor, rel_lens: torch.Tensor) -> torch.Tensor:
        steps = feats.shape[1]
        in_frames = (rel_lens * steps).round().long().clamp(min=1)
        x = F.gelu(self.conv1(feats.transpose(1, 2)))
        x = x.masked_fill(key_padding(in_frames, steps)[:, None, :], 0.0)
        x = F.gelu(self.conv2(x)).transpose(1, 2)
        if x.shape[1] > MAX_FRAMES:
            raise AudioError("too_long", f"Whisper encodes at most {MAX_SECONDS:.0f} s of audio; this batch holds "
                             f"{steps / 100:.1f} s: cut longer recordings into segments first")
        x = x + self.positions[: x.shape[1]].to(x.dtype)
        padded = key_padding((in_frames + 1) // 2, x.shape[1])
        for block in self.blocks:
            x = block(x, padded)
        return x


class WhisperTop(nn.Module):
    """The fine-tuned part: the remaining blocks, Whisper's final LayerNorm, and an optional BiLSTM head.

    ``head``: a module ``(x, rel_lens) -> y`` with ``output_dim`` (the BiLSTM of
    :class:`~selftrain.models.acoustic.LSTMEncoder`), or None for a linear CTC head straight on the
    encoder.
    """

    def __init__(self, width: int, heads: int, ffn: int, layers: int, head: Any):
        super().__init__()
        self.blocks = nn.ModuleList(WhisperBlock(width, heads, ffn) for _ in range(layers))
        self.ln_post = nn.LayerNorm(width)
        self.head = head
        self.output_dim = int(head.output_dim) if head is not None else width

    def forward(self, x: torch.Tensor, rel_lens: torch.Tensor) -> torch.Tensor:
        frames = (rel_lens * x.shape[1]).round().long().clamp(min=1, max=x.shape[1])
        padded = key_padding(frames, x.shape[1])
        for block in self.blocks:
            x = block(x, padded)
        x = self.ln_post(x)
        return self.head(x, rel_lens) if self.head is not None else x
