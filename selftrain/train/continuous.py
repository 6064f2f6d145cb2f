"""Continuous pseudo-labeling: the unlabeled rows of each batch are labeled on the fly during training.

:class:`ContinuousLabeler` sits in front of the Brain's ``fit_batch``: after the supervised warm-up
it gives every unlabeled row of the batch a label from the label source, filtered by
:mod:`selftrain.train.label_filter`, so the student (which sees the augmented audio) trains on it
with CTC like any labeled row; dropped rows keep weight 0. Label sources:

* ``ema``: the EMA copy of the student (:class:`~selftrain.train.ema.EMATeacher`), reset to the
  student's weights when the warm-up ends (momentum pseudo-labeling, Higuchi et al. 2021);
* ``cache``: the student itself with dropout off, through a cache of labels (slimIPL): a cached
  label is reused, and remade with probability ``cache_replace_prob`` each time its utterance
  comes back; the oldest entry leaves when the cache is full.

Both decode the clean audio (with a pretrained encoder, the cached frozen states), greedily or with
beam search + LM (``decoder``). A guard watches
for collapse (see :class:`~selftrain.train.config.ContinuousConfig`). The labeler's state (cache,
calibration, guard, counts, how much of the audit file belongs to it) is a checkpoint recoverable,
and its random draws are seeded by the run's seed and the step, so a run resumed from a checkpoint
labels exactly as the uninterrupted run did. Checkpoints are written at epoch ends; the sampler's
only state is its epoch, which the checkpoint's epoch counter restores.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import Counter, OrderedDict
from dataclasses import asdict
from pathlib import Path

import torch
from speechbrain.dataio.batch import PaddedData
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks
from torch.nn.utils.rnn import pad_sequence

from selftrain.record import Hypothesis
from selftrain.train.config import ContinuousConfig
from selftrain.train.data import KIND_UNLABELED
from selftrain.train.label_filter import (
    HypothesisMaker,
    LabelDecision,
    LabelFilter,
    fit_label_filter,
    load_dev_batches,
    teacher_log_probs,
)

__all__ = ["ContinuousLabeler", "AUDIT_FILE"]

logger = logging.getLogger(__name__)

AUDIT_FILE = "continuous/labels.jsonl"  # in the run folder: sampled label records for `selftrain audit`


@register_checkpoint_hooks
class ContinuousLabeler:
    """Labels the unlabeled rows of training batches (see the module docstring).

    ``dev_rows``/``labeled`` are :class:`~selftrain.train.data.Row` lists; ``references`` maps
    unlabeled IDs to their transcripts (for the audit file only); ``ema``: the run's EMA teacher
    (required by the ``ema`` source); ``best``: a :class:`~selftrain.train.ema.WeightSnapshot` retaken
    from the labeling teacher at each calibration that finds a new best dev WER (``export: best_ema``)."""

    def __init__(self, config: ContinuousConfig, seed: int, tokenizer, dev_rows: list, sanity, sample_rate: int,
                 out: Path, references: dict[str, str | None] | None = None, ema=None, best=None):
        self.config = config
        self.seed = seed
        self.tokenizer = tokenizer
        self.labels = tokenizer.ctc_labels()
        self.dev_rows = dev_rows
        self.sanity = sanity
        self.sample_rate = sample_rate
        self.audit_path = Path(out) / AUDIT_FILE
        self.references = references or {}
        self.ema = ema
        self.best = best
        self.make = HypothesisMaker(config, self.labels, config.source)
        self._dev_batches: list | None = None  # the dev audio, read at the first calibration
        self._audit_truncated = False
        self.reset_state()

    def reset_state(self) -> None:
        self.warmup_end: int | None = None
        self.filter: LabelFilter | None = None
        self.best_dev_wer: float | None = None
        self.best_step: int | None = None  # the step of the calibration that found best_dev_wer
        self.stale = 0  # calibrations since the last new best (for ``patience``)
        self.restarts: list[dict] = []  # each plateau that went back to the best snapshot: its step and the snapshot's
        self.cache: OrderedDict[str, dict] = OrderedDict()
        self.counts: Counter = Counter()
        self.window = {"start": 0, "labels": 0, "short": 0}
        self.trips: list[dict] = []
        self.stopped: str | None = None
        self.calibrations = 0
        self.history: list[dict] = []  # every calibration: its step, the labeling teacher's dev WER, the threshold
        self.audit_bytes = 0

    # ---- checkpointing --------------------------------------------------------------------------
    def state(self) -> dict:
        return {"warmup_end": self.warmup_end, "filter": self.filter.to_dict() if self.filter else None,
                "best_dev_wer": self.best_dev_wer, "best_step": self.best_step, "stale": self.stale, "restarts": self.restarts, "cache": [[k, v] for k, v in self.cache.items()],
                "counts": dict(sorted(self.counts.items())), "window": self.window, "trips": self.trips,
                "stopped": self.stopped, "calibrations": self.calibrations, "history": self.history,
                "audit_bytes": self.audit_bytes}

    @mark_as_saver
    def _save(self, path) -> None:
        Path(path).write_text(json.dumps(self.state(), sort_keys=True), encoding="utf-8")

    @mark_as_loader
    def _recover(self, path, end_of_epoch) -> None:
        del end_of_epoch
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        self.warmup_end, self.best_dev_wer = data["warmup_end"], data["best_dev_wer"]
        self.filter = LabelFilter.from_dict(data["filter"]) if data["filter"] else None
        self.cache = OrderedDict((k, v) for k, v in data["cache"])
        self.counts = Counter(data["counts"])
        self.window, self.trips, self.stopped = data["window"], data["trips"], data["stopped"]
        self.calibrations, self.audit_bytes = data["calibrations"], data["audit_bytes"]
        # absent from checkpoints of earlier versions
        self.history = data.get("history", [])
        self.best_step, self.stale, self.restarts = data.get("best_step"), data.get("stale", 0), data.get("restarts", [])

    def summary(self) -> dict:
        """What the run's ``summary.json`` reports under ``continuous``."""
        return {"source": self.config.source, "warmup_end_step": self.warmup_end, "labels": dict(sorted(self.counts.items())),
                "threshold": self.filter.threshold if self.filter else None,
                "method": self.filter.method if self.filter else None,
                "teacher_dev_wer": self.filter.dev_wer if self.filter else None, "best_teacher_dev_wer": self.best_dev_wer, "best_step": self.best_step,
                "export": self.config.export, "restarts": self.restarts,
                "calibrations": self.calibrations, "calibration_history": self.history,
                "guard_trips": len(self.trips), "trips": self.trips,
                "stopped": self.stopped, "cached_labels": len(self.cache), "audit_file": AUDIT_FILE}

    # ---- the step --------------------------------------------------------------------------------
    def label_batch(self, brain, batch):
        """``batch`` with labels for its unlabeled rows (from the warm-up's end on, until stopped)."""
        step = brain.optimizer_step
        if self.stopped or not self._labeling(brain, step):
            return batch
        if self.filter is None or step - self.filter.step >= self.config.calibrate_every:
            self._calibrate(brain, step)
            if self.filter is None or self.stopped:  # the guard tripped: back at the best checkpoint (recalibrated next step), or stopped
                return batch
        rows = [i for i, kind in enumerate(batch.kind_id) if kind == KIND_UNLABELED]
        if not rows:
            return batch
        decisions = self._decide(brain, batch, rows, step)
        self._watch(brain, decisions, step)
        if step % self.config.audit_every == 0:
            self._write_audit(decisions, step)
        return _with_labels(batch, {i: d for i, d in zip(rows, decisions, strict=True) if d.kept})

    def _labeling(self, brain, step: int) -> bool:
        """Whether the warm-up is over (it ends once, at the first step that meets its condition)."""
        if self.warmup_end is not None:
            return True
        wer = brain.last_valid.get("WER")
        if wer is None and self.config.warmup_dev_wer > 0 and brain.checkpointer is not None:
            latest = brain.checkpointer.find_checkpoint()  # a resumed run has not validated yet
            wer = latest.meta.get("WER") if latest is not None else None
        by_wer = self.config.warmup_dev_wer > 0 and wer is not None and wer < self.config.warmup_dev_wer
        if step < self.config.warmup_steps and not by_wer:
            return False
        self.warmup_end = step
        self.window["start"] = step
        if self.ema is not None:
            self.ema.reset(brain.model)
        logger.info("continuous labels: the warm-up ended at step %d; labeling with %s", step, self.config.source)
        return True

    def _teacher(self, brain):
        return self.ema.shadow if self.config.source == "ema" else brain.model

    def _calibrate(self, brain, step: int) -> None:
        if self._dev_batches is None:
            self._dev_batches = load_dev_batches(self.dev_rows, self.sample_rate)
        self.filter = fit_label_filter(self._teacher(brain), self._dev_batches, self.make, brain.device, self.config, step)
        self.calibrations += 1
        wer = self.filter.dev_wer
        self.history.append({"step": step, "teacher_dev_wer": wer, "threshold": self.filter.threshold})
        if self.best_dev_wer is not None and wer > self.best_dev_wer + self.config.guard_max_wer_rise:
            self._trip(brain, step, f"teacher dev WER {wer:.4f} is more than {self.config.guard_max_wer_rise:g} "
                                    f"above its best {self.best_dev_wer:.4f}")
            return
        if self.best_dev_wer is None or wer < self.best_dev_wer:
            self._new_best(brain, step, wer)
            return
        self.stale += 1
        if not self.config.patience or self.stale < self.config.patience:
            return
        plateau = (f"the labeling teacher's dev WER has not improved on {self.best_dev_wer:.4f} "
                   f"(step {self.best_step}) in {self.stale} calibrations")
        if len(self.restarts) < self.config.restarts:
            self._restart(brain, step, plateau)
        else:
            self._stop(brain, plateau)

    def _restart(self, brain, step: int, reason: str) -> None:
        """Put the student and the labeling EMA back to the best snapshot; the current filter stays
        until the next calibration (a restart does not cost a dev decoding)."""
        assert self.best is not None and self.ema is not None  # checked by ContinuousConfig.check
        brain.model.load_state_dict(self.best.model.state_dict())
        self.ema.reset(self.best.model)
        self.restarts.append({"step": step, "to_step": self.best_step})
        self.stale = 0
        logger.warning("continuous labels: %s; round %d starts from the step-%s snapshot",
                       reason, len(self.restarts) + 1, self.best_step)

    def _new_best(self, brain, step: int, wer: float) -> None:
        self.best_dev_wer, self.best_step, self.stale = wer, step, 0
        if self.best is not None:
            self.best.take(self._teacher(brain), step)

    def _decide(self, brain, batch, rows: list[int], step: int) -> list[LabelDecision]:
        """Each row's label: cached (``cache`` source, unless drawn for replacement) or made now,
        decided by the current filter."""
        label_filter = self.filter
        assert label_filter is not None  # label_batch calibrates first
        rng = random.Random(f"{self.seed}:{step}")
        ids = [batch.id[i] for i in rows]
        fresh = [i for i, utt in zip(rows, ids, strict=True)
                 if self.config.source == "ema" or utt not in self.cache or rng.random() < self.config.cache_replace_prob]
        wavs, rel_lens = batch.sig
        made: dict[int, tuple[Hypothesis, int]] = {}
        if fresh:
            index = torch.tensor(fresh)
            log_probs = teacher_log_probs(self._teacher(brain), wavs[index].to(brain.device), rel_lens[index].to(brain.device))
            for i, lp, hyp in zip(fresh, log_probs, self.make(log_probs), strict=True):
                made[i] = (hyp, lp.shape[0])
        decisions = []
        for i, utt in zip(rows, ids, strict=True):
            if i in made:
                hyp, frames = made[i]
                self._remember(utt, hyp, frames)
                self.counts["made"] += 1
            else:
                entry = self.cache[utt]
                hyp, frames = Hypothesis.from_dict(entry["hyp"]), entry["frames"]
                self.counts["reused"] += 1
            duration = float(rel_lens[i]) * wavs.shape[1] / self.sample_rate
            decision = label_filter.decide(utt, duration, hyp, frames, self.tokenizer, self.sanity)
            self.counts["kept" if decision.kept else "dropped:" + decision.reason.split(":", 1)[0]] += 1
            decisions.append(decision)
        return decisions

    def _remember(self, utt: str, hyp: Hypothesis, frames: int) -> None:
        if self.config.source != "cache":
            return
        self.cache.pop(utt, None)
        self.cache[utt] = {"hyp": asdict(hyp), "frames": frames}
        while len(self.cache) > self.config.cache_size:
            self.cache.popitem(last=False)

    # ---- the guard -------------------------------------------------------------------------------
    def _watch(self, brain, decisions: list[LabelDecision], step: int) -> None:
        """Count empty / too-short labels; at the end of each window, trip when their share is too high."""
        self.window["labels"] += len(decisions)
        self.window["short"] += sum(d.short for d in decisions)
        if step + 1 - self.window["start"] < self.config.guard_window:
            return
        labels, short = self.window["labels"], self.window["short"]
        self.window = {"start": step + 1, "labels": 0, "short": 0}
        if labels and short / labels > self.config.guard_max_short_share:
            self._trip(brain, step, f"{short} of {labels} labels of the last {self.config.guard_window} steps are "
                                    f"empty or too short (limit {self.config.guard_max_short_share:g})")

    def _trip(self, brain, step: int, reason: str) -> None:
        """Log the reason; go back to the best checkpoint (its weights, an empty cache) or, after
        ``guard_max_trips`` trips or without a checkpoint, stop the run."""
        self.trips.append({"step": step, "reason": reason})
        logger.warning("continuous labels: collapse guard tripped at step %d: %s", step, reason)
        checkpoint = brain.checkpointer.find_checkpoint(min_key="score") if brain.checkpointer is not None else None
        checkpoint = checkpoint or (brain.checkpointer.find_checkpoint() if brain.checkpointer is not None else None)
        if len(self.trips) >= self.config.guard_max_trips or checkpoint is None:
            why = "no checkpoint to go back to" if checkpoint is None else f"{len(self.trips)} guard trips"
            self._stop(brain, f"{why}; last: {reason}")
            return
        from speechbrain.utils.checkpoints import torch_recovery

        torch_recovery(brain.trainer_module, checkpoint.paramfiles["trainer"], True)
        if self.ema is not None and "ema" in checkpoint.paramfiles:
            torch_recovery(self.ema, checkpoint.paramfiles["ema"], True)
        logger.warning("continuous labels: weights restored from %s", checkpoint.path.name)
        self.cache.clear()
        self.filter = None  # recalibrate with the restored teacher at the next step
        self.window = {"start": step + 1, "labels": 0, "short": 0}

    def _stop(self, brain, reason: str) -> None:
        self.stopped = reason
        exported = "the best labeling teacher" if self.best is not None else "the best checkpoint"
        logger.warning("continuous labels: stopping the run (%s); %s is exported", reason, exported)
        limit = brain.optimizer_step + 1  # this step still trains (on its labeled rows)
        brain.optimizer_step_limit = min(limit, brain.optimizer_step_limit or limit)
        counter = brain.hparams.epoch_counter
        counter.limit = min(counter.limit, counter.current)

    # ---- the audit file --------------------------------------------------------------------------
    def _write_audit(self, decisions: list[LabelDecision], step: int) -> None:
        """Append a sample of this step's labels. The first write of a process cuts the file back to
        what the restored state wrote, so lines of an interrupted epoch are not repeated."""
        from speechbrain.utils.distributed import if_main_process

        if not if_main_process() or self.config.audit_sample == 0:
            return
        rng = random.Random(f"{self.seed}:{step}:audit")
        chosen = sorted(rng.sample(range(len(decisions)), min(self.config.audit_sample, len(decisions))))
        policy = self.filter.policy() if self.filter else "continuous"
        lines = "".join(json.dumps(decisions[k].record(self.references.get(decisions[k].id), step, policy).to_dict(),
                                   sort_keys=True) + "\n" for k in chosen)
        self.audit_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.audit_path, "ab") as handle:
            if not self._audit_truncated:
                handle.truncate(self.audit_bytes)
                self._audit_truncated = True
            handle.write(lines.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
            self.audit_bytes = handle.tell()


def _with_labels(batch, labels: dict[int, LabelDecision]):
    """``batch`` whose rows ``labels`` train on their label's tokens at weight 1."""
    if not labels:
        return batch
    tokens, _ = batch.tokens
    rows, counts, weights = [], list(batch.num_tokens), list(batch.weight)
    for i in range(len(counts)):
        if i in labels:
            counts[i], weights[i] = len(labels[i].tokens), 1.0
            rows.append(torch.tensor(labels[i].tokens, dtype=torch.long))
        else:
            rows.append(tokens[i, : max(1, counts[i])].cpu())
    padded = pad_sequence(rows, batch_first=True)
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.float32) / padded.shape[1]
    batch.tokens = PaddedData(padded, lengths)
    batch.num_tokens, batch.weight = counts, weights
    return batch
