"""Decoder settings, with documented defaults (one place for every number of the decoding stage)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace

from selftrain.errors import ConfigError

__all__ = ["DecoderConfig", "DECODERS", "TuneConfig", "TUNED_SETTINGS"]

DECODERS = ("greedy", "pyctcdecode", "flashlight")


@dataclass
class DecoderConfig:
    """How a teacher turns CTC log-posteriors into hypotheses.

    Scores are natural logs. The LM part of a beam is ``alpha * ln P_LM(words) + beta * len(words)``
    for both beam-search backends (flashlight's KenLM works in log10, so it gets
    ``lm_weight = alpha * ln(10)``), so the same settings give the same best text.

    decoder: ``pyctcdecode`` (default; beam search, with the LM when one is given), ``flashlight``
        (torchaudio's C++ lexicon decoder, needs an LM; words outside the LM's vocabulary cannot be
        produced) or ``greedy`` (best path, no LM).
    beam_width: beams kept per frame.
    alpha: LM weight; beta: word insertion bonus.
    blank_penalty: subtracted from the blank's log-probability in every frame before the search (every
        backend, greedy included); > 0 makes the decoder emit more tokens, a remedy for a model that
        deletes words on audio unlike its training audio. Confidence scores still read the model's own
        posteriors. Tuned on a transcribed dev set by :func:`selftrain.decode.tune_decoder` [0.0].
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
    seed: random seed of the dropout draw (used with ``dropout`` only).
    """

    decoder: str = "pyctcdecode"
    beam_width: int = 32
    alpha: float = 0.5
    beta: float = 1.0
    blank_penalty: float = 0.0
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
        if not math.isfinite(self.blank_penalty):
            raise ConfigError(f"blank_penalty must be a finite number, got {self.blank_penalty}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")

    def to_dict(self) -> dict:
        return asdict(self)

    def with_tuned(self, settings: Mapping[str, float]) -> DecoderConfig:
        """A copy with the :data:`TUNED_SETTINGS` found in ``settings`` (e.g. a tuning's choice)."""
        return replace(self, alpha=float(settings.get("alpha", self.alpha)), beta=float(settings.get("beta", self.beta)),
                       blank_penalty=float(settings.get("blank_penalty", self.blank_penalty)))


# The decoder settings the search may change, in the order it visits them: the blank penalty first
# (it moves the deletion / insertion balance most), then the word bonus, then the LM weight.
TUNED_SETTINGS = ("blank_penalty", "beta", "alpha")


@dataclass
class TuneConfig:
    """What the search tries. Each list holds the values of one setting (empty: that setting keeps
    its configured value); the configured value is always tried first.

    enabled: tune each model's decoder on dev before it is evaluated or decodes unlabeled audio
        (``selftrain run``) [False].
    blank_penalty: blank penalties to try (see :class:`~selftrain.decode.DecoderConfig`).
    beta: word insertion bonuses to try.
    alpha: LM weights to try.
    rounds: passes over the settings; the search stops early when a pass changes nothing [1].
    """

    enabled: bool = False
    blank_penalty: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 1.5, 2.0])
    beta: list[float] = field(default_factory=lambda: [0.0, 1.0, 2.0, 3.0])
    alpha: list[float] = field(default_factory=lambda: [0.5, 0.8, 1.1])
    rounds: int = 1

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ConfigError(f"decode_tuning.rounds must be >= 1, got {self.rounds}")
        for name in TUNED_SETTINGS:  # numbers given as text (``--set decode_tuning.beta=0,1,2``) are converted
            values = getattr(self, name)
            try:
                numbers = [float(v) for v in values if not isinstance(v, bool)] if isinstance(values, list) else None
            except (TypeError, ValueError):
                numbers = None
            if numbers is None or len(numbers) != len(values) or not all(math.isfinite(v) for v in numbers):
                raise ConfigError(f"decode_tuning.{name} must be a list of finite numbers, got {values!r}")
            setattr(self, name, numbers)
        if any(v < 0 for v in self.alpha):
            raise ConfigError(f"decode_tuning.alpha values must be >= 0, got {self.alpha}")
