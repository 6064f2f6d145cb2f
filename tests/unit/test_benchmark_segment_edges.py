"""benchmarks/analysis/segment_edges.py's scoring on constructed hypotheses: words inside a span, edge counts at inner cuts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "analysis"))

from segment_edges import inside, score  # noqa: E402

from selftrain.record import Hypothesis, Word  # noqa: E402


def test_inside_keeps_the_words_whose_centre_lies_in_the_span():
    # 100 frames over 4 s: 0.04 s per frame; centres at 0.2, 1.0, 2.0 and 3.6 s
    hyp = Hypothesis("greedy", "a b c d", [Word("a", 0, 10), Word("b", 20, 30), Word("c", 45, 55), Word("d", 85, 95)],
                     num_frames=100)
    assert inside(hyp, 0.5, 2.5, 4.0) == "b c"
    assert inside(hyp, 0.0, 4.0, 4.0) == "a b c d"


def test_score_counts_edges_only_at_inner_cuts():
    pairs = [
        ("one two three", "one two three", True, True),   # both inner cuts agree
        ("one two three", "one two", False, True),        # end word deleted; start is the utterance's edge
        ("one two three", "uh one two tree", True, False),  # a word inserted before the start
    ]
    row = score(pairs)
    assert row["segments"] == 3 and row["wer"] == pytest.approx(3 / 9, abs=1e-4)
    assert row["start_cuts"] == 2 and row["start_equal"] == 0.5 and row["start_insert"] == 0.5
    assert row["end_cuts"] == 2 and row["end_equal"] == 0.5 and row["end_delete"] == 0.5
    assert row["insertions"] == pytest.approx(1 / 9, abs=1e-4) and row["deletions"] == pytest.approx(1 / 9, abs=1e-4)
