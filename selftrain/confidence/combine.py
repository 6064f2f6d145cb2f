"""A learned combination of confidence methods: logistic regression on several scores' logits.

Each method catches other errors (frame entropy: acoustic doubt; n-best word posterior: competing
transcripts, LM included), so a weighted combination fit on a labeled dev set usually detects wrong
words better than any one score and is calibrated by construction (it predicts P(right) directly).
Word-level combiners use word scores and the word's context (:func:`word_feature_rows`: its
hypothesis' utterance scores and two lexical features: a word in a badly recognised utterance, or
a short word, is more often wrong whatever its own scores say); utterance-level ones use utterance
scores (e.g. ``nbest_posterior``, ``score_margin``, ``loglik_per_frame`` besides the aggregated
word scores).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from selftrain.confidence.logistic import fit_logistic, sigmoid
from selftrain.errors import ConfigError
from selftrain.record import Hypothesis

__all__ = ["COMBINED", "CALIBRATED_SUFFIX", "CONTEXT_PREFIX", "LEXICAL_FEATURES", "Combiner", "fit_combiner",
           "word_feature_rows", "is_raw_score"]

COMBINED = "combined"
CALIBRATED_SUFFIX = "_calibrated"
CONTEXT_PREFIX = "utterance:"  # word features that are the word's hypothesis' utterance scores
LEXICAL_FEATURES = ("word_chars", "word_position")
_EPS = 1e-6


def is_raw_score(name: str) -> bool:
    """A score a method computed (not a calibrated copy, not the combination itself)."""
    return not name.endswith(CALIBRATED_SUFFIX) and name != COMBINED


def word_feature_rows(hyp: Hypothesis) -> list[dict[str, float]]:
    """What a word-level combination sees of each word of ``hyp``: the word's scores, the raw utterance
    scores of ``hyp`` (as ``utterance:<name>``), ``word_chars`` = 1 - 1/(1 + letters) and
    ``word_position`` = where the word stands in the hypothesis, in (0, 1).

    >>> from selftrain.record import Hypothesis, Word
    >>> word_feature_rows(Hypothesis("t", "hi", [Word("hi", 0, 2, {"max_prob": 0.9})], scores={"max_prob": 0.8}))
    [{'max_prob': 0.9, 'utterance:max_prob': 0.8, 'word_chars': 0.6666666666666667, 'word_position': 0.5}]
    """
    context = {CONTEXT_PREFIX + name: value for name, value in hyp.scores.items() if is_raw_score(name)}
    count = len(hyp.words)
    return [{**word.scores, **context, "word_chars": 1.0 - 1.0 / (1 + len(word.word)),
             "word_position": (k + 0.5) / count} for k, word in enumerate(hyp.words)]


def _features(columns: np.ndarray) -> np.ndarray:
    clipped = np.clip(columns, _EPS, 1 - _EPS)
    return np.log(clipped) - np.log1p(-clipped)


@dataclass
class Combiner:
    """``P(right) = sigmoid(sum_k w_k * (logit(s_k) - center_k) / scale_k + bias)`` over ``inputs``."""

    inputs: list[str]
    weights: list[float]
    centers: list[float]
    scales: list[float]
    bias: float

    def __call__(self, scores: dict[str, float]) -> float | None:
        """The combined probability for one item's ``{method: score}``; None if an input is missing."""
        if any(name not in scores for name in self.inputs):
            return None
        x = _features(np.array([[scores[name] for name in self.inputs]], dtype=np.float64))[0]
        z = float(np.dot(self.weights, (x - np.array(self.centers)) / np.array(self.scales)) + self.bias)
        return float(sigmoid(np.array(z)))

    def to_dict(self) -> dict:
        return asdict(self)


def fit_combiner(rows: list[dict[str, float]], correct: list[bool] | list[float] | np.ndarray, inputs: list[str],
                 l2: float = 1.0) -> Combiner:
    """Fit a :class:`Combiner` on items' score dicts ``rows`` and their correctness (booleans, or targets in
    [0, 1] such as word accuracies); rows missing an input are skipped."""
    if not inputs:
        raise ConfigError("a combination needs at least one input method")
    usable = [(r, c) for r, c in zip(rows, correct, strict=True) if all(name in r for name in inputs)]
    if not usable:
        raise ConfigError(f"no labeled item has all of {inputs}")
    x = _features(np.array([[r[name] for name in inputs] for r, _ in usable], dtype=np.float64))
    y = np.array([c for _, c in usable], dtype=np.float64)
    centers, scales = x.mean(axis=0), x.std(axis=0)
    scales[scales == 0] = 1.0
    features = np.hstack([(x - centers) / scales, np.ones((len(x), 1))])
    theta = fit_logistic(features, y, l2)
    return Combiner(list(inputs), theta[:-1].tolist(), centers.tolist(), scales.tolist(), float(theta[-1]))
