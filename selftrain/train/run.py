"""``train(config) -> Path``: one training run, from manifests to an exported model folder.

The run folder (``config.out``) keeps ``hyperparams.yaml`` (the resolved config), ``train_log.txt``
(SpeechBrain's per-epoch log), ``env.log``, ``tensorboard/``, ``skipped.jsonl`` (rows left out and
why), ``save/`` (SpeechBrain checkpoints: the best by the dev score and the most recent), ``model/`` (the
exported best model, see :mod:`selftrain.models.export`), ``model_ema/`` when an EMA teacher is kept,
and ``summary.json``. Running again with the same folder resumes from the last checkpoint (same
learning-rate schedule, same epoch count).
"""

from __future__ import annotations

import json
import logging
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selftrain.errors import CheckpointError, ConfigError
from selftrain.io import atomic_write_json, atomic_write_text
from selftrain.models.acoustic import CTCModel, count_parameters
from selftrain.models.export import export_model, load_ctc_model
from selftrain.train.config import TrainConfig

__all__ = ["train", "build_run", "BuiltRun", "RunResult"]

logger = logging.getLogger(__name__)


class RunResult(dict):
    """What ``summary.json`` holds (a dict): dev WER/CER, time, steps, counts, model folder."""


def _validate(config: TrainConfig) -> None:
    from selftrain.models.config import ENCODERS
    from selftrain.ssl.combine import STRATEGIES
    from selftrain.ssl.objectives import OBJECTIVES

    if not config.out:
        raise ConfigError("config.out (the run folder) is required")
    if config.precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision must be fp32 or bf16, not {config.precision!r}")
    if config.model.encoder not in ENCODERS:
        raise ConfigError(f"model.encoder must be one of {ENCODERS}")
    if config.combine.strategy not in STRATEGIES:
        raise ConfigError(f"combine.strategy must be one of {STRATEGIES}, not {config.combine.strategy!r}")
    bad = [o for o in config.ssl.objectives if o not in OBJECTIVES]
    if bad:
        raise ConfigError(f"unknown SSL objective(s) {bad}; choose from {list(OBJECTIVES)}")
    unknown_weights = set(config.ssl.weights) - set(config.ssl.objectives)
    if unknown_weights:
        raise ConfigError(f"ssl.weights names objectives that are not enabled: {sorted(unknown_weights)}")
    if not 0 <= config.ssl.mask_prob < 1:
        raise ConfigError("ssl.mask_prob must be in [0, 1)")
    from selftrain.train.brain import CHECKPOINT_METRICS

    if config.checkpoint_metric not in CHECKPOINT_METRICS:
        raise ConfigError(f"checkpoint_metric must be one of {CHECKPOINT_METRICS}, not {config.checkpoint_metric!r}")
    if config.checkpoint_metric == "lm_wer" and not Path(config.dev_lm).is_file():
        raise ConfigError(f"checkpoint_metric lm_wer needs dev_lm, a KenLM model file (got {config.dev_lm!r})")
    if config.epochs < 0 or config.optim.warmup_steps < 0:
        raise ConfigError("epochs and optim.warmup_steps must not be negative")
    if config.data.batch_seconds <= 0:
        raise ConfigError("data.batch_seconds must be positive")
    if config.distill.weight > 0 and not config.distill.teacher_model:
        raise ConfigError("distill.weight > 0 needs distill.teacher_model (a model folder)")
    if config.model.encoder == "whisper":
        _validate_frozen_front(config)
    if config.continuous.enabled:
        _validate_continuous(config)


def _validate_continuous(config: TrainConfig) -> None:
    config.continuous.check()
    if not config.data.unlabeled:
        raise ConfigError("continuous.enabled needs unlabeled audio to label: data.unlabeled is empty")
    if not config.data.dev:
        raise ConfigError("continuous.enabled needs a dev set (data.dev): labels are calibrated and the guard judged on it")
    if config.continuous.source == "ema" and config.ema_decay > 0:
        raise ConfigError("continuous.source=ema keeps its own EMA teacher (continuous.ema_decay): leave ema_decay at 0")


def _validate_frozen_front(config: TrainConfig) -> None:
    """A pretrained encoder's frozen states are what the student sees (masked): the SSL objectives,
    which predict from the filterbanks, do not apply; cached states stand for the clean audio, so
    nothing may change the audio either."""
    if config.ssl.objectives:
        raise ConfigError("ssl.objectives are not available with a pretrained (whisper) encoder, whose frozen "
                          "front the student never sees as filterbanks: leave ssl.objectives empty")
    if not config.state_cache:
        return
    changes_audio = [name for name, on in (("augment.speed_perturb", config.augment.speed_perturb),
                                           ("augment.noise_prob", config.augment.noise_prob > 0)) if on]
    if changes_audio:
        raise ConfigError(f"{', '.join(changes_audio)} change the audio, so the frozen encoder states cannot come "
                          "from the cache (state_cache): turn them off, or set state_cache='' to run the frozen part live")


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _fit_norm(model: CTCModel, rows, sample_rate: int, limit: int) -> None:
    """Estimate global feature statistics on up to ``limit`` training utterances."""
    from selftrain.data.audio import load_audio
    from selftrain.data.features import GlobalNorm

    if not isinstance(model.norm, GlobalNorm):
        return
    rng = random.Random(0)
    chosen = rng.sample(rows, min(limit, len(rows)))

    def batches():
        for row in chosen:
            wav = load_audio(row.wav, sample_rate)
            yield model.fbank(wav.unsqueeze(0)), torch.ones(1)

    model.norm.fit(batches())


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


def _init_encoder(model: CTCModel, path: str, with_head: bool) -> None:
    from selftrain.models.pretrained import load_pretrained_encoder

    report = load_pretrained_encoder(model, path, with_head=with_head)
    logger.info("encoder initialised from %s: %d tensors loaded, %d skipped", path, report.loaded, report.skipped)


@dataclass
class BuiltRun:
    """Everything :func:`train` needs, assembled by :func:`build_run` (also used by the benchmark)."""

    brain: Any
    checkpointer: Any
    epoch_counter: Any
    sampler: Any
    train_set: Any
    dev_set: Any
    ema: Any


def _run_options(config: TrainConfig) -> dict:
    options = {"device": config.device, "precision": config.precision, "eval_precision": config.precision,
               "max_grad_norm": config.optim.max_grad_norm, "distributed_backend": "gloo" if config.device == "cpu" else "nccl",
               "noprogressbar": not sys.stderr.isatty()}
    if config.max_steps > 0:
        options["optimizer_step_limit"] = config.max_steps
    # Without an SSL objective the mask embedding gets no gradient, which DDP refuses unless told.
    options["find_unused_parameters"] = not config.ssl.objectives
    return options


def _build_model(config: TrainConfig, prepared):
    from selftrain.models.acoustic import build_model
    from selftrain.ssl.objectives import build_objectives
    from selftrain.train.brain import SelfTrainer

    sample_rate = config.model.features.sample_rate
    model = build_model(config.model, prepared.tokenizer.vocab_size)
    _fit_norm(model, prepared.train, sample_rate, config.data.norm_utterances)
    if config.init.encoder:  # after the statistics: a pretrained encoder keeps its own
        _init_encoder(model, config.init.encoder, config.init.head)
    elif config.model.encoder == "whisper":
        from selftrain.models.whisper_weights import load_whisper_encoder

        weights = load_whisper_encoder(model, config.model.pretrained)
        logger.info("Whisper encoder loaded from %s (%d blocks, %d frozen)", weights.source, weights.layers,
                    config.model.frozen_layers)
    if config.state_cache and model.frozen_front:
        from selftrain.models.state_cache import FrozenStateCache

        model.state_cache = FrozenStateCache(config.state_cache, model)
    if config.model.adapter_rank > 0:
        from selftrain.models.adapters import add_adapters

        add_adapters(model, config.model.adapter_rank)
    objectives = build_objectives(config.ssl.objectives, model.encoder_dim, config.model.d_model, config.model.features.n_mels, config.ssl)
    logger.info("model: %s encoder, %.2fM trainable parameters", config.model.encoder, count_parameters(model) / 1e6)
    return SelfTrainer(model, objectives)


def _load_teacher(config: TrainConfig, prepared):
    if config.distill.weight <= 0:
        return None
    teacher, teacher_tok, _ = load_ctc_model(config.distill.teacher_model, config.device)
    if teacher_tok.ctc_labels() != prepared.tokenizer.ctc_labels():
        raise ConfigError("the distillation teacher's tokenizer differs from the student's")
    return teacher


def build_run(config: TrainConfig, prepared, run_opts: dict) -> BuiltRun:
    """Model, SSL heads, combiner, scheduler, checkpointer and the Brain for ``prepared`` data."""
    from speechbrain.nnet.schedulers import WarmAndExpDecayLRSchedule
    from speechbrain.utils.epoch_loop import EpochCounter
    from speechbrain.utils.train_logger import FileTrainLogger

    from selftrain.ssl.combine import build_combiner
    from selftrain.train.augment import StudentAugment
    from selftrain.train.brain import SelftrainBrain
    from selftrain.train.checkpoints import AtomicCheckpointer
    from selftrain.train.data import make_dataset, make_train_sampler

    out = Path(config.out)
    sample_rate = config.model.features.sample_rate
    trainer = _build_model(config, prepared)
    sampler = make_train_sampler(prepared.train, config.data, config.seed)
    total_steps = config.max_steps or len(sampler) * max(1, config.epochs)
    warmup = min(config.optim.warmup_steps, max(1, total_steps // 2))
    scheduler = WarmAndExpDecayLRSchedule(config.optim.lr, warmup, max(total_steps, warmup + 1), config.optim.decay_factor)
    epoch_counter = EpochCounter(config.epochs)
    combiner = build_combiner(config.combine)
    ema = _build_ema(config, trainer.model)
    recoverables = {"trainer": trainer, "scheduler": scheduler, "counter": epoch_counter}
    if list(combiner.state_dict()):
        recoverables["combiner"] = combiner
    if ema is not None:
        recoverables["ema"] = ema
    best = _build_best_snapshot(config, ema)
    if best is not None:
        recoverables["best_ema"] = best
    continuous = _build_labeler(config, prepared, ema, best) if config.continuous.enabled else None
    if continuous is not None:
        recoverables["continuous"] = continuous
    checkpointer = AtomicCheckpointer(out / "save", recoverables=recoverables)
    hparams = {
        "config": config, "tokenizer": prepared.tokenizer, "combiner": combiner,
        "augment": StudentAugment(config.augment, sample_rate), "lr_scheduler": scheduler,
        "epoch_counter": epoch_counter, "train_logger": FileTrainLogger(str(out / "train_log.txt")),
        "tb_logger": _tensorboard(out), "ema": ema, "teacher": _load_teacher(config, prepared),
        "continuous": continuous,
    }
    brain = SelftrainBrain(modules={"trainer": trainer}, opt_class=_optimizer(config, trainer), hparams=hparams,
                           run_opts=run_opts, checkpointer=checkpointer)
    combiner.to(brain.device)
    for module in (ema, best):
        if module is not None:
            module.to(brain.device)
    train_set = make_dataset(prepared.train, sample_rate)
    dev_set = make_dataset(prepared.dev, sample_rate).filtered_sorted(sort_key="duration") if prepared.dev else None
    return BuiltRun(brain, checkpointer, epoch_counter, sampler, train_set, dev_set, ema)


def _build_ema(config: TrainConfig, model: CTCModel):
    """The EMA teacher: exported (``ema_decay``) or labeling (``continuous.source=ema``); it
    reads a pretrained encoder's frozen states from the student's cache."""
    from selftrain.train.ema import EMATeacher

    labeling = config.continuous.enabled and config.continuous.source == "ema"
    decay = config.continuous.ema_decay if labeling else config.ema_decay
    if decay <= 0:
        return None
    ema = EMATeacher(model, decay)
    ema.shadow.state_cache = model.state_cache
    return ema


def _build_best_snapshot(config: TrainConfig, ema):
    """The snapshot of the labeling EMA teacher at its best calibration (``continuous.export: best_ema``)."""
    from selftrain.train.ema import WeightSnapshot

    if not config.continuous.enabled or config.continuous.export != "best_ema":
        return None
    best = WeightSnapshot(ema.shadow)
    best.model.state_cache = ema.shadow.state_cache
    return best


def _build_labeler(config: TrainConfig, prepared, ema, best):
    """The continuous labeler, with the unlabeled transcripts (audit only) that the manifests hold."""
    from selftrain.audit.inputs import reference_texts
    from selftrain.train.continuous import ContinuousLabeler
    from selftrain.train.data import KIND_LABELED
    from selftrain.train.label_filter import rate_bounded_sanity

    references: dict[str, str | None] = {}
    for manifest in [*config.data.unlabeled, *config.continuous.references]:
        references.update({k: v for k, v in reference_texts(manifest).items() if v is not None})
    sanity = rate_bounded_sanity(config.continuous, [r for r in prepared.train if r.kind == KIND_LABELED])
    return ContinuousLabeler(config.continuous, config.seed, prepared.tokenizer, prepared.dev, sanity,
                             config.model.features.sample_rate, Path(config.out), references, ema, best)


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

    _validate(config)
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
    return _finish(run.brain, run.checkpointer, prepared, config, out, started, run.dev_set, run.ema)


def _state_cache_counts(model) -> dict:
    cache = model.state_cache
    if cache is None:
        return {}
    return {"state_cache": {"hits": cache.hits, "misses": cache.misses, "rewritten": cache.rewritten}}


def _optimizer(config: TrainConfig, trainer):
    """Adam; a pretrained encoder's fine-tuned blocks form their own group, whose ``lr_scale`` the
    Brain applies on top of the schedule."""
    pretrained: set[int] = set()
    if config.model.encoder == "whisper":
        encoder = trainer.model.encoder
        pretrained = {id(p) for m in (encoder.blocks, encoder.ln_post) for p in m.parameters()}

    def make(params):
        params = [p for p in params if p.requires_grad]
        groups = [{"params": [p for p in params if id(p) not in pretrained]}]
        tuned = [p for p in params if id(p) in pretrained]
        if tuned:
            groups.append({"params": tuned, "lr_scale": config.optim.pretrained_lr_scale})
        return torch.optim.Adam(groups, lr=config.optim.lr, weight_decay=config.optim.weight_decay)

    return make


def _tensorboard(out: Path):
    try:
        from speechbrain.utils.train_logger import TensorboardLogger

        return TensorboardLogger(str(out / "tensorboard"))
    except ImportError:
        logger.warning("tensorboard is not installed: no TensorBoard log")
        return None


def _best_labeler_weights(labeler) -> dict | None:
    """The state dict of the continuous labeler's best EMA snapshot (``export: best_ema``), or None."""
    if labeler is None or labeler.best is None or not labeler.best.taken:
        return None
    return {k: v.detach().clone() for k, v in labeler.best.model.state_dict().items()}


def _dev_scores(brain, dev_set) -> dict:
    """Greedy dev WER, CER and loss of the weights the model holds now (the exported ones)."""
    checkpointer = brain.checkpointer
    brain.checkpointer = None  # evaluate() would load a checkpoint again, over the weights just loaded
    try:
        brain.evaluate(dev_set, test_loader_kwargs={"batch_size": 16}, progressbar=False)
    finally:
        brain.checkpointer = checkpointer
    return {k: brain.last_valid.get(k) for k in ("WER", "CER", "loss")}


def _finish(brain, checkpointer, prepared, config: TrainConfig, out: Path, started: float, dev_set, ema) -> Path:
    """Export the best checkpoint (by the dev score; the last one without a dev set), or the continuous
    labeler's best EMA snapshot (``continuous.export: best_ema``), and write summary.json."""
    best = checkpointer.find_checkpoint(min_key="score") if dev_set is not None else None
    chosen = best or checkpointer.find_checkpoint()
    if chosen is None:
        raise CheckpointError(f"no checkpoint was written under {out / 'save'}")
    trained_epochs, trained_steps = brain.hparams.epoch_counter.current, brain.optimizer_step
    labeler = getattr(brain.hparams, "continuous", None)
    continuous = labeler.summary() if labeler is not None else None
    # Read before the checkpoint load, which puts back the labeler (its best step) and snapshot as the chosen
    # checkpoint saved them: older than the run's best when the best calibration came after that checkpoint.
    exported = _best_labeler_weights(labeler)
    snapshot = ({"weights": "best_ema", "step": labeler.best_step, "teacher_dev_wer": labeler.best_dev_wer}
                if exported is not None and labeler is not None else None)
    checkpointer.load_checkpoint(chosen)  # restores the counters to the chosen checkpoint's
    if exported is not None and continuous is not None:
        brain.model.load_state_dict(exported)
        continuous["exported"] = snapshot
    dev = _dev_scores(brain, dev_set) if dev_set is not None else {}
    model = brain.model.eval()
    if config.model.adapter_rank > 0:
        from selftrain.models.adapters import merge_adapters

        model = merge_adapters(model)
    extra = {"checkpoint": chosen.path.name, **({"weights": "best_ema", "step": snapshot["step"]} if snapshot is not None else {})}
    model_dir = export_model(model, prepared.tokenizer, out / "model", extra=extra)
    if ema is not None:
        shadow = ema.shadow
        if config.model.adapter_rank > 0:
            from selftrain.models.adapters import merge_adapters

            shadow = merge_adapters(shadow)
        export_model(shadow, prepared.tokenizer, out / "model_ema", extra={"ema_decay": ema.decay})
    summary = RunResult(
        model_dir=str(model_dir),
        checkpoint=chosen.path.name,
        checkpoint_meta={k: v for k, v in chosen.meta.items() if isinstance(v, int | float | str)},
        dev_wer=dev.get("WER"),
        dev_cer=dev.get("CER"),
        train_seconds=round(time.time() - started, 1),
        optimizer_steps=trained_steps,
        epochs=trained_epochs,
        parameters=count_parameters(model),
        train_utterances=len(prepared.train),
        dev_utterances=len(prepared.dev),
        skipped=dict(prepared.skipped),
        rows_read=dict(prepared.totals),
        converted=dict(prepared.converted),
        ssl_cache={"hits": brain.cache.hits, "misses": brain.cache.misses, "utterances": len(brain.cache.store)},
        **_state_cache_counts(brain.model),
        **({"continuous": continuous} if continuous is not None else {}),
    )
    atomic_write_json(out / "summary.json", dict(summary))
    logger.info("dev WER %s CER %s; model in %s", summary["dev_wer"], summary["dev_cer"], model_dir)
    return model_dir

