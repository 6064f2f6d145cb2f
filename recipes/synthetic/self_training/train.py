#!/usr/bin/env python3
"""Self-training recipe on the synthetic corpus made by ``selftrain synth``, run like a SpeechBrain recipe.

    python train.py hparams/cpu_small.yaml --data_folder=CORPUS [--generation N] [--key=value ...]

The hparams file holds the keys of :class:`selftrain.generation.ExperimentConfig` (the same keys as
``selftrain run --config``) plus the recipe keys in :data:`RECIPE_KEYS`. Without ``--generation`` the
whole experiment runs (resuming finished work); with it, only that generation. Every stage is the
library's: this file only turns the hparams into a config and prints the per-generation table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RECIPE_KEYS = ("data_folder", "output_folder")  # hparams keys that are not ExperimentConfig keys
RUN_OPTIONS = {"device": "device", "precision": "precision"}  # SpeechBrain run option -> training config key


def parse_arguments(argv: list[str]) -> tuple[str, Any, str, int | None]:
    """``(hparams_file, run_opts, yaml_overrides, generation)``; ``--generation N`` is the recipe's own."""
    import speechbrain as sb

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--generation", type=int, default=None)
    known, rest = parser.parse_known_args(argv)
    hparams_file, run_opts, overrides = sb.parse_arguments(rest)
    return hparams_file, run_opts, overrides, known.generation


def load_hparams(hparams_file: str, overrides: str) -> dict[str, Any]:
    """The hparams file with the command-line overrides applied (unknown keys raise ConfigError)."""
    from hyperpyyaml import load_hyperpyyaml

    from selftrain.errors import ConfigError

    try:
        with open(hparams_file, encoding="utf-8") as handle:
            return load_hyperpyyaml(handle, overrides)
    except KeyError as exc:
        raise ConfigError(f"{hparams_file}: {exc.args[0]}") from exc


def run_option_overrides(run_opts: Any) -> dict[str, Any]:
    """SpeechBrain run options given on the command line, as overrides of both training configs."""
    from selftrain.errors import ConfigError

    given = set(run_opts.overridden_args)
    unsupported = sorted(given - set(RUN_OPTIONS))
    if unsupported:
        raise ConfigError(f"run options {unsupported} are not used by this recipe (supported: {sorted(RUN_OPTIONS)})")
    return {RUN_OPTIONS[name]: run_opts[name] for name in sorted(given)}


def experiment_config(hparams: dict[str, Any], run_opts: Any):
    """The library's ExperimentConfig from the hparams (recipe keys removed) and the run options."""
    from selftrain.generation import load_experiment_config

    values = {key: value for key, value in hparams.items() if key not in RECIPE_KEYS}
    training = run_option_overrides(run_opts)
    for stage in ("teacher_train", "student_train"):
        values[stage] = {**(values.get(stage) or {}), **training}
    return load_experiment_config(overrides=values)


def generation_table(workdir) -> str:
    """A Markdown table of every finished generation, with the compute time each one took."""
    from selftrain.generation import write_summary

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = ["| generation | dev WER | test WER | pseudo-label WER | selected | hours | threshold | accepted | minutes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in write_summary(workdir)["generations"]:
        record = json.loads((workdir.generation_dir(row["generation"]) / "generation.json").read_text(encoding="utf-8"))
        minutes = sum(s or 0.0 for s in record["stage_seconds"].values()) / 60
        lines.append(f"| {row['generation']} | {fmt(row['dev_wer'])} | {fmt(row['test_wer'])} | {fmt(row['pseudo_label_wer'])} | "
                     f"{row['selected_utterances']} ({100 * (row['selected_fraction'] or 0):.0f} %) | "
                     f"{row['selected_hours']:.2f} | {fmt(row['threshold'])} | {'yes' if row['accepted'] else 'no'} | "
                     f"{minutes:.1f} |")
    return "\n".join(lines)


def run(config, output_folder: str | Path, generation: int | None) -> str:
    """Run the experiment (or one generation) in ``output_folder``; returns the generation table."""
    from selftrain.generation import open_workdir, run_experiment, run_generation

    workdir = open_workdir(config, output_folder)
    if generation is None:
        run_experiment(config, workdir.root)
    else:
        run_generation(config, workdir, generation)
    return generation_table(workdir)


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, record the run folder (SpeechBrain's hyperparams.yaml, log.txt, env.log), run."""
    import speechbrain as sb

    from selftrain.errors import SelftrainError

    hparams_file, run_opts, overrides, generation = parse_arguments(sys.argv[1:] if argv is None else argv)
    try:
        hparams = load_hparams(hparams_file, overrides)
        config = experiment_config(hparams, run_opts)
        config.validate_paths()
        sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides)
        table = run(config, hparams["output_folder"], generation)
    except SelftrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
