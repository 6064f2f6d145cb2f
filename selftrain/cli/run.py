"""``selftrain run``, ``selftrain generation`` and ``selftrain status``: whole experiments, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from selftrain.cli.common import user_errors

# The experiment config names its defaults in the options' help (importing it needs no torch: see the package).
from selftrain.generation.config import ExperimentConfig

if TYPE_CHECKING:
    from selftrain.generation.distributed import Rank

_PATH = click.Path(exists=True, path_type=Path)


def _print_summary(summary: dict) -> None:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    def role(g: dict) -> str:
        if g["generation"] == 0:
            return "supervised teacher"
        verdict = "next teacher" if g.get("accepted", True) else "rejected: worse on dev"
        if g.get("schedule") == "continuous":
            return f"continuous student of gen {g.get('teacher_generation')} ({g.get('guard_trips')} guard trips), {verdict}"
        return f"student of gen {g.get('teacher_generation')}, {verdict}"

    click.echo("\n| generation | dev WER | test WER | pseudo-label WER | selected | hours | threshold | model |")
    click.echo("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for g in summary["generations"]:
        click.echo(f"| {g['generation']} | {fmt(g['dev_wer'])} | {fmt(g['test_wer'])} | {fmt(g['pseudo_label_wer'])} | "
                   f"{g['selected_utterances']} ({100 * (g['selected_fraction'] or 0):.0f} %) | {g['selected_hours']:.2f} | "
                   f"{fmt(g['threshold'])} | {role(g)} |")
    click.echo(f"\nsupervised test WER {fmt(summary['supervised_test_wer'])}, final test WER {fmt(summary['final_test_wer'])}"
               f" (generation {summary.get('final_generation')})")


@click.command()
@click.option("--workdir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Experiment folder (created or resumed).")
@click.option("--labeled", type=_PATH, help="Transcribed training manifest.")
@click.option("--unlabeled", type=_PATH, help="Untranscribed audio manifest.")
@click.option("--dev", type=_PATH, help="Transcribed target-domain dev manifest (early stopping, calibration, thresholds).")
@click.option("--test", type=_PATH, help="Transcribed test manifest (reported only).")
@click.option("--lm-text", type=_PATH, help="Text for the n-gram LM, one sentence per line.")
@click.option("--unlabeled-reference", type=_PATH, help="True transcripts of the unlabeled audio: for audits; training only with --set labels=oracle.")
@click.option("--given-labels", type=_PATH, help="Labels of unlabeled audio made elsewhere: students train on them (sets labels: given).")
@click.option("--generations", type=click.IntRange(0, 100), default=None, help=f"Self-training generations after the supervised one [config: {ExperimentConfig.generations}].")
@click.option("--preset", default=None, help=f"Model preset, e.g. cpu-small or gpu-base [config: {ExperimentConfig.preset}].")
@click.option("--config", "config_file", type=_PATH, help="Experiment config (YAML or JSON).")
@click.option("--set", "overrides", multiple=True, help="Override a config key, e.g. --set threshold.target_wer=0.2 (repeatable).")
@click.option("--force", is_flag=True, help="Redo stages that are already done.")
def run(workdir: Path, labeled, unlabeled, dev, test, lm_text, unlabeled_reference, given_labels, generations, preset,
        config_file, overrides: tuple[str, ...], force: bool) -> None:
    """Run every generation: supervised teacher, then decode, select, audit and train a student, K times.

    Resumes from where an earlier run stopped; a workdir holding a different experiment is refused.
    Prints the per-generation WER table and writes WORKDIR/summary.json. Under torchrun (WORLD_SIZE > 1)
    every process pseudo-labels its shard of the unlabeled audio and trains (DDP); rank 0 runs the
    other stages and prints the table.
    """
    from selftrain.generation import load_experiment_config, run_experiment
    from selftrain.generation.distributed import Rank
    from selftrain.overrides import parse_overrides

    with user_errors():
        values = parse_overrides(list(overrides))
        data = {k: str(v) for k, v in {"labeled": labeled, "unlabeled": unlabeled, "dev": dev, "test": test, "lm_text": lm_text,
                                       "unlabeled_reference": unlabeled_reference, "given_labels": given_labels}.items()
                if v is not None}
        if data:
            values.setdefault("data", {}).update(data)
        if given_labels is not None:
            values["labels"] = "given"
        if generations is not None:
            values["generations"] = generations
        if preset is not None:
            values["preset"] = preset
        if not data and (workdir / "experiment.json").exists() and not config_file:
            from selftrain.generation import Workdir

            stored = Workdir(workdir).config()
            values = {**stored, **values}
        config = load_experiment_config(config_file, values)
        rank = Rank.from_env()
        summary: dict[str, Any] | None
        if rank.world == 1:
            summary = run_experiment(config, workdir, force)
        else:
            summary = _run_distributed(config, workdir, rank, force)
    if summary is not None:
        _print_summary(summary)


def _run_distributed(config: ExperimentConfig, workdir: Path, rank: Rank, force: bool) -> dict[str, Any] | None:
    """This process' part of a torchrun job; rank 0 returns the summary."""
    import json

    from selftrain.generation.distributed import run_experiment_distributed

    if force:
        raise click.UsageError("--force redoes stages in one process only: run it without torchrun")
    folder = run_experiment_distributed(config, workdir, rank)  # rank 0 writes summary.json after each generation
    return json.loads((folder.root / "summary.json").read_text(encoding="utf-8")) if rank.main else None


@click.command()
@click.argument("number", type=click.IntRange(0, 100))
@click.option("--workdir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="An experiment folder made by `selftrain run`.")
@click.option("--force", is_flag=True, help="Redo stages of this generation that are already done.")
def generation(number: int, workdir: Path, force: bool) -> None:
    """Run (or finish) generation NUMBER of an existing experiment."""
    from selftrain.generation import (
        Workdir,
        load_experiment_config,
        open_workdir,
        run_generation,
        write_summary,
    )

    with user_errors():
        config = load_experiment_config(overrides=Workdir(workdir).config())
        record = run_generation(config, open_workdir(config, workdir), number, force)
        write_summary(Workdir(workdir))
    click.echo(f"generation {number}: dev WER {record['dev_wer']:.3f}" + (f", test WER {record['test_wer']:.3f}" if record["test_wer"] is not None else ""))


@click.command()
@click.option("--workdir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path), help="An experiment folder.")
def status(workdir: Path) -> None:
    """Show which stages of which generation are done."""
    from selftrain.generation import experiment_status

    with user_errors():
        click.echo("\n".join(experiment_status(workdir)))
