"""The ``selftrain select`` stage as one library call: merge teachers, calibrate, agree, select, write."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from selftrain.agreement import AgreementConfig, compute_agreement, merge_teachers
from selftrain.confidence.calibrate import CALIBRATED_SUFFIX, Calibration
from selftrain.data.manifest import read_manifest
from selftrain.record import Utterance
from selftrain.select.config import SelectConfig
from selftrain.select.output import write_selection
from selftrain.select.policy import chosen_hypothesis, select_utterances
from selftrain.select.quality import labeled_items, word_detection

__all__ = ["SelectionResult", "attach_manifest", "run_selection", "word_quality"]

log = logging.getLogger(__name__)


@dataclass
class SelectionResult:
    """What a selection run produced."""

    utterances: list[Utterance]
    paths: dict[str, Path]
    warnings: list[str] = field(default_factory=list)


def attach_manifest(utterances: list[Utterance], manifest: str | Path) -> list[str]:
    """Fill audio path, duration, speaker and reference from a manifest; returns warnings for unknown ids."""
    by_id = {u.id: u for u in read_manifest(manifest)}
    unknown = []
    for utt in utterances:
        source = by_id.get(utt.id)
        if source is None:
            unknown.append(utt.id)
            continue
        utt.wav, utt.duration = source.wav or utt.wav, source.duration or utt.duration
        utt.spk_id = utt.spk_id or source.spk_id
        if utt.reference is None:
            utt.reference = source.reference
    if unknown:
        return [f"{manifest}: {len(unknown)} hypothesis id(s) not in the manifest (e.g. {', '.join(unknown[:5])})"]
    return []


def word_quality(utterances: list[Utterance], config: SelectConfig) -> dict[str, dict | None]:
    """Word-level AUROC/AUPRC/ECE of the selection method (raw and calibrated) where references exist."""
    config = config.resolved()
    items = labeled_items(utterances, lambda u: chosen_hypothesis(u, config.teacher))
    if not items:
        return {}
    methods = [config.method, config.method + CALIBRATED_SUFFIX]
    return {m: word_detection(items, m) for m in methods if any(m in w.scores for i in items for w in i.hyp.words)}


def run_selection(hyps: list[str | Path], out_dir: str | Path, config: SelectConfig | None = None,
                  agreement: AgreementConfig | None = None, calibration: str | Path | None = None,
                  manifest: str | Path | None = None, teacher_names: list[str | None] | None = None) -> SelectionResult:
    """Merge hypothesis files (one per teacher), apply a calibration, compute agreement when there are
    two or more teachers, select, and write ``selected.csv``/``decisions.jsonl``/``summary.json``."""
    config = config or SelectConfig()
    utterances, report = merge_teachers(hyps, teacher_names)
    warnings = report.lines()
    if manifest is not None:
        warnings += attach_manifest(utterances, manifest)
    if calibration is not None:
        Calibration.load(calibration).apply_all(utterances)
    agreement = agreement or AgreementConfig()
    for utt in tqdm(utterances, desc="agreement", disable=len(utterances) < 1000, unit="utt"):
        teachers = [h for h in utt.hypotheses if h.teacher != agreement.combined_name]
        if len(teachers) >= 2 or agreement.dust_reference:
            compute_agreement(utt, agreement)
    select_utterances(utterances, config)
    paths = write_selection(utterances, out_dir, {"word_detection": word_quality(utterances, config)})
    for line in warnings:
        log.warning(line)
    return SelectionResult(utterances, paths, warnings)
