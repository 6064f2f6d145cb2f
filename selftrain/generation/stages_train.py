"""The training stages: a generation's model (the teacher, an offline student or the continuous
schedule's student) and the experiment's n-gram LM."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selftrain.audit.inputs import iter_records
from selftrain.data.manifest import read_manifest
from selftrain.generation.artifacts import (
    LM_FILE,
    decoder_for,
    model_dir,
    state_cache_dir,
    teacher_generation,
)
from selftrain.generation.config import ExperimentConfig, TrainStage
from selftrain.generation.results import ContinuousTraining, LMResult, TrainResult
from selftrain.generation.workdir import Workdir
from selftrain.select.output import LabelQuality
from selftrain.text import TextNormalizer

if TYPE_CHECKING:  # imported where used: the training package loads torch
    from selftrain.train.config import TrainConfig

__all__ = ["train_model", "train_continuous", "build_language_model"]


def train_model(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path) -> TrainResult:
    """Train generation 0's teacher (labeled only) or a student (labeled + the selection's labels + SSL;
    with ``labels: none`` the selection is empty and the student trains :func:`~selftrain.generation.controls.step_matched_epochs`)."""
    from selftrain.train import train

    if generation > 0 and config.schedule == "continuous":
        return train_continuous(config, workdir, generation, out)
    stage: TrainStage = "teacher_train" if generation == 0 else "student_train"
    section = config.train_config(stage)  # the section's own settings decide what this run adds
    data: dict[str, Any] = {"labeled": [config.data.labeled], "dev": config.data.dev}
    overrides: dict[str, Any] = {"out": str(out), "seed": workdir.run_seed(config.seed, generation),
                                 "state_cache": str(state_cache_dir(config, workdir))}
    if generation == 0:
        if section.ssl.objectives:
            # SSL runs on all audio: a teacher with SSL objectives also learns from the unlabeled set.
            data["unlabeled"] = [config.data.unlabeled]
    else:
        selected = workdir.stage_dir(generation, "select") / "selected.csv"
        data["pseudo"] = [str(selected)]
        data["unlabeled"] = [str(_ssl_only_manifest(config, selected, out))]
        teacher_model = str(model_dir(workdir, teacher_generation(workdir, generation)))
        if config.student_init != "scratch":
            start = teacher_model if config.student_init == "teacher" else str(model_dir(workdir, 0))
            overrides["init"] = {"encoder": start, "head": True}
        if section.distill.weight > 0:
            # Distillation learns from the generation's teacher: its posteriors on every row, unlabeled ones too.
            overrides["distill"] = {"teacher_model": teacher_model}
    overrides["data"] = data
    overrides.update(_lm_dev_settings(config, workdir, generation, section))
    train_config = config.train_config(stage, extra=overrides)
    if generation > 0 and config.labels == "none":  # the labeled-only control: as many optimizer steps as a student with pseudo-labels
        from selftrain.generation.controls import step_matched_epochs

        train_config = replace(train_config, epochs=step_matched_epochs(config))
    model = train(train_config)
    return TrainResult(model=str(Path(model).relative_to(out)))


def _lm_dev_settings(config: ExperimentConfig, workdir: Workdir, generation: int, section: TrainConfig) -> dict[str, Any]:
    """With ``checkpoint_metric: lm_wer``, checkpoints are chosen on dev decoded as the experiment
    decodes: its LM, and the decoder weights of the teacher (tuned for it when decode_tuning is on;
    the student's own are tuned later)."""
    if section.checkpoint_metric != "lm_wer":
        return {}
    decoder = decoder_for(config, workdir, teacher_generation(workdir, generation))
    return {"dev_lm": str(workdir.stage_dir(None, "lm") / LM_FILE),
            "dev_decoder": {k: getattr(decoder, k) for k in ("alpha", "beta", "blank_penalty")}}


def train_continuous(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path) -> TrainResult:
    """The continuous schedule's one student run: labeled + unlabeled audio, labeled on the fly from
    the first step (generation 0 was the warm-up; a ``scratch`` student keeps the configured warm-up),
    filtered like the offline selection (its target WER, keep floor and speaking-rate quantile), on
    the budget of the offline generations (:func:`~selftrain.generation.config.continuous_budget`)."""
    from selftrain.generation.config import continuous_budget
    from selftrain.train import train

    budget = continuous_budget(config)
    # The experiment's LM and generation 0's decoder settings, for labels by beam search + LM (continuous.decoder=lm)
    continuous: dict[str, Any] = {"enabled": True, "target_wer": config.threshold.target_wer,
                                  "min_keep_fraction": config.threshold.min_keep_fraction,
                                  "speaking_rate_quantile": config.speaking_rate_quantile,
                                  "lm": str(workdir.stage_dir(None, "lm") / LM_FILE),
                                  "decode": asdict(decoder_for(config, workdir, 0))}
    if config.data.unlabeled_reference:
        continuous["references"] = [config.data.unlabeled_reference]
    overrides: dict[str, Any] = {"out": str(out), "seed": workdir.run_seed(config.seed, generation),
                                 "state_cache": str(state_cache_dir(config, workdir)), "continuous": continuous,
                                 "data": {"labeled": [config.data.labeled], "unlabeled": [config.data.unlabeled],
                                          "dev": config.data.dev, "mix_unlabeled": budget["mix_unlabeled"]}}
    if config.student_init != "scratch":
        continuous["warmup_steps"] = 0
        overrides["init"] = {"encoder": str(model_dir(workdir, 0)), "head": True}
    overrides.update(_lm_dev_settings(config, workdir, generation, config.train_config("student_train")))
    train_config = config.train_config("student_train", extra=overrides)
    train_config = replace(train_config, epochs=budget["epochs"], max_steps=budget["max_steps"])
    model = train(train_config)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    run = ContinuousTraining(budget=budget, continuous=summary["continuous"], optimizer_steps=summary["optimizer_steps"],
                             pseudo_label_wer=_sampled_label_wer(out))
    return TrainResult(model=str(Path(model).relative_to(out)), continuous_run=run)


def _sampled_label_wer(out: Path) -> float | None:
    """The WER of the kept labels in the continuous run's audit sample (None without references)."""
    from selftrain.train.continuous import AUDIT_FILE

    path = out / AUDIT_FILE
    if not path.exists():
        return None
    quality, normalizer = LabelQuality(), TextNormalizer()
    for utt in iter_records(path):
        if utt.decision is not None and utt.decision.kept:
            quality.add(utt, normalizer)
    result = quality.result()
    return round(result["wer"], 4) if result else None


def _ssl_only_manifest(config: ExperimentConfig, selected: Path, out: Path) -> Path:
    """The unlabeled audio that was not selected: it still trains the SSL objectives, without a label.

    (Selected utterances take part in SSL too, as members of the pseudo-labeled pool.)
    """
    from selftrain.data.manifest import write_speechbrain_csv

    chosen = {u.id for u in read_manifest(selected)}
    path = out / "ssl_only.csv"
    write_speechbrain_csv([u for u in read_manifest(config.data.unlabeled) if u.id not in chosen], path)
    return path


def build_language_model(config: ExperimentConfig, workdir: Workdir, out: Path) -> LMResult:
    """Build the n-gram LM from the LM text with the teacher's normaliser and alphabet."""
    from selftrain.data.tokenizer import load_tokenizer
    from selftrain.lm import LMBuildConfig, build_lm

    tokenizer = load_tokenizer(model_dir(workdir, 0) / "tokenizer.json")
    report = build_lm(config.data.lm_text, out / LM_FILE, LMBuildConfig(order=config.lm_order),
                      normalizer=tokenizer.normalizer, alphabet=getattr(tokenizer, "alphabet", None))
    return LMResult(lm=LM_FILE, report=report.to_dict())

