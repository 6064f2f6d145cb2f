"""Beam search in a pool of worker processes that is created once and reused for every batch.

The pool uses the *fork* start method: workers inherit the loaded LM and decoder without pickling
(pyctcdecode's own batch API silently runs sequentially with a spawn pool). Each job decodes one
utterance and scores its confidence right there, so full posteriors never travel back.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass, replace
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Protocol

import numpy as np

from selftrain.data.tokenizer import BLANK_INDEX
from selftrain.decode.backends import Backend, build_backend
from selftrain.decode.config import DecoderConfig
from selftrain.errors import DecodeError
from selftrain.record import Hypothesis

__all__ = ["DecoderPool", "PendingResult", "penalize_blank", "in_process_decoder"]


class PendingResult(Protocol):
    """The hypotheses of one submitted batch, in order (a ``multiprocessing`` ``AsyncResult``)."""

    def ready(self) -> bool: ...

    def get(self, timeout: float | None = None) -> list[Hypothesis]: ...


@dataclass
class _Job:
    """Everything a worker needs; inherited through fork, never pickled."""

    backend: Backend
    teacher: str
    confidence: bool
    blank: int = BLANK_INDEX
    kenlm_model: object | None = None  # the decoding LM, for the LM's word scores
    blank_penalty: float = 0.0

    def __call__(self, log_probs: np.ndarray) -> Hypothesis:
        hyp = self.backend.decode(penalize_blank(log_probs, self.blank_penalty, self.blank))
        hyp.teacher = self.teacher
        if self.confidence and log_probs.shape[0] > 0:
            from selftrain.confidence import add_lm_scores, score_hypothesis

            score_hypothesis(log_probs, hyp, blank=self.blank)
            if self.kenlm_model is not None:
                add_lm_scores(hyp, self.kenlm_model)
        return hyp


def penalize_blank(log_probs: np.ndarray, penalty: float, blank: int = BLANK_INDEX) -> np.ndarray:
    """``log_probs`` with ``penalty`` subtracted from the blank column (a copy; unchanged when 0).

    Not renormalised: the search compares paths frame by frame, so a constant taken off one label's
    score is what shifts the balance between emitting a token and emitting nothing.
    """
    if penalty == 0.0 or log_probs.shape[0] == 0:
        return log_probs
    penalized = log_probs.copy()
    penalized[:, blank] -= penalty
    return penalized


_WORKER_JOB: _Job | None = None  # set in each worker by the pool's initializer


def _init_worker(job: _Job) -> None:
    global _WORKER_JOB
    _WORKER_JOB = job


def _run_in_worker(batch: list[np.ndarray]) -> list[Hypothesis]:
    if _WORKER_JOB is None:
        raise DecodeError("decoder worker was not initialised")
    return [_WORKER_JOB(log_probs) for log_probs in batch]


class _Done:
    """A result computed in the calling process (``workers=0``)."""

    def __init__(self, value: list[Hypothesis]):
        self._value = value

    def ready(self) -> bool:
        return True

    def get(self, timeout: float | None = None) -> list[Hypothesis]:
        return self._value


class DecoderPool:
    """Decode log-posterior matrices into hypotheses of one teacher, in parallel.

    >>> with DecoderPool(DecoderConfig(), tokenizer.ctc_labels(), "lm.bin", "t0") as dec:  # doctest: +SKIP
    ...     hyps = dec.decode([log_probs_1, log_probs_2])
    """

    def __init__(self, config: DecoderConfig, labels: list[str], lm_path: str | Path | None = None,
                 teacher: str = "teacher"):
        self.config = config
        self.labels = list(labels)
        self.lm_path = lm_path
        self.teacher = teacher
        backend = build_backend(config, self.labels, lm_path)
        self._job = _Job(backend, teacher, config.confidence, kenlm_model=self._scoring_lm(backend),
                         blank_penalty=config.blank_penalty)
        self._pool: Pool | None = None

    def _scoring_lm(self, backend: Backend):
        """The KenLM model for LM word scores: the backend's own (pyctcdecode), else loaded (flashlight)."""
        if self.lm_path is None or not self.config.confidence:
            return None
        from selftrain.lm import load_kenlm

        return getattr(backend, "kenlm_model", None) or load_kenlm(self.lm_path)

    @property
    def name(self) -> str:
        return self._job.backend.name

    def start(self) -> DecoderPool:
        """Fork the workers now (before the acoustic model starts its own threads)."""
        if self.config.workers > 0:
            self._ensure_pool()
        return self

    def _ensure_pool(self) -> Pool:
        if self._pool is None:
            self._pool = mp.get_context("fork").Pool(self.config.workers, initializer=_init_worker,
                                                      initargs=(self._job,))
        return self._pool

    def submit(self, batch: list[np.ndarray]) -> PendingResult:
        """Queue several utterances' ``[T, V]`` log-probabilities as one job (one round trip to a
        worker); ``.get()`` gives their hypotheses in order."""
        batch = [np.asarray(log_probs, dtype=np.float32) for log_probs in batch]
        for log_probs in batch:
            if log_probs.ndim != 2 or log_probs.shape[1] != len(self.labels):
                raise DecodeError(f"log-probabilities of shape {log_probs.shape} do not match the "
                                  f"{len(self.labels)} labels of the tokenizer")
        if self.config.workers == 0:
            return _Done([self._job(log_probs) for log_probs in batch])
        return self._ensure_pool().apply_async(_run_in_worker, (batch,))

    def decode(self, log_probs_list: list[np.ndarray]) -> list[Hypothesis]:
        """Decode several utterances (spread over the workers when ``workers > 0``), in order."""
        chunk = max(1, -(-len(log_probs_list) // max(1, 4 * self.config.workers)))
        pending = [self.submit(log_probs_list[i : i + chunk]) for i in range(0, len(log_probs_list), chunk)]
        return [hyp for result in pending for hyp in result.get()]

    def close(self) -> None:
        """Stop the workers."""
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def __enter__(self) -> DecoderPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self._pool is not None:
            self._pool.terminate()
        self.close()


def in_process_decoder(config: DecoderConfig, labels: list[str], lm_path: str | Path | None, teacher: str,
                       confidence: bool) -> DecoderPool:
    """A :class:`DecoderPool` that decodes in the calling process (no worker pool), for use inside
    a training run, where forking would copy the run's threads and tensors."""
    return DecoderPool(replace(config, workers=0, confidence=confidence), labels, lm_path, teacher)
