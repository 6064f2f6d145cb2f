"""Measuring pseudo-label quality against references: WER vs kept fraction, and word-level detection.

Used by ``benchmarks/pseudo_label_quality.py`` and by audits. A *ranking* orders utterances (best
first) by a score; keeping the top fraction ``f`` and computing the corpus WER of their pseudo-labels
gives one point of the WER-vs-kept-fraction curve. Calibration is measured with two-fold
cross-validation over utterances (fit on one half, measure ECE on the other) so ECE after
calibration is not measured on the data it was fit on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import jiwer
import numpy as np

from selftrain.confidence.calibrate import Calibrator, hypothesis_words, word_correctness
from selftrain.confidence.combine import COMBINED, fit_combiner, is_raw_score, word_feature_rows
from selftrain.confidence.metrics import error_detection_metrics
from selftrain.record import Hypothesis, Utterance
from selftrain.text import TextNormalizer

__all__ = ["Labeled", "labeled_items", "wer_at_fractions", "word_detection", "utterance_wer",
           "cross_validated_combination"]

DEFAULT_FRACTIONS = (1.0, 0.8, 0.6, 0.4)


@dataclass
class Labeled:
    """One utterance's pseudo-label with its (normalised) reference."""

    utt: Utterance
    hyp: Hypothesis
    reference: str


def labeled_items(utterances: list[Utterance], pick: Callable[[Utterance], Hypothesis | None],
                  normalizer: TextNormalizer | None = None) -> list[Labeled]:
    """Utterances with a reference and a hypothesis chosen by ``pick``."""
    normalizer = normalizer or TextNormalizer()
    items = []
    for utt in utterances:
        hyp = pick(utt)
        if hyp is not None and utt.reference is not None:
            items.append(Labeled(utt, hyp, normalizer(utt.reference)))
    return items


def utterance_wer(item: Labeled) -> float:
    """The WER of one pseudo-label (insertions count when the reference is empty)."""
    if not item.reference.split():
        return float(len(item.hyp.text.split()))
    return float(jiwer.wer(item.reference, item.hyp.text))


def _corpus_wer(items: list[Labeled]) -> float:
    if not items:
        return float("nan")
    ref_words = sum(len(i.reference.split()) for i in items)
    out = jiwer.process_words([i.reference for i in items], [i.hyp.text for i in items])
    errors = out.substitutions + out.deletions + out.insertions
    return errors / ref_words if ref_words else float(errors)


def wer_at_fractions(items: list[Labeled], score: Callable[[Labeled], float | None],
                     fractions: tuple[float, ...] = DEFAULT_FRACTIONS) -> dict[str, float]:
    """Corpus WER of the top-``f`` pseudo-labels by ``score`` (items without a score rank last)."""
    ranked = sorted(items, key=lambda i: -np.inf if (s := score(i)) is None else s, reverse=True)
    out = {}
    for fraction in fractions:
        count = int(round(fraction * len(ranked)))
        out[f"{fraction:g}"] = _corpus_wer(ranked[:count])
    return out


def _word_data(items: list[Labeled], method: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Word scores, correctness and the utterance index of each scored word."""
    scores, correct, groups = [], [], []
    for k, item in enumerate(items):
        labels = word_correctness(hypothesis_words(item.hyp), item.reference)
        for word, ok in zip(item.hyp.words, labels, strict=False):
            if method in word.scores:
                scores.append(word.scores[method])
                correct.append(ok)
                groups.append(k)
    return np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool), np.asarray(groups)


def _cross_validated_ece(scores: np.ndarray, correct: np.ndarray, groups: np.ndarray, kind: str) -> float:
    """ECE of calibrated scores, each half calibrated by a map fit on the other half (split by utterance)."""
    fold = groups % 2 == 0
    if fold.all() or (~fold).all():
        return float("nan")
    calibrated = np.empty_like(scores)
    for test in (fold, ~fold):
        calibrated[test] = Calibrator.fit(kind, scores[~test], correct[~test])(scores[test])
    return error_detection_metrics(calibrated, correct).ece


def word_detection(items: list[Labeled], method: str) -> dict[str, float] | None:
    """Word AUROC/AUPRC for detecting wrong words, ECE raw and after (cross-validated) calibration."""
    scores, correct, groups = _word_data(items, method)
    if scores.size == 0:
        return None
    metrics = error_detection_metrics(scores, correct).to_dict()
    metrics["ece_isotonic"] = _cross_validated_ece(scores, correct, groups, "isotonic")
    metrics["ece_temperature"] = _cross_validated_ece(scores, correct, groups, "temperature")
    return metrics


def _inputs(rows: list[dict[str, float]]) -> list[str]:
    """Score names present in at least 90 % of rows (raw scores only)."""
    names = {k for r in rows for k in r if is_raw_score(k) and k not in ("agreement", "rover")}
    return sorted(n for n in names if sum(n in r for r in rows) >= 0.9 * len(rows))


def cross_validated_combination(items: list[Labeled]) -> tuple[list[Labeled], dict[str, float] | None]:
    """Two-fold (by utterance) learned combinations: returns copies of ``items`` whose words and
    hypotheses carry a ``combined`` score fit on the other fold, and the word-level detection metrics."""
    word_rows = [word_feature_rows(item.hyp) for item in items]
    word_labels = [word_correctness(hypothesis_words(item.hyp), item.reference)[:len(item.hyp.words)] for item in items]
    utt_rows = [dict(item.hyp.scores) for item in items]
    utt_labels = [hypothesis_words(item.hyp) == item.reference.split() for item in items]
    out = [Labeled(i.utt, copy.deepcopy(i.hyp), i.reference) for i in items]
    folds = [k % 2 == 0 for k in range(len(items))]
    for test_fold in (True, False):
        train = [k for k, f in enumerate(folds) if f != test_fold]
        test = [k for k, f in enumerate(folds) if f == test_fold]
        flat_rows = [r for k in train for r in word_rows[k]]
        flat_labels = [c for k in train for c in word_labels[k]]
        word_inputs = _inputs(flat_rows) if flat_rows else []
        if word_inputs and len(set(flat_labels)) == 2:
            combiner = fit_combiner(flat_rows, flat_labels, word_inputs)
            for k in test:
                for word, features in zip(out[k].hyp.words, word_rows[k], strict=True):
                    if (value := combiner(features)) is not None:
                        word.scores[COMBINED] = value
        utt_inputs = _inputs([utt_rows[k] for k in train])
        if utt_inputs and len({utt_labels[k] for k in train}) == 2:
            combiner = fit_combiner([utt_rows[k] for k in train], [utt_labels[k] for k in train], utt_inputs)
            for k in test:
                if (value := combiner(out[k].hyp.scores)) is not None:
                    out[k].hyp.scores[COMBINED] = value
    scores, correct, _ = _word_data(out, COMBINED)
    metrics = error_detection_metrics(scores, correct).to_dict() if scores.size else None
    return out, metrics
