"""What SpeechBrain-style recipes (``recipes/*/self_training/train.py``) share.

A recipe is ``python train.py hparams/X.yaml [--generation N] [--key=value ...]``: the hparams
file holds :class:`~selftrain.generation.config.ExperimentConfig` keys (those of ``selftrain run
--config``) plus the recipe's own keys; SpeechBrain's ``--device`` / ``--precision`` set both
training configs. These helpers turn that into the library's config and print the result.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from selftrain.errors import ConfigError
from selftrain.generation.config import TRAIN_STAGES, ExperimentConfig, load_experiment_config
from selftrain.generation.run import write_summary
from selftrain.generation.workdir import Workdir

__all__ = ["RUN_OPTIONS", "parse_recipe_arguments", "load_hparams", "recipe_experiment_config", "generation_table"]

RUN_OPTIONS = {"device": "device", "precision": "precision"}  # SpeechBrain run option -> training config key


def parse_recipe_arguments(argv: list[str]) -> tuple[str, Any, str, int | None]:
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

    try:
        with open(hparams_file, encoding="utf-8") as handle:
            return load_hyperpyyaml(handle, overrides)
    except KeyError as exc:
        raise ConfigError(f"{hparams_file}: {exc.args[0]}") from exc


def _run_option_overrides(run_opts: Any) -> dict[str, Any]:
    given = set(run_opts.overridden_args)
    unsupported = sorted(given - set(RUN_OPTIONS))
    if unsupported:
        raise ConfigError(f"run options {unsupported} are not used by this recipe (supported: {sorted(RUN_OPTIONS)})")
    return {RUN_OPTIONS[name]: run_opts[name] for name in sorted(given)}


def recipe_experiment_config(hparams: dict[str, Any], run_opts: Any, recipe_keys: Sequence[str]) -> ExperimentConfig:
    """The ExperimentConfig of the hparams without ``recipe_keys``, with the run options applied to
    both training configs (under torchrun, :mod:`selftrain.generation.distributed` gives each
    process its own GPU)."""
    values = {key: value for key, value in hparams.items() if key not in recipe_keys}
    training = _run_option_overrides(run_opts)
    for stage in TRAIN_STAGES:
        values[stage] = {**(values.get(stage) or {}), **training}
    return load_experiment_config(overrides=values)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def generation_table(workdir: Workdir) -> str:
    """A Markdown table of every finished generation, with the compute time each one took."""
    lines = ["| generation | dev WER | test WER | pseudo-label WER | selected | hours | threshold | accepted | minutes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in write_summary(workdir)["generations"]:
        record = json.loads((workdir.generation_dir(row["generation"]) / "generation.json").read_text(encoding="utf-8"))
        minutes = sum(s or 0.0 for s in record["stage_seconds"].values()) / 60
        lines.append(f"| {row['generation']} | {_fmt(row['dev_wer'])} | {_fmt(row['test_wer'])} | "
                     f"{_fmt(row['pseudo_label_wer'])} | {row['selected_utterances']} "
                     f"({100 * (row['selected_fraction'] or 0):.0f} %) | {row['selected_hours']:.2f} | "
                     f"{_fmt(row['threshold'])} | {'yes' if row.get('accepted', True) else 'no'} | {minutes:.1f} |")
    return "\n".join(lines)
