"""The selections this benchmark plants (``before`` hooks of :func:`_arms.run_arm`): a labeled-only
control at its config's epochs and the analysis oracles of explored variants, made from the main
run's generation 1; and the reopening of control and oracle folders planted before the experiment's
``labels`` setting existed."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

from selftrain.data.manifest import read_manifest, write_speechbrain_csv
from selftrain.generation import ExperimentConfig, load_experiment_config, lock_workdir
from selftrain.generation.controls import SELECTED_BY, step_matched_epochs
from selftrain.generation.registry import stage_named
from selftrain.generation.results import AuditStageResult, DecodeResult, SelectResult
from selftrain.generation.workdir import Workdir, experiment_hash
from selftrain.overrides import deep_merge

__all__ = ["planted_config", "reopen_planted", "plant_decode", "plant_empty_selections", "plant_oracle_selections",
           "whole_utterances_selected", "random_like", "oracle_runs", "explored_labels"]

log = logging.getLogger("self_training")


def planted_config(config: ExperimentConfig) -> dict[str, Any]:
    """The config this benchmark gave a ``labels: none`` or ``oracle`` experiment while it planted
    their selections, before the setting existed: the same settings with the policy's labels and,
    for the control, the student's epochs it now trains by itself (as many steps as a student)."""
    settings = {key: value for key, value in config.to_dict().items() if key != "labels"}
    if config.labels == "none":
        settings = deep_merge(settings, {"student_train": {"epochs": step_matched_epochs(config)}})
    return load_experiment_config(overrides=settings).to_dict()


def reopen_planted(root: Path, config: ExperimentConfig) -> None:
    """Let a control or oracle folder made while this benchmark planted their selections open under
    ``labels``: its finished stages are what the setting makes (the same selections, the same
    trainings), but its config, written without the setting, would be refused as another
    experiment. Only a folder whose config is :func:`planted_config`'s and whose generation-1
    selection was planted as the setting's is rebound."""
    if config.labels == "policy" or not (root / "experiment.json").exists():
        return
    workdir = Workdir(root)
    select = workdir.stage_dir(1, "select")
    if (experiment_hash(workdir.config()) != experiment_hash(planted_config(config)) or not workdir.is_done(select)
            or SelectResult.read(select).method != SELECTED_BY[config.labels]):
        return
    lock_workdir(root)
    workdir.rebind(config.to_dict())
    log.info("%s: planted before `labels` existed, now opened as labels: %s", root, config.labels)


def plant_decode(workdir: Workdir, generation: int) -> None:
    """Mark a generation's decode done: its selection is planted, so nothing reads its hypotheses."""
    stage_named("decode").record(workdir, generation,
                                 lambda out: DecodeResult(teacher_generation=generation - 1, planted="control: no decoding"))


def _empty_selection(out: Path) -> SelectResult:
    write_speechbrain_csv([], out / "selected.csv")
    return SelectResult(threshold=None, method="control: nothing selected", selected_utterances=0, selected_hours=0.0,
                        selected_fraction=0.0)


def _plant_selections(generations: int, select, pseudo_label_wer: float | None):
    """A ``before`` hook: generations 1..N take their selection from ``select(out)`` (no decoding)."""

    def plant(workdir: Workdir) -> None:
        for generation in range(1, generations + 1):
            plant_decode(workdir, generation)
            stage_named("select").record(workdir, generation, select)
            stage_named("audit").record(workdir, generation, lambda out: AuditStageResult(pseudo_label_wer=pseudo_label_wer))

    return plant


def plant_empty_selections(generations: int):
    """A ``before`` hook: generations 1..N select nothing (no decoding), so students see labeled data
    only, for the epochs of the config (``labels: none`` trains as many steps as a student instead)."""
    return _plant_selections(generations, _empty_selection, None)


def plant_oracle_selections(reference: str, unlabeled: str, generations: int, choose, method: str):
    """A ``before`` hook: generations 1..N select the unlabeled utterances ``choose(truth)`` returns,
    with their true text (no decoding); ``labels: oracle`` trains on all of them."""

    def select(out: Path) -> SelectResult:
        truth = read_manifest(reference)
        chosen = choose(truth)
        write_speechbrain_csv(chosen, out / "selected.csv")
        return SelectResult(threshold=None, method=method, selected_utterances=len(chosen),
                            selected_hours=round(sum(u.duration for u in chosen) / 3600, 4),
                            selected_fraction=round(len(chosen) / len(read_manifest(unlabeled)), 4))

    return _plant_selections(generations, select, 0.0)


def whole_utterances_selected(selected: Path, truth: list) -> list:
    """The utterances of a selection that it kept whole (a segment's true text is unknown), with their true text."""
    kept = {u.id for u in read_manifest(selected)}
    return [u for u in truth if u.id in kept]


def random_like(selected: Path, truth: list, seed: int = 0) -> list:
    """Utterances drawn at random (seeded) until they add up to the hours of ``selected``'s whole
    utterances: the same amount of audio without the selection's preference for easy audio."""
    hours = sum(u.duration for u in whole_utterances_selected(selected, truth))
    chosen, total = [], 0.0
    for utt in random.Random(seed).sample(truth, len(truth)):
        if total >= hours:
            break
        chosen.append(utt)
        total += utt.duration
    return sorted(chosen, key=lambda u: u.id)


def oracle_runs(decoded: Path, reference: str, settings: dict[str, Any]):
    """A ``select`` of :func:`_plant_selections`: every unlabeled utterance trains, in context, the runs
    of words its LM-teacher hypothesis got right against the true transcript (``settings``: the
    variant's ``select.segments``, for ``min_words`` and ``min_seconds``): what a perfect word
    confidence would keep of the main run's generation-1 decoding."""
    from selftrain.audit.inputs import attach_references, load_records
    from selftrain.confidence.calibrate import pick_hypothesis, word_correctness
    from selftrain.select.config import SegmentConfig
    from selftrain.select.segments import cut_segments, in_context_row
    from selftrain.text import TextNormalizer

    config = SegmentConfig(**{**settings, "enabled": True, "apply_to": "all", "method": "right", "threshold": 0.5,
                              "context": "whole"})
    normalizer = TextNormalizer()

    def select(out: Path) -> SelectResult:
        records = load_records(decoded)
        attach_references(records, reference)
        rows = []
        for utt in records:
            hyp = pick_hypothesis(utt, "lm")
            if hyp is None or not hyp.words or utt.reference is None:
                continue
            right = word_correctness([w.word for w in hyp.words], normalizer(utt.reference))
            for word, ok in zip(hyp.words, right, strict=True):
                word.scores["right"] = float(ok)
            utt.pseudo_label, utt.segments = hyp.text, cut_segments(utt, hyp, config)
            if utt.segments:
                rows.append(in_context_row(utt))
        write_speechbrain_csv(rows, out / "selected.csv", use_pseudo_labels=True)
        seconds = sum(end - start for utt in rows for start, end, _ in json.loads(utt.extra["runs"]))
        return SelectResult(threshold=None, method="oracle runs: the words the teacher got right, in context",
                            selected_utterances=len(rows), selected_hours=round(seconds / 3600, 4),
                            selected_fraction=round(len(rows) / len(records), 4))

    return select


def explored_labels(kind: str | None, paths: dict[str, str], main: Path, generations: int,
                    segments: dict[str, Any] | None = None):
    """The ``before`` hook that plants an explored variant's labels (None when the experiment makes
    them): nothing (``none`` at the config's epochs: nothing is decoded), or the true transcripts of
    the whole utterances the main run's generation 1 kept (``oracle_selected``), of as much audio
    drawn at random (``oracle_random``), or the runs of words the teacher got right (``oracle_runs``,
    with the variant's ``select.segments`` settings)."""
    if kind is None:
        return None
    if kind == "none":
        return plant_empty_selections(generations)
    selected = main / "gen_001" / "select" / "selected.csv"
    if kind == "oracle_runs":
        settings = {k: v for k, v in (segments or {}).items() if k in ("min_words", "min_seconds", "gap_share")}
        select = oracle_runs(main / "gen_001" / "decode" / "unlabeled_lm.jsonl", paths["unlabeled_reference"], settings)
        return _plant_selections(generations, select, 0.0)
    choices = {"oracle_selected": (lambda truth: whole_utterances_selected(selected, truth),
                                   "oracle: the main run's generation-1 whole utterances, true transcripts"),
               "oracle_random": (lambda truth: random_like(selected, truth),
                                 "oracle: random utterances, as many hours as the main run kept whole, true transcripts")}
    choose, method = choices[kind]
    return plant_oracle_selections(paths["unlabeled_reference"], paths["unlabeled"], generations, choose, method)
