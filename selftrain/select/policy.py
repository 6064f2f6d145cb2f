"""Pseudo-label selection: decide, per utterance, whether its pseudo-label trains the student, and why.

Order of checks (the first failure is the recorded reason): a hypothesis from the chosen teacher
exists; sanity filters (empty, speaking rate, repeated word, teacher length ratio); a confidence
score exists; absolute threshold; agreement threshold; DUST threshold; finally keep-fraction
among the survivors. Every reason starts with a short code (``empty``, ``rate``, ``repeat``,
``length_ratio``, ``no_hypothesis``, ``no_score``, ``threshold``, ``agreement``, ``dust``,
``keep_fraction``, ``kept``) followed by ``:`` and the measured values, so audits can group them.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence

from selftrain.confidence.calibrate import CALIBRATED_SUFFIX
from selftrain.errors import ConfigError
from selftrain.record import Decision, Hypothesis, Utterance
from selftrain.select.config import SanityConfig, SelectConfig
from selftrain.text import TextNormalizer

log = logging.getLogger(__name__)

__all__ = ["select_utterances", "first_failure", "rank_value", "quota", "keep_ranked", "ranked_decision", "sanity_reason", "chosen_hypothesis", "utterance_confidence", "reason_counts",
           "chars_per_second", "speaking_rate_bounds", "speaking_rate_bounds_or_warning"]

COMBINED_TEACHER = "rover"
# ROVER is a majority vote: with two teachers there is no majority, and the ROVER text of the LM and
# greedy teachers was worse than the LM teacher's alone (docs/experiments/2026-11-23-pseudo-label-quality.md,
# row rover_labels:rover of its results file), so ``auto`` uses it only from three teachers on.
MIN_TEACHERS_FOR_ROVER = 3


def chosen_hypothesis(utt: Utterance, label_source: str = "auto") -> Hypothesis | None:
    """The hypothesis that gives the pseudo-label (:attr:`SelectConfig.label_source`).

    ``auto``: the combined ``rover`` hypothesis when it exists and combines at least
    :data:`MIN_TEACHERS_FOR_ROVER` teachers, else the first teacher (the LM-decoded one in a run).
    """
    if label_source != "auto":
        return utt.hypothesis(label_source)
    teachers = [h for h in utt.hypotheses if h.teacher != COMBINED_TEACHER]
    combined = utt.hypothesis(COMBINED_TEACHER)
    if combined is not None and len(teachers) >= MIN_TEACHERS_FOR_ROVER:
        return combined
    return teachers[0] if teachers else combined


def utterance_confidence(hyp: Hypothesis, method: str) -> float | None:
    """The hypothesis' ``method`` score, calibrated when a calibrated value exists."""
    return hyp.scores.get(method + CALIBRATED_SUFFIX, hyp.scores.get(method))


def _longest_run(words: list[str]) -> tuple[str, int]:
    best, best_len, run = "", 0, 0
    for i, word in enumerate(words):
        run = run + 1 if i and words[i - 1] == word else 1
        if run > best_len:
            best, best_len = word, run
    return best, best_len


def _teacher_texts(utt: Utterance) -> list[str]:
    return [h.text for h in utt.hypotheses if h.teacher != COMBINED_TEACHER]


def chars_per_second(text: str, duration: float) -> float:
    """Speaking rate: characters of ``text`` (words joined by single spaces) per second of audio."""
    return len(" ".join(text.split())) / duration


MIN_RATE_UTTERANCES = 20  # fewer transcribed utterances say little about a low quantile of the rate


def speaking_rate_bounds(utterances: Iterable[Utterance], quantile: float) -> tuple[float, float]:
    """The speaking rate of transcribed speech (chars/s of its normalised references) at ``quantile``
    and ``1 - quantile``: bounds for :attr:`SanityConfig.min_chars_per_second` / ``max_chars_per_second``.

    A pseudo-label far slower than any transcribed utterance has lost words. Self-training on such
    labels teaches the student to emit nothing where the audio is hard (unseen voices), and its own
    labels then lose more words each generation; fixed bounds (2-30 chars/s) are far too loose to
    see it. Raises :class:`ConfigError` when fewer than 20 utterances have a reference and a duration.
    """
    import numpy as np

    if not 0.0 <= quantile < 0.5:
        raise ConfigError(f"speaking-rate quantile must be in [0, 0.5), got {quantile}")
    normalize = TextNormalizer()
    rates = [chars_per_second(text, u.duration) for u in utterances
             if u.reference and u.duration > 0 for text in [normalize(u.reference)] if text.strip()]
    if len(rates) < MIN_RATE_UTTERANCES:
        raise ConfigError(f"speaking-rate bounds need at least {MIN_RATE_UTTERANCES} transcribed utterances "
                          f"with durations, got {len(rates)}")
    return float(np.quantile(rates, quantile)), float(np.quantile(rates, 1.0 - quantile))


def speaking_rate_bounds_or_warning(utterances: Iterable[Utterance], quantile: float,
                                    source: str = "the labeled set") -> tuple[tuple[float, float] | None, str | None]:
    """:func:`speaking_rate_bounds`, or ``(None, warning)`` (also logged) when ``source`` has too few
    transcribed utterances with durations: the selection then keeps its fixed bounds instead of
    stopping a run whose other stages need no such statistics."""
    try:
        return speaking_rate_bounds(utterances, quantile), None
    except ConfigError as exc:
        if not 0.0 <= quantile < 0.5:
            raise
        warning = f"speaking-rate bounds off ({source}: {exc}); the fixed sanity bounds apply"
        log.warning(warning)
        return None, warning


def sanity_reason(utt: Utterance, hyp: Hypothesis, sanity: SanityConfig) -> str | None:
    """Why ``hyp`` is implausible for ``utt`` (a reason string), or None when it passes every filter."""
    words = hyp.text.split()
    if sanity.drop_empty and not words:
        return "empty: the hypothesis is empty"
    if utt.duration > 0 and words:
        rate = chars_per_second(hyp.text, utt.duration)
        low, high = sanity.min_chars_per_second, sanity.max_chars_per_second
        if (low is not None and rate < low) or (high is not None and rate > high):
            return f"rate: {rate:.1f} chars/s outside [{low}, {high}]"
    if sanity.max_repeat is not None and words:
        word, run = _longest_run(words)
        if run >= sanity.max_repeat:
            return f"repeat: {word!r} {run} times in a row (limit {sanity.max_repeat})"
    texts = _teacher_texts(utt)
    if sanity.max_length_ratio is not None and len(texts) >= 2:
        lengths = [len(" ".join(t.split())) for t in texts]
        longest, shortest = max(lengths), min(lengths)
        ratio = math.inf if shortest == 0 and longest > 0 else (longest / shortest if shortest else 1.0)
        if ratio > sanity.max_length_ratio:
            return f"length_ratio: teachers' lengths differ {ratio:.2f}x (limit {sanity.max_length_ratio})"
    return None


def _rank_value(utt: Utterance, cfg: SelectConfig) -> float:
    confidence = utt.confidence or 0.0
    agreement = utt.agreement.get(cfg.agreement_key, 0.0)
    if cfg.rank_by == "agreement":
        return agreement
    if cfg.rank_by == "product":
        return confidence * agreement
    return confidence


def _first_failure(utt: Utterance, cfg: SelectConfig) -> str | None:
    hyp = chosen_hypothesis(utt, cfg.label_source)
    if hyp is None:
        return f"no_hypothesis: no hypothesis from teacher {cfg.label_source!r}"
    utt.pseudo_label = hyp.text
    utt.confidence = utterance_confidence(hyp, cfg.method)
    reason = sanity_reason(utt, hyp, cfg.sanity)
    if reason:
        return reason
    if utt.confidence is None:
        return f"no_score: hypothesis of {hyp.teacher!r} has no {cfg.method!r} score"
    if cfg.threshold is not None and utt.confidence < cfg.threshold:
        return f"threshold: confidence {utt.confidence:.3f} < {cfg.threshold:g}"
    if cfg.agreement_threshold is not None:
        value = utt.agreement.get(cfg.agreement_key)
        if value is None:
            return f"agreement: no {cfg.agreement_key!r} value (needs 2+ teachers)"
        if value < cfg.agreement_threshold:
            return f"agreement: {cfg.agreement_key} {value:.3f} < {cfg.agreement_threshold:g}"
    if cfg.dust_threshold is not None:
        dust = utt.agreement.get("dust_max_wer")
        if dust is None:
            return "dust: no dropout samples to compare"
        if dust > cfg.dust_threshold:
            return f"dust: max dropout WER {dust:.3f} > {cfg.dust_threshold:g}"
    return None


def select_utterances(utterances: Iterable[Utterance], config: SelectConfig | None = None) -> list[Utterance]:
    """Decide every utterance in place (``decision``, ``pseudo_label``, ``confidence``) and return them."""
    cfg = (config or SelectConfig()).resolved()
    policy = cfg.describe()
    utterances = list(utterances)
    survivors: list[Utterance] = []
    for utt in utterances:
        reason = first_failure(utt, cfg)
        if reason:
            utt.decision = Decision(False, reason, policy)
        else:
            survivors.append(utt)
    kept, cut = keep_ranked([_rank_value(u, cfg) for u in survivors], quota(cfg, len(survivors), len(utterances)))
    for utt, keep in zip(survivors, kept, strict=True):
        utt.decision = ranked_decision(utt, cfg, bool(keep), cut, len(utterances))
    return utterances


def first_failure(utt: Utterance, cfg: SelectConfig) -> str | None:
    """Set ``utt``'s pseudo-label and confidence from the chosen teacher; the reason it is dropped before
    any ranking (the first check it fails), or None when it survives to the ranking."""
    utt.pseudo_label, utt.confidence = None, None
    return _first_failure(utt, cfg)


def rank_value(utt: Utterance, cfg: SelectConfig) -> float:
    """What the keep-fraction ranks survivors by (``cfg.rank_by``)."""
    return _rank_value(utt, cfg)


def quota(cfg: SelectConfig, survivors: int, utterances: int) -> int:
    """How many survivors are kept: all, or at most ``keep_fraction`` of every utterance decided."""
    if cfg.keep_fraction is None:
        return survivors
    return min(survivors, int(round(cfg.keep_fraction * utterances)))


def keep_ranked(values: Sequence[float], count: int) -> tuple[bytearray, float]:
    """Which survivors (in input order, by their rank ``values``) are kept: the ``count`` highest, ties
    in input order; and the cut (the lowest kept value; inf when none is kept). Only the values are
    needed, so a streamed selection holds one number per survivor."""
    ranked = sorted(range(len(values)), key=values.__getitem__, reverse=True)  # stable: ties keep input order
    kept = bytearray(len(values))
    for index in ranked[:count]:
        kept[index] = 1
    return kept, (values[ranked[count - 1]] if count > 0 else math.inf)


def ranked_decision(utt: Utterance, cfg: SelectConfig, kept: bool, cut: float, utterances: int) -> Decision:
    """The decision of a survivor of :func:`first_failure` once the ranking is known."""
    value = _rank_value(utt, cfg)
    if kept:
        return Decision(True, f"kept: {cfg.rank_by} {value:.3f}" + _kept_detail(utt, cfg), cfg.describe())
    return Decision(False, f"keep_fraction: {cfg.rank_by} {value:.3f} below the cut {cut:.3f} "
                           f"(keep {cfg.keep_fraction:g} of {utterances})", cfg.describe())


def _kept_detail(utt: Utterance, cfg: SelectConfig) -> str:
    details = []
    if cfg.threshold is not None:
        details.append(f">= threshold {cfg.threshold:g}")
    if cfg.agreement_threshold is not None:
        details.append(f"{cfg.agreement_key} {utt.agreement[cfg.agreement_key]:.3f}")
    return (", " + ", ".join(details)) if details else ""


def reason_counts(utterances: Iterable[Utterance]) -> dict[str, int]:
    """How many utterances were kept or dropped for each reason code."""
    counts: Counter[str] = Counter()
    for utt in utterances:
        if utt.decision is not None:
            counts[utt.decision.reason.split(":", 1)[0]] += 1
    return dict(sorted(counts.items()))
