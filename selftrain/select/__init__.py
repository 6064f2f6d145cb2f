"""Pseudo-label selection: policies (threshold, keep-fraction, agreement, DUST, schedules, sanity
filters), the decision of every utterance with its reason, and the selected training CSV.

The configs are imported with the package; the rest on first use, since it brings torch along and
``selftrain select --help`` reads the configs' defaults only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from selftrain.renames import lazy_attributes
from selftrain.select.config import SanityConfig, SegmentConfig, SelectConfig, linear_schedule

if TYPE_CHECKING:
    from selftrain.select.output import (
        DECISIONS_JSONL,
        SELECTED_CSV,
        SUMMARY_JSON,
        pseudo_label_wer,
        summarize,
        write_selection,
    )
    from selftrain.select.pipeline import SelectionResult, attach_manifest, run_selection
    from selftrain.select.policy import (
        chosen_hypothesis,
        reason_counts,
        sanity_reason,
        select_utterances,
        utterance_confidence,
    )

__all__ = [
    "SanityConfig",
    "SegmentConfig",
    "SelectConfig",
    "linear_schedule",
    "select_utterances",
    "sanity_reason",
    "chosen_hypothesis",
    "utterance_confidence",
    "reason_counts",
    "write_selection",
    "pseudo_label_wer",
    "summarize",
    "SELECTED_CSV",
    "DECISIONS_JSONL",
    "SUMMARY_JSON",
    "SelectionResult",
    "attach_manifest",
    "run_selection",
]

# name -> module of the names imported on first use
_LAZY = {
    **dict.fromkeys(("DECISIONS_JSONL", "SELECTED_CSV", "SUMMARY_JSON", "pseudo_label_wer", "summarize",
                     "write_selection"), "output"),
    **dict.fromkeys(("SelectionResult", "attach_manifest", "run_selection"), "pipeline"),
    **dict.fromkeys(("chosen_hypothesis", "reason_counts", "sanity_reason", "select_utterances",
                     "utterance_confidence"), "policy"),
}


__getattr__ = lazy_attributes(__name__, _LAZY)
