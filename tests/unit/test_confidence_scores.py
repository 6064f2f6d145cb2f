"""Confidence measures on constructed posteriors with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from selftrain.confidence import (
    FRAME_MEASURES,
    ConfidenceConfig,
    aggregate,
    frame_measures,
    hypothesis_posterior,
    nbest_posteriors,
    score_hypothesis,
    score_margin,
    word_posteriors,
)
from selftrain.errors import ConfigError
from selftrain.record import Hypothesis, NBestEntry, Word

V = 6


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p)


@pytest.mark.parametrize("alpha", [1 / 3, 0.5, 1.0, 2.0])
def test_one_hot_frames_are_fully_confident_and_uniform_frames_not(alpha):
    one_hot = _log(np.eye(V)[[0, 3, 5]])
    uniform = _log(np.full((2, V), 1 / V))
    sure = frame_measures(one_hot, alpha=alpha)
    unsure = frame_measures(uniform, alpha=alpha)
    for name in FRAME_MEASURES:
        np.testing.assert_allclose(sure[name], 1.0, atol=1e-9)
        expected = 1 / V if name == "max_prob" else 0.0
        np.testing.assert_allclose(unsure[name], expected, atol=1e-9)


def test_shannon_entropy_values_match_hand_computation():
    p = np.array([[0.5, 0.5, 0, 0]])
    out = frame_measures(_log(p), alpha=1.0)
    # H = ln 2, H_max = ln 4: linear 1 - 1/2; exponential (e^-H - 1/4) / (1 - 1/4) = (1/2 - 1/4) / (3/4)
    assert out["entropy_gibbs_lin"][0] == pytest.approx(0.5)
    assert out["entropy_renyi_lin"][0] == pytest.approx(0.5)
    assert out["entropy_tsallis_exp"][0] == pytest.approx(1 / 3)
    assert out["max_prob"][0] == pytest.approx(0.5)


def test_tsallis_and_renyi_with_alpha_match_hand_computation():
    p = np.array([[0.5, 0.5, 0, 0]])
    out = frame_measures(_log(p), alpha=2.0)
    # Tsallis a=2: H = 1 - sum p^2 = 0.5, H_max = (4^-1 - 1) / -1 = 0.75 -> lin 1 - 0.5/0.75
    assert out["entropy_tsallis_lin"][0] == pytest.approx(1 - 0.5 / 0.75)
    assert out["entropy_tsallis_exp"][0] == pytest.approx((math.exp(-0.5) - math.exp(-0.75)) / (1 - math.exp(-0.75)))
    # Renyi a=2: H = -ln(sum p^2) = ln 2, H_max = ln 4
    assert out["entropy_renyi_lin"][0] == pytest.approx(0.5)
    # Gibbs a=2: H = -sum p^2 ln p = 0.5 ln 2, H_max = 4^-1 ln 4 -> lin 1 - 0.5 ln2 / (0.25 ln 4) = 0
    assert out["entropy_gibbs_lin"][0] == pytest.approx(0.0, abs=1e-9)


def test_measures_decrease_as_the_frame_gets_flatter():
    rows = [np.array([1 - e] + [e / (V - 1)] * (V - 1)) for e in (0.0, 0.1, 0.4, 0.7)]
    out = frame_measures(_log(np.stack(rows)))
    for name in FRAME_MEASURES:
        assert np.all(np.diff(out[name]) < 0), name


def test_frame_measures_reject_bad_input():
    with pytest.raises(ConfigError):
        frame_measures(np.zeros((3, 1)))
    with pytest.raises(ConfigError):
        frame_measures(np.zeros((3, 4)), ("entropy_foo_lin",))
    with pytest.raises(ConfigError):
        frame_measures(np.zeros((3, 4)), alpha=0.0)


def test_aggregations():
    assert aggregate([0.5, 1.0], "mean") == pytest.approx(0.75)
    assert aggregate([0.5, 1.0], "min") == pytest.approx(0.5)
    assert aggregate([0.5, 0.5], "prod") == pytest.approx(0.25)
    with pytest.raises(ConfigError):
        aggregate([], "mean")
    with pytest.raises(ConfigError):
        aggregate([1.0], "median")


def test_nbest_posterior_of_known_scores():
    post = nbest_posteriors([math.log(1), math.log(3)])
    np.testing.assert_allclose(post, [0.25, 0.75])
    # temperature 2 flattens: softmax of [0, ln3 / 2] = [1, sqrt3] / (1 + sqrt3)
    np.testing.assert_allclose(nbest_posteriors([0.0, math.log(3)], 2.0)[1], math.sqrt(3) / (1 + math.sqrt(3)))
    nbest = [NBestEntry("a b", -1, -1, math.log(3)), NBestEntry("a  b", -5, 0, 0.0), NBestEntry("a c", 0, -3, math.log(4))]
    # duplicate texts share mass: (3 + 1) / 8
    assert hypothesis_posterior("a b", nbest) == pytest.approx(0.5)
    assert hypothesis_posterior("a b", nbest, acoustic_only=True) == pytest.approx(
        (math.exp(-1) + math.exp(-5)) / (math.exp(-1) + math.exp(-5) + 1))
    assert hypothesis_posterior("a b", []) is None


def test_word_posterior_counts_entries_with_the_word_at_its_slot():
    nbest = [NBestEntry("the cat sat", 0, 0, math.log(6)), NBestEntry("the hat sat", 0, 0, math.log(3)),
             NBestEntry("cat sat", 0, 0, math.log(1))]
    assert word_posteriors(["the", "cat", "sat"], nbest) == pytest.approx([0.9, 0.7, 1.0])
    assert word_posteriors([], nbest) is None


def test_score_margins():
    nbest = [NBestEntry("a", -2.0, 0.0, -2.0), NBestEntry("b", -1.0, -3.0, -4.0)]
    assert score_margin("a", nbest) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert score_margin("a", nbest, acoustic_only=True) == pytest.approx(1 / (1 + math.exp(1.0)))
    assert score_margin("a", nbest[:1]) == 1.0
    assert score_margin("z", nbest) == 0.0


def _utterance() -> tuple[np.ndarray, Hypothesis]:
    # frames: "a" sure (label 2), blank, "b" unsure (label 3 at 0.4), blank, blank
    p = np.full((5, 4), 0.0)
    p[0] = [0, 0, 1, 0]
    p[1] = [1, 0, 0, 0]
    p[2] = [0.2, 0.2, 0.2, 0.4]
    p[3] = [1, 0, 0, 0]
    p[4] = [1, 0, 0, 0]
    hyp = Hypothesis(teacher="t", text="a b", words=[Word("a", 0, 2), Word("b", 2, 4)],
                     nbest=[NBestEntry("a b", -2.0, -1.0, -3.0), NBestEntry("a", -4.0, -0.5, -4.5)])
    return _log(p), hyp


def test_score_hypothesis_non_blank_frames():
    log_p, hyp = _utterance()
    score_hypothesis(log_p, hyp, blank=0)
    a, b = hyp.words
    assert a.scores["max_prob"] == pytest.approx(1.0)  # only frame 0 is non-blank in [0, 2)
    assert b.scores["max_prob"] == pytest.approx(0.4)
    assert hyp.scores["max_prob"] == pytest.approx(0.7)
    for name in FRAME_MEASURES:
        assert 0.0 <= b.scores[name] < a.scores[name] <= 1.0
    post_b = 1 / (1 + math.exp(-1.5))
    assert b.scores["word_posterior"] == pytest.approx(post_b)
    assert a.scores["word_posterior"] == pytest.approx(1.0)
    assert hyp.scores["nbest_posterior"] == pytest.approx(post_b)
    assert hyp.scores["loglik_per_frame"] == pytest.approx(math.exp(-2.0 / 5))
    assert all(0.0 <= v <= 1.0 for v in hyp.scores.values())


def test_score_hypothesis_all_frames_and_min_aggregation():
    log_p, hyp = _utterance()
    score_hypothesis(log_p, hyp, config=ConfidenceConfig(frames="all", utterance_aggregation="min"))
    assert hyp.words[0].scores["max_prob"] == pytest.approx(1.0)
    assert hyp.words[1].scores["max_prob"] == pytest.approx(0.7)  # mean of 0.4 and a blank frame of 1.0
    assert hyp.scores["max_prob"] == pytest.approx(0.7)


def test_words_without_spans_and_empty_hypotheses_fall_back_to_frames():
    log_p, _ = _utterance()
    hyp = Hypothesis(teacher="ext", text="a b", words=[Word("a", 0, 0), Word("b", 9, 9)])
    score_hypothesis(log_p, hyp)
    assert "max_prob" not in hyp.words[0].scores
    assert hyp.scores["max_prob"] == pytest.approx(0.7)  # non-blank frames 0 and 2
    assert "nbest_posterior" not in hyp.scores
    empty = Hypothesis(teacher="t", text="")
    score_hypothesis(log_p, empty)
    assert 0.0 <= empty.scores["entropy_tsallis_exp"] <= 1.0


def test_score_hypothesis_rejects_bad_input():
    _, hyp = _utterance()
    with pytest.raises(ConfigError):
        score_hypothesis(np.zeros((0, 4)), hyp)
    with pytest.raises(ConfigError):
        score_hypothesis(np.zeros((3, 4)), hyp, blank=4)
    with pytest.raises(ConfigError):
        ConfidenceConfig(frames="some")
