"""benchmarks/analysis/length_ratio.py's split of the kept pseudo-labels by the teachers' length ratio."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "analysis"))

from length_ratio import greedy_ratio, kept_whole, sweep  # noqa: E402

from selftrain.record import Decision, Hypothesis, Segment, Utterance  # noqa: E402


def _utt(uid: str, label: str, greedy: str, reference: str, kept: bool = True, segments=()) -> Utterance:
    return Utterance(id=uid, wav=f"{uid}.wav", duration=3600.0, reference=reference,
                     hypotheses=[Hypothesis("lm", label), Hypothesis("greedy", greedy)], pseudo_label=label,
                     decision=Decision(kept, "test"), segments=list(segments))


def test_the_ratio_is_greedy_characters_per_label_character():
    assert greedy_ratio(_utt("a", "ab cd", "abxcdx", "ab cd")) == pytest.approx(6 / 5)
    assert greedy_ratio(_utt("b", "", "abc", "abc")) is None


def test_labels_that_lost_words_go_first():
    full = _utt("full", "the cat sat", "the kat sat", "the cat sat")             # ratio 1.0, right
    short = _utt("short", "the cat", "the cat sat down", "the cat sat down")     # ratio 16/7, two words deleted
    runs = _utt("runs", "a b", "a b", "a b", segments=[Segment(0.0, 0.5, "a b", 0, 1)])
    dropped = _utt("dropped", "x", "x", "y", kept=False)
    assert [u.id for u in kept_whole([full, short, runs, dropped])] == ["full", "short"]
    result = sweep([full, short, runs, dropped], bounds=(1.0, 3.0))
    assert result["kept"]["deletions"] == pytest.approx(2 / 7, abs=1e-4)
    tight, loose = result["rows"]
    assert tight["kept_share"] == 0.5 and tight["stays"]["wer"] == 0.0 and tight["goes"]["deletions"] == 0.5
    assert loose["kept_share"] == 1.0 and loose["goes"]["utterances"] == 0
