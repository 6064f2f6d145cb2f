"""Decoder settings, with documented defaults (one place for every number of the decoding stage)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from selftrain.errors import ConfigError

__all__ = ["DecoderConfig", "DECODERS"]

DECODERS = ("greedy", "pyctcdecode", "flashlight")


@dataclass
class DecoderConfig:
    """How a teacher turns CTC log-posteriors into hypotheses.

    Scores are natural logs. The LM part of a beam is ``alpha * ln P_LM(words) + beta * len(words)``
    for both beam-search backends (flashlight's KenLM works in log10, so it gets
    ``lm_weight = alpha * ln(10)``), so the same settings give the same best text.

    decoder: ``"pyctcdecode"`` (default; beam search, with the LM when one is given), ``"flashlight"``
        (torchaudio's C++ lexicon decoder, needs an LM; words outside the LM's vocabulary cannot be
        produced) or ``"greedy"`` (best path, no LM).
    beam_width: beams kept per frame.
    alpha: LM weight; beta: word insertion bonus.
    nbest: n-best entries kept per utterance (confidence uses them).
    beam_prune_logp: beams this far below the best are dropped (pyctcdecode).
    token_min_logp: tokens below this log-probability are not expanded unless they are a frame's best.
    unk_score_offset: log-score added to words outside the LM vocabulary (pyctcdecode).
    flashlight_beam_threshold: flashlight's score window for keeping beams.
    skip_blank_frames: collapse runs of frames where only the blank is viable (best token is blank
        and every other token is below ``token_min_logp``) into one before pyctcdecode's search; exact
        (such frames extend every beam identically), and much faster on real, blank-dominated output.
    batch_size: utterances per acoustic-model forward pass.
    max_duration: utterances longer than this (seconds, from the file header) are skipped with reason
        ``too_long`` instead of padding their whole batch to that length; 0 = no limit.
    workers: beam-search worker processes (0 = decode in the calling process).
    max_pending_batches: batches in the workers' queue before the forward pass waits (bounds memory);
        each batch is one job for one worker.
    confidence: score words and utterances with :func:`selftrain.confidence.score_hypothesis`.
    dropout: run the model in training mode (a dropout-sampled teacher; ``seed`` fixes the draw of
        a whole run, but sharded or resumed runs draw differently).
    """

    decoder: str = "pyctcdecode"
    beam_width: int = 32
    alpha: float = 0.5
    beta: float = 1.0
    nbest: int = 5
    beam_prune_logp: float = -10.0
    token_min_logp: float = -5.0
    unk_score_offset: float = -10.0
    flashlight_beam_threshold: float = 25.0
    skip_blank_frames: bool = True
    batch_size: int = 8
    max_duration: float = 60.0
    workers: int = 2
    max_pending_batches: int = 4
    confidence: bool = True
    dropout: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ConfigError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        for name in ("beam_width", "nbest", "batch_size", "max_pending_batches"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_duration < 0:
            raise ConfigError(f"max_duration must be >= 0 (0: no limit), got {self.max_duration}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")

    def to_dict(self) -> dict:
        return asdict(self)
