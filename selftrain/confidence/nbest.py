"""Confidence from a beam search's n-best list: hypothesis posterior, word posterior and score margins.

The n-best list approximates the decoder's distribution over transcripts: ``P(h_j) =
softmax_j(score_j / T)`` with a temperature ``T`` (natural-log scores, acoustic + weighted LM). Entries
with the same text share their mass (beam searches may keep duplicates that differ only in state).

* ``nbest_posterior``: the mass of the entries whose text is the hypothesis.
* ``word_posterior`` (per word): the mass of the entries that contain the word at the aligned
  position; each entry is aligned to the hypothesis with jiwer and a word counts as present when the
  alignment marks it ``equal``. This is a lattice-free version of the classic word posterior.
* ``score_margin``: ``sigmoid((s_hyp - s_best_other) / T)``, the posterior of a two-way race between
  the hypothesis and its strongest rival (1 with no rival).
* ``acoustic_margin``: the same race on acoustic scores only (no LM): low when the LM chose a
  transcript the acoustic model itself ranks below a rival.
* ``acoustic_posterior``: the n-best posterior on acoustic scores only.
"""

from __future__ import annotations

import jiwer
import numpy as np

from selftrain.record import NBestEntry

__all__ = ["nbest_posteriors", "hypothesis_posterior", "word_posteriors", "score_margin"]


def nbest_posteriors(scores: list[float] | np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``scores / temperature`` (numerically stable); empty input gives an empty array.

    >>> nbest_posteriors([0.0, np.log(3.0)]).round(2)
    array([0.25, 0.75])
    """
    values = np.asarray(scores, dtype=np.float64) / max(temperature, 1e-12)
    if values.size == 0:
        return values
    finite = np.where(np.isfinite(values), values, -np.inf)
    if not np.isfinite(finite).any():
        return np.full(values.size, 1.0 / values.size)
    shifted = np.exp(finite - finite.max())
    return shifted / shifted.sum()


def _normalised(text: str) -> str:
    return " ".join(text.split())


def hypothesis_posterior(text: str, nbest: list[NBestEntry], temperature: float = 1.0,
                         acoustic_only: bool = False) -> float | None:
    """Posterior mass of the n-best entries whose text equals ``text``; ``None`` without an n-best list."""
    if not nbest:
        return None
    scores = [e.acoustic_score if acoustic_only else e.score for e in nbest]
    post = nbest_posteriors(scores, temperature)
    target = _normalised(text)
    return float(sum(p for p, e in zip(post, nbest, strict=True) if _normalised(e.text) == target))


def word_posteriors(words: list[str], nbest: list[NBestEntry], temperature: float = 1.0) -> list[float] | None:
    """Per word of the hypothesis, the posterior mass of n-best entries that contain it at its aligned slot."""
    if not nbest or not words:
        return None
    post = nbest_posteriors([e.score for e in nbest], temperature)
    reference = " ".join(words)
    hyps = [_normalised(e.text) for e in nbest]
    # jiwer aligns the hypothesis (as "reference") with every entry at once.
    alignments = jiwer.process_words([reference] * len(hyps), hyps).alignments
    mass = np.zeros(len(words))
    for weight, chunks in zip(post, alignments, strict=True):
        for chunk in chunks:
            if chunk.type == "equal":
                mass[chunk.ref_start_idx:chunk.ref_end_idx] += weight
    return [float(min(m, 1.0)) for m in mass]


def score_margin(text: str, nbest: list[NBestEntry], temperature: float = 1.0,
                 acoustic_only: bool = False) -> float | None:
    """``sigmoid((s_hyp - s_best_rival) / T)`` over n-best entries of another text; 1 with no rival."""
    if not nbest:
        return None
    target = _normalised(text)

    def score(entry: NBestEntry) -> float:
        return entry.acoustic_score if acoustic_only else entry.score

    own = [score(e) for e in nbest if _normalised(e.text) == target]
    rivals = [score(e) for e in nbest if _normalised(e.text) != target]
    if not own:
        return 0.0
    if not rivals:
        return 1.0
    gap = (max(own) - max(rivals)) / max(temperature, 1e-12)
    return float(1.0 / (1.0 + np.exp(-np.clip(gap, -500.0, 500.0))))
