#!/usr/bin/env python3
"""Self-training on LibriSpeech (labeled train-clean-100 or Libri-Light 10 h, unlabeled 360 + 500 h).

    python train.py hparams/gpu_base_100h.yaml --data_folder=LIBRISPEECH [--generation N] [--key=value ...]
    torchrun --nproc_per_node=4 train.py hparams/gpu_base_100h.yaml --data_folder=LIBRISPEECH

The hparams hold :class:`selftrain.generation.ExperimentConfig` keys (the keys of ``selftrain run
--config``) plus the recipe keys in :data:`RECIPE_KEYS`. This file prepares the data
(``prepare_librispeech.py``) and calls the library: every stage, and under ``torchrun`` the
sharded pseudo-labeling, DDP training and the waits between processes, are
:mod:`selftrain.generation.distributed`'s.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from selftrain.generation.config import DistributedConfig
from selftrain.generation.distributed import Rank, run_experiment_distributed, wait_for
from selftrain.generation.recipe import (
    generation_table,
    load_hparams,
    parse_recipe_arguments,
    recipe_experiment_config,
)

# hparams keys that are not ExperimentConfig keys (ddp_poll_seconds: referenced by distributed.poll_seconds)
RECIPE_KEYS = ("data_folder", "lm_text_file", "output_folder", "prepare_folder", "skip_prep", "labeled_splits",
               "unlabeled_splits", "dev_splits", "test_splits", "ddp_poll_seconds")


def prep_options(hparams: dict[str, Any]):
    """The data preparation's split roles from the hparams."""
    from prepare_librispeech import PrepOptions

    return PrepOptions(labeled=tuple(hparams["labeled_splits"]), unlabeled=tuple(hparams["unlabeled_splits"]),
                       dev=tuple(hparams["dev_splits"]), test=tuple(hparams["test_splits"]))


def prepare_data(hparams: dict[str, Any], rank: Rank, settings: DistributedConfig) -> None:
    """Rank 0 writes the CSVs (skipped when done); the other ranks wait for its report."""
    from prepare_librispeech import REPORT_FILE, is_prepared, prepare_librispeech

    if hparams["skip_prep"]:
        return
    options = prep_options(hparams)
    if rank.main:
        prepare_librispeech(hparams["data_folder"], hparams["prepare_folder"], options)
        return
    folder = Path(hparams["prepare_folder"])
    wait_for(folder / REPORT_FILE, "rank 0's data preparation", settings, ready=lambda: is_prepared(folder, options))


def run(config, hparams: dict[str, Any], generation: int | None) -> str | None:
    """Run the experiment (or one generation) on this process; rank 0 returns the generation table."""
    rank = Rank.from_env()
    workdir = run_experiment_distributed(config, hparams["output_folder"], rank, generation)
    return generation_table(workdir) if rank.main else None


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, prepare the CSVs, record the run folder, run."""
    import speechbrain as sb

    from selftrain.errors import SelftrainError

    hparams_file, run_opts, overrides, generation = parse_recipe_arguments(sys.argv[1:] if argv is None else argv)
    try:
        hparams = load_hparams(hparams_file, overrides)
        config = recipe_experiment_config(hparams, run_opts, RECIPE_KEYS)
        prepare_data(hparams, Rank.from_env(), config.distributed)
        config.validate_paths()
        sb.create_experiment_directory(hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides)
        table = run(config, hparams, generation)
    except SelftrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if table is not None:
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
