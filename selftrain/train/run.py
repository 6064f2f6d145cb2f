"""``train(config) -> Path``: one training run, from manifests to an exported model folder.

The run folder (``config.out``) keeps ``hyperparams.yaml`` (the resolved config), ``train_log.txt``
(SpeechBrain's per-epoch log), ``env.log``, ``tensorboard/``, ``skipped.jsonl`` (rows left out and
why), ``save/`` (SpeechBrain checkpoints: the best by the dev score and the most recent), ``model/`` (the
exported best model, see :mod:`selftrain.models.export`), ``model_ema/`` when an EMA teacher is kept,
and ``summary.json``. Running again with the same folder resumes from the last checkpoint (same
learning-rate schedule, same epoch count).

The run is checked by :mod:`.validate`, assembled by :mod:`.build` and exported by :mod:`.finish`.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from selftrain.io import atomic_write_text
from selftrain.train.build import BuiltRun, build_run
from selftrain.train.config import TrainConfig
from selftrain.train.finish import RunResult, finish_run
from selftrain.train.validate import validate_config

__all__ = ["train", "build_run", "BuiltRun", "RunResult"]

logger = logging.getLogger(__name__)


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _write_run_files(out: Path, config: TrainConfig, prepared) -> None:
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "hyperparams.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    try:
        from speechbrain.utils.logger import get_environment_description

        atomic_write_text(out / "env.log", get_environment_description())
    except Exception as exc:  # noqa: BLE001 - the environment description is informative only
        atomic_write_text(out / "env.log", f"environment description unavailable: {exc}\n")
    atomic_write_text(out / "skipped.jsonl", "".join(json.dumps(r) + "\n" for r in prepared.skipped_rows))


def _run_options(config: TrainConfig) -> dict:
    options = {"device": config.device, "precision": config.precision, "eval_precision": config.precision,
               "max_grad_norm": config.optim.max_grad_norm, "distributed_backend": "gloo" if config.device == "cpu" else "nccl",
               "noprogressbar": not sys.stderr.isatty()}
    if config.max_steps > 0:
        options["optimizer_step_limit"] = config.max_steps
    # Without an SSL objective the mask embedding gets no gradient, which DDP refuses unless told.
    options["find_unused_parameters"] = not config.ssl.objectives
    return options


def train(config: TrainConfig) -> Path:
    """Train (or resume) a CTC student as configured; returns the exported model folder.

    >>> from selftrain.train import load_train_config, train
    >>> cfg = load_train_config("cpu-small", overrides={"out": "run", "epochs": 2,
    ...     "data": {"labeled": ["labeled.csv"], "dev": "dev.csv"}})    # doctest: +SKIP
    >>> model_dir = train(cfg)                                          # doctest: +SKIP
    """
    from speechbrain.utils.distributed import ddp_init_group, if_main_process

    from selftrain.models.acoustic import subsampling
    from selftrain.train.data import prepare_data

    validate_config(config)
    started = time.time()
    out = Path(config.out)
    run_opts = _run_options(config)
    if not torch.distributed.is_initialized():  # a later train() in the same process (next generation) reuses it
        ddp_init_group(run_opts)
    _seed(config.seed)
    frame_shift = subsampling(config.model) * config.model.features.hop_length_ms / 1000
    learns_unlabeled = config.ssl.objectives or config.distill.weight > 0 or config.continuous.enabled
    if config.data.unlabeled and not learns_unlabeled:
        logger.warning("unlabeled manifests are ignored: neither an SSL objective (ssl.objectives), "
                       "distillation (distill.weight) nor continuous labels (continuous.enabled) learn from them")
        config = replace(config, data=replace(config.data, unlabeled=[]))
    prepared = prepare_data(config.data, config.model.features.sample_rate, frame_shift)
    if if_main_process():
        _write_run_files(out, config, prepared)
    run = build_run(config, prepared, run_opts)
    run.brain.fit(
        run.epoch_counter,
        run.train_set,
        run.dev_set,
        train_loader_kwargs={"batch_sampler": run.sampler, "num_workers": config.data.num_workers},
        valid_loader_kwargs={"batch_size": 16, "num_workers": config.data.num_workers},
    )
    if not if_main_process():
        return out / "model"
    return finish_run(run.brain, run.checkpointer, prepared, config, out, started, run.dev_set, run.ema)
