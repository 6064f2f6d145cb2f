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
from typing import TYPE_CHECKING

import jiwer
import numpy as np

from selftrain.confidence.calibrate import CALIBRATED_SUFFIX, pick_hypothesis
from selftrain.record import Utterance
from selftrain.text import TextNormalizer

if TYPE_CHECKING:
    from selftrain.audit.table import ScoreTable

__all__ = ["SweepPoint", "ErrorCounts", "error_counts", "score_names", "utterance_scores", "sweep", "sweep_table",
           "sweep_points", "recommend_threshold", "choose_threshold", "DEFAULT_FRACTIONS", "SELECTION_FRACTIONS"]

# Kept fractions at which sweeps are evaluated (thresholds are the matching score quantiles).
DEFAULT_FRACTIONS = tuple(round(f, 2) for f in np.linspace(1.0, 0.1, 19))
# Kept fractions at which a selection's automatic threshold is chosen on dev.
SELECTION_FRACTIONS = tuple(round(0.05 * k, 2) for k in range(20, 0, -1))
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


@dataclass
class ErrorCounts:
    """Per-utterance edit counts of the pseudo-labels against the references (0 where none).

    Corpus WER of any subset is ``word_errors[subset].sum() / ref_words[subset].sum()``, exactly
    what jiwer computes on the subset, so a sweep aligns every utterance once instead of once per
    threshold.
    """

    word_errors: np.ndarray
    ref_words: np.ndarray
    char_errors: np.ndarray
    ref_chars: np.ndarray


def _edits(output) -> np.ndarray:
    """Substitutions + deletions + insertions of every sentence of a jiwer output."""
    counts = []
    for chunks in output.alignments:
        count = 0
        for chunk in chunks:
            if chunk.type in ("substitute", "delete"):
                count += chunk.ref_end_idx - chunk.ref_start_idx
            elif chunk.type == "insert":
                count += chunk.hyp_end_idx - chunk.hyp_start_idx
        counts.append(count)
    return np.array(counts, dtype=np.int64)


def error_counts(utterances: Sequence[Utterance], teacher: str | None = None,
                 normalizer: TextNormalizer | None = None) -> ErrorCounts:
    """Align each pseudo-label with its normalised reference once (jiwer); utterances without a
    (non-empty) reference count zero words, as jiwer would leave them out."""
    normalizer = normalizer or TextNormalizer()
    size = len(utterances)
    counts = ErrorCounts(*(np.zeros(size, dtype=np.int64) for _ in range(4)))
    index, refs, hyps = [], [], []
    for i, utt in enumerate(utterances):
        reference = normalizer(utt.reference) if utt.reference is not None else ""
        if reference:
            index.append(i)
            refs.append(reference)
            hyps.append(_pseudo_label(utt, teacher))
    if index:
        counts.word_errors[index] = _edits(jiwer.process_words(refs, hyps))
        counts.ref_words[index] = [len(r.split()) for r in refs]
        counts.char_errors[index] = _edits(jiwer.process_characters(refs, hyps))
        counts.ref_chars[index] = [len(r) for r in refs]
    return counts


def _confidence_sums(utterances: Sequence[Utterance], name: str, teacher: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Per utterance: the sum of (1 - calibrated word confidence) and the number of such words."""
    key = name + CALIBRATED_SUFFIX
    wrong, words = np.zeros(len(utterances)), np.zeros(len(utterances), dtype=np.int64)
    for i, utt in enumerate(utterances):
        hyp = pick_hypothesis(utt, teacher)
        values = [w.scores[key] for w in (hyp.words if hyp is not None else []) if key in w.scores]
        wrong[i], words[i] = sum(1.0 - v for v in values), len(values)
    return wrong, words


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator else None


def sweep(
    utterances: Sequence[Utterance],
    name: str,
    teacher: str | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    normalizer: TextNormalizer | None = None,
    errors: ErrorCounts | None = None,
) -> list[SweepPoint]:
    """Evaluate keeping the top ``fraction`` of utterances by score ``name``, for each fraction.

    Utterances without the score are never kept. Thresholds are the scores of the last kept
    utterance, so ``score >= threshold`` reproduces each point. ``errors`` (from
    :func:`error_counts` with the same ``teacher``) saves re-aligning when several scores are swept.
    """
    errors = errors or error_counts(utterances, teacher, normalizer)
    wrong, words = _confidence_sums(utterances, name, teacher)
    durations = np.array([u.duration for u in utterances], dtype=np.float64)
    return sweep_points(utterance_scores(utterances, name, teacher), durations, errors, wrong, words, fractions)


def sweep_table(table: ScoreTable, name: str, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                errors: ErrorCounts | None = None) -> list[SweepPoint]:
    """:func:`sweep` from a :class:`~selftrain.audit.table.ScoreTable` (same points)."""
    wrong, words = table.confidence_sums(name)
    return sweep_points(table.scores(name), table.durations(), errors or table.errors(), wrong, words, fractions)


def sweep_points(scores: np.ndarray, durations: np.ndarray, errors: ErrorCounts, wrong: np.ndarray, words: np.ndarray,
                 fractions: Sequence[float] = DEFAULT_FRACTIONS) -> list[SweepPoint]:
    """The sweep's points from one value per utterance: score, duration, edit counts, calibrated-word sums."""
    size = len(scores)
    order = np.array([i for i in np.argsort(-scores, kind="stable") if not math.isnan(scores[i])], dtype=np.int64)
    cumulative = {key: np.cumsum(values[order]) for key, values in {
        "word_errors": errors.word_errors, "ref_words": errors.ref_words, "char_errors": errors.char_errors,
        "ref_chars": errors.ref_chars, "wrong": wrong, "words": words, "seconds": durations}.items()}
    points = []
    for fraction in fractions:
        count = min(len(order), int(round(fraction * size)))
        if count == 0:
            continue
        at = {key: values[count - 1] for key, values in cumulative.items()}
        points.append(
            SweepPoint(
                threshold=float(scores[order[count - 1]]),
                kept=count,
                kept_fraction=count / size,
                kept_hours=float(at["seconds"]) / 3600,
                wer=_ratio(at["word_errors"], at["ref_words"]),
                cer=_ratio(at["char_errors"], at["ref_chars"]),
                estimated_wer=_ratio(at["wrong"], at["words"]),
            )
        )
    return points


def recommend_threshold(points: Sequence[SweepPoint], target_wer: float) -> SweepPoint | None:
    """The point keeping the most data whose pseudo-label WER (measured, else estimated) is <= target."""
    def wer_of(point: SweepPoint) -> float | None:
        return point.wer if point.wer is not None else point.estimated_wer

    good = [p for p in points if wer_of(p) is not None and wer_of(p) <= target_wer]  # type: ignore[operator]
    return max(good, key=lambda p: (p.kept, -p.threshold)) if good else None


def choose_threshold(points: Sequence[SweepPoint], target_wer: float, min_keep_fraction: float) -> SweepPoint | None:
    """:func:`recommend_threshold`, lowered when needed so that at least ``min_keep_fraction`` is kept
    (the point keeping the least among those that keep enough); None when no point qualifies."""
    chosen = recommend_threshold(points, target_wer)
    if chosen is None or chosen.kept_fraction < min_keep_fraction:
        floor = [p for p in points if p.kept_fraction >= min_keep_fraction]
        chosen = min(floor, key=lambda p: p.kept_fraction) if floor else chosen
    return chosen
