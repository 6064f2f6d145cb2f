"""Pseudo-label quality, the re-scoring sweeps: the primary teacher's hypotheses re-scored under
each confidence variant (from the teacher model's posteriors), and the n-best scores recomputed at
several temperatures."""

from __future__ import annotations

import copy
import itertools

import numpy as np

from selftrain.confidence import (
    FRAME_MEASURES,
    ConfidenceConfig,
    aggregate,
    hypothesis_posterior,
    score_hypothesis,
    word_posteriors,
)
from selftrain.select.quality import Labeled, wer_at_fractions, word_detection

__all__ = ["confidence_variants", "nbest_temperatures"]

VARIANT_FRAMES = ("non_blank", "all")
VARIANT_AGGREGATIONS = ("mean", "min", "prod")
VARIANT_ALPHAS = (1.0 / 3.0, 0.5, 1.0)


def _posteriors(items: list[Labeled], model_dir: str, batch_size: int = 8) -> dict[str, np.ndarray]:
    """The teacher's ``[T, V]`` log-posteriors of every item (eval mode, so the same as at decoding)."""
    import torch
    from tqdm import tqdm

    from selftrain.data.audio import load_audio
    from selftrain.models import load_acoustic_model

    model = load_acoustic_model(model_dir, device="cpu")
    ordered = sorted(items, key=lambda i: i.utt.duration)
    out: dict[str, np.ndarray] = {}
    for start in tqdm(range(0, len(ordered), batch_size), desc="posteriors", unit="batch"):
        batch = ordered[start:start + batch_size]
        wavs = [load_audio(i.utt.wav, model.sample_rate) for i in batch]
        lengths = torch.tensor([len(w) for w in wavs], dtype=torch.float32)
        padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
        with torch.inference_mode():
            log_probs, frames = model.log_probs(padded, lengths / lengths.max())
        for item, lp, n in zip(batch, log_probs.float().numpy(), frames.tolist(), strict=True):
            out[item.utt.id] = lp[: int(n)]
    return out


def confidence_variants(items: list[Labeled], model_dir: str, blank: int = 0) -> dict[str, dict]:
    """Re-score the items' hypotheses under each confidence variant: word AUROC per measure, WER at 60 %."""
    posteriors = _posteriors(items, model_dir)
    results: dict[str, dict] = {}
    for frames, how, alpha in itertools.product(VARIANT_FRAMES, VARIANT_AGGREGATIONS, VARIANT_ALPHAS):
        config = ConfidenceConfig(frames=frames, word_aggregation=how, entropy_alpha=alpha, nbest_scores=False)
        rescored = []
        for item in items:
            hyp = copy.deepcopy(item.hyp)
            hyp.scores = {}
            for word in hyp.words:
                word.scores = {}
            if item.utt.id in posteriors:
                score_hypothesis(posteriors[item.utt.id], hyp, blank, config)
            rescored.append(Labeled(item.utt, hyp, item.reference))
        measures = [m for m in FRAME_MEASURES if alpha == 1.0 / 3.0 or m != "max_prob"]
        name = f"frames={frames},word={how},alpha={alpha:.2g}"
        results[name] = {m: {"auroc": (word_detection(rescored, m) or {}).get("auroc"),
                             "wer_at_60": wer_at_fractions(rescored, lambda i, m=m: i.hyp.scores.get(m), (0.6,))["0.6"]}
                         for m in measures}
    return results


NBEST_TEMPERATURES = (0.5, 1.0, 2.0, 4.0, 8.0)


def nbest_temperatures(items: list[Labeled]) -> dict[str, dict] | None:
    """n-best scores recomputed at several temperatures: word_posterior AUROC, WER at 60 % kept."""
    if not any(i.hyp.nbest for i in items):
        return None
    results: dict[str, dict] = {}
    for temperature in NBEST_TEMPERATURES:
        rescored = []
        for item in items:
            hyp = copy.deepcopy(item.hyp)
            if hyp.nbest:
                hyp.scores["nbest_posterior"] = hypothesis_posterior(hyp.text, hyp.nbest, temperature) or 0.0
                posteriors = word_posteriors([w.word for w in hyp.words], hyp.nbest, temperature) or []
                for word, value in zip(hyp.words, posteriors, strict=True):
                    word.scores["word_posterior"] = value
                if posteriors:
                    hyp.scores["word_posterior"] = aggregate(posteriors, "mean")
            rescored.append(Labeled(item.utt, hyp, item.reference))
        detection = word_detection(rescored, "word_posterior") or {}
        results[f"{temperature:g}"] = {
            "word_posterior_auroc": detection.get("auroc"),
            **{f"{m}_wer_at_60": wer_at_fractions(rescored, lambda i, m=m: i.hyp.scores.get(m), (0.6,))["0.6"]
               for m in ("nbest_posterior", "word_posterior")}}
    return results
