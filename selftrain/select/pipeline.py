"""The ``selftrain select`` stage as one library call: merge teachers, calibrate, agree, select, write."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from selftrain.agreement import AgreementConfig, add_peer_scores, compute_agreement, merge_teachers
from selftrain.confidence.calibrate import CALIBRATED_SUFFIX, Calibration
from selftrain.data.check import has_bad_encoding
from selftrain.data.manifest import read_manifest
from selftrain.record import Decision, Utterance
from selftrain.select.config import SelectConfig
from selftrain.select.output import write_selection
from selftrain.select.policy import chosen_hypothesis, select_utterances
from selftrain.select.quality import labeled_items, word_detection
from selftrain.select.segments import apply_segments

__all__ = ["SelectionResult", "attach_manifest", "fill_from_manifest", "run_selection", "word_quality"]

log = logging.getLogger(__name__)


@dataclass
class SelectionResult:
    """What a selection run produced."""

    utterances: list[Utterance]
    paths: dict[str, Path]
    warnings: list[str] = field(default_factory=list)


def attach_manifest(utterances: list[Utterance], manifest: str | Path, unusable: dict[str, str] | None = None) -> list[str]:
    """Fill audio path, duration, speaker and reference from a manifest; returns warnings.

    The first row of a repeated ID is the one used (as in decoding and training). An utterance whose
    row holds bytes that are not UTF-8 takes nothing from it and is added to ``unusable`` (id ->
    decision reason). Warnings count hypothesis ids the manifest lacks, repeated manifest ids and
    manifest rows without a hypothesis (skipped when decoding, or not decoded).
    """
    rows = read_manifest(manifest)
    by_id: dict[str, Utterance] = {}
    for row in rows:
        by_id.setdefault(row.id, row)
    unknown = []
    for utt in utterances:
        source = by_id.get(utt.id)
        if source is None:
            unknown.append(utt.id)
        elif has_bad_encoding(source):
            if unusable is not None:
                unusable[utt.id] = f"encoding: manifest row of {utt.id} holds bytes that are not UTF-8"
        else:
            fill_from_manifest(utt, source)
    hypothesis_ids = {u.id for u in utterances}
    repeated = sorted({r.id for r in rows if by_id[r.id] is not r})
    lacking = [i for i in by_id if i not in hypothesis_ids]
    warnings = []
    for count, what, examples in ((len(unknown), "hypothesis id(s) not in the manifest", unknown),
                                  (len(rows) - len(by_id), "manifest row(s) repeat an earlier id (the first is used)", repeated),
                                  (len(lacking), "manifest row(s) have no hypothesis", lacking)):
        if count:
            warnings.append(f"{manifest}: {count} {what} (e.g. {', '.join(examples[:5])})")
    return warnings


def fill_from_manifest(utt: Utterance, source: Utterance) -> None:
    """Take audio path, duration, speaker and (when missing) reference from the manifest row ``source``."""
    utt.wav, utt.duration = source.wav or utt.wav, source.duration or utt.duration
    utt.spk_id = utt.spk_id or source.spk_id
    if utt.reference is None:
        utt.reference = source.reference


def word_quality(utterances: list[Utterance], config: SelectConfig) -> dict[str, dict | None]:
    """Word-level AUROC/AUPRC/ECE of the selection method (raw and calibrated) where references exist."""
    config = config.resolved()
    items = labeled_items(utterances, lambda u: chosen_hypothesis(u, config.label_source))
    if not items:
        return {}
    methods = [config.method, config.method + CALIBRATED_SUFFIX]
    return {m: word_detection(items, m) for m in methods if any(m in w.scores for i in items for w in i.hyp.words)}


def run_selection(hyps: list[str | Path], out_dir: str | Path, config: SelectConfig | None = None,
                  agreement: AgreementConfig | None = None, calibration: str | Path | None = None,
                  manifest: str | Path | None = None, teacher_names: list[str | None] | None = None) -> SelectionResult:
    """Merge hypothesis files (one per teacher), apply a calibration, compute agreement when there are
    two or more teachers, select, and write ``selected.csv``/``decisions.jsonl``/``summary.json``.

    Utterances whose manifest row cannot be used (see :func:`attach_manifest`) are dropped with that
    reason, outside the policy (a keep fraction counts the others); ``summary.json`` repeats the warnings.
    """
    loaded = Calibration.load(calibration) if calibration is not None else None
    config = (config or SelectConfig()).for_calibration(loaded)
    utterances, report = merge_teachers(hyps, teacher_names)
    warnings = report.lines()
    unusable: dict[str, str] = {}
    if manifest is not None:
        warnings += attach_manifest(utterances, manifest, unusable)
    agreement = agreement or AgreementConfig()
    for utt in utterances:  # before calibration: a learned combination may take the peer scores as inputs
        add_peer_scores(utt, agreement)
    if loaded is not None:
        loaded.apply_all(utterances)
    for utt in tqdm(utterances, desc="agreement", disable=len(utterances) < 1000, unit="utt"):
        teachers = [h for h in utt.hypotheses if h.teacher != agreement.combined_name]
        if len(teachers) >= 2 or agreement.dust_reference:
            compute_agreement(utt, agreement)
    usable = [u for u in utterances if u.id not in unusable]
    select_utterances(usable, config)
    if config.segments.enabled:
        labelling = {u.id: h for u in usable for h in [chosen_hypothesis(u, config.label_source)] if h is not None}
        log.info("segments: %d utterance(s) kept through their confident runs", apply_segments(usable, config.segments, labelling))
    for utt in utterances:
        if utt.id in unusable:
            utt.pseudo_label, utt.confidence = None, None
            utt.decision = Decision(False, unusable[utt.id], config.resolved().describe())
    paths = write_selection(utterances, out_dir, {"word_detection": word_quality(utterances, config), "warnings": warnings},
                            config.segments.context)
    for line in warnings:
        log.warning(line)
    return SelectionResult(utterances, paths, warnings)
