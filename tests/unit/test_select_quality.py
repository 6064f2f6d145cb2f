"""Pseudo-label WER vs kept fraction and word-level detection figures on hand-made records."""

from __future__ import annotations

import math

import pytest

from selftrain.record import Hypothesis, Utterance, Word
from selftrain.select.quality import labeled_items, utterance_wer, wer_at_fractions, word_detection


def _items():
    rows = [("a b c d", "a b c d", 0.9), ("a b c d", "a b x d", 0.6), ("a b", "", 0.1), ("a b c d", "a b c", 0.8)]
    utts = []
    for i, (ref, hyp, conf) in enumerate(rows):
        words = [Word(w, 0, 1, {"m": conf}) for w in hyp.split()]
        utts.append(Utterance(f"u{i}", "x.wav", 1.0, reference=ref, hypotheses=[Hypothesis("t", hyp, words, scores={"m": conf})]))
    utts.append(Utterance("unlabeled", "x.wav", 1.0, hypotheses=[Hypothesis("t", "z")]))
    return labeled_items(utts, lambda u: u.hypotheses[0])


def test_wer_at_fractions_hand_computed():
    items = _items()
    assert len(items) == 4  # the unlabeled utterance is left out
    wer = wer_at_fractions(items, lambda i: i.hyp.scores["m"], (1.0, 0.5, 0.25))
    # all: 1 sub + 2 del + 1 del = 4 errors / 14 words; top half (0.9, 0.8): 1 / 8; top quarter: 0
    assert wer == {"1": pytest.approx(4 / 14), "0.5": pytest.approx(1 / 8), "0.25": 0.0}
    assert math.isnan(wer_at_fractions(items, lambda i: 0.0, (0.0,))["0"])
    assert utterance_wer(items[2]) == 1.0


def test_word_detection_reports_auroc_and_calibrated_ece():
    metrics = word_detection(_items(), "m")
    # words: 4 right at 0.9; 3 right + 1 wrong at 0.6; 3 right at 0.8. The wrong word beats the 7 right
    # words scored higher and ties with the 3 at 0.6: AUROC = (7 + 3 * 0.5) / 10
    assert metrics["count"] == 11 and metrics["error_rate"] == pytest.approx(1 / 11)
    assert metrics["auroc"] == pytest.approx((7 + 3 * 0.5) / 10)
    assert 0.0 <= metrics["ece_isotonic"] <= 1.0
    assert word_detection(_items(), "unknown") is None
