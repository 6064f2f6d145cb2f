"""The selection of :func:`~selftrain.select.pipeline.run_selection`, streamed: memory flat in the pool.

Two passes over the teachers' files (:class:`~selftrain.agreement.stream.MergedTeachers`, one
utterance at a time, with its manifest row, peer scores, calibration and agreement). The first keeps
only what the keep-fraction needs: one rank value per utterance that survives the filters. The
second decides each utterance again with the cut known and streams ``decisions.jsonl`` and the rows
of ``selected.csv`` out, adding up ``summary.json`` as it goes. The files are byte for byte those
of :func:`~selftrain.select.pipeline.run_selection`. Held per utterance: its id (twice: teachers'
index, manifest ids), one byte offset per file and one float; plus the utterances that have a
reference (for the word-level detection figures, usually none in an unlabeled pool).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selftrain.agreement import AgreementConfig, add_peer_scores, compute_agreement
from selftrain.agreement.stream import MergedTeachers
from selftrain.confidence.calibrate import Calibration
from selftrain.data.check import has_bad_encoding
from selftrain.data.manifest import SPEECHBRAIN_COLUMNS, iter_manifest, speechbrain_fields
from selftrain.io import JsonlWriter, atomic_write, atomic_write_json
from selftrain.record import Decision, Utterance
from selftrain.select.config import SelectConfig
from selftrain.select.output import DECISIONS_JSONL, SELECTED_CSV, SUMMARY_JSON, LabelQuality, with_columns
from selftrain.select.pipeline import fill_from_manifest, word_quality
from selftrain.select.policy import (
    chosen_hypothesis,
    first_failure,
    keep_ranked,
    quota,
    rank_value,
    ranked_decision,
)
from selftrain.select.segments import SEGMENT_AUDIO_DIR, apply_segments, trained_seconds, training_rows
from selftrain.storage import storage_errors
from selftrain.sums import ExactSum
from selftrain.text import TextNormalizer

__all__ = ["StreamedSelection", "run_selection_stream"]

log = logging.getLogger(__name__)


@dataclass
class StreamedSelection:
    """What a streamed selection produced: its files, its ``summary.json`` content and warnings."""

    paths: dict[str, Path]
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


class _ManifestRows:
    """A manifest's rows looked up by id while both are read in (nearly) the same order.

    Rows read ahead of the id asked for wait in a buffer; the first row of an id is the one used.
    """

    def __init__(self, manifest: str | Path):
        self.manifest = manifest
        self._rows = iter_manifest(manifest)
        self._waiting: dict[str, Utterance] = {}
        self._seen: set[str] = set()
        self.repeated_rows = 0
        self.repeated: set[str] = set()

    def _register(self, row: Utterance) -> bool:
        if row.id in self._seen:
            self.repeated_rows += 1
            self.repeated.add(row.id)
            return False
        self._seen.add(row.id)
        return True

    def take(self, utt_id: str) -> Utterance | None:
        if utt_id in self._waiting:
            return self._waiting.pop(utt_id)
        for row in self._rows:
            if not self._register(row):
                continue
            if row.id == utt_id:
                return row
            self._waiting[row.id] = row
        return None

    def unmatched(self) -> list[str]:
        """Ids with a row but never asked for (reads the rest of the manifest)."""
        for row in self._rows:
            if self._register(row):
                self._waiting[row.id] = row
        return list(self._waiting)


@dataclass
class _Inputs:
    hyps: list[str | Path]
    teachers: list[str | None] | None
    manifest: str | Path | None
    agreement: AgreementConfig
    calibration: Calibration | None


def _prepared(inputs: _Inputs, merged: MergedTeachers, unusable: dict[str, str], unknown: list[str],
              rows: _ManifestRows | None) -> Iterator[Utterance]:
    """Each utterance as :func:`run_selection` has it before selecting: manifest fields, peer scores,
    calibration, agreement."""
    for utt in merged:
        source = rows.take(utt.id) if rows is not None else None
        if rows is not None and source is None:
            unknown.append(utt.id)
        elif source is not None and has_bad_encoding(source):
            unusable[utt.id] = f"encoding: manifest row of {utt.id} holds bytes that are not UTF-8"
        elif source is not None:
            fill_from_manifest(utt, source)
        add_peer_scores(utt, inputs.agreement)
        if inputs.calibration is not None:
            for hyp in utt.hypotheses:
                inputs.calibration.apply(hyp)
        teachers = [h for h in utt.hypotheses if h.teacher != inputs.agreement.combined_name]
        if len(teachers) >= 2 or inputs.agreement.dust_reference:
            compute_agreement(utt, inputs.agreement)
        yield utt


def _manifest_warnings(rows: _ManifestRows, unknown: list[str]) -> list[str]:
    """The warnings of :func:`~selftrain.select.pipeline.attach_manifest`, same wording and order."""
    lacking = rows.unmatched()
    warnings = []
    for count, what, examples in ((len(unknown), "hypothesis id(s) not in the manifest", unknown),
                                  (rows.repeated_rows, "manifest row(s) repeat an earlier id (the first is used)",
                                   sorted(rows.repeated)),
                                  (len(lacking), "manifest row(s) have no hypothesis", lacking)):
        if count:
            warnings.append(f"{rows.manifest}: {count} {what} (e.g. {', '.join(examples[:5])})")
    return warnings


class _Summary:
    """:func:`~selftrain.select.output.summarize` added up one utterance at a time."""

    def __init__(self) -> None:
        self.utterances = self.kept = self.segmented = 0
        # exact sums, so these figures are summarize()'s to the last digit on every Python
        self.kept_seconds, self.confidence_sum = ExactSum(), ExactSum()
        self.confidences = 0
        self.reasons: Counter[str] = Counter()
        self.policy: str | None = None
        self.all_labels, self.kept_labels = LabelQuality(), LabelQuality()
        self.normalizer = TextNormalizer()

    def add(self, utt: Utterance) -> None:
        self.utterances += 1
        if utt.pseudo_label is not None:
            self.all_labels.add(dataclasses.replace(utt, segments=[]), self.normalizer)
        if utt.decision is None:
            return
        self.policy = utt.decision.policy if self.policy is None else self.policy
        self.reasons[utt.decision.reason.split(":", 1)[0]] += 1
        if not utt.decision.kept:
            return
        self.kept += 1
        self.kept_seconds.add(trained_seconds(utt))
        self.segmented += bool(utt.segments)
        if utt.confidence is not None:
            self.confidence_sum.add(utt.confidence)
            self.confidences += 1
        self.kept_labels.add(utt, self.normalizer)

    def to_dict(self) -> dict[str, Any]:
        return {
            "utterances": self.utterances,
            "kept": self.kept,
            "kept_fraction": self.kept / self.utterances if self.utterances else 0.0,
            "kept_hours": self.kept_seconds.value / 3600.0,
            "segmented": self.segmented,
            "mean_kept_confidence": self.confidence_sum.value / self.confidences if self.confidences else None,
            "reasons": dict(sorted(self.reasons.items())),
            "policy": self.policy or "",
            "pseudo_label_quality": {"all": self.all_labels.result(), "kept": self.kept_labels.result()},
        }


class _SelectionWriter:
    """``selected.csv``, ``decisions.jsonl`` and ``summary.json`` written as the decisions come."""

    def __init__(self, out_dir: Path, segment_context: str):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir, self.segment_context = out_dir, segment_context
        self.paths = {"csv": out_dir / SELECTED_CSV, "decisions": out_dir / DECISIONS_JSONL, "summary": out_dir / SUMMARY_JSON}
        self._decisions_tmp = self.paths["decisions"].with_name("." + DECISIONS_JSONL + ".partial")
        self._rows_tmp = out_dir / f".{SELECTED_CSV}.rows.partial"
        self._decisions = JsonlWriter(self._decisions_tmp, resume=False)
        with storage_errors(self._rows_tmp):
            self._rows = open(self._rows_tmp, "w", encoding="ascii")  # noqa: SIM115 (closed in finish)
        self._columns: set[str] = set()
        self.summary = _Summary()
        self.labeled: list[Utterance] = []

    def add(self, utt: Utterance) -> None:
        if utt.decision is not None and utt.decision.kept:
            for row in training_rows(utt, self.out_dir / SEGMENT_AUDIO_DIR, self.segment_context):
                row = with_columns(row)
                self._columns.update(row.extra)
                # ASCII escapes keep undecodable bytes (surrogates) of a manifest row intact until the CSV.
                line = json.dumps({"fields": speechbrain_fields(row, self.paths["csv"].parent, use_pseudo_labels=True),
                                   "extra": row.extra})
                with storage_errors(self._rows_tmp):
                    self._rows.write(line + "\n")
        self._decisions.write(utt.to_dict())
        self.summary.add(utt)
        if utt.reference is not None:
            self.labeled.append(utt)

    def finish(self, extra_summary: dict[str, Any]) -> dict[str, Any]:
        with storage_errors(self._rows_tmp):
            self._rows.close()
        self._decisions.close()
        self._write_csv()
        self._decisions_tmp.replace(self.paths["decisions"])
        summary = {**self.summary.to_dict(), **extra_summary}
        atomic_write_json(self.paths["summary"], summary)
        return summary

    def _write_csv(self) -> None:
        extra_columns = sorted(self._columns)
        with atomic_write(self.paths["csv"], newline="", errors="surrogateescape") as handle:
            writer = csv.writer(handle)
            writer.writerow(SPEECHBRAIN_COLUMNS + extra_columns)
            with open(self._rows_tmp, encoding="ascii") as rows:
                for line in rows:
                    row = json.loads(line)
                    writer.writerow(row["fields"] + [row["extra"].get(k, "") for k in extra_columns])
        self._rows_tmp.unlink()


def _rank_values(inputs: _Inputs, merged: MergedTeachers, config: SelectConfig, warnings: list[str]) -> tuple[array, int]:
    """Pass 1: the rank value of every survivor of the filters, in order, and how many utterances count."""
    cfg = config.resolved()
    unusable: dict[str, str] = {}
    unknown: list[str] = []
    rows = _ManifestRows(inputs.manifest) if inputs.manifest is not None else None
    values, usable = array("d"), 0
    for utt in _prepared(inputs, merged, unusable, unknown, rows):
        if utt.id in unusable:
            continue
        usable += 1
        if first_failure(utt, cfg) is None:
            values.append(rank_value(utt, cfg))
    if rows is not None:
        warnings += _manifest_warnings(rows, unknown)
    return values, usable


def _decide(utt: Utterance, config: SelectConfig, unusable: dict[str, str], ranking: Iterator[bool],
            cut: float, usable: int) -> int:
    """Pass 2: ``utt``'s decision (and segments), as :func:`run_selection` gives it; 1 when it is kept
    through its segments."""
    cfg = config.resolved()
    if utt.id in unusable:
        utt.pseudo_label, utt.confidence = None, None
        utt.decision = Decision(False, unusable[utt.id], cfg.describe())
        return 0
    reason = first_failure(utt, cfg)
    utt.decision = (Decision(False, reason, cfg.describe()) if reason
                    else ranked_decision(utt, cfg, next(ranking), cut, usable))
    hyp = chosen_hypothesis(utt, config.label_source) if config.segments.enabled else None
    return apply_segments([utt], config.segments, {utt.id: hyp}) if hyp is not None else 0


def run_selection_stream(hyps: list[str | Path], out_dir: str | Path, config: SelectConfig | None = None,
                         agreement: AgreementConfig | None = None, calibration: str | Path | None = None,
                         manifest: str | Path | None = None,
                         teacher_names: list[str | None] | None = None) -> StreamedSelection:
    """:func:`~selftrain.select.pipeline.run_selection` with memory flat in the number of utterances
    (same arguments, same files); returns the summary instead of the utterances."""
    inputs = _Inputs(hyps, teacher_names, manifest, agreement or AgreementConfig(),
                     Calibration.load(calibration) if calibration is not None else None)
    config = (config or SelectConfig()).for_calibration(inputs.calibration)
    merged = MergedTeachers(hyps, teacher_names)
    warnings = merged.report().lines()
    values, usable = _rank_values(inputs, merged, config, warnings)
    kept, cut = keep_ranked(values, quota(config.resolved(), len(values), usable))
    del values
    ranking = (bool(k) for k in kept)
    unusable: dict[str, str] = {}
    writer = _SelectionWriter(Path(out_dir), config.segments.context)
    rows = _ManifestRows(manifest) if manifest is not None else None
    segmented = 0
    for utt in _prepared(inputs, merged, unusable, [], rows):
        segmented += _decide(utt, config, unusable, ranking, cut, usable)
        writer.add(utt)
    if config.segments.enabled:
        log.info("segments: %d utterance(s) kept through their confident runs", segmented)
    summary = writer.finish({"word_detection": word_quality(writer.labeled, config), "warnings": warnings})
    for line in warnings:
        log.warning(line)
    return StreamedSelection(writer.paths, summary, warnings)
