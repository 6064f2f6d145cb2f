"""AUROC/AUPRC/ECE against hand-computed values; temperature and isotonic calibration."""

from __future__ import annotations

import numpy as np
import pytest

from selftrain.confidence.calibrate import (
    CALIBRATED_SUFFIX,
    MIN_CORRECT_UTTERANCES,
    Calibration,
    Calibrator,
    fit_calibration,
    fit_isotonic,
    fit_temperature,
    labeled_scores,
    utterance_label,
    word_correctness,
)
from selftrain.confidence.metrics import auprc, auroc, ece, error_detection_metrics
from selftrain.errors import ConfigError
from selftrain.record import Hypothesis, Utterance, Word


def test_auroc_hand_computed_with_ties():
    # positives {0.8, 0.5}, negatives {0.5, 0.2}: pairs 0.8>0.5, 0.8>0.2, 0.5=0.5 (1/2), 0.5>0.2 -> 3.5/4
    assert auroc([0.8, 0.5, 0.5, 0.2], [1, 1, 0, 0]) == pytest.approx(0.875)
    assert auroc([0.1, 0.2], [0, 1]) == 1.0
    assert auroc([0.3, 0.1], [0, 1]) == 0.0
    assert np.isnan(auroc([0.1, 0.2], [1, 1]))


def test_auprc_hand_computed():
    # ranking 0.9(+) 0.7(-) 0.6(+) 0.1(-): AP = 0.5 * 1 + 0.5 * 2/3
    assert auprc([0.9, 0.7, 0.6, 0.1], [1, 0, 1, 0]) == pytest.approx(0.5 + 1 / 3)
    # a tie of one positive and one negative at the top: precision 1/2 at recall 1
    assert auprc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)


def test_ece_hand_computed():
    # bin (0.7, 0.8]: conf 0.75, 0.75 accuracy 1/2 -> 0.25; bin (0.2, 0.3]: conf 0.25 accuracy 0 -> 0.25
    assert ece([0.75, 0.75, 0.25, 0.25], [1, 0, 0, 0]) == pytest.approx(0.5 * 0.25 + 0.5 * 0.25)
    assert ece([1.0, 0.0], [1, 0]) == pytest.approx(0.0)


def test_error_detection_metrics_detects_wrong_items_by_low_confidence():
    m = error_detection_metrics([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])
    assert m.auroc == 1.0 and m.auprc == 1.0
    assert m.error_rate == 0.5 and m.count == 4


def test_isotonic_is_monotone_and_calibrates():
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=4000)
    correct = rng.uniform(size=4000) < scores**2  # true P(correct | s) = s^2: raw scores overconfident
    cal = Calibrator.fit("isotonic", scores, correct)
    grid = np.linspace(0, 1, 101)
    assert np.all(np.diff(cal(grid)) >= -1e-12)
    assert ece(cal(scores), correct) < 0.03 < ece(scores, correct)
    assert cal(0.5) == pytest.approx(0.25, abs=0.06)


def test_pav_pools_violators_exactly():
    fit = fit_isotonic(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 0.0, 1.0]))
    assert fit == {"x": [1.0, 2.5, 4.0], "y": [0.0, 0.5, 1.0]}
    tied = fit_isotonic(np.array([1.0, 1.0, 2.0]), np.array([1.0, 0.0, 1.0]))
    assert tied == {"x": [1.0, 2.0], "y": [0.5, 1.0]}
    equal = fit_isotonic(np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 1.0, 1.0]))
    assert equal == {"x": [1.0, 3.0], "y": [0.0, 1.0]}


def test_isotonic_map_has_no_ties_inside_the_fitted_range():
    rng = np.random.default_rng(2)
    scores = rng.uniform(size=400)
    correct = rng.uniform(size=400) < 0.1 + 0.3 * scores  # mostly wrong: PAV pools long runs
    cal = Calibrator.fit("isotonic", scores, correct)
    xs = cal.params["x"]
    inside = np.sort(rng.uniform(xs[0], xs[-1], size=1000))
    assert np.all(np.diff(cal(inside)) > 0)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3.0, size=20000)
    scores = 1 / (1 + np.exp(-logits))
    correct = rng.uniform(size=logits.size) < 1 / (1 + np.exp(-logits / 2.0 - 0.5))
    params = fit_temperature(scores, correct)
    assert params["temperature"] == pytest.approx(2.0, rel=0.1)
    assert params["bias"] == pytest.approx(0.5, abs=0.1)
    cal = Calibrator("temperature", params)
    assert ece(cal(scores), correct) < ece(scores, correct)


def test_word_correctness_uses_jiwer_alignment():
    assert word_correctness(["a", "x", "c", "d"], "a b c") == [True, False, True, False]
    assert word_correctness([], "a b") == []


def _dev_set() -> list[Utterance]:
    utts = []
    for i, (hyp, ref, scores) in enumerate([("a b", "a b", [0.9, 0.8]), ("a c", "a b", [0.9, 0.2]),
                                            ("d e", "d f", [0.3, 0.1]), ("x", "x", [0.95])]):
        words = [Word(w, 0, 1, {"max_prob": s}) for w, s in zip(hyp.split(), scores, strict=True)]
        h = Hypothesis("t", hyp, words, scores={"max_prob": min(scores)})
        utts.append(Utterance(f"u{i}", "w.wav", 1.0, reference=ref, hypotheses=[h]))
    return utts


def test_labeled_scores_and_fit_apply_save_load(tmp_path):
    utts = _dev_set()
    s, y = labeled_scores(utts, "max_prob")
    assert s.tolist() == [0.9, 0.8, 0.9, 0.2, 0.3, 0.1, 0.95]
    assert y.tolist() == [True, True, True, False, True, False, True]
    s, y = labeled_scores(utts, "max_prob", level="utterance")
    assert y.tolist() == [True, False, False, True]
    cal = fit_calibration(utts, "isotonic")
    cal.save(tmp_path / "cal.json")
    loaded = Calibration.load(tmp_path / "cal.json")
    loaded.apply_all(utts)
    key = "max_prob" + CALIBRATED_SUFFIX
    assert utts[0].hypotheses[0].words[0].scores[key] == pytest.approx(1.0)
    # Blocks: {0.1, 0.2} all wrong (centre 0.15), {0.3 .. 0.95} all right (centre 0.77); 0.2 lies between.
    assert utts[1].hypotheses[0].words[1].scores[key] == pytest.approx(0.05 / 0.62)
    assert 0.0 <= utts[2].hypotheses[0].scores[key] <= 1.0
    with pytest.raises(ConfigError):
        Calibration.load(tmp_path / "missing.json")
    with pytest.raises(ConfigError):
        Calibrator.fit("platt", np.array([0.5]), np.array([True]))


def test_combiner_of_two_noisy_scores_beats_each_alone(tmp_path):
    from selftrain.confidence import COMBINED, fit_combiner

    rng = np.random.default_rng(2)
    correct = rng.uniform(size=3000) < 0.7
    signal = np.where(correct, 1.0, -1.0)
    a = 1 / (1 + np.exp(-(signal + rng.normal(scale=1.5, size=correct.size))))
    b = 1 / (1 + np.exp(-(signal + rng.normal(scale=1.5, size=correct.size))))
    rows = [{"a": x, "b": y} for x, y in zip(a, b, strict=True)]
    combiner = fit_combiner(rows, correct, ["a", "b"])
    combined = np.array([combiner(r) for r in rows])
    assert auroc(combined, correct) > max(auroc(a, correct), auroc(b, correct)) + 0.03
    assert ece(combined, correct) < 0.05
    assert combiner({"a": 0.5}) is None
    with pytest.raises(ConfigError):
        fit_combiner(rows, correct, [])
    # fit_calibration fits combiners that apply() turns into a "combined" score and that survive JSON
    utts = _dev_set()
    cal = fit_calibration(utts, "temperature")
    assert set(cal.combiners) == {"word", "utterance"}
    cal.save(tmp_path / "cal.json")
    Calibration.load(tmp_path / "cal.json").apply_all(utts)
    assert 0.0 < utts[0].hypotheses[0].words[0].scores[COMBINED] < 1.0
    assert COMBINED in utts[0].hypotheses[0].scores


def _weak_teacher_dev(n: int = 60, exact: int = 0) -> list[Utterance]:
    """Dev utterances of four reference words; utterance i gets ``i % 4`` of them wrong (``exact``
    of them none), and an utterance score that rises with its word accuracy."""
    utts = []
    for i in range(n):
        reference = ["one", "two", "three", "four"]
        wrong = 0 if i < exact else 1 + i % 3
        hyp = ["x"] * wrong + reference[wrong:]
        score = 0.2 + 0.2 * (4 - wrong) + 0.01 * (i % 5)
        words = [Word(w, k, k + 1, {"max_prob": score}) for k, w in enumerate(hyp)]
        h = Hypothesis("lm", " ".join(hyp), words, scores={"max_prob": score, "nbest_posterior": score / 2})
        utts.append(Utterance(f"u{i:02d}", "w.wav", 1.0, reference=" ".join(reference), hypotheses=[h]))
    return utts


def test_utterance_label_is_exact_match_or_word_accuracy():
    assert utterance_label(["the", "cat"], "the cat") == 1.0
    assert utterance_label(["the", "hat"], "the cat") == 0.0
    assert utterance_label(["the", "hat"], "the cat", "word_accuracy") == pytest.approx(0.5)
    assert utterance_label([], "the cat", "word_accuracy") == 0.0
    assert utterance_label(["a", "b", "c", "d"], "the", "word_accuracy") == 0.0  # WER above 1 is clipped


def test_calibration_of_a_teacher_that_gets_no_utterance_right_keeps_the_ranking():
    dev = _weak_teacher_dev(exact=0)
    calibration = fit_calibration(dev)
    assert calibration.utterance_target == "word_accuracy"
    calibration.apply_all(dev)
    by_accuracy: dict[int, list[float]] = {}
    for u in dev:
        wrong = u.hypotheses[0].text.split().count("x")
        by_accuracy.setdefault(wrong, []).append(u.hypotheses[0].scores["max_prob" + CALIBRATED_SUFFIX])
    means = [np.mean(by_accuracy[w]) for w in sorted(by_accuracy)]
    # Fitted on exact matches, every calibrated score was 0 (nothing is right), so a threshold kept all.
    assert all(a > b for a, b in zip(means, means[1:], strict=False))
    assert means[0] == pytest.approx(0.75, abs=0.05) and means[-1] == pytest.approx(0.25, abs=0.05)
    assert "utterance" in calibration.combiners


def test_calibration_uses_exact_matches_when_dev_has_enough(tmp_path):
    dev = _weak_teacher_dev(exact=MIN_CORRECT_UTTERANCES)
    calibration = fit_calibration(dev)
    assert calibration.utterance_target == "exact"
    calibration.save(tmp_path / "c.json")
    assert Calibration.load(tmp_path / "c.json").utterance_target == "exact"
    weak = fit_calibration(_weak_teacher_dev(exact=MIN_CORRECT_UTTERANCES - 1))  # 4 of 60: under 10 % too
    weak.save(tmp_path / "w.json")
    assert Calibration.load(tmp_path / "w.json").utterance_target == "word_accuracy"
    small = fit_calibration(_weak_teacher_dev(n=20, exact=2))  # a small dev set with a tenth right
    assert small.utterance_target == "exact"


def test_the_calibration_is_fitted_on_the_hypothesis_that_becomes_the_label():
    from functools import partial

    from selftrain.select.policy import chosen_hypothesis

    utts = _dev_set()
    for utt in utts:  # three teachers, the first always wrong: with label_source auto, ROVER's text is the label
        right = utt.hypotheses[0]
        wrong = Hypothesis("lm", "zz", [Word("zz", 0, 1, {"max_prob": 0.99})], scores={"max_prob": 0.99})
        utt.hypotheses = [wrong, Hypothesis("t2", right.text), Hypothesis("t3", right.text),
                          Hypothesis("rover", right.text, right.words, scores=right.scores)]
    label = partial(chosen_hypothesis, label_source="auto")
    assert labeled_scores(utts, "max_prob", teacher=label)[0].tolist() == [0.9, 0.8, 0.9, 0.2, 0.3, 0.1, 0.95]
    assert fit_calibration(utts, teacher=label).to_dict() == fit_calibration(utts, teacher="rover").to_dict()
    assert fit_calibration(utts, teacher=label).to_dict() != fit_calibration(utts).to_dict()  # the first teacher's
