"""Finishing a training run: export the chosen weights (the best checkpoint, or the continuous
labeler's best EMA snapshot), score them on dev and write ``summary.json``."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from selftrain.errors import CheckpointError
from selftrain.io import atomic_write_json
from selftrain.models.acoustic import count_parameters
from selftrain.models.export import export_model
from selftrain.train.config import TrainConfig

__all__ = ["RunResult", "finish_run"]

logger = logging.getLogger(__name__)


class RunResult(dict):
    """What ``summary.json`` holds (a dict): dev WER/CER, time, steps, counts, model folder."""


def _state_cache_counts(model) -> dict:
    cache = model.state_cache
    if cache is None:
        return {}
    return {"state_cache": {"hits": cache.hits, "misses": cache.misses, "rewritten": cache.rewritten}}


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


def finish_run(brain, checkpointer, prepared, config: TrainConfig, out: Path, started: float, dev_set, ema) -> Path:
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
