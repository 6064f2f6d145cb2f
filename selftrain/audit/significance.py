"""Is one recognizer really better than another on the same utterances? A paired bootstrap.

A few hundred test utterances move WER by about a point from one training of a recipe to the next,
so a difference between two models is only worth acting on when resampling the utterances keeps
its sign. jiwer scores each utterance; the resampling is written here (no library of the stack does
a paired bootstrap over per-utterance error counts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from selftrain.errors import ConfigError

__all__ = ["Comparison", "utterance_errors", "paired_bootstrap"]

UtteranceErrors = dict[str, tuple[int, int]]  # utterance id -> (word errors, reference words)


@dataclass(frozen=True)
class Comparison:
    """WER(a) - WER(b) on their shared utterances and its ``confidence`` interval [low, high]."""

    difference: float
    low: float
    high: float
    utterances: int
    confidence: float = 0.95

    @property
    def significantly_worse(self) -> bool:
        """``a`` is worse than ``b`` beyond what resampling the utterances explains."""
        return self.low > 0.0

    @property
    def significantly_better(self) -> bool:
        """``a`` is better than ``b`` beyond what resampling the utterances explains."""
        return self.high < 0.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def utterance_errors(hyps_file: str | Path, manifest: str | Path, teacher: str = "lm") -> UtteranceErrors:
    """Per utterance of ``manifest``, (word errors, reference words) of ``teacher``'s hypothesis in
    ``hyps_file`` (normalized like every WER of the toolkit); utterances without either are left out."""
    import jiwer

    from selftrain.audit.inputs import attach_references, load_records
    from selftrain.confidence.calibrate import pick_hypothesis
    from selftrain.text import TextNormalizer

    normalizer = TextNormalizer()
    records = load_records(hyps_file)
    attach_references(records, manifest)
    errors = {}
    for utt in records:
        hyp, reference = pick_hypothesis(utt, teacher), normalizer(utt.reference or "")
        if hyp is not None and reference:
            out = jiwer.process_words(reference, hyp.text or "<empty>")
            errors[utt.id] = (out.substitutions + out.deletions + out.insertions, len(reference.split()))
    return errors


def paired_bootstrap(a: UtteranceErrors, b: UtteranceErrors, samples: int = 2000, seed: int = 0,
                     confidence: float = 0.95) -> Comparison:
    """WER(a) - WER(b) on their shared utterances, with an interval from resampling utterances with
    replacement (paired: both systems are scored on the same resample). An interval that excludes 0
    is a difference the utterances can tell apart from chance."""
    import numpy as np

    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if samples < 1:
        raise ConfigError(f"samples must be >= 1, got {samples}")
    ids = sorted(set(a) & set(b))
    if not ids:
        raise ValueError("the two systems share no scored utterance")
    counts = np.array([[a[i][0], b[i][0], a[i][1]] for i in ids], dtype=float)
    picks = np.random.default_rng(seed).integers(0, len(ids), size=(samples, len(ids)))
    sums = counts[picks].sum(axis=1)
    diffs = (sums[:, 0] - sums[:, 1]) / np.maximum(sums[:, 2], 1.0)
    total = counts.sum(axis=0)
    tail = (1.0 - confidence) / 2 * 100
    return Comparison(difference=round(float((total[0] - total[1]) / max(total[2], 1.0)), 4),
                      low=round(float(np.percentile(diffs, tail)), 4),
                      high=round(float(np.percentile(diffs, 100 - tail)), 4),
                      utterances=len(ids), confidence=confidence)
