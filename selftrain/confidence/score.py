"""Word- and utterance-level confidence of one CTC beam-search (+ LM) hypothesis.

Which frames count for a word
    A word's frames are its span ``[start, end)`` from the decoder (clipped to the utterance).
    With ``frames="non_blank"`` (default) only the frames of the span whose most likely label is not
    the blank are used: those are the frames where the model emitted the word's tokens; blank
    frames inside a span mostly measure how sure the model is that *nothing* is said there. When a
    span has no non-blank frame (a word the LM inserted over blanks), all its frames are used. With
    ``frames="all"`` every frame of the span counts. A word with an empty or out-of-range span
    (external hypotheses without timing) gets no frame-based score.
How blanks are treated
    Measures use the full distribution over labels, blank included (the blank's probability is part
    of the model's uncertainty); blanks only decide *which* frames are selected.
Aggregation
    Frame values of a word are combined by ``mean``, ``min`` or ``prod`` (``word_aggregation``);
    word values into an utterance value by ``utterance_aggregation``. An utterance without words
    (empty hypothesis or no spans) is scored on its frames directly, chosen the same way.
Utterance-only scores
    ``nbest_posterior``, ``acoustic_posterior``, ``score_margin``, ``acoustic_margin`` (see
    :mod:`selftrain.confidence.nbest`) and ``loglik_per_frame`` = ``exp(acoustic_score / T)``, the
    geometric-mean per-frame likelihood of the hypothesis' best path (from the n-best entry, else from
    the frame maxima).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selftrain.confidence.frames import FRAME_MEASURES, frame_measures, log_softmax
from selftrain.confidence.nbest import hypothesis_posterior, score_margin, word_posteriors
from selftrain.errors import ConfigError
from selftrain.record import Hypothesis

__all__ = ["ConfidenceConfig", "score_hypothesis", "aggregate", "AGGREGATIONS", "FRAME_SELECTIONS"]

AGGREGATIONS = ("mean", "min", "prod")
FRAME_SELECTIONS = ("non_blank", "all")


@dataclass
class ConfidenceConfig:
    """How confidence is computed (defaults in brackets).

    frame_measures: frame-level measures to compute [all of :data:`FRAME_MEASURES`].
    entropy_alpha: the alpha of the entropies [1/3, the paper's recommendation].
    frames: which frames of a word span count, ``non_blank`` or ``all`` [non_blank].
    word_aggregation: frame values -> word value, ``mean``/``min``/``prod`` [mean].
    utterance_aggregation: word values -> utterance value [mean].
    nbest_temperature: temperature of the softmax over n-best scores [1.0].
    nbest_scores: compute the n-best based scores when an n-best list exists [True].
    """

    frame_measures: tuple[str, ...] = FRAME_MEASURES
    entropy_alpha: float = 1.0 / 3.0
    frames: str = "non_blank"
    word_aggregation: str = "mean"
    utterance_aggregation: str = "mean"
    nbest_temperature: float = 1.0
    nbest_scores: bool = True

    def __post_init__(self) -> None:
        self.frame_measures = tuple(self.frame_measures)
        if self.frames not in FRAME_SELECTIONS:
            raise ConfigError(f"frames must be one of {FRAME_SELECTIONS}, got {self.frames!r}")
        for name in (self.word_aggregation, self.utterance_aggregation):
            if name not in AGGREGATIONS:
                raise ConfigError(f"aggregation must be one of {AGGREGATIONS}, got {name!r}")
        if self.nbest_temperature <= 0:
            raise ConfigError(f"nbest_temperature must be > 0, got {self.nbest_temperature}")
        unknown = set(self.frame_measures) - set(FRAME_MEASURES)
        if unknown:
            raise ConfigError(f"unknown frame measure(s) {sorted(unknown)}; known: {', '.join(FRAME_MEASURES)}")


def aggregate(values: np.ndarray | list[float], how: str) -> float:
    """Combine values in [0, 1] by ``mean``, ``min`` or ``prod`` (product computed in log space)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise ConfigError("cannot aggregate an empty list of values")
    if how == "mean":
        return float(array.mean())
    if how == "min":
        return float(array.min())
    if how == "prod":
        return float(np.exp(np.log(np.maximum(array, 1e-300)).sum()))
    raise ConfigError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")


def _select_frames(non_blank: np.ndarray, start: int, end: int, how: str) -> np.ndarray:
    """Frame indices of span ``[start, end)`` chosen by ``how`` (see module docstring)."""
    start, end = max(start, 0), min(end, non_blank.size)
    if end <= start:
        return np.empty(0, dtype=np.int64)
    span = np.arange(start, end)
    if how == "non_blank":
        chosen = span[non_blank[start:end]]
        if chosen.size:
            return chosen
    return span


def _frame_scores(log_p: np.ndarray, hyp: Hypothesis, blank: int, config: ConfidenceConfig) -> None:
    measures = frame_measures(log_p, config.frame_measures, config.entropy_alpha)
    non_blank = log_p.argmax(axis=-1) != blank
    per_method: dict[str, list[float]] = {m: [] for m in measures}
    for word in hyp.words:
        frames = _select_frames(non_blank, word.start, word.end, config.frames)
        if frames.size == 0:
            continue
        for name, values in measures.items():
            value = aggregate(values[frames], config.word_aggregation)
            word.scores[name] = value
            per_method[name].append(value)
    if any(per_method.values()):
        for name, word_values in per_method.items():
            hyp.scores[name] = aggregate(word_values, config.utterance_aggregation)
        return
    frames = _select_frames(non_blank, 0, non_blank.size, config.frames)
    for name, values in measures.items():
        hyp.scores[name] = aggregate(values[frames], config.utterance_aggregation)


def _nbest_scores(log_p: np.ndarray, hyp: Hypothesis, config: ConfidenceConfig) -> None:
    temp = config.nbest_temperature
    target = hyp.text
    matches = [e for e in hyp.nbest if " ".join(e.text.split()) == " ".join(target.split())]
    acoustic = max(e.acoustic_score for e in matches) if matches else float(log_p.max(axis=-1).sum())
    hyp.scores["loglik_per_frame"] = float(np.exp(acoustic / max(log_p.shape[0], 1)))
    if not (config.nbest_scores and hyp.nbest):
        return
    hyp.scores["nbest_posterior"] = hypothesis_posterior(target, hyp.nbest, temp) or 0.0
    hyp.scores["acoustic_posterior"] = hypothesis_posterior(target, hyp.nbest, temp, acoustic_only=True) or 0.0
    hyp.scores["score_margin"] = score_margin(target, hyp.nbest, temp) or 0.0
    hyp.scores["acoustic_margin"] = score_margin(target, hyp.nbest, temp, acoustic_only=True) or 0.0
    posteriors = word_posteriors([w.word for w in hyp.words], hyp.nbest, temp)
    if posteriors is None:
        return
    for word, value in zip(hyp.words, posteriors, strict=True):
        word.scores["word_posterior"] = value
    hyp.scores["word_posterior"] = aggregate(posteriors, config.utterance_aggregation)


def score_hypothesis(log_probs: np.ndarray, hyp: Hypothesis, blank: int = 0,
                     config: ConfidenceConfig | None = None) -> None:
    """Fill ``hyp.words[i].scores`` and ``hyp.scores`` (method -> [0, 1], higher = more likely right) in place.

    ``log_probs`` is the ``[T, V]`` log-softmax output of one utterance (valid frames only), ``blank``
    the blank label's index; ``hyp.words`` carry frame spans ``[start, end)`` and ``hyp.nbest`` the
    beam's n-best list (optional). Words of ``hyp.text`` missing from ``hyp.words`` are not added.
    """
    config = config or ConfidenceConfig()
    log_probs = np.asarray(log_probs)
    if log_probs.ndim != 2 or log_probs.shape[0] == 0:
        raise ConfigError(f"log_probs must be a non-empty [T, V] array, got shape {log_probs.shape}")
    if not 0 <= blank < log_probs.shape[1]:
        raise ConfigError(f"blank index {blank} outside the vocabulary of size {log_probs.shape[1]}")
    log_p = log_softmax(log_probs)
    _frame_scores(log_p, hyp, blank, config)
    _nbest_scores(log_p, hyp, config)
