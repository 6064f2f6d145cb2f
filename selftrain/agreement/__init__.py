"""Agreement between teachers: alignment, ROVER voting, pairwise agreement, DUST, hypothesis import."""

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
from selftrain.renames import renamed_attributes

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


# The 0.1.0 name, kept for code that imports it.
__getattr__ = renamed_attributes(__name__, {"MergeReport": ("CoverageReport", CoverageReport)})
