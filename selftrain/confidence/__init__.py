"""Confidence of pseudo-labels: word and utterance scores for CTC beam-search (+ LM) hypotheses.

:func:`score_hypothesis` fills ``Word.scores`` and ``Hypothesis.scores`` (method -> [0, 1]);
:mod:`~selftrain.confidence.calibrate` maps raw scores to probabilities of being right, fit on a
labeled dev set; :mod:`~selftrain.confidence.metrics` measures how well scores detect errors.
"""

from selftrain.confidence.calibrate import (
    CALIBRATED_SUFFIX,
    Calibration,
    Calibrator,
    fit_calibration,
    labeled_scores,
    word_correctness,
)
from selftrain.confidence.combine import COMBINED, Combiner, fit_combiner
from selftrain.confidence.frames import FRAME_MEASURES, frame_measures
from selftrain.confidence.lm_scores import LM_SCORES, add_lm_scores
from selftrain.confidence.metrics import DetectionMetrics, auprc, auroc, ece, error_detection_metrics
from selftrain.confidence.nbest import hypothesis_posterior, nbest_posteriors, score_margin, word_posteriors
from selftrain.confidence.score import (
    AGGREGATIONS,
    FRAME_SELECTIONS,
    ConfidenceConfig,
    aggregate,
    score_hypothesis,
)

__all__ = [
    "score_hypothesis",
    "add_lm_scores",
    "LM_SCORES",
    "ConfidenceConfig",
    "FRAME_MEASURES",
    "AGGREGATIONS",
    "FRAME_SELECTIONS",
    "frame_measures",
    "aggregate",
    "nbest_posteriors",
    "hypothesis_posterior",
    "word_posteriors",
    "score_margin",
    "CALIBRATED_SUFFIX",
    "COMBINED",
    "Combiner",
    "fit_combiner",
    "Calibration",
    "Calibrator",
    "fit_calibration",
    "labeled_scores",
    "word_correctness",
    "DetectionMetrics",
    "auroc",
    "auprc",
    "ece",
    "error_detection_metrics",
]
