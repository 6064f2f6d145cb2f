"""Assembling a training run: the model (with its pretrained parts, adapters and SSL heads), the
optimizer and schedule, the EMA teacher, the continuous labeler, the checkpointer and the Brain."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from selftrain.errors import ConfigError
from selftrain.models.acoustic import CTCModel, count_parameters
from selftrain.models.export import load_ctc_model
from selftrain.train.config import TrainConfig

__all__ = ["BuiltRun", "build_run"]

logger = logging.getLogger(__name__)


@dataclass
class BuiltRun:
    """Everything :func:`~selftrain.train.run.train` needs, assembled by :func:`build_run` (also used by the benchmark)."""

    brain: Any
    checkpointer: Any
    epoch_counter: Any
    sampler: Any
    train_set: Any
    dev_set: Any
    ema: Any


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


def _init_encoder(model: CTCModel, path: str, with_head: bool) -> None:
    from selftrain.models.pretrained import load_pretrained_encoder

    report = load_pretrained_encoder(model, path, with_head=with_head)
    logger.info("encoder initialised from %s: %d tensors loaded, %d skipped", path, report.loaded, report.skipped)


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
