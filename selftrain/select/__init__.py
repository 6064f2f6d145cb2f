"""Pseudo-label selection: policies (threshold, keep-fraction, agreement, DUST, schedules, sanity
filters), the decision of every utterance with its reason, and the selected training CSV."""

from selftrain.select.config import SanityConfig, SegmentConfig, SelectConfig, linear_schedule
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
