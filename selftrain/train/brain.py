"""The SpeechBrain ``Brain`` that trains the student: CTC on labeled and pseudo-labeled rows, SSL on
every row, combined by a configurable strategy (:mod:`selftrain.ssl.combine`).

``fit_batch`` is overridden because the combination strategies own the backward pass (PCGrad
reshapes per-task gradients, BL-JUST takes a lower-level step first); everything else (epochs,
DDP, autocast, checkpoint recovery, gradient clipping, optimizer stepping) is SpeechBrain's. The
losses, the model-with-heads module and the dev score are in :mod:`selftrain.train.objective`.
"""

from __future__ import annotations

import logging
import math
import pickle
import random
import time
from dataclasses import dataclass

import numpy as np
import speechbrain as sb
import torch
import torch.nn.functional as F

from selftrain.errors import CheckpointError
from selftrain.models.acoustic import CTCModel, output_lengths
from selftrain.ssl.combine import Combiner, PCGrad
from selftrain.ssl.masking import span_mask
from selftrain.ssl.objectives import TargetCache
from selftrain.train.objective import (
    CHECKPOINT_METRICS,
    SelfTrainer,
    dev_score,
    greedy_decode,
    runs_ctc_loss,
    weighted_ctc_loss,
)

__all__ = ["SelfTrainer", "SelftrainBrain", "greedy_decode", "weighted_ctc_loss", "runs_ctc_loss", "dev_score",
           "CHECKPOINT_METRICS"]

logger = logging.getLogger(__name__)


@dataclass
class StepStats:
    """Running sums of one training epoch, for logs."""

    steps: int = 0
    seconds: float = 0.0
    sums: dict | None = None

    def add(self, values: dict[str, float]) -> None:
        self.sums = self.sums or {}
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps += 1

    def means(self) -> dict[str, float]:
        return {k: v / max(1, self.steps) for k, v in (self.sums or {}).items()}


def seed_epoch(seed: int, epoch: int) -> None:
    """Seed Python, numpy and torch for one epoch of a run seeded with ``seed``."""
    value = (seed * 1_000_003 + epoch) % 2**32
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


class SelftrainBrain(sb.Brain):
    """Brain with ``hparams``: ``config`` (TrainConfig), ``tokenizer``, ``combiner``, ``augment``,
    ``lr_scheduler``, ``epoch_counter``, ``train_logger``, optional ``tb_logger``, ``ema``, ``teacher``,
    ``continuous`` (a :class:`~selftrain.train.continuous.ContinuousLabeler`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.trainer_module: SelfTrainer = self.modules.trainer
        self.cache = TargetCache()
        self.stats = StepStats()
        self.best_score: float | None = None
        self.evals_without_gain = 0
        self.fit_started = time.time()
        self.last_valid: dict[str, float] = {}
        self.lm_scorer = None  # set in on_fit_start when checkpoints are chosen on LM-decoded dev WER
        self.dev_log_probs: list[np.ndarray] = []

    # ---- helpers -------------------------------------------------------------------------------
    @property
    def model(self) -> CTCModel:
        return self.trainer_module.model

    @property
    def combiner(self) -> Combiner:
        return self.hparams.combiner

    def _wrap_distributed(self):
        super()._wrap_distributed()
        self.manual_grads = isinstance(self.combiner, PCGrad) or self.combiner.bilevel

    def _ssl_targets(self, ids, clean_wavs, rel_lens, feats, same_audio, speed_changed, num_frames, frames):
        names = [n for n, o in self.trainer_module.objectives.items() if o.cacheable]
        if not names:
            return {}
        use_cache = self.hparams.config.ssl.cache_targets and not speed_changed
        if use_cache:
            found = self.cache.get(ids, names)
            if found is not None:
                return {n: TargetCache.pad(found, n, num_frames, feats.device) for n in names}
        clean = feats if same_audio else self.model.features(clean_wavs, rel_lens)
        targets = {n: self.trainer_module.objectives[n].targets(clean, num_frames) for n in names}
        if use_cache:
            for n in names:
                self.cache.put(ids, n, targets[n], frames)
        return targets

    # ---- Brain hooks ---------------------------------------------------------------------------
    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        wavs, rel_lens = batch.sig
        if stage != sb.Stage.TRAIN:
            return self.model(wavs, rel_lens)
        config = self.hparams.config
        if self.model.frozen_front:
            return self._forward_frozen_front(wavs, rel_lens)
        clean, student, speed_changed = self.hparams.augment.waveform(wavs, rel_lens)
        feats = self.model.features(student, rel_lens)
        num_frames = self.model.num_latent_frames(feats.shape[1])
        frames = output_lengths(rel_lens, num_frames)
        mask, targets = None, {}
        if len(self.trainer_module.objectives):
            mask = span_mask(frames, num_frames, config.ssl.mask_prob, config.ssl.mask_span)
            targets = self._ssl_targets(batch.id, clean, rel_lens, feats, student is clean, speed_changed, num_frames, frames)
        feats = self.hparams.augment.features(feats)
        log_probs, ssl = self.modules.trainer(feats, rel_lens, mask, targets, not config.ssl.shared_forward)
        teacher = None
        if getattr(self.hparams, "teacher", None) is not None:
            with torch.no_grad():
                teacher, _ = self.hparams.teacher(clean, rel_lens)
        return {"log_probs": log_probs, "frames": frames, "ssl": ssl, "teacher": teacher}

    def _forward_frozen_front(self, wavs, rel_lens):
        """Training forward of a model whose front never trains (a pretrained encoder's frozen bottom):
        the student's noise is masks and dropout on the frozen states, after the waveform
        augmentations when the states are computed live (with the cache they stand for the clean
        audio, and waveform augmentation is refused at configuration: ``train.validate``)."""
        clean, student = wavs, wavs
        if self.model.state_cache is None:
            clean, student, _ = self.hparams.augment.waveform(wavs, rel_lens)
        latents, latent_lens = self.model.latents(student, rel_lens)
        latents = self.hparams.augment.states(latents)
        frames = output_lengths(latent_lens, latents.shape[1])
        log_probs, ssl = self.modules.trainer(None, latent_lens, None, {}, False, latents=latents)
        teacher = None
        if getattr(self.hparams, "teacher", None) is not None:
            with torch.no_grad():
                teacher, _ = self.hparams.teacher(clean, rel_lens)
        return {"log_probs": log_probs, "frames": frames, "ssl": ssl, "teacher": teacher}

    def compute_losses(self, out, batch) -> dict[str, torch.Tensor]:
        """Task losses of a training batch: ``ctc`` (+ distillation) and ``ssl`` (weighted objectives)."""
        config = self.hparams.config
        tokens, _ = batch.tokens
        num_tokens = torch.as_tensor(batch.num_tokens, device=self.device)
        weights = torch.as_tensor(batch.weight, dtype=torch.float32, device=self.device)
        spans = getattr(batch, "spans", None)
        if spans is not None and any(spans):
            losses = {"ctc": runs_ctc_loss(out["log_probs"], out["frames"], tokens, num_tokens, weights, spans)}
        else:
            losses = {"ctc": weighted_ctc_loss(out["log_probs"], out["frames"], tokens, num_tokens, weights)}
        if out["teacher"] is not None and config.distill.weight > 0:
            t = out["teacher"]
            steps = min(t.shape[1], out["log_probs"].shape[1])
            kl = F.kl_div(out["log_probs"][:, :steps], t[:, :steps], log_target=True, reduction="none").sum(-1)
            valid = torch.arange(steps, device=self.device)[None, :] < out["frames"][:, None]
            losses["ctc"] = losses["ctc"] + config.distill.weight * (kl * valid).sum() / valid.sum()
        if out["ssl"]:
            losses["ssl"] = sum(config.ssl.weights.get(n, 1.0) * v for n, v in out["ssl"].items())
        self._last_parts = {f"ssl_{n}": float(v.detach()) for n, v in out["ssl"].items()}
        return losses

    def compute_objectives(self, predictions, batch, stage):
        """Validation: CTC loss plus greedy WER/CER bookkeeping (training uses :meth:`compute_losses`)."""
        log_probs, frames = predictions
        tokens, _ = batch.tokens
        num_tokens = torch.as_tensor(batch.num_tokens, device=self.device)
        ones = torch.ones(len(batch.id), device=self.device)
        loss = weighted_ctc_loss(log_probs, frames, tokens, num_tokens, ones)
        tok = self.hparams.tokenizer
        self.hyps.extend(tok.decode(ids) for ids in greedy_decode(log_probs, frames))
        if self.lm_scorer is not None:
            rows = log_probs.detach().float().cpu().numpy()
            self.dev_log_probs.extend(row[:n] for row, n in zip(rows, frames.tolist(), strict=True))
        for ref_ids, n in zip(tokens.tolist(), batch.num_tokens, strict=True):
            self.refs.append(tok.decode(ref_ids[:n]))
        return loss

    def fit_batch(self, batch):
        started = time.time()
        continuous = getattr(self.hparams, "continuous", None)
        if continuous is not None:  # unlabeled rows get their labels now (selftrain.train.continuous)
            batch = continuous.label_batch(self, batch)
        self.hparams.lr_scheduler(self.optimizer)
        step = self.optimizer_step
        for group in self.optimizer.param_groups:  # pretrained blocks fine-tune at a fraction of the schedule's rate
            group["lr"] *= group.get("lr_scale", 1.0)
        params = [p for p in self.trainer_module.parameters() if p.requires_grad]
        if self.combiner.bilevel and len(self.trainer_module.objectives):
            with self.no_sync(True), self.training_ctx:
                lower = self.compute_losses(self.compute_forward(batch, sb.Stage.TRAIN), batch)
            self.combiner.lower_step(lower["ssl"], params)
            self._all_reduce_params()
        sync_off = self.distributed_launch and self.manual_grads
        with self.no_sync(sync_off):
            with self.training_ctx:
                out = self.compute_forward(batch, sb.Stage.TRAIN)
                losses = self.compute_losses(out, batch)
            total = self.combiner.backward(losses, step, self.model.shared_parameters(), self.model.last_shared_parameters())
        self.check_loss_isfinite(total)
        if sync_off:
            self._all_reduce_grads(params)
        self.optimizers_step()
        if getattr(self.hparams, "ema", None) is not None:
            self.hparams.ema.update(self.model)
        values = {k: float(v.detach()) for k, v in losses.items()} | self._last_parts
        values |= {f"w_{k}": v for k, v in self.combiner.last_weights.items()}
        self.stats.add(values | {"step_seconds": time.time() - started})
        return total.detach().cpu()

    def _all_reduce_grads(self, params):
        """Average gradients over processes (strategies that set ``.grad`` themselves bypass DDP's hooks)."""
        world = torch.distributed.get_world_size()
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            torch.distributed.all_reduce(p.grad)
            p.grad /= world

    @torch.no_grad()
    def _all_reduce_params(self):
        if not self.distributed_launch:
            return
        world = torch.distributed.get_world_size()
        for p in self.trainer_module.parameters():
            torch.distributed.all_reduce(p.data)
            p.data /= world

    def on_fit_start(self):
        try:
            super().on_fit_start()  # recovers the latest checkpoint, if any
        except pickle.UnpicklingError as exc:
            # SpeechBrain's loaders call torch.load, whose default (weights_only=True) refuses pickled objects.
            raise CheckpointError(f"refusing to resume from {self.checkpointer.checkpoints_dir}: a checkpoint holds "
                                  f"more than tensors and plain values, which could run code ({exc})") from exc
        self._restore_progress()
        config = self.hparams.config
        if config.checkpoint_metric == "lm_wer":
            from selftrain.train.dev_lm import LMDevScorer

            self.lm_scorer = LMDevScorer(self.hparams.tokenizer.ctc_labels(), config.dev_lm, config.dev_decoder)

    def _restore_progress(self):
        """Continue the wall clock, a decided early stop and the early-stopping state of an
        interrupted run from its latest checkpoint's meta, so that a resumed run stops where the
        uninterrupted one would have (checkpoints of older versions lack them: nothing restored)."""
        checkpoint = self.checkpointer.find_checkpoint() if self.checkpointer is not None else None
        if checkpoint is None:
            return
        meta = checkpoint.meta
        self.fit_started = time.time() - float(meta.get("elapsed_seconds", 0.0))
        if meta.get("stop_after_epoch") is not None:
            self.hparams.epoch_counter.limit = min(self.hparams.epoch_counter.limit, int(meta["stop_after_epoch"]))
        self.best_score = meta.get("best_score", self.best_score)
        self.evals_without_gain = int(meta.get("evals_without_gain", 0))

    def _progress_meta(self) -> dict:
        counter = self.hparams.epoch_counter
        return {"elapsed_seconds": round(time.time() - self.fit_started, 3),
                "stop_after_epoch": counter.limit if counter.limit < self.hparams.config.epochs else None,
                "best_score": self.best_score, "evals_without_gain": self.evals_without_gain}

    def on_stage_start(self, stage, epoch=None):
        if stage == sb.Stage.TRAIN:
            # Every epoch draws from its own seed (masks, augmentation, dropout), so an epoch
            # redone after an interruption is the epoch an uninterrupted run would have had.
            seed_epoch(self.hparams.config.seed, epoch or 0)
            self.stats = StepStats()
            self._last_parts = {}
        else:
            self.hyps, self.refs, self.dev_log_probs = [], [], []

    def _fit_valid(self, valid_set, epoch, enable):
        # Dev evaluation every `eval_every` epochs (and at the last one); other epochs save a "last" checkpoint.
        config = self.hparams.config
        last = epoch >= self.hparams.epoch_counter.limit
        if valid_set is not None and (epoch % max(1, config.eval_every) == 0 or last):
            return super()._fit_valid(valid_set, epoch, enable)
        self._save(epoch, {})
        return None

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.train_stats = {"loss": stage_loss, **self.stats.means()}
            self._check_time_limit()
            return
        import jiwer

        wer = float(jiwer.wer(self.refs, self.hyps)) if self.refs else float("nan")
        cer = float(jiwer.cer(self.refs, self.hyps)) if self.refs else float("nan")
        valid_stats = {"loss": stage_loss, "WER": wer, "CER": cer}
        lm_wer = math.nan
        if self.lm_scorer is not None and self.refs:
            lm_wer = float(jiwer.wer(self.refs, self.lm_scorer.decode(self.dev_log_probs)))
            valid_stats["LM_WER"] = lm_wer
        score = dev_score(wer, cer, self.hparams.config.checkpoint_metric, lm_wer)
        valid_stats["score"] = score
        self.last_valid = valid_stats
        if stage == sb.Stage.VALID:
            self._log(epoch, valid_stats)
            self._early_stop(score)  # before saving: the checkpoint records the early-stopping state
            self._save(epoch, {k: v for k, v in valid_stats.items() if k != "loss"})

    def _log(self, epoch, valid_stats):
        meta = {"epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"], "steps": self.optimizer_step,
                "minutes": round((time.time() - self.fit_started) / 60, 2)}
        self.hparams.train_logger.log_stats(stats_meta=meta, train_stats=self.train_stats, valid_stats=valid_stats or None)
        tb = getattr(self.hparams, "tb_logger", None)
        if tb is not None:
            tb.log_stats(stats_meta={"epoch": epoch}, train_stats=self.train_stats, valid_stats=valid_stats or None)

    def _save(self, epoch, meta):
        if not meta:
            self._log(epoch, {})
        keep = self.hparams.config.keep_checkpoints
        self.checkpointer.save_and_keep_only(meta={"epoch": epoch, **meta, **self._progress_meta()},
                                             min_keys=["score"], num_to_keep=keep)

    def _early_stop(self, score):
        if self.best_score is None or score < self.best_score:
            self.best_score, self.evals_without_gain = score, 0
            return
        self.evals_without_gain += 1
        patience = self.hparams.config.early_stop_patience
        if patience > 0 and self.evals_without_gain >= patience:
            logger.info("the dev score has not improved for %d evaluations: stopping", patience)
            self.hparams.epoch_counter.limit = self.hparams.epoch_counter.current

    def _check_time_limit(self):
        config = self.hparams.config
        minutes = (time.time() - self.fit_started) / 60
        over_time = config.max_minutes > 0 and minutes >= config.max_minutes
        over_steps = config.max_steps > 0 and self.optimizer_step >= config.max_steps
        if over_time or over_steps:
            logger.info("stopping after this epoch: %.1f min, %d steps", minutes, self.optimizer_step)
            self.hparams.epoch_counter.limit = self.hparams.epoch_counter.current
