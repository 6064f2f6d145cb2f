"""Pseudo-label quality, the reporting: the kept fractions and targets the figures are read
against, whether the targets are met, and the results as Markdown."""

from __future__ import annotations

import math

from selftrain.confidence import FRAME_MEASURES

__all__ = ["FRACTIONS", "TARGET_RATIO", "TARGET_AUROC", "targets_met", "to_markdown"]

FRACTIONS = (1.0, 0.8, 0.6, 0.4)
TARGET_RATIO, TARGET_AUROC = 0.4, 0.85


def targets_met(unfiltered: float, best_at_60: float | None, best_auroc: float | None,
                oracle_at_60: float | None = None) -> dict:
    """The WER ratio at 60 % kept and the best word AUROC against their targets."""
    ratio = best_at_60 / unfiltered if best_at_60 is not None and unfiltered > 0 else None
    # The oracle (ranking by the true WER) bounds every ranking: when its ratio is above the target,
    # no confidence score can meet it on these hypotheses.
    oracle_ratio = oracle_at_60 / unfiltered if oracle_at_60 is not None and unfiltered > 0 else None
    reachable = unfiltered - oracle_at_60 if oracle_at_60 is not None else None
    share = (unfiltered - best_at_60) / reachable if reachable and best_at_60 is not None else None
    return {"wer_ratio_at_60": ratio, "wer_ratio_target": TARGET_RATIO,
            "oracle_wer_ratio_at_60": oracle_ratio, "share_of_oracle_reduction_at_60": share,
            "wer_ratio_met": ratio is not None and ratio <= TARGET_RATIO,
            "best_word_auroc": best_auroc, "auroc_target": TARGET_AUROC,
            "auroc_met": best_auroc is not None and best_auroc >= TARGET_AUROC}


def _fmt(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def to_markdown(result: dict, command: str) -> str:
    """The results as Markdown tables."""
    lines = ["# Pseudo-label quality", "", f"Produced by: `{command}`", "",
             f"{result['utterances']} utterances with references; teachers: {', '.join(result['teachers'])}; "
             f"primary: {result['primary_teacher']}; unfiltered WER {_fmt(result['unfiltered_wer'])}.", "",
             "## Pseudo-label WER vs kept fraction", "", "| ranking | " + " | ".join(f"{f:.0%}" for f in FRACTIONS) + " |",
             "|---" * (len(FRACTIONS) + 1) + "|"]
    for name, row in result["wer_at_kept_fraction"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row[f'{f:g}']) for f in FRACTIONS) + " |")
    lines += ["", "## Word-level error detection", "",
              "| method | words | error rate | AUROC | AUPRC | ECE | ECE isotonic (2-fold) | ECE temperature (2-fold) |",
              "|---|---|---|---|---|---|---|---|"]
    for name, m in result["word_detection"].items():
        if m is not None:
            lines.append(f"| {name} | {m['count']} | {_fmt(m['error_rate'])} | {_fmt(m['auroc'])} | {_fmt(m['auprc'])} | "
                         f"{_fmt(m['ece'])} | {_fmt(m.get('ece_isotonic'))} | {_fmt(m.get('ece_temperature'))} |")
    if result.get("nbest_temperatures"):
        lines += ["", "## n-best temperature", "", "| temperature | word_posterior AUROC | nbest_posterior WER at 60 % "
                  "| word_posterior WER at 60 % |", "|---|---|---|---|"]
        for temp, row in result["nbest_temperatures"].items():
            lines.append(f"| {temp} | {_fmt(row['word_posterior_auroc'])} | {_fmt(row['nbest_posterior_wer_at_60'])} | "
                         f"{_fmt(row['word_posterior_wer_at_60'])} |")
    if result.get("confidence_variants"):
        lines += _variants_markdown(result["confidence_variants"])
    t = result["targets"]
    lines += ["", f"Best ranking at 60 % kept: {result['best_method_at_60']} (chosen on this data); WER ratio to "
              f"unfiltered {_fmt(t['wer_ratio_at_60'])} (target <= {TARGET_RATIO}: {'met' if t['wer_ratio_met'] else 'not met'}); "
              f"best word AUROC {_fmt(t['best_word_auroc'])} (target >= {TARGET_AUROC}: {'met' if t['auroc_met'] else 'not met'}).  ",
              f"Oracle ranking (true utterance WER) at 60 % kept: ratio {_fmt(t.get('oracle_wer_ratio_at_60'))}, the floor for "
              f"any ranking of these hypotheses; the best ranking achieves {_fmt(t.get('share_of_oracle_reduction_at_60'))} "
              "of the oracle's WER reduction.", ""]
    return "\n".join(lines)


def _variants_markdown(variants: dict[str, dict]) -> list[str]:
    lines = ["", "## Confidence variants (primary teacher re-scored): word AUROC / WER at 60 % kept", "",
             "| variant | " + " | ".join(FRAME_MEASURES) + " |", "|---" * (len(FRAME_MEASURES) + 1) + "|"]
    for name, measures in variants.items():
        cells = [f"{_fmt(measures[m]['auroc'])} / {_fmt(measures[m]['wer_at_60'])}" if m in measures else "-"
                 for m in FRAME_MEASURES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
