"""benchmarks/analysis/error_kinds.py on constructed texts: kinds of errors by group."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "analysis"))

from error_kinds import error_kinds_by_group  # noqa: E402


def test_errors_are_split_by_kind_and_group_with_the_utterances_that_lost_their_words():
    triples = [("known", "a b c d", "a b c d"),        # right
               ("known", "a b c d", "a x c d e"),      # one substitution, one insertion
               ("unseen", "a b c d", "a"),             # three deletions: lost more than half
               ("unseen", "a b c d", "")]              # empty: every word deleted
    groups = error_kinds_by_group(triples)
    assert groups["known"] == {"substitutions": 0.125, "deletions": 0.0, "insertions": 0.125, "utterances": 2,
                               "mostly_deleted_share": 0.0, "length_ratio_p10": 1.029}  # 10th percentile of 7/7 and 9/7
    assert groups["unseen"]["deletions"] == 0.875 and groups["unseen"]["mostly_deleted_share"] == 1.0
    assert groups["all"]["utterances"] == 4 and groups["all"]["deletions"] == pytest.approx(7 / 16, abs=1e-4)
    assert groups["all"]["mostly_deleted_share"] == 0.5
