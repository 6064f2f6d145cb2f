"""Run an experiment: generation 0 (supervised teacher), then self-training generations, resumable.

Every stage leaves a done marker (see :mod:`selftrain.generation.workdir`), so running the same
command again after an interruption continues where it stopped and gives the same result. Which
stages a generation has, and in which order, is :mod:`selftrain.generation.registry`'s.
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
from selftrain.generation.controls import KINDS
from selftrain.generation.lock import LOCK_FILE, lock_workdir, read_owner
from selftrain.generation.registry import (
    EXPERIMENT,
    EXTERNAL,
    GenerationResults,
    Plan,
    StageCall,
    generation_stages,
)
from selftrain.generation.results import (
    AuditStageResult,
    ContinuousTraining,
    EvalResult,
    SelectResult,
    TrainResult,
    TuneStageResult,
)
from selftrain.generation.stages import teacher_generation
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
    plan = Plan.of(config.to_dict())
    teacher = teacher_generation(workdir, generation)
    if generation > 0 and plan.continuous and generation != 1:
        raise ConfigError(f"generation {generation}: the continuous schedule has one self-training generation (generation 1)")
    if generation > 0 and not workdir.is_done(workdir.stage_dir(generation - 1, "eval")):
        raise RuntimeError(f"generation {generation - 1} is not finished; run it first")
    call = StageCall(config, workdir, generation, force)
    results = GenerationResults({stage.name: stage.execute(call) for stage in generation_stages(plan, generation)})
    record = _generation_record(config, generation, results, time.time() - started)
    record.update(_acceptance(config, workdir, generation, teacher, results[EvalResult].dev_scores.wer))
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
    elif config.acceptance.test == "dev_wer":
        accepted = dev_wer <= teacher_record["dev_wer"]
    else:
        comparison = _dev_comparison(config, workdir, generation, teacher)
        accepted = config.acceptance.accepts(comparison)
        verdict["dev_comparison"] = comparison.to_dict()
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


def _generation_record(config: ExperimentConfig, generation: int, results: GenerationResults, seconds: float) -> dict[str, Any]:
    evaluation, run = results[EvalResult], results[TrainResult].continuous_run
    test, tuning = evaluation.test_scores, results.get(TuneStageResult)
    # the audit's measure of the selected labels; a continuous run's, of its audit sample
    audit = results.get(AuditStageResult)
    label_wer = audit.pseudo_label_wer if audit is not None else (run.pseudo_label_wer if run is not None else None)
    return {
        "schedule": "continuous" if run is not None else "generations",
        **({"guard_trips": run.guard_trips, "continuous": run.continuous, "budget": run.budget,
            "optimizer_steps": run.optimizer_steps} if run is not None else {}),
        "generation": generation,
        "dev_wer": evaluation.dev_scores.wer,
        "dev_cer": evaluation.dev_scores.cer,
        "test_wer": test.wer if test is not None else None,
        "test_cer": test.cer if test is not None else None,
        "test_errors": test.errors if test is not None else None,  # deletions can rise while WER does not
        "pseudo_label_wer": label_wer,
        **_selection_figures(results.get(SelectResult), run),
        "stage_seconds": results.seconds(),
        "seconds_this_run": round(seconds, 1),
        "config_hash": experiment_hash(config.to_dict()),
        "versions": _versions(),
        "settings": {"preset": config.preset, "threshold": config.to_dict()["threshold"], "select": config.select},
        **({"decoder_tuning": {"best": tuning.best, "base_wer": tuning.base_wer, "best_wer": tuning.best_wer}}
           if tuning is not None else {}),
    }


def _selection_figures(select: SelectResult | None, run: ContinuousTraining | None) -> dict[str, Any]:
    """What the generation's selection kept (nothing without one); for a continuous run, the share
    of the labels made during training that passed the filter stands for the selected fraction."""
    figures: dict[str, Any] = {"selected_utterances": 0, "selected_hours": 0.0, "selected_fraction": 0.0, "threshold": None}
    if select is not None:
        figures = {"selected_utterances": select.selected_utterances, "selected_hours": select.selected_hours,
                   "selected_fraction": select.selected_fraction, "threshold": select.threshold}
    if run is not None:
        figures["selected_fraction"] = run.kept_share
    return figures


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
    summary: dict[str, Any] = {}
    for generation in range(Plan.of(config.to_dict()).last_generation + 1):  # generation 0 at least
        run_generation(config, workdir, generation, force)
        summary = write_summary(workdir)  # kept current, so an interrupted run leaves what it finished
    return summary


def experiment_status(root: str | Path) -> list[str]:
    """Human-readable lines: which stages of which generation are done."""
    workdir = Workdir(root)
    config = workdir.config()
    plan = Plan.of(config)
    planned = (f"continuous run on the budget of {plan.generations} generations" if plan.continuous
               else f"{plan.generations} generations")
    labels = config.get("labels", "policy")  # left out of the stored config at its default
    given = f", labels: {labels} ({KINDS[labels]})" if labels != "policy" else ""
    lines = [f"experiment {root}: {planned} planned, preset {config['preset']}{given}"]
    for generation in range(plan.last_generation + 1):
        # A generation's line covers the stages in its own folder (not the experiment's LM).
        own = [stage for stage in generation_stages(plan, generation) if stage.scope != EXPERIMENT]
        done = [stage.name for stage in own if workdir.is_done(stage.folder(workdir, generation))]
        state = "done" if len(done) == len(own) else (f"in progress ({', '.join(done)} done)" if done else "not started")
        lines.append(f"  gen_{generation:03d}: {state}")
    if EXTERNAL.applies(plan, plan.last_generation):
        state = "done" if workdir.is_done(EXTERNAL.folder(workdir, 0)) else "not started"
        lines.append(f"  external teachers ({', '.join(plan.external_teachers)}): {state}")
    if (workdir.root / "summary.json").exists():
        lines.append(f"  summary: {workdir.root / 'summary.json'}")
    owner = read_owner(workdir.root / LOCK_FILE)
    if owner is not None and owner.is_alive():
        lines.append(f"  in use by {owner.describe()}")
    return lines
