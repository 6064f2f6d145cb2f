"""Run an experiment: generation 0 (supervised teacher), then self-training generations, resumable.

Every stage leaves a done marker (see :mod:`selftrain.generation.workdir`), so running the same
command again after an interruption continues where it stopped and gives the same result.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

from selftrain import __version__
from selftrain.audit.significance import Comparison, paired_bootstrap, utterance_errors
from selftrain.errors import ConfigError
from selftrain.generation.config import ExperimentConfig
from selftrain.generation.lock import LOCK_FILE, lock_workdir, read_owner
from selftrain.generation.stages import (
    EXTERNAL_STAGE,
    TUNE_STAGE,
    audit_generation,
    build_language_model,
    decode_teachers,
    evaluate_generation,
    external_hypotheses,
    select_pseudo_labels,
    teacher_generation,
    train_model,
    tune_generation,
)
from selftrain.generation.workdir import Workdir, experiment_hash
from selftrain.io import atomic_write_json

__all__ = ["open_workdir", "run_generation", "run_experiment", "write_summary", "experiment_status"]

log = logging.getLogger(__name__)


def open_workdir(config: ExperimentConfig, root: str | Path) -> Workdir:
    """Validate the inputs, hold ``root`` for this process (:func:`~selftrain.generation.lock.lock_workdir`:
    refused while another run uses it) and bind it to this config (refused if it holds another experiment)."""
    config.validate_paths()
    lock_workdir(root)
    return Workdir(root, config.to_dict())


def _versions() -> dict[str, str]:
    import importlib.metadata as metadata

    versions = {"selftrain": __version__, "python": platform.python_version()}
    for package in ("torch", "torchaudio", "speechbrain", "pyctcdecode", "kenlm", "jiwer"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    return versions


def run_generation(config: ExperimentConfig, workdir: Workdir, generation: int, force: bool = False) -> dict[str, Any]:
    """Run (or finish) one generation and write its ``generation.json``."""
    started = time.time()
    stages: dict[str, Any] = {}
    teacher = teacher_generation(workdir, generation)
    if generation > 0 and config.schedule == "continuous" and generation != 1:
        raise ConfigError(f"generation {generation}: the continuous schedule has one self-training generation (generation 1)")
    if generation > 0 and not workdir.is_done(workdir.stage_dir(generation - 1, "eval")):
        raise RuntimeError(f"generation {generation - 1} is not finished; run it first")
    if generation > 0 and config.schedule == "generations":
        teacher_eval = workdir.stage_dir(teacher, "eval")

        def decode(out: Path) -> dict[str, Any]:
            result = {"teacher_generation": teacher,
                      "unlabeled": decode_teachers(config, workdir, teacher, config.data.unlabeled, out, "unlabeled",
                                                   ensemble=True),
                      "dev": workdir.done_info(teacher_eval)["dev"],
                      "dev_dir": str(teacher_eval.relative_to(workdir.root))}
            if config.teachers.ensemble:
                # The selection calibrates on dev hypotheses of the teacher that made the labels.
                result["dev"] = decode_teachers(config, workdir, teacher, config.data.dev, out, "dev", ensemble=True)
                result["dev_dir"] = str(out.relative_to(workdir.root))
            # Made by the first generation (redone by its --force), reused by the later ones.
            external = external_hypotheses(config, workdir, force and generation == 1)
            return result if external is None else {**result, "external": external}

        stages["decode"] = workdir.run_stage(workdir.stage_dir(generation, "decode"), decode, force)
        stages["select"] = workdir.run_stage(workdir.stage_dir(generation, "select"),
                                             lambda out: select_pseudo_labels(config, workdir, generation, out), force)
        stages["audit"] = workdir.run_stage(workdir.stage_dir(generation, "audit"),
                                            lambda out: audit_generation(config, workdir, generation, out), force)
    stages["train"] = workdir.run_stage(workdir.stage_dir(generation, "train"),
                                        lambda out: train_model(config, workdir, generation, out), force)
    if generation == 0:
        stages["lm"] = workdir.run_stage(workdir.stage_dir(None, "lm"), lambda out: build_language_model(config, workdir, out), force)
    if config.decode_tuning.enabled:
        stages[TUNE_STAGE] = workdir.run_stage(workdir.stage_dir(generation, TUNE_STAGE),
                                               lambda out: tune_generation(config, workdir, generation, out), force)
    stages["eval"] = workdir.run_stage(workdir.stage_dir(generation, "eval"),
                                       lambda out: evaluate_generation(config, workdir, generation, out), force)
    record = _generation_record(config, generation, stages, time.time() - started)
    record.update(_acceptance(config, workdir, generation, teacher, record["dev_wer"]))
    atomic_write_json(workdir.generation_dir(generation) / "generation.json", record)
    return record


def _acceptance(config: ExperimentConfig, workdir: Workdir, generation: int, teacher: int, dev_wer: float) -> dict[str, Any]:
    """Whether this generation's model becomes the next teacher: with ``keep_better_only``, only when
    it is not worse than its teacher on dev by ``config.acceptance`` (generation 0 is always accepted)."""
    if generation == 0:
        return {"accepted": True, "teacher_generation": None}
    teacher_record = json.loads((workdir.generation_dir(teacher) / "generation.json").read_text(encoding="utf-8"))
    verdict: dict[str, Any] = {"teacher_generation": teacher}
    if not config.keep_better_only:
        accepted = True
    elif config.acceptance.test == "bootstrap":
        comparison = _dev_comparison(config, workdir, generation, teacher)
        accepted = not comparison.significantly_worse
        verdict["dev_comparison"] = comparison.to_dict()
    else:
        accepted = dev_wer <= teacher_record["dev_wer"]
    if not accepted:
        log.warning("generation %d: student dev WER %.4f is worse than its teacher's (generation %d, %.4f; test: %s); "
                    "the teacher stays on", generation, dev_wer, teacher, teacher_record["dev_wer"], config.acceptance.test)
    return {"accepted": accepted, **verdict}


def _dev_comparison(config: ExperimentConfig, workdir: Workdir, generation: int, teacher: int) -> Comparison:
    """Student minus teacher dev WER, per dev utterance, with its bootstrap interval."""
    student_errors, teacher_errors = (
        utterance_errors(workdir.stage_dir(g, "eval") / "dev_lm.jsonl", config.data.dev) for g in (generation, teacher))
    return paired_bootstrap(student_errors, teacher_errors, config.acceptance.resamples, config.seed,
                            config.acceptance.confidence)


def _generation_record(config: ExperimentConfig, generation: int, stages: dict[str, Any], seconds: float) -> dict[str, Any]:
    select = stages.get("select", {})
    evaluation = stages["eval"]
    continuous = stages["train"].get("continuous")
    return {
        "schedule": "continuous" if continuous is not None else "generations",
        **({"guard_trips": continuous["guard_trips"], "continuous": continuous,
            "budget": stages["train"]["budget"], "optimizer_steps": stages["train"]["optimizer_steps"]}
           if continuous is not None else {}),
        "generation": generation,
        "dev_wer": evaluation["dev_scores"]["wer"],
        "dev_cer": evaluation["dev_scores"]["cer"],
        "test_wer": evaluation.get("test_scores", {}).get("wer"),
        "test_cer": evaluation.get("test_scores", {}).get("cer"),
        "test_errors": evaluation.get("test_scores", {}).get("errors"),  # deletions can rise while WER does not
        "pseudo_label_wer": stages.get("audit", stages["train"]).get("pseudo_label_wer"),
        "selected_utterances": select.get("selected_utterances", 0),
        "selected_hours": select.get("selected_hours", 0.0),
        # continuous: the share of the labels made during training that passed the filter
        "selected_fraction": select.get("selected_fraction", 0.0) if continuous is None else _kept_share(continuous),
        "threshold": select.get("threshold"),
        "stage_seconds": {name: info.get("seconds") for name, info in stages.items()},
        "seconds_this_run": round(seconds, 1),
        "config_hash": experiment_hash(config.to_dict()),
        "versions": _versions(),
        "settings": {"preset": config.preset, "threshold": config.to_dict()["threshold"], "select": config.select},
        **({"decoder_tuning": {key: stages[TUNE_STAGE][key] for key in ("best", "base_wer", "best_wer")}}
           if TUNE_STAGE in stages else {}),
    }


def _kept_share(continuous: dict[str, Any]) -> float:
    labels = continuous.get("labels", {})
    return round(labels.get("kept", 0) / labels["made"], 4) if labels.get("made") else 0.0


def write_summary(workdir: Workdir) -> dict[str, Any]:
    """Collect every finished generation into ``W/summary.json`` (the documented contract)."""
    generations = []
    for path in sorted(workdir.root.glob("gen_*/generation.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        generations.append({key: record.get(key) for key in (
            "generation", "dev_wer", "test_wer", "pseudo_label_wer", "selected_utterances", "selected_hours",
            "selected_fraction", "threshold", "dev_cer", "test_cer", "test_errors", "accepted", "teacher_generation",
            "schedule", "guard_trips")})
    accepted = [g for g in generations if g.get("accepted", True)]
    summary = {
        "generations": generations,
        "supervised_test_wer": generations[0]["test_wer"] if generations else None,
        "final_test_wer": accepted[-1]["test_wer"] if accepted else None,
        "final_generation": accepted[-1]["generation"] if accepted else None,
    }
    atomic_write_json(workdir.root / "summary.json", summary)
    return summary


def run_experiment(config: ExperimentConfig, root: str | Path, force: bool = False) -> dict[str, Any]:
    """Run generations 0..``config.generations`` (skipping finished work) and return the summary."""
    workdir = open_workdir(config, root)
    last = config.generations if config.schedule == "generations" else min(1, config.generations)
    for generation in range(last + 1):
        run_generation(config, workdir, generation, force)
        write_summary(workdir)
    return write_summary(workdir)


def experiment_status(root: str | Path) -> list[str]:
    """Human-readable lines: which stages of which generation are done."""
    workdir = Workdir(root)
    config = workdir.config()
    continuous = config.get("schedule") == "continuous"
    planned = f"continuous run on the budget of {config['generations']} generations" if continuous else f"{config['generations']} generations"
    lines = [f"experiment {root}: {planned} planned, preset {config['preset']}"]
    for generation in range((min(1, config["generations"]) if continuous else config["generations"]) + 1):
        names = ["train", "eval"] if generation == 0 or continuous else ["decode", "select", "audit", "train", "eval"]
        if config.get("decode_tuning", {}).get("enabled"):
            names.insert(-1, TUNE_STAGE)
        done = [n for n in names if workdir.is_done(workdir.stage_dir(generation, n))]
        state = "done" if len(done) == len(names) else (f"in progress ({', '.join(done)} done)" if done else "not started")
        lines.append(f"  gen_{generation:03d}: {state}")
    if config.get("teachers", {}).get("external"):
        state = "done" if workdir.is_done(workdir.stage_dir(None, EXTERNAL_STAGE)) else "not started"
        lines.append(f"  external teachers ({', '.join(config['teachers']['external'])}): {state}")
    if (workdir.root / "summary.json").exists():
        lines.append(f"  summary: {workdir.root / 'summary.json'}")
    owner = read_owner(workdir.root / LOCK_FILE)
    if owner is not None and owner.is_alive():
        lines.append(f"  in use by {owner.describe()}")
    return lines
