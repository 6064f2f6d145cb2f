"""How well confidence scores detect errors: AUROC, AUPRC and expected calibration error.

Written with numpy because scikit-learn is not a dependency of selftrain. Convention: ``labels`` are
1 for the *positive* class and ``scores`` rank positives high. To measure detection of wrong words
from confidences, pass ``labels = wrong`` and ``scores = 1 - confidence`` (see
:func:`error_detection_metrics`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from selftrain.errors import ConfigError

__all__ = ["auroc", "auprc", "ece", "DetectionMetrics", "error_detection_metrics"]


def _check(scores: np.ndarray | list[float], labels: np.ndarray | list[int]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.size != y.size:
        raise ConfigError(f"{s.size} scores but {y.size} labels")
    return s, y


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(values.size)
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], values.size]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return ranks


def auroc(scores: np.ndarray | list[float], labels: np.ndarray | list[int]) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied scores counting 1/2); NaN if a class is missing.

    >>> auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    s, y = _check(scores, labels)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auprc(scores: np.ndarray | list[float], labels: np.ndarray | list[int]) -> float:
    """Average precision: sum over distinct thresholds of (recall gain) x precision; NaN without positives.

    >>> round(auprc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 4)
    0.8333
    """
    s, y = _check(scores, labels)
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    true_pos = np.cumsum(y_sorted)
    # Evaluate only at the last index of each group of tied scores (a threshold keeps all ties).
    last = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp = true_pos[last]
    predicted = np.flatnonzero(last) + 1
    precision = tp / predicted
    recall = tp / n_pos
    gains = np.diff(np.r_[0.0, recall])
    return float((gains * precision).sum())


def ece(confidences: np.ndarray | list[float], correct: np.ndarray | list[int], n_bins: int = 10) -> float:
    """Expected calibration error: ``sum_b |B|/N * |accuracy(B) - mean confidence(B)|`` over equal-width bins.

    Bin ``b`` holds confidences in ``(b/n, (b+1)/n]`` (the first bin also holds 0).

    >>> round(ece([0.9, 0.9, 0.2, 0.2], [1, 0, 0, 0], n_bins=10), 4)
    0.3
    """
    c, y = _check(confidences, correct)
    if c.size == 0:
        return float("nan")
    if n_bins < 1:
        raise ConfigError(f"n_bins must be >= 1, got {n_bins}")
    bins = np.clip(np.ceil(np.clip(c, 0.0, 1.0) * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        members = bins == b
        total += members.sum() / c.size * abs(y[members].mean() - c[members].mean())
    return float(total)


@dataclass
class DetectionMetrics:
    """Quality of one confidence method on words (or utterances) with known correctness."""

    count: int
    error_rate: float  # fraction of wrong items
    auroc: float  # detecting wrong items with 1 - confidence
    auprc: float  # average precision of that detection (chance level = error_rate)
    ece: float  # calibration error of the confidence as P(correct)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def error_detection_metrics(confidences: np.ndarray | list[float], correct: np.ndarray | list[int],
                            n_bins: int = 10) -> DetectionMetrics:
    """AUROC/AUPRC of detecting wrong items by low confidence, and the confidence's ECE."""
    c, y = _check(confidences, correct)
    wrong = ~y
    return DetectionMetrics(
        count=int(c.size),
        error_rate=float(wrong.mean()) if c.size else float("nan"),
        auroc=auroc(1.0 - c, wrong),
        auprc=auprc(1.0 - c, wrong),
        ece=ece(c, y, n_bins),
    )
