"""Every selection policy and sanity filter, with the recorded reasons."""

from __future__ import annotations

import numpy as np
import pytest

from selftrain.errors import ConfigError
from selftrain.record import Hypothesis, Utterance
from selftrain.select import (
    SanityConfig,
    SelectConfig,
    linear_schedule,
    reason_counts,
    sanity_reason,
    select_utterances,
    summarize,
)


def _utt(uid: str, text: str, conf: float | None, duration: float = 2.0, agreement: float | None = None,
         others: tuple[str, ...] = (), reference: str | None = None) -> Utterance:
    scores = {} if conf is None else {"entropy_tsallis_exp": conf}
    hyps = [Hypothesis("t1", text, scores=scores)] + [Hypothesis(f"t{i + 2}", o) for i, o in enumerate(others)]
    utt = Utterance(uid, f"{uid}.wav", duration, reference=reference, hypotheses=hyps)
    if agreement is not None:
        utt.agreement["agreement"] = agreement
    return utt


def _reasons(utts: list[Utterance]) -> dict[str, str]:
    return {u.id: u.decision.reason for u in utts}


def test_threshold_policy_keeps_confident_utterances_and_says_why():
    utts = [_utt("a", "the cat sat", 0.9), _utt("b", "the dog ran", 0.5)]
    select_utterances(utts, SelectConfig(label_source="t1", threshold=0.8))
    a, b = utts
    assert a.decision.kept and a.pseudo_label == "the cat sat" and a.confidence == 0.9
    assert not b.decision.kept and b.decision.reason == "threshold: confidence 0.500 < 0.8"
    assert b.pseudo_label == "the dog ran"  # recorded for audits even when dropped
    assert a.decision.policy == "entropy_tsallis_exp:threshold=0.8+sanity"


def test_keep_fraction_keeps_the_best_share_of_all_utterances():
    utts = [_utt(str(i), "some words here", c) for i, c in enumerate([0.1, 0.9, 0.5, 0.7, 0.3])]
    select_utterances(utts, SelectConfig(keep_fraction=0.4))
    assert [u.id for u in utts if u.decision.kept] == ["1", "3"]
    assert _reasons(utts)["2"].startswith("keep_fraction: confidence 0.500 below the cut 0.700 (keep 0.4 of 5)")
    # utterances dropped by sanity still count in the total: the quota is 2 of 5, not of the survivors
    utts.append(_utt("empty", "", 0.99))
    select_utterances(utts, SelectConfig(keep_fraction=0.5))
    assert sum(u.decision.kept for u in utts) == 3
    assert _reasons(utts)["empty"].startswith("empty:")


def test_agreement_policy_and_combination_with_threshold():
    utts = [_utt("a", "x y z", 0.9, agreement=0.95), _utt("b", "x y z", 0.9, agreement=0.4),
            _utt("c", "x y z", 0.3, agreement=0.99), _utt("d", "x y z", 0.9)]
    select_utterances(utts, SelectConfig(threshold=0.5, agreement_threshold=0.8))
    reasons = _reasons(utts)
    assert utts[0].decision.kept
    assert reasons["b"] == "agreement: agreement 0.400 < 0.8"
    assert reasons["c"].startswith("threshold:")
    assert reasons["d"].startswith("agreement: no 'agreement' value")


def test_rank_by_product_and_dust():
    utts = [_utt("a", "x y z", 0.9, agreement=0.5), _utt("b", "x y z", 0.7, agreement=1.0)]
    select_utterances(utts, SelectConfig(keep_fraction=0.5, rank_by="product"))
    assert [u.id for u in utts if u.decision.kept] == ["b"]
    utts[0].agreement["dust_max_wer"] = 0.5
    utts[1].agreement["dust_max_wer"] = 0.1
    select_utterances(utts, SelectConfig(dust_threshold=0.2))
    assert _reasons(utts)["a"] == "dust: max dropout WER 0.500 > 0.2"
    assert utts[1].decision.kept


def test_schedule_keeps_more_in_later_generations():
    utts = [_utt(str(i), "a b c d", c) for i, c in enumerate([0.2, 0.4, 0.6, 0.8, 0.95])]
    kept = []
    for gen in range(4):
        select_utterances(utts, SelectConfig(keep_fraction_schedule=[0.2, 0.4, 0.8], generation=gen))
        kept.append(sum(u.decision.kept for u in utts))
    assert kept == [1, 2, 4, 4]  # the last value repeats
    select_utterances(utts, SelectConfig(threshold_schedule=[0.9, 0.5], generation=1))
    assert sum(u.decision.kept for u in utts) == 3
    assert utts[0].decision.policy.endswith("@gen1")
    assert linear_schedule(0.4, 0.8, 3) == [0.4, 0.6, 0.8]


def test_sanity_filters_with_reasons():
    sanity = SanityConfig()
    assert sanity_reason(_utt("a", "", 0.9), Hypothesis("t", ""), sanity) == "empty: the hypothesis is empty"
    slow = _utt("s", "hi", 0.9, duration=10.0)
    assert sanity_reason(slow, slow.hypotheses[0], sanity) == "rate: 0.2 chars/s outside [2.0, 30.0]"
    fast = _utt("f", "a" * 40, 0.9, duration=1.0)
    assert sanity_reason(fast, fast.hypotheses[0], sanity).startswith("rate: 40.0 chars/s")
    unknown = _utt("u", "a" * 40, 0.9, duration=0.0)  # unknown duration: no rate check
    assert sanity_reason(unknown, unknown.hypotheses[0], sanity) is None
    loop = _utt("r", "go go go go home", 0.9)
    assert sanity_reason(loop, loop.hypotheses[0], sanity) == "repeat: 'go' 4 times in a row (limit 4)"
    three = _utt("r3", "go go go home now", 0.9)
    assert sanity_reason(three, three.hypotheses[0], sanity) is None
    ratio = _utt("l", "a short one", 0.9, others=("a much much longer hypothesis here",))
    assert sanity_reason(ratio, ratio.hypotheses[0], sanity).startswith("length_ratio: teachers' lengths differ 3.09x")
    lone = _utt("e", "words here", 0.9, others=("",))
    assert sanity_reason(lone, lone.hypotheses[0], sanity).startswith("length_ratio: teachers' lengths differ infx")
    off = SanityConfig(drop_empty=False, min_chars_per_second=None, max_repeat=None, max_length_ratio=None)
    assert sanity_reason(loop, loop.hypotheses[0], off) is None


def test_missing_hypothesis_or_score_is_recorded():
    utts = [_utt("a", "x y z", None), Utterance("b", "b.wav", 1.0)]
    select_utterances(utts, SelectConfig())
    reasons = _reasons(utts)
    assert reasons["a"] == "no_score: hypothesis of 't1' has no 'entropy_tsallis_exp' score"
    assert reasons["b"] == "no_hypothesis: no hypothesis from teacher 'auto'"
    assert reason_counts(utts) == {"no_hypothesis": 1, "no_score": 1}


def test_calibrated_score_is_preferred_and_rover_is_the_auto_teacher_from_three_teachers():
    utt = _utt("a", "x y z", 0.9)
    utt.hypotheses[0].scores["entropy_tsallis_exp_calibrated"] = 0.4
    utt.hypotheses.append(Hypothesis("t2", "x y w", scores={"entropy_tsallis_exp": 0.3}))
    utt.hypotheses.append(Hypothesis("rover", "x y w", scores={"entropy_tsallis_exp": 0.8}))
    select_utterances([utt], SelectConfig(threshold=0.5, label_source="t1"))
    assert utt.confidence == 0.4 and not utt.decision.kept
    # Two teachers: no majority to vote with, the first teacher labels.
    select_utterances([utt], SelectConfig(threshold=0.3))
    assert utt.pseudo_label == "x y z" and utt.confidence == 0.4 and utt.decision.kept
    utt.hypotheses.insert(2, Hypothesis("t3", "x y w", scores={"entropy_tsallis_exp": 0.3}))
    select_utterances([utt], SelectConfig(threshold=0.5))
    assert utt.pseudo_label == "x y w" and utt.decision.kept


def test_summary_reports_pseudo_label_wer_of_kept_and_all():
    utts = [_utt("a", "the cat sat", 0.9, reference="the cat sat"),
            _utt("b", "a dog ran", 0.2, reference="the dog ran")]
    select_utterances(utts, SelectConfig(threshold=0.5))
    summary = summarize(utts)
    assert summary["kept"] == 1 and summary["reasons"] == {"kept": 1, "threshold": 1}
    assert summary["pseudo_label_quality"]["kept"]["wer"] == 0.0
    assert summary["pseudo_label_quality"]["all"]["wer"] == pytest.approx(1 / 6)


def test_config_validation():
    with pytest.raises(ConfigError):
        SelectConfig(threshold=1.5)
    with pytest.raises(ConfigError):
        SelectConfig(keep_fraction_schedule=[])
    with pytest.raises(ConfigError):
        SelectConfig(rank_by="random")
    with pytest.raises(ConfigError, match="agreement_key"):
        SelectConfig(agreement_key="agreemnet")
    assert SelectConfig(sanity={"max_repeat": 3}).sanity.max_repeat == 3


def test_auto_method_is_the_calibrated_combination_when_the_calibration_has_one():
    from types import SimpleNamespace

    from selftrain.confidence import COMBINED
    from selftrain.select.config import UNCALIBRATED_METHOD

    with_combiner, without = SimpleNamespace(combiners={"utterance": None}), SimpleNamespace(combiners={"word": None})
    auto = SelectConfig()
    assert auto.method == "auto" and auto.for_calibration(with_combiner).method == COMBINED
    assert auto.for_calibration(without).method == auto.for_calibration(None).method == UNCALIBRATED_METHOD
    assert auto.resolved().method == UNCALIBRATED_METHOD  # selecting without a calibration known
    assert SelectConfig(method="lm_margin").for_calibration(with_combiner).method == "lm_margin"
    utts = [_utt("a", "the cat", 0.9), _utt("b", "a dog", 0.2)]
    select_utterances(utts, SelectConfig(threshold=0.5))
    assert [u.decision.kept for u in utts] == [True, False]
    assert utts[0].decision.policy.startswith(f"{UNCALIBRATED_METHOD}:threshold=0.5")


def test_speaking_rate_bounds_are_quantiles_of_the_transcribed_audios_rate():
    from selftrain.select.policy import speaking_rate_bounds

    # 100 references of 12 characters ("Hello world!" normalises to "hello world", 11 chars) at 1..100 s
    labeled = [Utterance(f"u{i}", f"u{i}.wav", float(i), reference="Hello world!") for i in range(1, 101)]
    low, high = speaking_rate_bounds(labeled, 0.0)
    assert (low, high) == pytest.approx((11 / 100, 11.0))
    low, high = speaking_rate_bounds(labeled, 0.25)
    rates = np.array([11 / i for i in range(1, 101)])
    assert (low, high) == pytest.approx((np.quantile(rates, 0.25), np.quantile(rates, 0.75)))
    assert 11 / 76 < low < 11 / 75 and 11 / 26 < high < 11 / 25
    # untranscribed rows and rows without a duration do not count; too few left is an error
    unusable = [Utterance(f"x{i}", "x.wav", 0.0, reference="a b") for i in range(30)] + [Utterance("y", "y.wav", 2.0)]
    with pytest.raises(ConfigError, match="at least 20 transcribed utterances with durations, got 0"):
        speaking_rate_bounds(unusable, 0.01)
    with pytest.raises(ConfigError, match="quantile"):
        speaking_rate_bounds(labeled, 0.5)


def test_too_few_transcribed_utterances_turn_the_rate_bounds_off_with_a_warning(caplog):
    from selftrain.select.policy import speaking_rate_bounds_or_warning

    labeled = [Utterance(f"u{i}", f"u{i}.wav", float(i), reference="Hello world!") for i in range(1, 101)]
    bounds, warning = speaking_rate_bounds_or_warning(labeled, 0.0, "labeled.csv")
    assert bounds == pytest.approx((11 / 100, 11.0)) and warning is None
    with caplog.at_level("WARNING"):
        bounds, warning = speaking_rate_bounds_or_warning(labeled[:19], 0.01, "labeled.csv")
    assert bounds is None and warning in caplog.text
    assert warning.startswith("speaking-rate bounds off (labeled.csv: ") and "got 19" in warning
    with pytest.raises(ConfigError, match="quantile"):  # a bad quantile stays an error
        speaking_rate_bounds_or_warning(labeled, 0.5)


def test_a_label_slower_than_the_labeled_audio_is_dropped_by_the_rate_bounds():
    from selftrain.select.policy import chars_per_second, speaking_rate_bounds

    labeled = [Utterance(f"u{i}", f"u{i}.wav", 2.0 + 0.01 * i, reference="the cat sat on the mat today") for i in range(50)]
    low, high = speaking_rate_bounds(labeled, 0.01)
    sanity = SanityConfig(min_chars_per_second=low, max_chars_per_second=high)
    whole = _utt("w", "the cat sat on the mat today", 0.9, duration=2.2)
    lost_words = _utt("d", "the mat", 0.9, duration=2.2)  # words lost: far slower than any labeled utterance
    assert chars_per_second(whole.hypotheses[0].text, 2.2) == pytest.approx(28 / 2.2)
    assert sanity_reason(whole, whole.hypotheses[0], sanity) is None
    assert sanity_reason(lost_words, lost_words.hypotheses[0], sanity).startswith("rate: 3.2 chars/s outside")
