"""The labels this benchmark gives explored variants (``labels: given``, written to a file before the
arm runs): an empty file for a labeled-only control at its config's epochs, and the analysis oracles
made from the main run's generation 1. And the reopening of folders in which this benchmark planted
such selections (and the controls and oracles) before the experiment could make them itself."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from selftrain.data.manifest import read_manifest, write_speechbrain_csv
from selftrain.generation import ExperimentConfig, load_experiment_config, lock_workdir
from selftrain.generation.controls import SELECTED_BY, step_matched_epochs
from selftrain.generation.results import SelectResult
from selftrain.generation.workdir import Workdir, experiment_hash
from selftrain.overrides import deep_merge

__all__ = ["planted_config", "reopen_planted", "whole_utterances_selected", "random_like", "oracle_runs",
           "write_given_labels", "explored_labels"]

log = logging.getLogger("self_training")


def planted_config(config: ExperimentConfig) -> dict[str, Any]:
    """The config this benchmark gave a ``labels: none``, ``oracle`` or ``given`` experiment while it
    planted their selections, before the experiment made them: the same settings with the policy's
    labels (and no ``data.given_labels``) and, for the control, the student's epochs it now trains by
    itself (as many steps as a student)."""
    settings = {key: value for key, value in config.to_dict().items() if key != "labels"}
    settings["data"] = {key: value for key, value in settings["data"].items() if key != "given_labels"}
    if config.labels == "none":
        settings = deep_merge(settings, {"student_train": {"epochs": step_matched_epochs(config)}})
    return load_experiment_config(overrides=settings).to_dict()


def _planted_as(config: ExperimentConfig, select: Path) -> bool:
    """Whether the generation-1 selection in ``select`` is the one ``config``'s labels make: by its
    method for the control and the oracle, by its rows for given labels."""
    if config.labels == "given":
        return read_manifest(select / "selected.csv") == read_manifest(config.data.given_labels)
    return SelectResult.read(select).method == SELECTED_BY[config.labels]


def reopen_planted(root: Path, config: ExperimentConfig) -> None:
    """Let a folder made while this benchmark planted its selections open under ``labels``: its
    finished stages are what the setting makes (the same selections, the same trainings), but its
    config, written without the setting, would be refused as another experiment. Only a folder whose
    config is :func:`planted_config`'s and whose generation-1 selection is the setting's is rebound."""
    if config.labels == "policy" or not (root / "experiment.json").exists():
        return
    workdir = Workdir(root)
    select = workdir.stage_dir(1, "select")
    if (experiment_hash(workdir.config()) != experiment_hash(planted_config(config)) or not workdir.is_done(select)
            or not _planted_as(config, select)):
        return
    lock_workdir(root)
    workdir.rebind(config.to_dict())
    log.info("%s: planted before the experiment made its labels, now opened as labels: %s", root, config.labels)


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


def oracle_runs(decoded: Path, reference: str, settings: dict[str, Any]) -> list:
    """Every unlabeled utterance of ``decoded`` (the main run's generation-1 LM decoding) with, as its
    ``runs``, the runs of words its hypothesis got right against the true transcript (``settings``:
    the variant's ``select.segments``, for ``min_words`` and ``min_seconds``): what a perfect word
    confidence would keep, in context. Rows to write with their pseudo-labels as text."""
    from selftrain.audit.inputs import iter_records, reference_texts
    from selftrain.confidence.calibrate import pick_hypothesis, word_correctness
    from selftrain.select.config import SegmentConfig
    from selftrain.select.segments import cut_segments, in_context_row
    from selftrain.text import TextNormalizer

    config = SegmentConfig(**{**settings, "enabled": True, "apply_to": "all", "method": "right", "threshold": 0.5,
                              "context": "whole"})
    normalizer, truth = TextNormalizer(), reference_texts(reference)
    rows = []
    for utt in iter_records(decoded):
        hyp, text = pick_hypothesis(utt, "lm"), truth.get(utt.id)
        if hyp is None or not hyp.words or text is None:
            continue
        right = word_correctness([w.word for w in hyp.words], normalizer(text))
        for word, ok in zip(hyp.words, right, strict=True):
            word.scores["right"] = float(ok)
        utt.pseudo_label, utt.segments = hyp.text, cut_segments(utt, hyp, config)
        if utt.segments:
            rows.append(in_context_row(utt))
    return rows


def write_given_labels(kind: str, paths: dict[str, str], main: Path, out: Path,
                       segments: dict[str, Any] | None = None) -> Path:
    """Write an explored variant's labels to ``out`` (a ``data.given_labels`` file): none (``none``:
    the labeled-only control at its config's epochs), the true transcripts of the whole utterances
    the main run's generation 1 kept (``oracle_selected``), of as much audio drawn at random
    (``oracle_random``), or the runs of words the teacher got right (``oracle_runs``, with the
    variant's ``select.segments`` settings)."""
    selected = main / "gen_001" / "select" / "selected.csv"
    if kind == "none":
        write_speechbrain_csv([], out)
    elif kind == "oracle_runs":
        settings = {k: v for k, v in (segments or {}).items() if k in ("min_words", "min_seconds", "gap_share")}
        rows = oracle_runs(main / "gen_001" / "decode" / "unlabeled_lm.jsonl", paths["unlabeled_reference"], settings)
        write_speechbrain_csv(rows, out, use_pseudo_labels=True)
    else:
        truth = read_manifest(paths["unlabeled_reference"])
        choose = {"oracle_selected": whole_utterances_selected, "oracle_random": random_like}[kind]
        write_speechbrain_csv(choose(selected, truth), out)
    return out


def explored_labels(kind: str | None, paths: dict[str, str], main: Path, out: Path,
                    segments: dict[str, Any] | None = None) -> dict[str, Any]:
    """The settings that give an explored variant the labels of ``kind`` (written to ``out`` by
    :func:`write_given_labels`); none when the experiment makes them (``kind`` None)."""
    if kind is None:
        return {}
    out.parent.mkdir(parents=True, exist_ok=True)
    given = write_given_labels(kind, paths, main, out, segments)
    return {"labels": "given", "data": {"given_labels": str(given)}}
