"""What an audit needs of each utterance, gathered in one pass: scores and sizes, never the records.

:class:`ScoreTable` reads utterances one at a time (e.g. a selection's ``decisions.jsonl`` as a
stream) and keeps, per utterance, its duration, its edit counts against the reference and every
utterance-level score; per word of the utterances that have a reference, each word score and
whether the word is right. Sweeps (:func:`~selftrain.audit.sweep.sweep_table`) and the word-level
figures are computed from it exactly as from the records.

>>> table = ScoreTable(Utterance.from_dict(row) for row in read_jsonl("decisions.jsonl"))  # doctest: +SKIP
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable

import jiwer
import numpy as np

from selftrain.audit.sweep import AGREEMENT_PREFIX, SELECTION_SCORE, ErrorCounts, _pseudo_label
from selftrain.confidence.calibrate import (
    CALIBRATED_SUFFIX,
    hypothesis_words,
    pick_hypothesis,
    word_correctness,
)
from selftrain.record import Hypothesis, Utterance
from selftrain.sums import ExactSum
from selftrain.text import TextNormalizer

__all__ = ["ScoreTable"]


def _edit_count(out) -> int:
    return out.substitutions + out.deletions + out.insertions


class _Column:
    """One number per utterance (stored as a double), ``fill`` for the utterances before its first value."""

    def __init__(self, fill: float):
        self.values: array[float] = array("d")
        self.fill = fill

    def set(self, index: int, value: float) -> None:
        while len(self.values) <= index:
            self.values.append(self.fill)
        self.values[index] = value

    def to_numpy(self, size: int, dtype: type) -> np.ndarray:
        values = np.full(size, self.fill, dtype=np.float64)
        values[: len(self.values)] = np.frombuffer(self.values, dtype=np.float64)
        return values.astype(dtype)


class ScoreTable:
    """Scores and sizes of a set of utterances for :func:`~selftrain.audit.report.run_audit_table`
    (``teacher``: whose hypothesis is audited, the first one when None)."""

    def __init__(self, utterances: Iterable[Utterance], teacher: str | None = None,
                 normalizer: TextNormalizer | None = None):
        self.teacher = teacher
        self.normalizer = normalizer or TextNormalizer()
        self.size = 0
        self.names: set[str] = set()
        self.with_reference = 0
        self._seconds = ExactSum()  # run_audit's exact_sum of the durations, to the last digit
        self._durations = array("d")
        self._edits = {key: array("q") for key in ("word_errors", "ref_words", "char_errors", "ref_chars")}
        self._scores: dict[str, _Column] = {}
        self._wrong: dict[str, _Column] = {}
        self._counted: dict[str, _Column] = {}
        self._word_scores: dict[str, tuple[array, bytearray]] = {}
        for utt in utterances:
            self._add(utt)

    def _add(self, utt: Utterance) -> None:
        index, hyp = self.size, pick_hypothesis(utt, self.teacher)
        self.size += 1
        self._seconds.add(utt.duration)
        self.with_reference += utt.reference is not None
        self._durations.append(utt.duration)
        self._add_edits(utt)
        self._add_scores(index, utt, hyp)
        if hyp is not None:
            self._add_confidence_sums(index, hyp)
            if utt.reference is not None:
                self._add_word_scores(hyp, self.normalizer(utt.reference))

    def _add_edits(self, utt: Utterance) -> None:
        reference = self.normalizer(utt.reference) if utt.reference is not None else ""
        counts = (0, 0, 0, 0)
        if reference:
            label = _pseudo_label(utt, self.teacher)
            counts = (_edit_count(jiwer.process_words(reference, label)), len(reference.split()),
                      _edit_count(jiwer.process_characters(reference, label)), len(reference))
        for key, value in zip(self._edits, counts, strict=True):
            self._edits[key].append(value)

    def _add_scores(self, index: int, utt: Utterance, hyp: Hypothesis | None) -> None:
        values: dict[str, float | None] = {}
        if hyp is not None:  # names that mean the selection or an agreement are never read from a hypothesis
            values.update((k, v) for k, v in hyp.scores.items() if k != SELECTION_SCORE and not k.startswith(AGREEMENT_PREFIX))
            self.names.update(k for k in hyp.scores if not k.endswith(CALIBRATED_SUFFIX))
        values.update((AGREEMENT_PREFIX + k, v) for k, v in utt.agreement.items())
        self.names.update(AGREEMENT_PREFIX + k for k in utt.agreement)
        if utt.confidence is not None:
            values[SELECTION_SCORE] = utt.confidence
            self.names.add(SELECTION_SCORE)
        for name, value in values.items():
            if value is not None:
                self._scores.setdefault(name, _Column(math.nan)).set(index, float(value))

    def _add_confidence_sums(self, index: int, hyp: Hypothesis) -> None:
        sums: dict[str, list[float]] = {}
        for word in hyp.words:
            for key, value in word.scores.items():
                if key.endswith(CALIBRATED_SUFFIX):
                    sums.setdefault(key[: -len(CALIBRATED_SUFFIX)], []).append(value)
        for name, values in sums.items():
            self._wrong.setdefault(name, _Column(0.0)).set(index, sum(1.0 - v for v in values))
            self._counted.setdefault(name, _Column(0)).set(index, len(values))

    def _add_word_scores(self, hyp: Hypothesis, reference: str) -> None:
        for word, ok in zip(hyp.words, word_correctness(hypothesis_words(hyp), reference), strict=False):
            for key, value in word.scores.items():
                scores, correct = self._word_scores.setdefault(key, (array("d"), bytearray()))
                scores.append(value)
                correct.append(bool(ok))

    @property
    def hours(self) -> float:
        return self._seconds.value / 3600

    def durations(self) -> np.ndarray:
        return np.frombuffer(self._durations, dtype=np.float64).copy() if self.size else np.zeros(0)

    def errors(self) -> ErrorCounts:
        """The edit counts of :func:`~selftrain.audit.sweep.error_counts`."""
        arrays = [np.frombuffer(self._edits[key], dtype=np.int64).copy() if self.size else np.zeros(0, dtype=np.int64)
                  for key in ("word_errors", "ref_words", "char_errors", "ref_chars")]
        return ErrorCounts(*arrays)

    def scores(self, name: str) -> np.ndarray:
        """:func:`~selftrain.audit.sweep.utterance_scores` of ``name`` (NaN where missing)."""
        column = self._scores.get(name)
        return column.to_numpy(self.size, np.float64) if column else np.full(self.size, math.nan)

    def confidence_sums(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Per utterance: the sum of (1 - calibrated word confidence of ``name``) and the number of such words."""
        wrong, counted = self._wrong.get(name), self._counted.get(name)
        if wrong is None or counted is None:
            return np.zeros(self.size), np.zeros(self.size, dtype=np.int64)
        return wrong.to_numpy(self.size, np.float64), counted.to_numpy(self.size, np.int64)

    def word_scores(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """:func:`~selftrain.confidence.calibrate.labeled_scores` at word level: ``(scores, correct)``."""
        scores, correct = self._word_scores.get(name, (array("d"), bytearray()))
        return (np.frombuffer(scores, dtype=np.float64).copy() if scores else np.zeros(0),
                np.frombuffer(bytes(correct), dtype=np.bool_).copy() if correct else np.zeros(0, dtype=bool))
