"""The CTC acoustic model: fbank + normalisation, 4x conv subsampling, an encoder, a CTC head.

With ``encoder="whisper"`` the front-end is Whisper's log-mel, the "subsampler" is Whisper's
convolutions with its frozen bottom blocks (2x subsampling), and the encoder its fine-tuned top
blocks with an optional BiLSTM head (:mod:`selftrain.models.whisper`).

The pieces are exposed separately (:meth:`CTCModel.features`, :meth:`~CTCModel.subsample`,
:meth:`~CTCModel.encode`, :meth:`~CTCModel.ctc_head`) because the self-supervised objectives
(:mod:`selftrain.ssl`) mask the subsampled latents and read the shared encoder's output.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from selftrain.data.features import Fbank, build_normalizer
from selftrain.errors import ConfigError
from selftrain.models.config import ENCODERS, ModelConfig

__all__ = ["CTCModel", "build_model", "output_lengths", "count_parameters", "subsampling"]

SUBSAMPLING = 4
WHISPER_SUBSAMPLING = 2


def subsampling(config: ModelConfig) -> int:
    """Feature frames per output frame of the encoder ``config`` describes."""
    return WHISPER_SUBSAMPLING if config.encoder == "whisper" else SUBSAMPLING


def output_lengths(rel_lens: torch.Tensor, max_frames: int) -> torch.Tensor:
    """Integer numbers of valid frames from relative lengths (at least 1)."""
    return (rel_lens * max_frames).round().long().clamp(min=1, max=max_frames)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def padding_mask(rel_lens: torch.Tensor, max_frames: int) -> torch.Tensor:
    """``[B, T]`` bool, True on padded frames."""
    steps = torch.arange(max_frames, device=rel_lens.device)
    return steps[None, :] >= output_lengths(rel_lens, max_frames)[:, None]


class ConvSubsampling(nn.Module):
    """Two stride-2 conv blocks (SpeechBrain's ConvolutionFrontEnd) and a projection: ``[B,T,F] -> [B,T/4,D]``."""

    def __init__(self, n_mels: int, channels: int, d_model: int, dropout: float):
        super().__init__()
        from speechbrain.lobes.models.convolution import ConvolutionFrontEnd

        self.conv = ConvolutionFrontEnd(
            input_shape=(None, None, n_mels),
            num_blocks=2,
            num_layers_per_block=1,
            out_channels=[channels, channels],
            kernel_sizes=[3, 3],
            strides=[2, 2],
            residuals=[False, False],
            dropout=dropout,
        )
        self.proj = nn.Linear(channels * math.ceil(math.ceil(n_mels / 2) / 2), d_model)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        out = self.conv(feats)  # [B, T', F', C]
        return self.proj(out.flatten(start_dim=2))


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of ``x`` ``[B, T, D]`` within its first ``lengths[b]`` frames (padding stays last)."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    idx = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    return x.gather(1, idx.unsqueeze(-1).expand_as(x))


class LSTMEncoder(nn.Module):
    """Bidirectional LSTM over the subsampled latents, exact for padded batches without packing.

    Written by hand instead of SpeechBrain's LSTM with ``lengths``: packed sequences of unequal
    lengths made forward+backward slower on CPU than this padded form (one comparison, not recorded).
    The backward direction runs on each sequence reversed within its own length, so padding
    comes last for both directions and never reaches valid frames.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        sizes = [config.d_model] + [2 * config.lstm_hidden] * (config.num_layers - 1)
        self.forward_layers = nn.ModuleList(nn.LSTM(n, config.lstm_hidden, batch_first=True) for n in sizes)
        self.backward_layers = nn.ModuleList(nn.LSTM(n, config.lstm_hidden, batch_first=True) for n in sizes)
        self.dropout = nn.Dropout(config.dropout)
        self.output_dim = 2 * config.lstm_hidden

    def forward(self, x: torch.Tensor, rel_lens: torch.Tensor) -> torch.Tensor:
        lengths = output_lengths(rel_lens, x.shape[1])
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers, strict=True)):
            if i > 0:
                x = self.dropout(x)
            ahead, _ = fwd(x)
            behind, _ = bwd(reverse_padded(x, lengths))
            x = torch.cat([ahead, reverse_padded(behind, lengths)], dim=-1)
        return x

    def last_layer_parameters(self) -> list[nn.Parameter]:
        return [*self.forward_layers[-1].parameters(), *self.backward_layers[-1].parameters()]


class ConformerEncoder(nn.Module):
    """SpeechBrain's Conformer encoder with relative positional encodings."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        from speechbrain.lobes.models.transformer.Conformer import ConformerEncoder as SBConformer
        from speechbrain.nnet.attention import RelPosEncXL

        self.pos = RelPosEncXL(config.d_model)
        self.net = SBConformer(
            num_layers=config.num_layers,
            d_model=config.d_model,
            d_ffn=config.d_ffn,
            nhead=config.num_heads,
            kernel_size=config.conv_kernel,
            dropout=config.dropout,
        )
        self.output_dim = config.d_model

    def forward(self, x: torch.Tensor, rel_lens: torch.Tensor) -> torch.Tensor:
        out, _ = self.net(x, src_key_padding_mask=padding_mask(rel_lens, x.shape[1]), pos_embs=self.pos(x))
        return out


class TransformerEncoder(nn.Module):
    """SpeechBrain's Transformer encoder (pre-norm) with sinusoidal positions."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        from speechbrain.lobes.models.transformer.Transformer import PositionalEncoding
        from speechbrain.lobes.models.transformer.Transformer import TransformerEncoder as SBTransformer

        self.pos = PositionalEncoding(config.d_model, max_len=10000)
        self.net = SBTransformer(
            num_layers=config.num_layers,
            nhead=config.num_heads,
            d_ffn=config.d_ffn,
            d_model=config.d_model,
            dropout=config.dropout,
            normalize_before=True,
        )
        self.output_dim = config.d_model

    def forward(self, x: torch.Tensor, rel_lens: torch.Tensor) -> torch.Tensor:
        out, _ = self.net(x + self.pos(x), src_key_padding_mask=padding_mask(rel_lens, x.shape[1]))
        return out


def build_encoder(config: ModelConfig) -> nn.Module:
    """The encoder named by ``config.encoder`` (Whisper's is built by :class:`CTCModel` with its stem)."""
    if config.encoder == "lstm":
        return LSTMEncoder(config)
    if config.encoder == "conformer":
        return ConformerEncoder(config)
    if config.encoder == "transformer":
        return TransformerEncoder(config)
    raise ConfigError(f"model.encoder must be one of {ENCODERS}, not {config.encoder!r}")


class CTCModel(nn.Module):
    """Waveforms in, CTC log-posteriors out; SSL objectives reuse its parts.

    >>> model = CTCModel(ModelConfig(encoder="lstm", d_model=32, lstm_hidden=16, num_layers=1), vocab_size=5)
    >>> log_probs, frames = model(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
    >>> tuple(log_probs.shape), frames.tolist()
    ((2, 26, 5), [26, 13])
    """

    # The parts differ by encoder family (from scratch, or a pretrained Whisper encoder).
    fbank: Any
    norm: Any
    subsampler: Any
    encoder: Any

    def __init__(self, config: ModelConfig, vocab_size: int):
        super().__init__()
        if vocab_size < 2:
            raise ConfigError(f"vocab_size must be at least 2 (blank + one token), not {vocab_size}")
        self.config = config
        self.vocab_size = vocab_size
        if config.encoder == "whisper":
            self._build_whisper(config)
        else:
            self.fbank = Fbank(config.features)
            self.norm = build_normalizer(config.features)
            self.subsampler = ConvSubsampling(config.features.n_mels, config.subsample_channels, config.d_model, config.dropout)
            self.encoder = build_encoder(config)
        encoder: Any = self.encoder
        self.mask_embedding = nn.Parameter(torch.empty(config.d_model).uniform_(-0.1, 0.1))
        self.dropout = nn.Dropout(config.dropout)
        self.ctc_head = nn.Linear(int(encoder.output_dim), vocab_size)
        self.state_cache: Any = None  # a FrozenStateCache (models.state_cache), attached by whoever owns the folder

    def _build_whisper(self, config: ModelConfig) -> None:
        from dataclasses import replace

        from selftrain.models.whisper import WhisperLogMel, WhisperMelNorm, WhisperStem, WhisperTop

        if not 0 <= config.frozen_layers <= config.num_layers:
            raise ConfigError(f"model.frozen_layers must be in [0, {config.num_layers}], not {config.frozen_layers}")
        if config.head_layers < 0:
            raise ConfigError(f"model.head_layers must not be negative, not {config.head_layers}")
        if config.features.sample_rate != 16000:
            raise ConfigError("a Whisper encoder takes 16 kHz audio: model.features.sample_rate must be 16000")
        self.fbank = WhisperLogMel(config.features.n_mels)
        self.norm = WhisperMelNorm()
        self.subsampler = WhisperStem(config.features.n_mels, config.d_model, config.num_heads, config.d_ffn,
                                      config.frozen_layers)
        self.subsampler.requires_grad_(False)
        head = LSTMEncoder(replace(config, num_layers=config.head_layers)) if config.head_layers else None
        self.encoder = WhisperTop(config.d_model, config.num_heads, config.d_ffn, config.num_layers - config.frozen_layers, head)

    @property
    def frozen_front(self) -> bool:
        """True when the front-end and subsampler never train (their output can be cached)."""
        return self.config.encoder == "whisper"

    def num_mel_frames(self, num_samples: int) -> int:
        """Feature frames of one unpadded utterance of ``num_samples`` samples."""
        hop = int(round(self.config.features.sample_rate * self.config.features.hop_length_ms / 1000))
        return max(1, num_samples // hop) if self.config.encoder == "whisper" else num_samples // hop + 1

    @property
    def encoder_dim(self) -> int:
        return int(self.encoder.output_dim)

    @property
    def frame_shift_seconds(self) -> float:
        return subsampling(self.config) * self.config.features.hop_length_ms / 1000.0

    def num_latent_frames(self, num_feature_frames: int) -> int:
        """Frames after the stride-2 convolutions ("same" padding; two of them, one for Whisper)."""
        frames = math.ceil(num_feature_frames / 2)
        return frames if self.config.encoder == "whisper" else math.ceil(frames / 2)

    def shared_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters shared by CTC and SSL (front-end, encoder, mask embedding)."""
        modules = [self.subsampler, self.encoder]
        return [p for m in modules for p in m.parameters() if p.requires_grad] + [self.mask_embedding]

    def last_shared_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the encoder's last layer (GradNorm measures gradient norms there)."""
        if self.config.encoder == "lstm":
            params = self.encoder.last_layer_parameters()
        elif self.config.encoder == "whisper":
            last = self.encoder.head if self.encoder.head is not None else self.encoder.ln_post
            params = last.last_layer_parameters() if self.encoder.head is not None else list(last.parameters())
        else:
            params = list(self.encoder.net.layers[-1].parameters())
        return [p for p in params if p.requires_grad]

    def features(self, wavs: torch.Tensor, rel_lens: torch.Tensor, fbank: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised fbank features ``[B, T, n_mels]`` (no gradient); padded frames are zero, so
        whatever lies in the padding never reaches the encoder. ``fbank``: the filterbanks of
        ``wavs`` when already computed."""
        with torch.no_grad():
            feats = self.norm(self.fbank(wavs) if fbank is None else fbank, rel_lens)
            return feats.masked_fill(padding_mask(rel_lens, feats.shape[1]).unsqueeze(-1), 0.0)

    def subsample(self, feats: torch.Tensor, rel_lens: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, ceil(T/4), d_model]`` (Whisper: ``ceil(T/2)``, after the frozen blocks)."""
        if self.config.encoder == "whisper":
            with torch.no_grad():  # always frozen: no graph to keep
                return self.subsampler(feats, rel_lens)
        return self.subsampler(feats)

    def latents(self, wavs: torch.Tensor, rel_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(latents, their relative lengths)``: :meth:`subsample` of :meth:`features`, from the
        attached frozen-state cache when there is one. A Whisper front counts each row's frames from
        its samples, so a row gives the same latents alone and in a padded batch."""
        if self.state_cache is not None:
            return self.state_cache.latents(self, wavs, rel_lens)
        if self.config.encoder != "whisper":
            return self.subsample(self.features(wavs, rel_lens), rel_lens), rel_lens
        samples = (rel_lens * wavs.shape[1]).round().long().clamp(min=1)
        mel_frames = torch.tensor([self.num_mel_frames(int(n)) for n in samples], device=wavs.device)
        feats = self.fbank(wavs)
        mel_rel = mel_frames.to(feats.dtype) / feats.shape[1]
        latents = self.subsample(self.features(wavs, mel_rel, feats), mel_rel)
        frames = torch.tensor([self.num_latent_frames(int(n)) for n in mel_frames], device=wavs.device)
        return latents, frames.to(latents.dtype) / latents.shape[1]

    def encode(self, latents: torch.Tensor, rel_lens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder output; latents where ``mask`` (``[B, T']`` bool) is True are replaced by a learned embedding."""
        if mask is not None:
            latents = torch.where(mask.unsqueeze(-1), self.mask_embedding.to(latents.dtype), latents)
        return self.encoder(latents, rel_lens)

    def ctc_log_probs(self, encoded: torch.Tensor) -> torch.Tensor:
        """``[B, T', V]`` log-softmax over tokens (index 0 = blank), computed in fp32."""
        return torch.log_softmax(self.ctc_head(self.dropout(encoded)).float(), dim=-1)

    def forward(self, wavs: torch.Tensor, rel_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log_probs [B,T',V], frames [B])`` for a padded batch of waveforms."""
        latents, rel_lens = self.latents(wavs, rel_lens)
        log_probs = self.ctc_log_probs(self.encode(latents, rel_lens))
        return log_probs, output_lengths(rel_lens, log_probs.shape[1])


def build_model(config: ModelConfig, vocab_size: int) -> CTCModel:
    """A freshly initialised :class:`CTCModel`."""
    return CTCModel(config, vocab_size)
