"""One experiment across the processes of a torchrun job: sharded pseudo-labeling, DDP training,
every other stage on rank 0.

Every process of the job calls :func:`run_experiment_distributed` with the same config:

* rank 0 opens the work folder (its lock, the config binding); the others wait for its ``experiment.json``;
* in a generation whose decode stage decodes audio, each rank decodes its
  :class:`~selftrain.decode.Shard` of the unlabeled audio with every teacher into
  ``gen_00N/decode_shards/rank_R_of_N/`` (:func:`decode_shard`), and rank 0 merges the shards into
  the decode stage's files (:func:`merge_rank_shards`): exactly what one process writes, so the
  decode stage then finds them complete;
* rank 0 runs the generation (:func:`~selftrain.generation.run.run_generation`); every other rank
  waits for the done marker of each stage that comes before training in the stage registry
  (:func:`~selftrain.generation.registry.generation_stages`), joins the training (SpeechBrain DDP),
  then waits for the later stages and ``generation.json``.

The processes coordinate through done markers in the work folder (one node, or a folder every node
sees), so a waiting process holds no collective operation that could time out. Every wait
(:func:`wait_for`) gives up after ``distributed.timeout_seconds`` with a
:class:`~selftrain.errors.WaitTimeoutError` naming what it waited for and the marker: a process
that fails does not leave the others polling for ever, also where no launcher stops them.

>>> Rank.from_env({"RANK": "1", "WORLD_SIZE": "4"})
Rank(index=1, world=4)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selftrain.errors import ConfigError, WaitTimeoutError
from selftrain.generation.config import DistributedConfig, ExperimentConfig
from selftrain.generation.lock import lock_workdir
from selftrain.generation.registry import Plan, Stage, StageCall, generation_stages, stage_named
from selftrain.generation.results import DecodedSplit, run_typed
from selftrain.generation.run import open_workdir, run_generation, write_summary
from selftrain.generation.stages import decode_teachers, teacher_generation
from selftrain.generation.workdir import DONE_MARKER, Workdir

if TYPE_CHECKING:
    from selftrain.decode import MergeReport, Shard

__all__ = ["Rank", "SHARDS_FOLDER", "wait_for", "rank_device", "on_own_gpu", "open_distributed_workdir", "shard_dir",
           "decode_shard", "merge_rank_shards", "pseudo_label_shards", "stages_around_training", "run_generation_distributed",
           "run_experiment_distributed"]

log = logging.getLogger(__name__)
SHARDS_FOLDER = "decode_shards"  # W/gen_XXX/decode_shards/rank_R_of_N/: one rank's part of the decode stage
DECODE_STAGE, TRAIN_STAGE = "decode", "train"  # the registry's stages that every rank takes part in


@dataclass(frozen=True)
class Rank:
    """This process in its torchrun job: process ``index`` of ``world`` (0 of 1 without torchrun)."""

    index: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.index < self.world:
            raise ConfigError(f"rank must be i of N with 0 <= i < N, got {self.index} of {self.world}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Rank:
        """The rank torchrun gives this process (``RANK``, ``WORLD_SIZE``); 0 of 1 without them."""
        env = os.environ if env is None else env
        try:
            return cls(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")))
        except ValueError as exc:
            raise ConfigError(f"RANK and WORLD_SIZE must be integers, got {env.get('RANK')!r} and "
                              f"{env.get('WORLD_SIZE')!r}") from exc

    @property
    def main(self) -> bool:
        """Rank 0: it runs every stage that is not split between the processes."""
        return self.index == 0

    def shard(self) -> Shard:
        """This rank's part of a manifest."""
        from selftrain.decode import Shard

        return Shard(self.index, self.world)

    def __str__(self) -> str:
        return f"rank {self.index} of {self.world}"


def wait_for(marker: Path, what: str, settings: DistributedConfig, ready: Callable[[], bool] | None = None) -> None:
    """Block until ``marker`` exists (with ``ready``: until ``ready()`` is true, ``marker`` naming
    what it checks), looking every ``settings.poll_seconds``.

    Raises :class:`~selftrain.errors.WaitTimeoutError` after ``settings.timeout_seconds``: the
    process that should have made ``marker`` failed or is far slower than expected.
    """
    done = ready if ready is not None else marker.exists
    if done():
        return
    log.info("waiting for %s (%s)", what, marker)
    deadline = time.monotonic() + settings.timeout_seconds
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeoutError(f"waited {settings.timeout_seconds:g} s for {what}, but {marker} did not appear "
                                   f"(did that process fail? distributed.timeout_seconds sets the limit)")
        time.sleep(min(settings.poll_seconds, left))


def rank_device(device: str, env: Mapping[str, str] | None = None) -> str:
    """Under torchrun each process trains on its own GPU: ``cuda`` / ``cuda:0`` become ``cuda:<LOCAL_RANK>``."""
    local_rank = (os.environ if env is None else env).get("LOCAL_RANK")
    if local_rank is None or not device.startswith("cuda"):
        return device
    return f"cuda:{local_rank}"


def on_own_gpu(config: ExperimentConfig, env: Mapping[str, str] | None = None) -> ExperimentConfig:
    """``config`` with each training's cuda device made this process' own (:func:`rank_device`)."""
    def own(section: dict[str, Any]) -> dict[str, Any]:
        return {**section, "device": rank_device(section["device"], env)} if "device" in section else section

    return replace(config, teacher_train=own(config.teacher_train), student_train=own(config.student_train))


def open_distributed_workdir(config: ExperimentConfig, root: str | Path, rank: Rank) -> Workdir:
    """Rank 0 opens ``root`` (:func:`~selftrain.generation.run.open_workdir`: locks it for this
    torchrun job and binds it to the config); the other ranks check that no other job holds it, then
    wait for rank 0's ``experiment.json``."""
    if rank.main:
        return open_workdir(config, root)
    lock_workdir(root)
    wait_for(Path(root) / "experiment.json", "rank 0 to open the work folder", config.distributed)
    return Workdir(root)


def shard_dir(workdir: Workdir, generation: int, rank: Rank) -> Path:
    """Named by the world size too: a rerun with another process count starts its shards afresh."""
    return workdir.generation_dir(generation) / SHARDS_FOLDER / f"rank_{rank.index}_of_{rank.world}"


def decode_shard(config: ExperimentConfig, workdir: Workdir, generation: int, rank: Rank, out: Path) -> DecodedSplit:
    """Decode ``rank``'s shard of the unlabeled audio into ``out`` with every teacher of ``generation``."""
    from selftrain.data.manifest import read_manifest, write_speechbrain_csv

    batch_size = config.decoder_config().batch_size
    manifest = out / "shard.csv"
    # Whole batches of the unsharded run: each utterance keeps its batch neighbours (same padding).
    write_speechbrain_csv(rank.shard().select(read_manifest(config.data.unlabeled), batch_size), manifest)
    return decode_teachers(config, workdir, teacher_generation(workdir, generation), str(manifest), out, "unlabeled",
                           ensemble=True)


def merge_rank_shards(config: ExperimentConfig, workdir: Workdir, generation: int, world: int) -> dict[str, MergeReport]:
    """Rank 0: wait for every rank's shard, then merge each teacher's shards into the decode stage's
    folder; returns each teacher's merge report.

    The merged file is what an unsharded run writes, so the generation's decode stage resumes it
    and only retries utterances whose audio was unusable.
    """
    from selftrain.data.manifest import ManifestStream
    from selftrain.decode import merge_shards

    folders = [shard_dir(workdir, generation, Rank(r, world)) for r in range(world)]
    for r, folder in enumerate(folders):
        wait_for(folder / DONE_MARKER, f"rank {r}'s pseudo-labeling shard of generation {generation}", config.distributed)
    shards = [DecodedSplit.read(folder).teachers for folder in folders]
    utterances = ManifestStream(config.data.unlabeled)  # read row by row, not held
    decode_dir = workdir.stage_dir(generation, DECODE_STAGE)
    reports = {}
    for name, teacher in shards[0].items():
        files = [folder / shard[name].file for folder, shard in zip(folders, shards, strict=True)]
        reports[name] = merge_shards(files, utterances, decode_dir / teacher.file)
        log.info("teacher %s: %d pseudo-labeled utterances merged from %d shards, %d missing",
                 name, reports[name].written, world, len(reports[name].missing))
    return reports


def pseudo_label_shards(config: ExperimentConfig, workdir: Workdir, generation: int,
                        rank: Rank) -> dict[str, MergeReport] | None:
    """Every rank decodes its shard (:func:`decode_shard`; kept when done); rank 0 then merges every
    rank's shard (:func:`merge_rank_shards`) and returns the merge reports."""
    run_typed(workdir, shard_dir(workdir, generation, rank), DecodedSplit,
              lambda out: decode_shard(config, workdir, generation, rank, out))
    return merge_rank_shards(config, workdir, generation, rank.world) if rank.main else None


def stages_around_training(plan: Plan, generation: int) -> tuple[list[Stage[Any]], list[Stage[Any]]]:
    """The stages of ``generation`` that rank 0 runs alone before its training, and after it."""
    stages = generation_stages(plan, generation)
    at = stages.index(stage_named(TRAIN_STAGE))
    return stages[:at], stages[at + 1:]


def _decodes_shards(config: ExperimentConfig, plan: Plan, generation: int) -> bool:
    """Whether the generation's decode stage decodes audio (with ``labels`` none, oracle or given it
    decodes nothing: :mod:`selftrain.generation.controls`)."""
    return stage_named(DECODE_STAGE).applies(plan, generation) and config.labels == "policy"


def _follow_generation(config: ExperimentConfig, workdir: Workdir, generation: int, plan: Plan) -> None:
    """A rank other than 0: wait for rank 0's stages before training, train with it, wait for the rest."""
    before, after = stages_around_training(plan, generation)
    for stage in before:
        _wait_for_stage(config, workdir, generation, stage)
    train = stage_named(TRAIN_STAGE)
    folder = train.folder(workdir, generation)
    if not workdir.is_done(folder):
        train.run(StageCall(config, workdir, generation), folder)  # joins rank 0's DDP training; rank 0 marks it done
    for stage in after:
        _wait_for_stage(config, workdir, generation, stage)
    wait_for(workdir.generation_dir(generation) / "generation.json", f"rank 0's record of generation {generation}",
             config.distributed)


def _wait_for_stage(config: ExperimentConfig, workdir: Workdir, generation: int, stage: Stage[Any]) -> None:
    wait_for(stage.folder(workdir, generation) / DONE_MARKER, f"rank 0's {stage.name} stage of generation {generation}",
             config.distributed)


def run_generation_distributed(config: ExperimentConfig, workdir: Workdir, generation: int, rank: Rank) -> None:
    """One generation on every process of the job: sharded pseudo-labeling and DDP training on
    every rank, everything else on rank 0 (one process: :func:`~selftrain.generation.run.run_generation`)."""
    if rank.world == 1:
        run_generation(config, workdir, generation)
        return
    if (workdir.generation_dir(generation) / "generation.json").exists():
        return
    plan = Plan.of(config.to_dict())
    if _decodes_shards(config, plan, generation) and not workdir.is_done(workdir.stage_dir(generation, DECODE_STAGE)):
        pseudo_label_shards(config, workdir, generation, rank)
    if rank.main:
        run_generation(config, workdir, generation)
    else:
        _follow_generation(config, workdir, generation, plan)


def run_experiment_distributed(config: ExperimentConfig, root: str | Path, rank: Rank | None = None,
                               generation: int | None = None) -> Workdir:
    """Run the experiment in ``root`` (or only ``generation``) as this process of its torchrun job
    (``rank``: from the environment when not given); returns the work folder, whose ``summary.json``
    rank 0 keeps up to date.

    Every rank other than 0 trains on its own GPU (:func:`on_own_gpu`); rank 0, local rank 0 of its
    node, keeps the config as given, so the folder binds to the same config as a one-process run.
    """
    rank = Rank.from_env() if rank is None else rank
    if not rank.main:
        config = on_own_gpu(config)
    workdir = open_distributed_workdir(config, root, rank)
    last = Plan.of(config.to_dict()).last_generation
    for number in range(last + 1) if generation is None else [generation]:
        run_generation_distributed(config, workdir, number, rank)
        if rank.main:
            write_summary(workdir)
    return workdir
