"""The selection stages: choosing a generation's pseudo-labels (calibrated and thresholded on dev)
and auditing the decisions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from selftrain.audit import load_audit, sweep, write_audit
from selftrain.audit.inputs import iter_records, reference_texts
from selftrain.audit.sweep import SELECTION_FRACTIONS, choose_threshold
from selftrain.data.manifest import read_manifest
from selftrain.errors import ConfigError
from selftrain.generation.config import ExperimentConfig
from selftrain.generation.results import AuditStageResult, DecodeResult, SelectResult
from selftrain.generation.workdir import Workdir
from selftrain.record import Utterance
from selftrain.select.output import LabelQuality
from selftrain.text import TextNormalizer

__all__ = ["selection_inputs", "select_pseudo_labels", "audit_generation"]


def selection_inputs(workdir: Workdir, generation: int) -> dict[str, list[str | Path]]:
    """Every teacher's hypothesis files that a generation's selection reads, by split (``unlabeled``,
    ``dev``): the teacher's own (dev: from its evaluation), then the external teachers'."""
    decode_dir = workdir.stage_dir(generation, "decode")
    decoded = DecodeResult.read(decode_dir)
    if decoded.unlabeled is None or decoded.dev is None or decoded.dev_dir is None:
        raise ConfigError(f"{decode_dir} holds no hypotheses ({decoded.planted or 'nothing decoded'}): "
                          f"generation {generation}'s selection was given from outside")
    inputs: dict[str, list[str | Path]] = {"unlabeled": list(decoded.unlabeled.files(decode_dir)),
                                           "dev": list(decoded.dev.files(workdir.root / decoded.dev_dir))}
    if decoded.external is not None:
        external_dir = workdir.root / decoded.external.dir
        inputs["unlabeled"] += decoded.external.unlabeled.files(external_dir)
        inputs["dev"] += decoded.external.dev.files(external_dir)
    return inputs


def _auto_threshold(config: ExperimentConfig, dev_records: list[Utterance]) -> tuple[float | None, dict[str, Any]]:
    """The lowest threshold whose pseudo-label WER on the transcribed dev set stays under the target,
    lowered when needed so that at least ``min_keep_fraction`` of dev is kept."""
    points = sweep(dev_records, "selection", fractions=SELECTION_FRACTIONS)
    chosen = choose_threshold(points, config.threshold.target_wer, config.threshold.min_keep_fraction)
    info = {"target_wer": config.threshold.target_wer,
            "dev_points": [p.to_dict() for p in points],
            "dev_choice": chosen.to_dict() if chosen else None}
    return (chosen.threshold if chosen else None), info


def select_pseudo_labels(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path) -> SelectResult:
    """Calibrate on dev, choose the threshold, then select pseudo-labels of the unlabeled audio."""
    from functools import partial

    from selftrain.confidence.calibrate import fit_calibration
    from selftrain.select.pipeline import run_selection
    from selftrain.select.policy import chosen_hypothesis, speaking_rate_bounds_or_warning
    from selftrain.select.stream import run_selection_stream

    inputs = selection_inputs(workdir, generation)
    agreement = config.agreement_config()
    select_config = config.select_config(generation)
    rate_bounds, rate_warning = None, None
    if config.speaking_rate_quantile is not None:
        bounds, rate_warning = speaking_rate_bounds_or_warning(
            read_manifest(config.data.labeled), config.speaking_rate_quantile, config.data.labeled)
        if bounds is not None:
            rate_bounds = [round(v, 2) for v in bounds]
            select_config = replace(select_config, sanity=replace(
                select_config.sanity, min_chars_per_second=rate_bounds[0], max_chars_per_second=rate_bounds[1]))
    # Calibration and the automatic threshold come from the teacher's output on the transcribed dev set.
    # On dev every utterance is kept whole: it is measured there, not trained on.
    dev_config = replace(select_config, threshold=None, keep_fraction=None,
                         segments=replace(select_config.segments, enabled=False))
    dev = run_selection(inputs["dev"], out / "dev", dev_config, agreement, manifest=config.data.dev)
    calibration_path = out / "calibration.json"
    # Calibrate the scores of the hypotheses that become the pseudo-labels (ROVER's, when it is the label source).
    calibration = fit_calibration(dev.utterances, teacher=partial(chosen_hypothesis, label_source=select_config.label_source))
    calibration.save(calibration_path)
    select_config = select_config.for_calibration(calibration)  # method auto: the calibrated combination
    dev = run_selection(inputs["dev"], out / "dev", replace(dev_config, method=select_config.method),
                        agreement, calibration=calibration_path, manifest=config.data.dev)
    threshold_info: dict[str, Any] = {"mode": config.threshold.mode}
    if config.threshold.mode == "auto":
        threshold, details = _auto_threshold(config, dev.utterances)
        select_config = replace(select_config, threshold=threshold, keep_fraction=None, threshold_schedule=None,
                                keep_fraction_schedule=None)
        threshold_info.update(details)
    # The unlabeled pool can be large: streamed, memory flat in its size (the same files as run_selection).
    result = run_selection_stream(inputs["unlabeled"], out, select_config, agreement,
                                  calibration=calibration_path, manifest=config.data.unlabeled)
    kept, total = result.summary["kept"], result.summary["utterances"]
    return SelectResult(
        threshold=select_config.threshold,
        method=select_config.method,
        selected_utterances=kept,
        selected_hours=round(result.summary["kept_hours"], 4),
        segmented_utterances=result.summary["segmented"],
        selected_fraction=round(kept / total, 4) if total else 0.0,
        threshold_choice=threshold_info,
        speaking_rate_bounds=tuple(rate_bounds) if rate_bounds else None,
        warnings=tuple(result.warnings + ([rate_warning] if rate_warning else [])),
    )


def audit_generation(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path) -> AuditStageResult:
    """Audit the unlabeled decisions (measured WER when the unlabeled references are given).

    The decisions are read as a stream into a :class:`~selftrain.audit.table.ScoreTable` (scores and
    sizes, not the records); the references, when given, are held as one text per utterance."""
    from selftrain.audit.report import run_audit_table
    from selftrain.audit.table import ScoreTable

    references = reference_texts(config.data.unlabeled_reference) if config.data.unlabeled_reference else None
    kept_quality = LabelQuality()
    table = ScoreTable(_audited(workdir.stage_dir(generation, "select") / "decisions.jsonl", references, kept_quality))
    result = run_audit_table(table, target_wer=config.threshold.target_wer, label=f"gen_{generation:03d}")
    previous = [load_audit(workdir.stage_dir(g, "audit")) for g in range(1, generation)
                if (workdir.stage_dir(g, "audit") / "audit.json").exists()]
    write_audit(result, out, table, previous=previous)
    quality = kept_quality.result()
    pseudo_label_wer_kept = round(quality["wer"], 4) if quality else None
    return AuditStageResult(pseudo_label_wer=pseudo_label_wer_kept, with_reference=result.with_reference)


def _audited(decisions: Path, references: dict[str, str | None] | None, kept_quality: LabelQuality) -> Iterator[Utterance]:
    """The decisions one at a time, with their references (as :func:`attach_references` sets them);
    the pseudo-label quality of the kept ones is added up in ``kept_quality``."""
    normalizer = TextNormalizer()
    for utt in iter_records(decisions):
        if references is not None and references.get(utt.id) is not None:
            utt.reference = references[utt.id]
        if utt.decision is not None and utt.decision.kept and utt.reference:
            kept_quality.add(utt, normalizer)
        yield utt
