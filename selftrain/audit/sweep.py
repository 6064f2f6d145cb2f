"""Threshold sweeps: how much pseudo-labeled data each confidence threshold keeps, and how wrong it is.

For one score (a teacher hypothesis' utterance-level confidence, an agreement score, or the selection
score), sort utterances by it and measure, at each threshold, the kept fraction and hours, the
pseudo-label WER/CER of the kept part when references exist, and an estimate of that WER from
calibrated word confidences when they do not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import jiwer
import numpy as np

from selftrain.confidence.calibrate import CALIBRATED_SUFFIX, pick_hypothesis
from selftrain.record import Utterance
from selftrain.text import TextNormalizer

__all__ = ["SweepPoint", "score_names", "utterance_scores", "sweep", "recommend_threshold", "DEFAULT_FRACTIONS"]

# Kept fractions at which sweeps are evaluated (thresholds are the matching score quantiles).
DEFAULT_FRACTIONS = tuple(round(f, 2) for f in np.linspace(1.0, 0.1, 19))
SELECTION_SCORE = "selection"  # Utterance.confidence, the score selection used
AGREEMENT_PREFIX = "agreement:"


@dataclass
class SweepPoint:
    """The kept part of the data at one threshold (``score >= threshold`` is kept)."""

    threshold: float
    kept: int
    kept_fraction: float
    kept_hours: float
    wer: float | None = None  # measured on the kept part (references needed)
    cer: float | None = None
    estimated_wer: float | None = None  # from calibrated word confidences

    def to_dict(self) -> dict:
        return asdict(self)


def score_names(utterances: Sequence[Utterance], teacher: str | None = None) -> list[str]:
    """Every utterance-level score present: hypothesis scores, ``agreement:*`` and ``selection``."""
    names: set[str] = set()
    for utt in utterances:
        hyp = pick_hypothesis(utt, teacher)
        if hyp is not None:
            names.update(k for k in hyp.scores if not k.endswith(CALIBRATED_SUFFIX))
        names.update(AGREEMENT_PREFIX + k for k in utt.agreement)
        if utt.confidence is not None:
            names.add(SELECTION_SCORE)
    return sorted(names)


def _score(utt: Utterance, name: str, teacher: str | None) -> float:
    if name == SELECTION_SCORE:
        value = utt.confidence
    elif name.startswith(AGREEMENT_PREFIX):
        value = utt.agreement.get(name[len(AGREEMENT_PREFIX):])
    else:
        hyp = pick_hypothesis(utt, teacher)
        value = hyp.scores.get(name) if hyp is not None else None
    return math.nan if value is None else float(value)


def utterance_scores(utterances: Sequence[Utterance], name: str, teacher: str | None = None) -> np.ndarray:
    """The named score of every utterance (NaN where missing)."""
    return np.array([_score(u, name, teacher) for u in utterances], dtype=np.float64)


def _pseudo_label(utt: Utterance, teacher: str | None) -> str:
    if teacher is None and utt.pseudo_label is not None:
        return utt.pseudo_label
    hyp = pick_hypothesis(utt, teacher)
    return hyp.text if hyp is not None else ""


def _error_rates(kept: Sequence[Utterance], teacher: str | None, normalizer: TextNormalizer) -> tuple[float | None, float | None]:
    pairs = [(normalizer(u.reference), _pseudo_label(u, teacher)) for u in kept if u.reference is not None]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return None, None
    refs, hyps = zip(*pairs, strict=True)
    return float(jiwer.wer(list(refs), list(hyps))), float(jiwer.cer(list(refs), list(hyps)))


def _estimated_wer(kept: Sequence[Utterance], name: str, teacher: str | None) -> float | None:
    """Expected fraction of wrong words: mean of (1 - calibrated word confidence) over kept words."""
    key = name + CALIBRATED_SUFFIX
    wrong, total = 0.0, 0
    for utt in kept:
        hyp = pick_hypothesis(utt, teacher)
        for word in hyp.words if hyp is not None else []:
            if key in word.scores:
                wrong += 1.0 - word.scores[key]
                total += 1
    return wrong / total if total else None


def sweep(
    utterances: Sequence[Utterance],
    name: str,
    teacher: str | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    normalizer: TextNormalizer | None = None,
) -> list[SweepPoint]:
    """Evaluate keeping the top ``fraction`` of utterances by score ``name``, for each fraction.

    Utterances without the score are never kept. Thresholds are the scores of the last kept
    utterance, so ``score >= threshold`` reproduces each point.
    """
    normalizer = normalizer or TextNormalizer()
    scores = utterance_scores(utterances, name, teacher)
    order = [i for i in np.argsort(-scores, kind="stable") if not math.isnan(scores[i])]
    points = []
    for fraction in fractions:
        count = min(len(order), int(round(fraction * len(utterances))))
        if count == 0:
            continue
        kept = [utterances[i] for i in order[:count]]
        wer, cer = _error_rates(kept, teacher, normalizer)
        points.append(
            SweepPoint(
                threshold=float(scores[order[count - 1]]),
                kept=count,
                kept_fraction=count / len(utterances),
                kept_hours=sum(u.duration for u in kept) / 3600,
                wer=wer,
                cer=cer,
                estimated_wer=_estimated_wer(kept, name, teacher),
            )
        )
    return points


def recommend_threshold(points: Sequence[SweepPoint], target_wer: float) -> SweepPoint | None:
    """The point keeping the most data whose pseudo-label WER (measured, else estimated) is <= target."""
    def wer_of(point: SweepPoint) -> float | None:
        return point.wer if point.wer is not None else point.estimated_wer

    good = [p for p in points if wer_of(p) is not None and wer_of(p) <= target_wer]  # type: ignore[operator]
    return max(good, key=lambda p: (p.kept, -p.threshold)) if good else None
