#!/usr/bin/env python3
"""Self-training recipe on the synthetic corpus made by ``selftrain synth``, run like a SpeechBrain recipe.

    python train.py hparams/cpu_small.yaml --data_folder=CORPUS [--generation N] [--key=value ...]

The hparams file holds the keys of :class:`selftrain.generation.ExperimentConfig` (the same keys as
``selftrain run --config``) plus the recipe keys in :data:`RECIPE_KEYS`. Without ``--generation`` the
whole experiment runs (resuming finished work); with it, only that generation. Every stage is the
library's: this file only turns the hparams into a config and prints the per-generation table.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from selftrain.generation.recipe import (
    generation_table,
    load_hparams,
    parse_recipe_arguments,
    recipe_experiment_config,
)

logger = logging.getLogger(__name__)

RECIPE_KEYS = ("data_folder", "output_folder")  # hparams keys that are not ExperimentConfig keys












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

    hparams_file, run_opts, overrides, generation = parse_recipe_arguments(sys.argv[1:] if argv is None else argv)
    try:
        hparams = load_hparams(hparams_file, overrides)
        config = recipe_experiment_config(hparams, run_opts, RECIPE_KEYS)
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
