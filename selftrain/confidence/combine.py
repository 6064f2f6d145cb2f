"""A learned combination of confidence methods: logistic regression on several scores' logits.

Each method catches other errors (frame entropy: acoustic doubt; n-best word posterior: competing
transcripts, LM included), so a weighted combination fit on a labeled dev set usually detects wrong
words better than any one score and is calibrated by construction (it predicts P(right) directly).
Word-level combiners use word scores; utterance-level ones use utterance scores (e.g.
``nbest_posterior``, ``score_margin``, ``loglik_per_frame`` besides the aggregated word scores).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from selftrain.confidence.logistic import fit_logistic, sigmoid
from selftrain.errors import ConfigError

__all__ = ["COMBINED", "Combiner", "fit_combiner"]

COMBINED = "combined"
_EPS = 1e-6


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
