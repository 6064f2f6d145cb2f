#!/usr/bin/env python3
"""Self-training on LibriSpeech (labeled train-clean-100 or Libri-Light 10 h, unlabeled 360 + 500 h).

    python train.py hparams/gpu_base_100h.yaml --data_folder=LIBRISPEECH [--generation N] [--key=value ...]
    torchrun --nproc_per_node=4 train.py hparams/gpu_base_100h.yaml --data_folder=LIBRISPEECH

The hparams hold :class:`selftrain.generation.ExperimentConfig` keys (the keys of ``selftrain run
--config``) plus the recipe keys in :data:`RECIPE_KEYS`. Data preparation is
``prepare_librispeech.py``; every stage is the library's. Under ``torchrun`` (N processes) each
process decodes its shard of the unlabeled audio (``selftrain.decode.Shard``) and rank 0 merges
the shards (``merge_shards``); the models train with DDP on all processes; LM building,
selection, audits and evaluation run on rank 0 while the others wait. Processes coordinate through
the work folder's done markers (one node, or a folder shared by every node).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from selftrain.generation.recipe import (
    generation_table,
    load_hparams,
    parse_recipe_arguments,
    recipe_experiment_config,
)

logger = logging.getLogger(__name__)

RECIPE_KEYS = ("data_folder", "lm_text_file", "output_folder", "prepare_folder", "skip_prep", "labeled_splits",
               "unlabeled_splits", "dev_splits", "test_splits", "ddp_poll_seconds")
SHARDS_FOLDER = "decode_shards"










def rank_device(device: str) -> str:
    """Under torchrun each process trains on its own GPU: ``cuda:0`` becomes ``cuda:<LOCAL_RANK>``."""
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is None or not device.startswith("cuda"):
        return device
    return f"cuda:{local_rank}"


def prep_options(hparams: dict[str, Any]):
    """The data preparation's split roles from the hparams."""
    from prepare_librispeech import PrepOptions

    return PrepOptions(labeled=tuple(hparams["labeled_splits"]), unlabeled=tuple(hparams["unlabeled_splits"]),
                       dev=tuple(hparams["dev_splits"]), test=tuple(hparams["test_splits"]))


def distributed() -> tuple[int, int]:
    """``(rank, world_size)`` as torchrun sets them; ``(0, 1)`` for a single process."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def wait_for(path: Path, poll_seconds: float, what: str) -> None:
    """Block until ``path`` exists (another rank's work); no timeout, torchrun stops every rank if one fails."""
    if not path.exists():
        logger.info("waiting for %s (%s)", what, path)
    while not path.exists():
        time.sleep(poll_seconds)


def prepare_data(hparams: dict[str, Any], rank: int) -> None:
    """Rank 0 writes the CSVs (skipped when done); the other ranks wait for them."""
    from prepare_librispeech import is_prepared, prepare_librispeech

    if hparams["skip_prep"]:
        return
    options = prep_options(hparams)
    if rank == 0:
        prepare_librispeech(hparams["data_folder"], hparams["prepare_folder"], options)
        return
    while not is_prepared(hparams["prepare_folder"], options):
        time.sleep(hparams["ddp_poll_seconds"])


def _shard_dir(workdir, generation: int, rank: int, world: int) -> Path:
    """Named by the world size too: a rerun with another process count starts its shards afresh."""
    return workdir.generation_dir(generation) / SHARDS_FOLDER / f"rank_{rank}_of_{world}"


def _decode_shard(config, workdir, generation: int, rank: int, world: int, out: Path):
    """Decode this rank's shard of the unlabeled audio with every teacher of ``generation``
    (a :class:`~selftrain.generation.results.DecodedSplit`)."""
    from selftrain.data.manifest import read_manifest, write_speechbrain_csv
    from selftrain.decode import DecoderConfig
    from selftrain.decode.run import Shard
    from selftrain.generation.stages import decode_teachers, teacher_generation
    from selftrain.models.config import update_dataclass

    decoder = DecoderConfig()
    update_dataclass(decoder, config.decode, "decode")
    manifest = out / "shard.csv"
    # Whole batches of the unsharded run: each utterance keeps its batch neighbours (same padding).
    write_speechbrain_csv(Shard(rank, world).select(read_manifest(config.data.unlabeled), decoder.batch_size), manifest)
    return decode_teachers(config, workdir, teacher_generation(workdir, generation), str(manifest), out, "unlabeled",
                           ensemble=True)


def merge_rank_shards(config, workdir, generation: int, world: int, poll_seconds: float) -> None:
    """Rank 0: wait for every rank's shard, then merge each teacher's shards into the decode stage.

    The merged file is what an unsharded run writes, so the generation's decode stage resumes it
    and only retries utterances whose audio was unusable.
    """
    from selftrain.data.manifest import ManifestStream
    from selftrain.decode.run import merge_shards
    from selftrain.generation.results import DecodedSplit
    from selftrain.generation.workdir import DONE_MARKER

    shard_dirs = [_shard_dir(workdir, generation, r, world) for r in range(world)]
    for r, folder in enumerate(shard_dirs):
        wait_for(folder / DONE_MARKER, poll_seconds, f"rank {r}'s pseudo-labeling shard")
    shards = [DecodedSplit.read(folder).teachers for folder in shard_dirs]
    utterances = ManifestStream(config.data.unlabeled)  # read row by row, not held
    decode_dir = workdir.stage_dir(generation, "decode")
    for name, teacher in shards[0].items():
        report = merge_shards([folder / shard[name].file for folder, shard in zip(shard_dirs, shards, strict=True)],
                              utterances, decode_dir / teacher.file)
        logger.info("teacher %s: %d pseudo-labeled utterances merged from %d shards, %d missing",
                    name, report.written, world, len(report.missing))


def run_generation_distributed(config, workdir, generation: int, rank: int, world: int, poll_seconds: float) -> None:
    """One generation across ``world`` processes: sharded pseudo-labeling and DDP training on every
    rank, everything else on rank 0."""
    from selftrain.generation import run_generation
    from selftrain.generation.stages import train_model
    from selftrain.generation.workdir import DONE_MARKER

    if world == 1:
        run_generation(config, workdir, generation)
        return
    record = workdir.generation_dir(generation) / "generation.json"
    if record.exists():
        return
    if generation > 0 and not workdir.is_done(workdir.stage_dir(generation, "decode")):
        workdir.run_stage(_shard_dir(workdir, generation, rank, world),
                          lambda out: _decode_shard(config, workdir, generation, rank, world, out).to_dict())
        if rank == 0:
            merge_rank_shards(config, workdir, generation, world, poll_seconds)
    if rank == 0:
        run_generation(config, workdir, generation)
        return
    if generation > 0:
        wait_for(workdir.stage_dir(generation, "audit") / DONE_MARKER, poll_seconds, "rank 0's selection and audit")
    train_dir = workdir.stage_dir(generation, "train")
    if not workdir.is_done(train_dir):
        train_model(config, workdir, generation, train_dir)  # joins rank 0's DDP training
    wait_for(record, poll_seconds, "rank 0's evaluation")


def open_experiment(config, output_folder: str | Path, rank: int, poll_seconds: float):
    """Rank 0 locks the work folder for this torchrun job and binds it to the config (refused if it
    holds another one); the others check that no other job holds it, then wait."""
    from selftrain.generation import Workdir, lock_workdir, open_workdir

    if rank == 0:
        return open_workdir(config, output_folder)
    lock_workdir(output_folder)
    wait_for(Path(output_folder) / "experiment.json", poll_seconds, "rank 0's work folder")
    return Workdir(output_folder)




def run(config, hparams: dict[str, Any], generation: int | None) -> str | None:
    """Run the experiment (or one generation); rank 0 returns the generation table."""
    rank, world = distributed()
    poll_seconds = float(hparams["ddp_poll_seconds"])
    workdir = open_experiment(config, hparams["output_folder"], rank, poll_seconds)
    for number in range(config.generations + 1) if generation is None else [generation]:
        run_generation_distributed(config, workdir, number, rank, world, poll_seconds)
    return generation_table(workdir) if rank == 0 else None


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse, prepare the CSVs, record the run folder, run."""
    import speechbrain as sb

    from selftrain.errors import SelftrainError

    hparams_file, run_opts, overrides, generation = parse_recipe_arguments(sys.argv[1:] if argv is None else argv)
    try:
        hparams = load_hparams(hparams_file, overrides)
        config = recipe_experiment_config(hparams, run_opts, RECIPE_KEYS, rank_device)
        prepare_data(hparams, distributed()[0])
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
