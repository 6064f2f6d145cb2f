"""ROVER voting, pairwise agreement and DUST on constructed hypotheses."""

from __future__ import annotations

import pytest

from selftrain.agreement import (
    AgreementConfig,
    add_peer_scores,
    align_to_pivot,
    compute_agreement,
    dust_max_wer,
    pairwise_disagreement,
    rover,
)
from selftrain.errors import ConfigError
from selftrain.record import Hypothesis, Utterance, Word


def _hyp(teacher: str, text: str, conf: list[float] | None = None) -> Hypothesis:
    words = text.split()
    conf = conf or [1.0] * len(words)
    return Hypothesis(teacher, text, [Word(w, i, i + 1, {"entropy_tsallis_exp": c})
                                      for i, (w, c) in enumerate(zip(words, conf, strict=True))])


def test_align_to_pivot_reports_matches_deletions_and_insertions():
    matched, inserted = align_to_pivot(["a", "b", "c"], ["x", "a", "c"])
    assert matched == [1, None, 2]
    assert inserted == {0: [0]}
    assert align_to_pivot([], ["a"]) == ([], {0: [0]})
    assert align_to_pivot(["a"], []) == ([None], {})


def test_majority_vote_fixes_each_teachers_single_error():
    hyps = [_hyp("t1", "the cat sat on the mat"), _hyp("t2", "the hat sat on the mat"),
            _hyp("t3", "the cat sat on mat"), _hyp("t4", "the cat sat on the mat today")]
    combined = rover(hyps)
    assert combined.text == "the cat sat on the mat"
    assert combined.teacher == "rover"
    agreements = {w.word: w.scores["agreement"] for w in combined.words if w.word != "the"}
    assert agreements == {"cat": 0.75, "sat": 1.0, "on": 1.0, "mat": 1.0}


def test_confidence_weights_break_a_two_way_split():
    hyps = [_hyp("a", "hello world", [0.9, 0.2]), _hyp("b", "hello word", [0.9, 0.9])]
    combined = rover(hyps, AgreementConfig(pivot="first"))
    assert combined.text == "hello word"
    assert combined.words[1].scores["agreement"] == 0.5
    assert combined.words[1].scores["rover"] == pytest.approx(0.9 / 1.1)


def test_deletion_votes_remove_a_lone_insertion_and_ties_go_to_the_pivot():
    hyps = [_hyp("a", "yes"), _hyp("b", "yes no", [1.0, 0.4]), _hyp("c", "yes")]
    assert rover(hyps).text == "yes"
    # two teachers, one word each: the pivot's word wins the tie
    assert rover([_hyp("a", "red"), _hyp("b", "read")], AgreementConfig(pivot="b")).text == "read"
    with pytest.raises(ConfigError):
        rover([_hyp("a", "x")], AgreementConfig(pivot="zz"))
    with pytest.raises(ConfigError):
        rover([])


def test_teacher_weights_change_the_vote():
    hyps = [_hyp("big", "one two"), _hyp("s1", "one too"), _hyp("s2", "one too")]
    assert rover(hyps, AgreementConfig(pivot="first")).text == "one too"
    assert rover(hyps, AgreementConfig(pivot="first", teacher_weights={"big": 3.0})).text == "one two"


def test_pairwise_disagreement_and_dust():
    assert pairwise_disagreement(["a b c d", "a b c d"]) == 0.0
    # 1 substitution over 4 words; pairs: (x,y)=0.25, (x,z)=1 (empty), (y,z)=1
    assert pairwise_disagreement(["a b c d", "a b c e", ""]) == pytest.approx((0.25 + 1 + 1) / 3)
    assert pairwise_disagreement(["a"]) == 0.0
    assert dust_max_wer("a b c d", ["a b c d", "a b x d", "a b"]) == pytest.approx(0.5)
    assert dust_max_wer("", [""]) == 0.0
    with pytest.raises(ConfigError):
        dust_max_wer("a", [])


def test_compute_agreement_fills_the_utterance():
    utt = Utterance("u", "u.wav", 1.0, hypotheses=[_hyp("t1", "a b c"), _hyp("t2", "a b d"),
                                                   _hyp("t1:dropout1", "a b c"), _hyp("t1:dropout2", "a x c")])
    combined = compute_agreement(utt, AgreementConfig(dust_reference="t1"))
    assert combined is not None and combined.text == "a b c"  # pivot t1 wins the c/d tie
    assert utt.agreement["num_teachers"] == 2.0
    assert utt.agreement["agreement"] == pytest.approx(1 - 1 / 3)
    assert utt.agreement["word_agreement"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert utt.agreement["exact_match"] == 0.5
    assert utt.agreement["dust_max_wer"] == pytest.approx(1 / 3)
    assert [h.teacher for h in utt.hypotheses][-1] == "rover"
    compute_agreement(utt, AgreementConfig(dust_reference="t1"))  # idempotent: rover replaced, not added
    assert [h.teacher for h in utt.hypotheses].count("rover") == 1
    assert compute_agreement(Utterance("e", "e.wav", 1.0)) is None


def test_combined_hypothesis_gets_utterance_only_scores_from_the_teachers():
    from selftrain.record import NBestEntry

    a = _hyp("a", "x y")
    a.nbest = [NBestEntry("x y", -1.0, 0.0, 0.0), NBestEntry("x z", -1.0, 0.0, 0.0)]
    a.scores = {"nbest_posterior": 0.5, "loglik_per_frame": 0.9}
    b = _hyp("b", "x z")
    b.nbest = [NBestEntry("x z", -1.0, 0.0, 0.0)]
    b.scores = {"nbest_posterior": 1.0, "loglik_per_frame": 0.8}
    combined = rover([a, b], AgreementConfig(pivot="first"))
    assert combined.text == "x y"
    assert combined.scores["nbest_posterior"] == pytest.approx((0.5 + 0.0) / 2)
    assert combined.scores["loglik_per_frame"] == pytest.approx((0.9 + 0.0) / 2)
    assert combined.scores["entropy_tsallis_exp"] == pytest.approx(1.0)
    empty = rover([_hyp("a", ""), _hyp("b", "")])
    assert empty.text == "" and empty.scores["agreement"] == 1.0


def _peer_scores(hyp: Hypothesis) -> list[tuple[str, float, float]]:
    return [(w.word, w.scores["peer_agreement"], round(w.scores["peer_similarity"], 4)) for w in hyp.words]


def test_peer_scores_give_each_word_the_share_of_other_teachers_that_say_it():
    lm, greedy, third = _hyp("lm", "the cat sat"), _hyp("greedy", "the hat sat down"), _hyp("t3", "the cat")
    utt = Utterance("u", "u.wav", 1.0, hypotheses=[lm, greedy, third])
    add_peer_scores(utt)
    # "cat": greedy says "hat" (character similarity 2/3), t3 agrees; "sat": only greedy says it
    assert _peer_scores(lm) == [("the", 1.0, 1.0), ("cat", 0.5, round((2 / 3 + 1) / 2, 4)), ("sat", 0.5, 0.5)]
    assert lm.scores["peer_agreement"] == pytest.approx(2 / 3)
    assert lm.scores["peer_similarity"] == pytest.approx((1 + 5 / 6 + 0.5) / 3)
    # "down" is an insertion of greedy's that no other teacher has
    assert _peer_scores(greedy)[3] == ("down", 0.0, 0.0)


def test_peer_scores_follow_teacher_weights_and_leave_single_teachers_alone():
    lm, greedy, other = _hyp("lm", "a b"), _hyp("greedy", "a c"), _hyp("other", "a b")
    add_peer_scores(Utterance("u", "u.wav", 1.0, hypotheses=[lm, greedy, other]),
                    AgreementConfig(teacher_weights={"greedy": 3.0}))
    assert [w.scores["peer_agreement"] for w in lm.words] == [1.0, 0.25]
    alone = _hyp("lm", "a b")
    add_peer_scores(Utterance("v", "v.wav", 1.0, hypotheses=[alone]))
    assert all("peer_agreement" not in w.scores for w in alone.words)


def test_an_empty_hypothesis_scores_the_share_of_peers_that_are_empty_too():
    empty, also_empty, talker = _hyp("lm", ""), _hyp("greedy", ""), _hyp("t3", "words here")
    add_peer_scores(Utterance("u", "u.wav", 1.0, hypotheses=[empty, also_empty, talker]))
    assert empty.scores["peer_agreement"] == 0.5
    assert talker.scores["peer_agreement"] == 0.0


def test_the_old_name_of_the_coverage_report_still_imports_with_a_warning():
    import selftrain.agreement

    with pytest.warns(DeprecationWarning, match="CoverageReport"):
        assert selftrain.agreement.MergeReport is selftrain.agreement.CoverageReport
