"""benchmarks/analysis/lm_corrections.py's word classes on constructed records."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "analysis"))

from lm_corrections import count_classes, summarise, word_classes  # noqa: E402

from selftrain.record import Decision, Hypothesis, Segment, Utterance  # noqa: E402


def _utt(label: str, greedy: str, reference: str, kept: bool = True, segments=()) -> Utterance:
    return Utterance(id="u", wav="u.wav", duration=1.0, reference=reference,
                     hypotheses=[Hypothesis("lm", label), Hypothesis("greedy", greedy)], pseudo_label=label,
                     decision=Decision(kept, "test"), segments=list(segments))


def test_each_word_is_classed_by_who_said_it_and_whether_it_is_right():
    # the LM fixed "cat" (greedy said "kat"), broke "sat" into "set", and both say "the", "on" and "mat" ("mat" is wrong)
    utt = _utt("the cat set on mat", "the kat sat on mat", "the cat sat on a hat")
    assert word_classes(utt) == ["am_right", "lm_right", "lm_wrong", "am_right", "am_wrong"]


def test_sets_count_decoded_kept_whole_and_run_words_apart():
    whole = _utt("a b c", "a x c", "a b d")
    runs = _utt("a b c", "a b c", "a b c", segments=[Segment(0.0, 0.5, "a b", 0, 1)])
    dropped = _utt("q", "", "r", kept=False)
    counts = count_classes([whole, runs, dropped])
    assert sum(counts["decoded"].values()) == 7
    assert counts["kept_whole"] == {"am_right": 1, "lm_right": 1, "am_wrong": 1}
    assert counts["kept_runs"] == {"am_right": 2}
    shares = summarise(counts)
    assert shares["decoded"]["lm_wrong"] == pytest.approx(1 / 7, abs=1e-4)  # "q": no greedy word to match
    assert shares["kept_whole"]["lm_change_precision"] == 1.0
    assert shares["kept_runs"]["lm_change_precision"] is None
