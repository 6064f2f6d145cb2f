"""Calibration: turn raw confidence scores into "probability that the word (utterance) is right".

Fit on a labeled dev set decoded by the teacher: every hypothesis word is labeled correct when jiwer's
alignment to the reference marks it ``equal`` (substituted and inserted words are wrong); an
utterance is correct when its hypothesis equals the reference. Two maps per method and level:

* ``temperature``: ``sigmoid(logit(s) / T + b)``, temperature scaling with a bias (a one-feature
  logistic regression on the score's logit, fit by damped Newton steps on the log-loss);
* ``isotonic``: the increasing fit of the labels (pool-adjacent-violators), through the centres of
  its blocks with linear interpolation between them, clamped at the ends.

Calibrations are saved as JSON and applied to records by adding ``<method>_calibrated`` beside each
raw score (the raw score is kept), plus ``combined``: a logistic regression on all methods' scores
(:mod:`~selftrain.confidence.combine`), a calibrated probability by construction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jiwer
import numpy as np

from selftrain.confidence.combine import (
    CALIBRATED_SUFFIX,
    COMBINED,
    CONTEXT_PREFIX,
    LEXICAL_FEATURES,
    Combiner,
    fit_combiner,
    is_raw_score,
    word_feature_rows,
)
from selftrain.confidence.logistic import fit_logistic, sigmoid
from selftrain.errors import ConfigError
from selftrain.io import atomic_write_json
from selftrain.record import Hypothesis, Utterance
from selftrain.text import TextNormalizer

__all__ = [
    "CALIBRATED_SUFFIX",
    "Calibrator",
    "Calibration",
    "word_correctness",
    "hypothesis_words",
    "pick_hypothesis",
    "labeled_scores",
    "fit_temperature",
    "fit_isotonic",
    "fit_calibration",
    "utterance_label",
    "utterance_target",
    "MIN_CORRECT_UTTERANCES",
    "MIN_CORRECT_SHARE",
]

_EPS = 1e-6
# Which hypothesis of each utterance is calibrated: a teacher's name, None (the first), or a function
# of the utterance (the selection's label source, e.g. ROVER's combination of three teachers or more).
HypothesisChoice = str | Callable[[Utterance], Hypothesis | None] | None


def hypothesis_words(hyp: Hypothesis) -> list[str]:
    """The hypothesis' words: ``hyp.words`` when present, else its text split on spaces."""
    return [w.word for w in hyp.words] if hyp.words else hyp.text.split()


def word_correctness(hyp_words: list[str], reference: str) -> list[bool]:
    """Per hypothesis word, whether jiwer aligns it as ``equal`` to a reference word.

    >>> word_correctness(["the", "cat", "sat", "down"], "the hat sat")
    [True, False, True, False]
    """
    if not hyp_words:
        return []
    out = jiwer.process_words(reference, " ".join(hyp_words))
    correct = [False] * len(hyp_words)
    for chunk in out.alignments[0]:
        if chunk.type == "equal":
            for i in range(chunk.hyp_start_idx, chunk.hyp_end_idx):
                correct[i] = True
    return correct


# With fewer fully-right dev utterances than this (and under MIN_CORRECT_SHARE of dev), "the
# utterance is right" cannot be fit (a weak teacher may get none right: every calibrated score was
# then 0, the automatic threshold 0.0, and all pseudo-labels were kept). The utterance target then
# becomes its word accuracy instead.
MIN_CORRECT_UTTERANCES = 5
MIN_CORRECT_SHARE = 0.1
UTTERANCE_TARGETS = ("exact", "word_accuracy")


def utterance_label(hyp_words: list[str], reference: str, target: str = "exact") -> float:
    """The utterance-level calibration target: 1.0/0.0 for an exact match (``exact``), or the word
    accuracy ``max(0, 1 - WER)`` (``word_accuracy``).

    >>> utterance_label(["the", "cat"], "the hat", "word_accuracy")
    0.5
    """
    ref_words = reference.split()
    if target == "exact" or not ref_words:
        return float(hyp_words == ref_words)
    return max(0.0, 1.0 - jiwer.wer(" ".join(ref_words), " ".join(hyp_words) or "<empty>"))


def utterance_target(utterances: Iterable[Utterance], teacher: HypothesisChoice = None,
                     normalizer: TextNormalizer | None = None) -> str:
    """``exact`` when the dev set has at least :data:`MIN_CORRECT_UTTERANCES` fully right hypotheses, or
    at least :data:`MIN_CORRECT_SHARE` of them right (a small dev set); else ``word_accuracy``."""
    normalizer = normalizer or TextNormalizer()
    right = labeled = 0
    for utt in utterances:
        hyp = pick_hypothesis(utt, teacher)
        if hyp is not None and utt.reference is not None:
            labeled += 1
            right += hypothesis_words(hyp) == normalizer(utt.reference).split()
    enough = right >= MIN_CORRECT_UTTERANCES or right >= MIN_CORRECT_SHARE * labeled
    return "exact" if enough and right > 0 else "word_accuracy"


def pick_hypothesis(utt: Utterance, teacher: HypothesisChoice = None) -> Hypothesis | None:
    """The named teacher's hypothesis, the first one when ``teacher`` is None, or ``teacher(utt)`` when
    it is a function (the selection's label source: the hypothesis that becomes the label)."""
    if callable(teacher):
        return teacher(utt)
    if teacher is None:
        return utt.hypotheses[0] if utt.hypotheses else None
    return utt.hypothesis(teacher)


def labeled_scores(utterances: Iterable[Utterance], method: str, level: str = "word",
                   teacher: HypothesisChoice = None, normalizer: TextNormalizer | None = None,
                   target: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """``(scores, correct)`` of every word (``level="word"``) or utterance with a reference and a score.

    Utterance labels follow ``target`` (:func:`utterance_label`): booleans for ``exact``, word
    accuracies in [0, 1] for ``word_accuracy``."""
    normalizer = normalizer or TextNormalizer()
    scores: list[float] = []
    labels: list[float] = []
    for utt in utterances:
        hyp = pick_hypothesis(utt, teacher)
        if hyp is None or utt.reference is None:
            continue
        reference = normalizer(utt.reference)
        words = hypothesis_words(hyp)
        if level == "utterance":
            if method in hyp.scores:
                scores.append(hyp.scores[method])
                labels.append(utterance_label(words, reference, target))
            continue
        for word, ok in zip(hyp.words, word_correctness(words, reference), strict=False):
            if method in word.scores:
                scores.append(word.scores[method])
                labels.append(ok)
    return np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64 if target != "exact" else bool)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def fit_temperature(scores: np.ndarray, correct: np.ndarray, l2: float = 1.0) -> dict[str, float]:
    """Fit ``sigmoid(logit(s) / T + b)``; returns ``{temperature: T, bias: b}``.

    The logit is standardised for the fit and a small L2 penalty on the standardised slope keeps it
    finite on (nearly) separable data (see :func:`~selftrain.confidence.logistic.fit_logistic`).
    """
    x = _logit(np.asarray(scores, dtype=np.float64))
    y = np.asarray(correct, dtype=np.float64)
    center, spread = float(x.mean()), float(x.std()) or 1.0
    theta = fit_logistic(np.stack([(x - center) / spread, np.ones_like(x)], axis=1), y, l2)
    slope = theta[0] / spread
    slope = slope if abs(slope) > 1e-12 else 1e-12
    return {"temperature": float(1.0 / slope), "bias": float(theta[1] - slope * center)}


def fit_isotonic(scores: np.ndarray, correct: np.ndarray) -> dict[str, list[float]]:
    """Pool-adjacent-violators: the increasing fit of ``correct`` on ``scores`` (least squares).

    Returns ``{"x": [...], "y": [...]}``, one point per pooled block: the block's mean score and
    its mean label; the calibrator interpolates linearly between them (centred isotonic
    regression). Blocks with equal means are pooled too, so the map is strictly increasing between
    the first and last points: a plain step function gives whole score ranges one value, and a
    threshold on such ties keeps far more or less data than it did where it was chosen (a threshold
    chosen on dev then keeps a very different share of the unlabeled audio). Written with numpy because
    no dependency of selftrain provides it.
    """
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    x, y = x[order], y[order]
    # Blocks as parallel stacks: mean label, weight, sum of scores, last score.
    means: list[float] = []
    weights: list[float] = []
    score_sums: list[float] = []
    highs: list[float] = []
    for xi, yi in zip(x, y, strict=True):
        means.append(yi)
        weights.append(1.0)
        score_sums.append(xi)
        highs.append(xi)
        while len(means) > 1 and (means[-2] >= means[-1] or xi == highs[-2]):
            w = weights[-2] + weights[-1]
            means[-2] = (means[-2] * weights[-2] + means[-1] * weights[-1]) / w
            weights[-2] = w
            score_sums[-2] += score_sums[-1]
            highs[-2] = highs[-1]
            del means[-1], weights[-1], score_sums[-1], highs[-1]
    return {"x": [total / weight for total, weight in zip(score_sums, weights, strict=True)], "y": list(means)}


@dataclass
class Calibrator:
    """A fitted map from raw score to probability of being right."""

    kind: str  # "temperature" or "isotonic"
    params: dict = field(default_factory=dict)

    def __call__(self, scores: np.ndarray | list[float] | float) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        if self.kind == "temperature":
            return sigmoid(_logit(s) / self.params["temperature"] + self.params["bias"])
        if self.kind == "isotonic":
            xs, ys = self.params["x"], self.params["y"]
            if not xs:
                return np.full_like(s, 0.5)
            return np.interp(s, xs, ys)
        raise ConfigError(f"unknown calibration kind {self.kind!r} (expected temperature or isotonic)")

    @classmethod
    def fit(cls, kind: str, scores: np.ndarray, correct: np.ndarray) -> Calibrator:
        """Fit a calibrator of ``kind`` on ``(scores, correct)``."""
        if len(scores) == 0:
            raise ConfigError("no labeled scores to calibrate on (is the dev set labeled and scored?)")
        if kind == "temperature":
            return cls(kind, fit_temperature(scores, correct))
        if kind == "isotonic":
            return cls(kind, fit_isotonic(scores, correct))
        raise ConfigError(f"unknown calibration kind {kind!r} (expected temperature or isotonic)")


@dataclass
class Calibration:
    """Calibrators by level (``word``/``utterance``) and method, saved as one JSON file."""

    word: dict[str, Calibrator] = field(default_factory=dict)
    utterance: dict[str, Calibrator] = field(default_factory=dict)
    combiners: dict[str, Combiner] = field(default_factory=dict)  # level ("word"/"utterance") -> combiner
    utterance_target: str = "exact"  # what the utterance maps estimate: see :func:`utterance_label`

    def apply(self, hyp: Hypothesis) -> None:
        """Add ``<method>_calibrated`` scores to ``hyp`` and its words for every fitted method present,
        and the learned ``combined`` score where a combiner was fit and its inputs are present."""
        word_combiner, utterance_combiner = self.combiners.get("word"), self.combiners.get("utterance")
        for word, features in zip(hyp.words, word_feature_rows(hyp), strict=True):
            for method, calibrator in self.word.items():
                if method in features:
                    word.scores[method + CALIBRATED_SUFFIX] = float(calibrator(features[method]))
            if word_combiner is not None and (value := word_combiner(features)) is not None:
                word.scores[COMBINED] = value
        raw = dict(hyp.scores)
        for method, calibrator in self.utterance.items():
            if method in raw:
                hyp.scores[method + CALIBRATED_SUFFIX] = float(calibrator(raw[method]))
        if utterance_combiner is not None and (value := utterance_combiner(raw)) is not None:
            hyp.scores[COMBINED] = value

    def apply_all(self, utterances: Iterable[Utterance]) -> None:
        """Calibrate every hypothesis of every utterance in place."""
        for utt in utterances:
            for hyp in utt.hypotheses:
                self.apply(hyp)

    def to_dict(self) -> dict:
        return {"format": "selftrain-calibration-1",
                "word": {m: asdict(c) for m, c in self.word.items()},
                "utterance": {m: asdict(c) for m, c in self.utterance.items()},
                "combiners": {level: c.to_dict() for level, c in self.combiners.items()},
                "utterance_target": self.utterance_target}

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        """The calibration :meth:`to_dict` gave."""
        return cls(word={m: Calibrator(**c) for m, c in data.get("word", {}).items()},
                   utterance={m: Calibrator(**c) for m, c in data.get("utterance", {}).items()},
                   combiners={lv: Combiner(**c) for lv, c in data.get("combiners", {}).items()},
                   utterance_target=data.get("utterance_target", "exact"))

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(f"cannot read calibration {path}: {exc}") from exc


def _scored_methods(utterances: list[Utterance], teacher: HypothesisChoice) -> tuple[set[str], set[str]]:
    """Word-level and utterance-level score names present in the chosen hypotheses."""
    word_methods: set[str] = set()
    utt_methods: set[str] = set()
    for utt in utterances:
        hyp = pick_hypothesis(utt, teacher)
        if hyp is not None:
            utt_methods.update(hyp.scores)
            for word in hyp.words:
                word_methods.update(word.scores)
    raw = {m for m in word_methods | utt_methods if is_raw_score(m)}
    return word_methods & raw, utt_methods & raw


def _labeled_rows(utterances: list[Utterance], level: str, teacher: HypothesisChoice,
                  normalizer: TextNormalizer | None, target: str = "exact") -> tuple[list[dict[str, float]], list[float]]:
    """Every labeled word's (or utterance's) score dict with its correctness (utterances: ``target``)."""
    normalizer = normalizer or TextNormalizer()
    rows: list[dict[str, float]] = []
    labels: list[float] = []
    for utt in utterances:
        hyp = pick_hypothesis(utt, teacher)
        if hyp is None or utt.reference is None:
            continue
        reference = normalizer(utt.reference)
        if level == "utterance":
            rows.append(dict(hyp.scores))
            labels.append(utterance_label(hypothesis_words(hyp), reference, target))
            continue
        for features, ok in zip(word_feature_rows(hyp), word_correctness(hypothesis_words(hyp), reference), strict=False):
            rows.append(features)
            labels.append(ok)
    return rows, labels


def fit_calibration(utterances: list[Utterance], kind: str = "isotonic", methods: Iterable[str] | None = None,
                    teacher: HypothesisChoice = None, normalizer: TextNormalizer | None = None,
                    combine: bool = True, word_context: bool = True) -> Calibration:
    """Fit word- and utterance-level calibrators of ``kind`` for ``methods`` (default: every method seen),
    and (``combine``) a word and an utterance :class:`~selftrain.confidence.combine.Combiner` of them;
    the word one also takes each word's context (:func:`~selftrain.confidence.combine.word_feature_rows`)
    unless ``word_context`` is False.

    Utterance maps estimate P(utterance fully right), or its word accuracy when dev has too few
    fully-right utterances to fit that (:func:`utterance_target`; recorded in the calibration)."""
    word_methods, utt_methods = _scored_methods(utterances, teacher)
    if methods is not None:
        word_methods &= set(methods)
        utt_methods &= set(methods)
    calibration = Calibration(utterance_target=utterance_target(utterances, teacher, normalizer))
    targets = {"word": "exact", "utterance": calibration.utterance_target}
    for method in sorted(word_methods | utt_methods):
        for level, fitted in (("word", calibration.word), ("utterance", calibration.utterance)):
            scores, correct = labeled_scores(utterances, method, level, teacher, normalizer, targets[level])
            if scores.size:
                fitted[method] = Calibrator.fit(kind, scores, correct)
    if not calibration.word and not calibration.utterance:
        raise ConfigError("no labeled, scored hypotheses to calibrate on")
    if combine:
        context = {CONTEXT_PREFIX + m for m in utt_methods} | set(LEXICAL_FEATURES) if word_context else set()
        word_inputs = word_methods | context
        for level, inputs in (("word", word_inputs), ("utterance", utt_methods)):
            rows, labels = _labeled_rows(utterances, level, teacher, normalizer, targets[level])
            present = sorted(m for m in inputs if sum(m in r for r in rows) >= 0.9 * len(rows)) if rows else []
            if present and len(set(labels)) >= 2:
                calibration.combiners[level] = fit_combiner(rows, labels, present)
    return calibration
