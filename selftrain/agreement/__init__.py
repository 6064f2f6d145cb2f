"""Agreement between teachers: alignment, ROVER voting, pairwise agreement, DUST, hypothesis import."""

import warnings
from typing import Any

from selftrain.agreement.rover import (
    PEER_SCORES,
    AgreementConfig,
    add_peer_scores,
    align_to_pivot,
    compute_agreement,
    dust_max_wer,
    pairwise_disagreement,
    rover,
)
from selftrain.agreement.teachers import (
    EXTERNAL_SCORE,
    CoverageReport,
    external_hypothesis,
    load_teacher_file,
    merge_teachers,
)

__all__ = [
    "AgreementConfig",
    "PEER_SCORES",
    "add_peer_scores",
    "align_to_pivot",
    "compute_agreement",
    "dust_max_wer",
    "pairwise_disagreement",
    "rover",
    "EXTERNAL_SCORE",
    "CoverageReport",
    "external_hypothesis",
    "load_teacher_file",
    "merge_teachers",
]


def __getattr__(name: str) -> Any:
    # ``MergeReport`` was the name of ``CoverageReport`` in 0.1.0; kept for code that imports it.
    if name == "MergeReport":
        warnings.warn("selftrain.agreement.MergeReport is deprecated; use CoverageReport", DeprecationWarning,
                      stacklevel=2)
        return CoverageReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
