"""Frame-level confidence measures of CTC posteriors: maximum probability and normalised entropies.

Every measure maps one frame's distribution ``p`` over the ``V`` output labels (blank included) to a
value in [0, 1]: 1 for a one-hot frame (the model is sure), 0 for the uniform distribution.
The entropies and their normalisations follow Laptev & Ginsburg (2022), "Fast entropy-based methods
of word-level confidence estimation for end-to-end automatic speech recognition":

=============  ==================================  ==========================
entropy        H_alpha(p)                          maximum (uniform p)
=============  ==================================  ==========================
Gibbs          -sum p^a ln p                       V^(1-a) ln V
Tsallis        (1 - sum p^a) / (a - 1)             (V^(1-a) - 1) / (1 - a)
Renyi          ln(sum p^a) / (1 - a)               ln V
=============  ==================================  ==========================

(all three become the Shannon entropy at ``a = 1``). Linear normalisation: ``1 - H / H_max``.
Exponential normalisation: ``(exp(-k H) - exp(-k H_max)) / (1 - exp(-k H_max))`` with ``k = a``
for Gibbs and ``k = 1`` for Tsallis and Renyi, as in the paper. ``alpha < 1`` sharpens the
measures' sensitivity to the tail of the distribution; the paper recommends ``a = 1/3`` for
Tsallis with exponential normalisation. ``max_prob`` is the frame's largest probability, unnormalised.

Written with numpy because torch would be overkill for [T, V] arrays of one utterance and no
library of the stack computes these measures for arbitrary posteriors.
"""

from __future__ import annotations

import numpy as np

from selftrain.errors import ConfigError

__all__ = ["FRAME_MEASURES", "frame_measures", "log_softmax"]

# Measure names (used as ``Word.scores`` keys).
FRAME_MEASURES = (
    "max_prob",
    "entropy_gibbs_lin",
    "entropy_gibbs_exp",
    "entropy_tsallis_lin",
    "entropy_tsallis_exp",
    "entropy_renyi_lin",
    "entropy_renyi_exp",
)

_LOG_FLOOR = -1.0e4  # log-probabilities below this are 0 for every purpose; avoids 0 * -inf = nan
_ALPHA_ONE = 1e-6  # |alpha - 1| below this uses the Shannon limit
_KINDS = ("gibbs", "tsallis", "renyi")


def log_softmax(values: np.ndarray) -> np.ndarray:
    """Renormalise log-probabilities (float64) so each row sums to one (half-precision outputs drift)."""
    values = np.asarray(values, dtype=np.float64)
    peak = values.max(axis=-1, keepdims=True)
    shifted = values - peak
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _entropies(log_p: np.ndarray, alpha: float) -> dict[str, tuple[np.ndarray, float, float]]:
    """Per-frame Gibbs, Tsallis and Renyi entropies, each with its maximum and exp-normalisation factor.

    Only two reductions over the vocabulary are needed (sum p^a and sum p^a ln p), shared by all three.
    """
    vocab = log_p.shape[-1]
    log_vocab = float(np.log(vocab))
    if abs(alpha - 1.0) < _ALPHA_ONE:
        shannon = -(np.exp(log_p) * log_p).sum(axis=-1)
        return {kind: (shannon, log_vocab, 1.0) for kind in ("gibbs", "tsallis", "renyi")}
    p_alpha = np.exp(alpha * log_p)
    sum_alpha = p_alpha.sum(axis=-1)
    gibbs = -(p_alpha * log_p).sum(axis=-1)
    return {
        "gibbs": (gibbs, vocab ** (1 - alpha) * log_vocab, alpha),
        "tsallis": ((1 - sum_alpha) / (alpha - 1), (vocab ** (1 - alpha) - 1) / (1 - alpha), 1.0),
        "renyi": (np.log(sum_alpha) / (1 - alpha), log_vocab, 1.0),
    }


def _normalise(entropy: np.ndarray, maximum: float, factor: float, how: str) -> np.ndarray:
    if how == "lin":
        value = 1.0 - entropy / maximum
    else:
        floor = np.exp(-factor * maximum)
        value = (np.exp(-factor * entropy) - floor) / (1.0 - floor)
    return np.clip(value, 0.0, 1.0)


def frame_measures(log_probs: np.ndarray, measures: tuple[str, ...] = FRAME_MEASURES,
                   alpha: float = 1.0 / 3.0) -> dict[str, np.ndarray]:
    """Per-frame confidence ``{measure: array[T]}`` of log-posteriors ``log_probs[T, V]``.

    >>> one_hot = np.log(np.eye(4)[[0, 2]] + 1e-30)
    >>> frame_measures(one_hot, ("entropy_tsallis_exp",))["entropy_tsallis_exp"].round(3)
    array([1., 1.])
    """
    if log_probs.ndim != 2 or log_probs.shape[1] < 2:
        raise ConfigError(f"log_probs must be [T, V] with V >= 2, got shape {log_probs.shape}")
    if alpha <= 0:
        raise ConfigError(f"entropy alpha must be > 0, got {alpha}")
    log_p = np.maximum(log_softmax(log_probs), _LOG_FLOOR)
    for name in measures:
        parts = name.split("_")
        if name != "max_prob" and (len(parts) != 3 or parts[0] != "entropy" or parts[1] not in _KINDS
                                   or parts[2] not in ("lin", "exp")):
            raise ConfigError(f"unknown frame measure {name!r}; known: {', '.join(FRAME_MEASURES)}")
    entropies = _entropies(log_p, alpha) if any(m != "max_prob" for m in measures) else {}
    out: dict[str, np.ndarray] = {}
    for name in measures:
        if name == "max_prob":
            out[name] = np.exp(log_p.max(axis=-1))
        else:
            _, kind, how = name.split("_")
            out[name] = _normalise(*entropies[kind], how)
    return out
