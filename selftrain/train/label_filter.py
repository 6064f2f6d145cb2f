"""On-the-fly pseudo-label filtering for continuous training: the offline selection's checks, per batch.

A label is the greedy (or beam search + LM) hypothesis of a teacher's CTC posteriors. Its utterance confidence is computed
as the offline decoding computes it (:func:`~selftrain.confidence.score_hypothesis`), mapped through a
calibration fit on dev (:func:`~selftrain.confidence.calibrate.fit_calibration`, the calibrated
combination when one is fit, as :func:`~selftrain.generation.stages_select.select_pseudo_labels` does), and
kept when it reaches the threshold that :func:`~selftrain.audit.sweep.choose_threshold` picks on dev
and passes the selection's sanity filters (:func:`~selftrain.select.policy.sanity_reason`).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from selftrain.audit.sweep import SELECTION_FRACTIONS, choose_threshold, sweep
from selftrain.confidence import Calibration, fit_calibration, score_hypothesis
from selftrain.data.audio import load_audio
from selftrain.decode.backends import GreedyBackend
from selftrain.decode.scoring import error_rates
from selftrain.errors import ConfigError, TextError
from selftrain.record import Decision, Hypothesis, Utterance
from selftrain.select.config import SanityConfig, selection_method
from selftrain.select.policy import (
    chars_per_second,
    sanity_reason,
    speaking_rate_bounds_or_warning,
    utterance_confidence,
)

__all__ = ["LabelDecision", "LabelFilter", "HypothesisMaker", "teacher_log_probs", "load_dev_batches", "fit_label_filter", "rate_bounded_sanity"]

logger = logging.getLogger(__name__)

DEV_BATCH = 16  # dev utterances per teacher forward pass during a calibration


@dataclass
class LabelDecision:
    """One unlabeled utterance's label at one step: the hypothesis (calibrated scores), its tokens,
    confidence, whether it trains and why (the selection's reason format), and whether it is empty
    or slower than the lower speaking-rate bound (what the collapse guard counts)."""

    id: str
    duration: float
    hypothesis: Hypothesis
    tokens: list[int]
    confidence: float | None
    kept: bool
    reason: str
    short: bool

    def record(self, reference: str | None, step: int, policy: str) -> Utterance:
        """The decision as a pipeline record (what ``selftrain audit`` reads)."""
        return Utterance(self.id, "", self.duration, reference=reference, hypotheses=[self.hypothesis],
                         pseudo_label=self.hypothesis.text, confidence=self.confidence,
                         decision=Decision(self.kept, self.reason, policy), extra={"step": str(step)})


@dataclass
class LabelFilter:
    """A calibration and threshold fit on dev at ``step``; ``dev_wer`` is the labeling teacher's dev WER
    (its labels decoded as ``continuous.decoder`` says: greedy, or beam search + LM)."""

    calibration: Calibration | None
    method: str
    threshold: float | None
    dev_wer: float
    step: int

    def to_dict(self) -> dict:
        return {"calibration": self.calibration.to_dict() if self.calibration else None, "method": self.method,
                "threshold": self.threshold, "dev_wer": self.dev_wer, "step": self.step}

    @classmethod
    def from_dict(cls, data: dict) -> LabelFilter:
        calibration = Calibration.from_dict(data["calibration"]) if data.get("calibration") is not None else None
        return cls(calibration, data["method"], data["threshold"], data["dev_wer"], data["step"])

    def policy(self) -> str:
        threshold = "off" if self.threshold is None else f"{self.threshold:g}"
        return f"continuous:{self.method}>={threshold}+sanity@step{self.step}"

    def decide(self, utt_id: str, duration: float, raw: Hypothesis, frames: int, tokenizer,
               sanity: SanityConfig) -> LabelDecision:
        """Calibrate ``raw`` (a copy) and decide whether it trains: sanity, then threshold, then whether
        CTC can align its tokens to the ``frames`` output frames."""
        hyp = copy.deepcopy(raw)
        if self.calibration is not None:
            self.calibration.apply(hyp)
        confidence = utterance_confidence(hyp, self.method)
        low = sanity.min_chars_per_second
        short = not hyp.text.split() or (low is not None and duration > 0 and chars_per_second(hyp.text, duration) < low)
        reason = sanity_reason(Utterance(utt_id, "", duration, hypotheses=[hyp]), hyp, sanity)
        tokens: list[int] = []
        if reason is None and self.threshold is not None and (confidence is None or confidence < self.threshold):
            reason = f"threshold: confidence {confidence or 0.0:.3f} < {self.threshold:g}"
        if reason is None:
            try:
                tokens = tokenizer.encode(tokenizer.normalizer(hyp.text))
            except TextError as exc:
                reason = f"bad_text: {exc}"
        if reason is None and len(tokens) + sum(a == b for a, b in zip(tokens, tokens[1:], strict=False)) > frames:
            reason = f"target_too_long: {len(tokens)} tokens in {frames} frames"
        kept = reason is None
        label = f"kept: confidence {confidence or 0.0:.3f}" if kept else str(reason)
        return LabelDecision(utt_id, duration, hyp, tokens if kept else [], confidence, kept, label, short)


@torch.no_grad()
def teacher_log_probs(model, wavs: torch.Tensor, rel_lens: torch.Tensor) -> list[np.ndarray]:
    """The model's ``[T_valid, V]`` log-posteriors per row, in eval mode (dropout off); the model's
    own mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        log_probs, frames = model(wavs, rel_lens)
    finally:
        model.train(was_training)
    array = log_probs.float().cpu().numpy()
    return [array[i, : max(1, int(n))] for i, n in enumerate(frames.cpu().tolist())]


def greedy_hypothesis(log_probs: np.ndarray, labels: list[str], teacher: str) -> Hypothesis:
    """The best-path hypothesis with word spans and the offline decoder's confidence scores."""
    hyp = GreedyBackend(labels).decode(log_probs)
    hyp.teacher = teacher
    score_hypothesis(log_probs, hyp)
    return hyp


class HypothesisMaker:
    """Teacher posteriors -> scored hypotheses, as ``config.decoder`` says (a
    :class:`~selftrain.train.config.ContinuousConfig`): greedy, or beam search + LM through the
    offline :class:`~selftrain.decode.DecoderPool` (built at first use, in this process)."""

    def __init__(self, config, labels: list[str], teacher: str):
        self.config = config
        self.labels = labels
        self.teacher = teacher
        self._decoder: Any = None  # a DecoderPool, built at the first beam search

    def __call__(self, log_probs: list[np.ndarray]) -> list[Hypothesis]:
        if self.config.decoder == "greedy":
            return [greedy_hypothesis(lp, self.labels, self.teacher) for lp in log_probs]
        if self._decoder is None:
            from selftrain.decode.pool import in_process_decoder

            self._decoder = in_process_decoder(self.config.decode, self.labels, self.config.lm, self.teacher,
                                               confidence=True)
        return self._decoder.decode(log_probs)


def load_dev_batches(dev_rows: list, sample_rate: int) -> list[tuple[list, torch.Tensor, torch.Tensor]]:
    """The dev audio in batches of ``DEV_BATCH`` rows of similar length, each ``(rows, padded samples,
    relative lengths)``, read once and reused by every calibration."""
    batches = []
    ordered = sorted(dev_rows, key=lambda r: r.duration)
    for start in range(0, len(ordered), DEV_BATCH):
        part = ordered[start : start + DEV_BATCH]
        wavs = [load_audio(r.wav, sample_rate) for r in part]
        lengths = torch.tensor([len(w) for w in wavs], dtype=torch.float32)
        batches.append((part, pad_sequence(wavs, batch_first=True), lengths / lengths.max()))
    return batches


def fit_label_filter(model, dev_batches: list[tuple[list, torch.Tensor, torch.Tensor]], make: HypothesisMaker,
                     device, config, step: int) -> LabelFilter:
    """Decode dev (``dev_batches`` of :func:`load_dev_batches`: clean audio) with ``model`` into
    hypotheses by ``make``, fit a calibration on them and choose the threshold (``config``:
    :class:`~selftrain.train.config.ContinuousConfig`)."""
    records: list[Utterance] = []
    for part, padded, rel_lens in dev_batches:
        hypotheses = make(teacher_log_probs(model, padded.to(device), rel_lens.to(device)))
        for row, hyp in zip(part, hypotheses, strict=True):
            records.append(Utterance(row.id, row.wav, row.duration, reference=row.text, hypotheses=[hyp]))
    dev_wer, _ = error_rates([r.reference or "" for r in records], [r.hypotheses[0].text for r in records])
    try:
        calibration: Calibration | None = fit_calibration(records)
    except ConfigError as exc:
        logger.warning("continuous labels: no calibration at step %d (%s); raw scores are used", step, exc)
        calibration = None
    method = selection_method(config.method, calibration)
    for utt in records:
        hyp = utt.hypotheses[0]
        if calibration is not None:
            calibration.apply(hyp)
        utt.pseudo_label, utt.confidence = hyp.text, utterance_confidence(hyp, method)
    chosen = choose_threshold(sweep(records, "selection", fractions=SELECTION_FRACTIONS), config.target_wer,
                              config.min_keep_fraction)
    threshold = chosen.threshold if chosen is not None else None
    logger.info("continuous labels at step %d: teacher dev WER %.4f, %s threshold %s", step, dev_wer, method, threshold)
    return LabelFilter(calibration, method, threshold, round(float(dev_wer), 6), step)


def rate_bounded_sanity(config, labeled_rows: list) -> SanityConfig:
    """``config.sanity`` with its speaking-rate bounds taken from the labeled rows' normalised text at
    ``config.speaking_rate_quantile`` (kept as configured when that is None or too few rows have text)."""
    if config.speaking_rate_quantile is None:
        return config.sanity
    utterances = [Utterance(r.id, r.wav, r.duration, reference=r.text) for r in labeled_rows if r.text]
    bounds, _ = speaking_rate_bounds_or_warning(utterances, config.speaking_rate_quantile, "the labeled rows")
    if bounds is None:
        return config.sanity
    return replace(config.sanity, min_chars_per_second=round(bounds[0], 2), max_chars_per_second=round(bounds[1], 2))
