"""Writing a selection: the training CSV of kept pseudo-labels, every decision, and a summary."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jiwer

from selftrain.data.manifest import write_speechbrain_csv
from selftrain.io import JsonlWriter, atomic_write_json
from selftrain.record import Utterance
from selftrain.select.policy import reason_counts
from selftrain.select.segments import SEGMENT_AUDIO_DIR, label_pairs, trained_seconds, training_rows
from selftrain.sums import exact_sum
from selftrain.text import TextNormalizer

__all__ = ["SELECTED_CSV", "DECISIONS_JSONL", "SUMMARY_JSON", "write_selection", "pseudo_label_wer", "summarize",
           "with_columns", "LabelQuality"]

SELECTED_CSV = "selected.csv"
DECISIONS_JSONL = "decisions.jsonl"
SUMMARY_JSON = "summary.json"


def with_columns(utt: Utterance) -> Utterance:
    """A kept row with the ``confidence``, ``agreement`` and ``policy`` columns of ``selected.csv``."""
    extra = dict(utt.extra)
    extra["confidence"] = "" if utt.confidence is None else f"{utt.confidence:.4f}"
    extra["agreement"] = f"{utt.agreement['agreement']:.4f}" if "agreement" in utt.agreement else ""
    extra["policy"] = utt.decision.policy if utt.decision else ""
    return dataclasses.replace(utt, extra=extra)


def pseudo_label_wer(utterances: list[Utterance], normalizer: TextNormalizer | None = None) -> dict[str, float] | None:
    """WER and CER of the pseudo-labels of ``utterances`` that have a reference (None if none has);
    a segmented utterance counts its segments only (:func:`~selftrain.select.segments.label_pairs`)."""
    normalizer = normalizer or TextNormalizer()
    pairs = [pair for u in utterances if u.reference is not None
             for pair in label_pairs(u, normalizer(u.reference)) if pair[0]]
    if not pairs:
        return None
    refs, hyps = zip(*pairs, strict=True)
    return {"wer": float(jiwer.wer(list(refs), list(hyps))), "cer": float(jiwer.cer(list(refs), list(hyps))),
            "utterances": len(pairs)}


class _Errors:
    """Word (or character) error counts added up pair by pair; ``rate`` is what jiwer gives for all pairs at once."""

    def __init__(self, process: Callable[[str, str], Any]):
        self.process = process
        self.hits = self.substitutions = self.deletions = self.insertions = 0

    def add(self, reference: str, hypothesis: str) -> None:
        out = self.process(reference, hypothesis)
        self.hits += out.hits
        self.substitutions += out.substitutions
        self.deletions += out.deletions
        self.insertions += out.insertions

    def rate(self) -> float:
        reference_units = self.hits + self.substitutions + self.deletions
        if reference_units == 0:
            return float(self.insertions)
        return float(self.substitutions + self.deletions + self.insertions) / float(reference_units)


class LabelQuality:
    """:func:`~selftrain.select.output.pseudo_label_wer` added up one utterance at a time."""

    def __init__(self) -> None:
        self.words, self.chars, self.pairs = _Errors(jiwer.process_words), _Errors(jiwer.process_characters), 0

    def add(self, utt: Utterance, normalizer: TextNormalizer) -> None:
        if utt.reference is None:
            return
        for reference, label in label_pairs(utt, normalizer(utt.reference)):
            if reference:
                self.words.add(reference, label)
                self.chars.add(reference, label)
                self.pairs += 1

    def result(self) -> dict[str, float] | None:
        if not self.pairs:
            return None
        return {"wer": self.words.rate(), "cer": self.chars.rate(), "utterances": self.pairs}


def summarize(utterances: list[Utterance]) -> dict:
    """Counts by reason, kept fraction and hours, mean confidence, and pseudo-label WER when references exist."""
    kept = [u for u in utterances if u.decision is not None and u.decision.kept]
    confidences = [u.confidence for u in kept if u.confidence is not None]
    summary: dict = {
        "utterances": len(utterances),
        "kept": len(kept),
        "kept_fraction": len(kept) / len(utterances) if utterances else 0.0,
        "kept_hours": exact_sum(trained_seconds(u) for u in kept) / 3600.0,
        "segmented": sum(1 for u in kept if u.segments),
        "mean_kept_confidence": exact_sum(confidences) / len(confidences) if confidences else None,
        "reasons": reason_counts(utterances),
        "policy": next((u.decision.policy for u in utterances if u.decision), ""),
    }
    with_labels = [u for u in utterances if u.pseudo_label is not None]
    whole = [dataclasses.replace(u, segments=[]) for u in with_labels]
    summary["pseudo_label_quality"] = {"all": pseudo_label_wer(whole), "kept": pseudo_label_wer(kept)}
    return summary


def write_selection(utterances: list[Utterance], out_dir: str | Path, extra_summary: dict | None = None,
                    segment_context: str = "cut") -> dict[str, Path]:
    """Write ``selected.csv`` (kept pseudo-labels with confidence columns), ``decisions.jsonl`` and
    ``summary.json`` (:func:`summarize` plus ``extra_summary``). A kept utterance with segments trains
    through its segments' audio, cut into ``segments/`` beside the CSV (``segment_context: cut``),
    or whole with its runs named (``whole``; :func:`~selftrain.select.segments.training_rows`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out_dir / SELECTED_CSV, "decisions": out_dir / DECISIONS_JSONL, "summary": out_dir / SUMMARY_JSON}
    kept: list[Utterance] = []
    for utt in utterances:
        if utt.decision is not None and utt.decision.kept:
            rows = training_rows(utt, out_dir / SEGMENT_AUDIO_DIR, segment_context)
            kept.extend(with_columns(row) for row in rows)
    write_speechbrain_csv(kept, paths["csv"], use_pseudo_labels=True)
    tmp = paths["decisions"].with_name("." + DECISIONS_JSONL + ".partial")
    with JsonlWriter(tmp, resume=False) as writer:
        for utt in utterances:
            writer.write(utt.to_dict())
    tmp.replace(paths["decisions"])
    atomic_write_json(paths["summary"], {**summarize(utterances), **(extra_summary or {})})
    return paths
