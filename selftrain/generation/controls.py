"""The stages of a generation whose students do not train on the selection policy's pseudo-labels
(``labels: none``, the labeled-only control; ``labels: oracle``, the true transcripts; ``labels:
given``, labels made elsewhere).

Such a generation decodes nothing: its decode, select and audit stages each write their stage's
result and say why (``DecodeResult.planted``, the selection's ``method``), and the selection writes
the ``selected.csv`` the student trains on (empty for the control, every unlabeled utterance with
its true text for the oracle, the rows of ``data.given_labels`` that have a label), so training,
evaluation, acceptance and the summary are those of any generation.

>>> step_matched_epochs(ExperimentConfig(student_train={"epochs": 3}))  # batches 0.6 labeled, 0.2 pseudo
4
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from selftrain.data.manifest import iter_manifest, read_manifest, write_speechbrain_csv
from selftrain.generation.config import ExperimentConfig
from selftrain.generation.results import AuditStageResult, DecodeResult, SelectResult
from selftrain.generation.stages import teacher_generation
from selftrain.generation.workdir import Workdir

__all__ = ["KINDS", "SELECTED_BY", "step_matched_epochs", "decode_nothing", "given_selection", "given_audit"]

log = logging.getLogger(__name__)
# What each ``labels`` other than the policy's is, in a few words, and the method its selections record.
KINDS = {"none": "labeled-only control", "oracle": "true transcripts", "given": "labels from data.given_labels"}
SELECTED_BY = {"none": "control: nothing selected", "oracle": "oracle (true transcripts)", "given": "given labels"}


def step_matched_epochs(config: ExperimentConfig) -> int:
    """The epochs of a labeled-only student that trains as many optimizer steps as a student of the
    same experiment: an epoch is one pass over the labeled audio, and a student's batches share their
    seconds between the labeled and the pseudo-labeled pools (and, with SSL objectives or
    distillation, the unlabeled one, in both), so with pseudo-labels an epoch has (labeled + pseudo)
    / labeled times the steps. Without this the control trains half as long at a 50/50 mix, and the
    comparison credits the pseudo-labels with what longer training gives."""
    train = config.train_config("student_train")
    unlabeled = train.data.mix_unlabeled if train.ssl.objectives or train.distill.weight > 0 else 0.0
    ratio = (train.data.mix_labeled + train.data.mix_pseudo + unlabeled) / (train.data.mix_labeled + unlabeled)
    return max(1, round(train.epochs * ratio))


def decode_nothing(config: ExperimentConfig, workdir: Workdir, generation: int) -> DecodeResult:
    """Stage ``decode`` of a generation whose labels are not decoded: why, and its teacher."""
    why = f"labels: {config.labels} ({KINDS[config.labels]}): nothing decoded"
    return DecodeResult(teacher_generation=teacher_generation(workdir, generation), planted=why)


def given_selection(config: ExperimentConfig, out: Path) -> SelectResult:
    """Stage ``select`` without a selection: ``selected.csv`` holds nothing (``none``), every
    unlabeled utterance with its true transcript (``oracle``) or the given labels (``given``)."""
    if config.labels == "oracle":
        return _true_transcripts(config, out)
    if config.labels == "given":
        return _given_labels(config, out)
    write_speechbrain_csv([], out / "selected.csv")
    return SelectResult(threshold=None, method=SELECTED_BY["none"], selected_utterances=0, selected_hours=0.0,
                        selected_fraction=0.0)


def _true_transcripts(config: ExperimentConfig, out: Path) -> SelectResult:
    """The oracle's ``selected.csv``: the unlabeled manifest's rows with their text from
    ``data.unlabeled_reference`` (matched by ID); a row without one is left out, with a warning."""
    from selftrain.audit.inputs import reference_texts

    references = reference_texts(config.data.unlabeled_reference)
    unlabeled = list(iter_manifest(config.data.unlabeled))
    chosen = [replace(utt, reference=references[utt.id]) for utt in unlabeled if references.get(utt.id)]
    write_speechbrain_csv(chosen, out / "selected.csv")
    missing = len(unlabeled) - len(chosen)
    warning = (f"{missing} of {len(unlabeled)} unlabeled utterances have no transcript in "
               f"{config.data.unlabeled_reference}: left out")
    if missing:
        log.warning(warning)
    return SelectResult(threshold=None, method=SELECTED_BY["oracle"], selected_utterances=len(chosen),
                        selected_hours=round(sum(u.duration for u in chosen) / 3600, 4),
                        selected_fraction=round(len(chosen) / len(unlabeled), 4) if unlabeled else 0.0,
                        warnings=(warning,) if missing else None)


def _given_labels(config: ExperimentConfig, out: Path) -> SelectResult:
    """The given labels' ``selected.csv``: the rows of ``data.given_labels`` (written again, so audio
    paths relative to that file still resolve; a row without a label is left out, with a warning).
    Their runs are checked here, so a malformed ``runs`` column stops the stage with the row's ID, not
    the student's training."""
    from selftrain.data.runs import parse_runs

    given = config.data.given_labels
    rows = read_manifest(given)
    labeled = [utt for utt in rows if (utt.reference or "").strip()]
    runs = {utt.id: parse_runs(utt) for utt in labeled}
    write_speechbrain_csv(labeled, out / "selected.csv")
    unlabeled = {utt.id for utt in iter_manifest(config.data.unlabeled)}
    warnings = []
    if len(labeled) < len(rows):
        warnings.append(f"{len(rows) - len(labeled)} of {len(rows)} rows of {given} have no label: left out")
    strangers = sum(1 for utt in labeled if utt.id not in unlabeled)
    if strangers:
        warnings.append(f"{strangers} of {len(labeled)} given labels are for utterances not in data.unlabeled: they train all the same")
    for warning in warnings:
        log.warning(warning)
    seconds = sum(sum(end - start for start, end, _ in runs[u.id]) if runs[u.id] else u.duration for u in labeled)
    return SelectResult(threshold=None, method=f"{SELECTED_BY['given']} ({Path(given).name})", selected_utterances=len(labeled),
                        selected_hours=round(seconds / 3600, 4),
                        selected_fraction=round(len(labeled) / len(unlabeled), 4) if unlabeled else 0.0,
                        warnings=tuple(warnings) or None)


def given_audit(config: ExperimentConfig, workdir: Workdir, generation: int) -> AuditStageResult:
    """Stage ``audit`` without pseudo-labels: no label WER for the control, 0 for true transcripts;
    for given labels, their WER against ``data.unlabeled_reference`` when it is set (whole-utterance
    labels only: a label of runs has no reference of its own; None when none can be measured)."""
    if config.labels != "given":
        return AuditStageResult(pseudo_label_wer=0.0 if config.labels == "oracle" else None)
    if not config.data.unlabeled_reference:
        return AuditStageResult(pseudo_label_wer=None)
    from selftrain.audit.inputs import reference_texts
    from selftrain.data.runs import RUNS_COLUMN
    from selftrain.select.output import LabelQuality
    from selftrain.text import TextNormalizer

    references, quality, normalizer = reference_texts(config.data.unlabeled_reference), LabelQuality(), TextNormalizer()
    for utt in iter_manifest(workdir.stage_dir(generation, "select") / "selected.csv"):
        if not utt.extra.get(RUNS_COLUMN) and references.get(utt.id):
            quality.add(replace(utt, pseudo_label=normalizer(utt.reference or ""), reference=references[utt.id]), normalizer)
    result = quality.result()
    return AuditStageResult(pseudo_label_wer=round(result["wer"], 4) if result else None,
                            with_reference=int(result["utterances"]) if result else 0)
