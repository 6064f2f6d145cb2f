"""LM word scores and the word context of the learned combination, on constructed inputs."""

from __future__ import annotations

import numpy as np
import pytest

from selftrain.confidence import COMBINED, add_lm_scores, fit_calibration
from selftrain.confidence.combine import word_feature_rows
from selftrain.confidence.metrics import auroc
from selftrain.lm import load_kenlm
from selftrain.record import Hypothesis, Utterance, Word

# A bigram model written by hand: P(cat | the) = 10^-0.3, "dog" is seen only as a unigram.
ARPA = """\\data\\
ngram 1=5
ngram 2=2

\\1-grams:
-1.0\t<s>\t-0.5
-1.0\t</s>
-0.7\tthe\t-0.2
-1.2\tcat\t0.0
-1.5\tdog\t0.0

\\2-grams:
-0.1\t<s> the
-0.3\tthe cat

\\end\\
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "tiny.arpa"
    path.write_text(ARPA)
    return load_kenlm(path)


def _hyp(text: str, **scores: float) -> Hypothesis:
    return Hypothesis("lm", text, [Word(w, i, i + 1, dict(scores)) for i, w in enumerate(text.split())],
                      scores=dict(scores))


def test_lm_scores_are_the_conditional_word_probabilities_and_matched_context(model):
    hyp = _hyp("the cat")
    add_lm_scores(hyp, model)
    the, cat = hyp.words
    assert the.scores["lm_word_prob"] == pytest.approx(10 ** -0.1) and the.scores["lm_context"] == 1.0
    assert cat.scores["lm_word_prob"] == pytest.approx(10 ** -0.3) and cat.scores["lm_context"] == 1.0
    backed_off = _hyp("the dog")
    add_lm_scores(backed_off, model)
    # "the dog" is unseen: the unigram times the back-off weight of "the", context 1 of order 2
    assert backed_off.words[1].scores["lm_word_prob"] == pytest.approx(10 ** (-1.5 - 0.2))
    assert backed_off.words[1].scores["lm_context"] == 0.5
    assert backed_off.scores["lm_word_prob"] == pytest.approx((10 ** -0.1 + 10 ** -1.7) / 2)


def test_a_hypothesis_without_words_gets_no_lm_scores(model):
    empty = Hypothesis("lm", "")
    add_lm_scores(empty, model)
    assert empty.scores == {}


def test_word_features_carry_the_utterance_scores_and_lexical_features():
    hyp = _hyp("a word", max_prob=0.5)
    hyp.scores["max_prob_calibrated"] = 0.4
    rows = word_feature_rows(hyp)
    assert rows[0]["utterance:max_prob"] == 0.5 and "utterance:max_prob_calibrated" not in rows[0]
    assert rows[0]["word_chars"] == pytest.approx(0.5) and rows[1]["word_chars"] == pytest.approx(0.8)
    assert [r["word_position"] for r in rows] == [0.25, 0.75]


def test_the_word_combination_learns_from_the_utterance_context():
    # Word scores carry no information; whether a word is right depends only on its utterance's score.
    rng = np.random.default_rng(0)
    utterances = []
    for k in range(200):
        good = k % 2 == 0
        words = ["a", "b", "c", "d"] if good else ["a", "x", "c", "y"]
        hyp = Hypothesis("lm", " ".join(words), [Word(w, i, i + 1, {"max_prob": float(rng.uniform(0.2, 0.8))})
                                                 for i, w in enumerate(words)],
                         scores={"loglik_per_frame": float(rng.uniform(0.6, 0.9) if good else rng.uniform(0.1, 0.4))})
        hyp.scores["max_prob"] = float(np.mean([w.scores["max_prob"] for w in hyp.words]))
        utterances.append(Utterance(f"u{k}", "x.wav", 1.0, reference="a b c d", hypotheses=[hyp]))
    calibration = fit_calibration(utterances[:100], teacher="lm")
    assert "utterance:loglik_per_frame" in calibration.combiners["word"].inputs
    without = fit_calibration(utterances[:100], teacher="lm", word_context=False)
    assert without.combiners["word"].inputs == ["max_prob"]
    scores, wrong = [], []
    for utt in utterances[100:]:
        hyp = utt.hypotheses[0]
        calibration.apply(hyp)
        for word, right in zip(hyp.words, [w in "abcd" for w in hyp.text.split()], strict=True):
            scores.append(word.scores[COMBINED])
            wrong.append(not right)
    # the wrong words all sit in low-scoring utterances: the combination detects them (AUROC of 1 - P(right))
    assert auroc(1.0 - np.asarray(scores), np.asarray(wrong)) > 0.85
