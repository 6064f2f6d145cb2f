"""Tuning a model's decoder settings (LM weight, word bonus, blank penalty) on a transcribed dev set.

A model's best ``alpha`` / ``beta`` / ``blank_penalty`` depend on how its posteriors are calibrated,
and that changes from one self-training generation to the next (students trained on pseudo-labels
that lost words learn to emit the blank more often). The search decodes the dev set's posteriors,
computed once, with one setting at a time changed (coordinate search, written here because
pyctcdecode has no tuner), keeping a change only when it lowers the dev WER; the configured settings
are the starting point, so a tie keeps them.

>>> result = tune_decoder(log_probs, references, labels, "lm.bin", DecoderConfig(alpha=0.8))  # doctest: +SKIP
>>> result.best  # {"alpha": 0.8, "beta": 2.0, "blank_penalty": 1.0}  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from selftrain.data.audio import SkipLog
from selftrain.decode.config import TUNED_SETTINGS, DecoderConfig, TuneConfig
from selftrain.decode.pool import DecoderPool
from selftrain.decode.run import _batches, _load_batch, acoustic_log_probs, screen_rows
from selftrain.decode.scoring import error_kinds, error_rates
from selftrain.errors import ConfigError
from selftrain.models.api import AcousticModel
from selftrain.record import Utterance

__all__ = ["TuneResult", "tune_decoder", "dev_log_probs"]

@dataclass
class TuneResult:
    """The chosen settings, the dev WER before and after, and every point the search decoded."""

    best: dict[str, float]
    base_wer: float
    best_wer: float
    utterances: int
    points: list[dict[str, Any]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dev_log_probs(model: AcousticModel, utterances: Sequence[Utterance], batch_size: int = 8,
                  max_duration: float = 60.0, progress: bool = True) -> tuple[list[Utterance], list[np.ndarray], SkipLog]:
    """The transcribed ``utterances``' log-posteriors (one forward pass each); unusable rows are
    left out and recorded in the returned log, as decoding does."""
    log = SkipLog()
    labeled = screen_rows([u for u in utterances if u.reference], log)
    model.train(False)
    kept: list[Utterance] = []
    outputs: list[np.ndarray] = []
    for batch in tqdm(_batches(labeled, batch_size), desc="dev posteriors", unit="batch", disable=not progress):
        batch_kept, wavs = _load_batch(batch, model.sample_rate, max_duration, log, frozenset())
        if wavs:
            kept.extend(batch_kept)
            outputs.extend(acoustic_log_probs(model, wavs))
    return kept, outputs, log


def _score(log_probs: list[np.ndarray], references: list[str], labels: list[str], lm_path: str | Path | None,
           config: DecoderConfig) -> dict[str, Any]:
    with DecoderPool(replace(config, confidence=False, nbest=1), labels, lm_path, "tune") as decoder:
        hypotheses = [hyp.text for hyp in decoder.decode(log_probs)]
    wer, cer = error_rates(references, hypotheses)
    kinds = {kind: round(rate, 4) for kind, rate in error_kinds(references, hypotheses).items()}
    return {"wer": round(wer, 4), "cer": round(cer, 4), "errors": kinds}


def tune_decoder(log_probs: list[np.ndarray], references: list[str], labels: list[str], lm_path: str | Path | None,
                 base: DecoderConfig, tune: TuneConfig | None = None, progress: bool = True) -> TuneResult:
    """Coordinate search over :data:`TUNED_SETTINGS` from ``base``'s values; ``references`` are
    normalised transcripts, one per ``log_probs`` entry. Without an LM only the blank penalty is
    searched (``alpha`` and ``beta`` do nothing there)."""
    tune = tune or TuneConfig()
    if len(log_probs) != len(references) or not references:
        raise ConfigError(f"tuning needs one reference per utterance and at least one utterance "
                          f"({len(log_probs)} posteriors, {len(references)} references)")
    started = time.monotonic()
    names = [n for n in TUNED_SETTINGS if getattr(tune, n) and (lm_path is not None or n == "blank_penalty")]
    scored: dict[tuple[float, ...], dict[str, Any]] = {}
    bar = tqdm(desc="tune decoder", unit="setting", disable=not progress)

    def score(settings: dict[str, float]) -> float:
        key = tuple(settings[n] for n in TUNED_SETTINGS)
        if key not in scored:
            scored[key] = {**settings, **_score(log_probs, references, labels, lm_path, base.with_tuned(settings))}
            bar.update()
            bar.set_postfix(wer=scored[key]["wer"])
        return scored[key]["wer"]

    current = {n: float(getattr(base, n)) for n in TUNED_SETTINGS}
    base_wer = best_wer = score(current)
    for _ in range(tune.rounds):
        changed = False
        for name in names:
            for value in getattr(tune, name):
                candidate = {**current, name: float(value)}
                wer = score(candidate)
                if wer < best_wer - 1e-9:
                    current, best_wer, changed = candidate, wer, True
        if not changed:
            break
    bar.close()
    return TuneResult(best=current, base_wer=base_wer, best_wer=best_wer, utterances=len(references),
                      points=list(scored.values()), seconds=round(time.monotonic() - started, 1))
