"""Selection policy configuration: thresholds, keep-fraction, agreement, schedules and sanity filters."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from selftrain.errors import ConfigError

if TYPE_CHECKING:
    from selftrain.confidence.calibrate import Calibration

__all__ = ["SelectConfig", "SanityConfig", "SegmentConfig", "linear_schedule", "selection_method"]

RANK_BY = ("confidence", "agreement", "product")
AGREEMENT_KEYS = ("agreement", "word_agreement", "exact_match")
SEGMENTS_APPLY_TO = ("dropped", "all")
SEGMENT_CONTEXTS = ("cut", "whole")
# SelectConfig.method "auto": the calibrated combination of every score when the calibration applied
# has one for utterances (it ranked pseudo-labels better than any single score:
# docs/experiments/2026-11-23-pseudo-label-quality.md, benchmarks/results/pseudo_label_quality.md),
# else this raw score.
AUTO_METHOD = "auto"
UNCALIBRATED_METHOD = "entropy_tsallis_exp"
# Quantile of the labeled audio's speaking rate whose bounds replace the fixed sanity bounds
# (ExperimentConfig.speaking_rate_quantile, `selftrain select --rate-quantile`).
SPEAKING_RATE_QUANTILE = 0.01
def selection_method(method: str, calibration: Calibration | None) -> str:
    """The utterance score a selection uses: ``method``, or for ``auto`` the calibrated combination
    when ``calibration`` has an utterance combiner, else :data:`UNCALIBRATED_METHOD`.

    >>> selection_method("auto", None), selection_method("lm_margin", None)
    ('entropy_tsallis_exp', 'lm_margin')
    """
    if method != AUTO_METHOD:
        return method
    if calibration is None or "utterance" not in calibration.combiners:
        return UNCALIBRATED_METHOD
    from selftrain.confidence.combine import COMBINED

    return COMBINED


@dataclass
class SanityConfig:
    """Filters that drop implausible pseudo-labels whatever their confidence (defaults in brackets).

    drop_empty: drop empty hypotheses [True].
    min_chars_per_second / max_chars_per_second: plausible speaking rate, characters (spaces
        included) per second of audio; skipped when the duration is unknown (0) [2.0, 30.0]
        (read English is ~12-16 chars/s).
    max_repeat: drop when one word occurs this many times in a row (a CTC/LM failure mode) [4].
    max_length_ratio: drop when the longest teacher hypothesis has more than this many times the
        characters of the shortest (only with 2+ teachers; an empty teacher beside a non-empty one
        counts as infinite) [2.0]. None disables.
    """

    drop_empty: bool = True
    min_chars_per_second: float | None = 2.0
    max_chars_per_second: float | None = 30.0
    max_repeat: int | None = 4
    max_length_ratio: float | None = 2.0


@dataclass
class SegmentConfig:
    """Sub-utterance pseudo-labels: runs of confident words cut out of their utterances (defaults in brackets).

    A whole utterance trains only if every word of its label is right, which on audio unlike the
    labeled set is rare: the utterance-level policy then keeps the easy, labeled-like part. Segments
    keep the confident stretches of every utterance instead, hard ones included, and leave out the
    words the teacher is unsure of (word confidence is far better at finding wrong words than
    utterance confidence is at finding wrong utterances).

    enabled: cut segments [False].
    apply_to: ``dropped`` (utterances the utterance-level policy dropped; kept ones train whole) or
        ``all`` (kept utterances are cut too, so their doubtful words leave as well) [dropped].
    method: word score; its calibrated value is used when present [combined: the calibrated
        logistic combination, P(word right)].
    threshold: a word is confident when its score >= this [0.8].
    min_words: shortest run of confident words that becomes a segment [3].
    min_seconds: shortest segment [1.0].
    gap_share: how much of the gap between a run's outer word and its dropped neighbour (from one's
        last emitted character to the other's first) goes to the segment: 0 cuts at the outer word's
        last character, 1 at the neighbour's first, 0.5 halfway [0.5]. At the utterance's edges
        the segment runs to its start or end. Where the cut lies changes little; what hurts is the
        cut itself (docs/experiments/2026-12-02-segments.md).
    context: how the runs train. ``cut``: each run's audio is cut into a file of its own and
        trains as an utterance. ``whole``: the utterance trains whole, so the model hears every run
        in its context, and its CTC loss is taken over each run's frames against the run's words
        only; the frames of the doubtful words between runs train no characters [whole]. The same
        runs trained better in context than cut out, since the teacher reads words worse once they
        are cut out of their utterance (docs/experiments/2026-12-03-label-errors-or-audio.md).
    """

    enabled: bool = False
    apply_to: str = "dropped"
    method: str = "combined"
    threshold: float = 0.8
    min_words: int = 3
    min_seconds: float = 1.0
    gap_share: float = 0.5
    context: str = "whole"

    def __post_init__(self) -> None:
        if self.apply_to not in SEGMENTS_APPLY_TO:
            raise ConfigError(f"segments.apply_to must be one of {SEGMENTS_APPLY_TO}, got {self.apply_to!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"segments.threshold must be in [0, 1], got {self.threshold}")
        if self.context not in SEGMENT_CONTEXTS:
            raise ConfigError(f"segments.context must be one of {SEGMENT_CONTEXTS}, got {self.context!r}")
        if not 0.0 <= self.gap_share <= 1.0:
            raise ConfigError(f"segments.gap_share must be in [0, 1], got {self.gap_share}")
        if self.min_words < 1 or self.min_seconds < 0:
            raise ConfigError("segments.min_words must be >= 1 and segments.min_seconds >= 0")


@dataclass
class SelectConfig:
    """How pseudo-labels are selected (defaults in brackets). Policies combine with AND.

    label_source: the hypothesis that becomes the pseudo-label: a teacher's name, ``rover`` (the
        teachers' combination), or ``auto`` = ``rover`` when it combines three teachers or more, else
        the first teacher [auto]. Formerly ``teacher`` (still read, with a warning).
    method: utterance score used as confidence; with a calibration applied, ``<method>_calibrated``
        is used when present. ``auto``: ``combined`` (the calibrated combination of every score) when
        the calibration applied has one for utterances, else ``entropy_tsallis_exp`` [auto].
    threshold: keep when confidence >= threshold [None: off].
    keep_fraction: keep the best-ranked ``keep_fraction`` of *all* utterances among those passing
        every other filter (fewer if not enough pass) [None: off].
    rank_by: ranking for keep_fraction: ``confidence``, ``agreement`` or their ``product`` [confidence].
    agreement_threshold: keep when ``Utterance.agreement[agreement_key]`` >= this [None: off].
    agreement_key: which agreement value: ``agreement`` (1 - mean pairwise disagreement),
        ``word_agreement`` or ``exact_match`` [agreement].
    dust_threshold: keep when DUST's ``dust_max_wer`` <= this [None: off].
    generation / threshold_schedule / keep_fraction_schedule: per-generation values (index =
        generation, the last value repeats) overriding threshold / keep_fraction, so later, better
        teachers keep more [0 / None / None].
    sanity: :class:`SanityConfig`.
    segments: :class:`SegmentConfig` (sub-utterance pseudo-labels; off by default).
    """

    label_source: str = "auto"
    method: str = AUTO_METHOD
    threshold: float | None = None
    keep_fraction: float | None = None
    rank_by: str = "confidence"
    agreement_threshold: float | None = None
    agreement_key: str = "agreement"
    dust_threshold: float | None = None
    generation: int = 0
    threshold_schedule: list[float] | None = None
    keep_fraction_schedule: list[float] | None = None
    sanity: SanityConfig = field(default_factory=SanityConfig)
    segments: SegmentConfig = field(default_factory=SegmentConfig)

    def __post_init__(self) -> None:
        if isinstance(self.sanity, dict):
            self.sanity = SanityConfig(**self.sanity)
        if isinstance(self.segments, dict):
            self.segments = SegmentConfig(**self.segments)
        for name in ("threshold", "keep_fraction", "agreement_threshold"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        for name in ("threshold_schedule", "keep_fraction_schedule"):
            values = getattr(self, name)
            if values is not None and (not values or any(not 0.0 <= v <= 1.0 for v in values)):
                raise ConfigError(f"{name} must be a non-empty list of values in [0, 1], got {values}")
        if self.rank_by not in RANK_BY:
            raise ConfigError(f"rank_by must be one of {RANK_BY}, got {self.rank_by!r}")
        if self.agreement_key not in AGREEMENT_KEYS:
            raise ConfigError(f"agreement_key must be one of {AGREEMENT_KEYS}, got {self.agreement_key!r}")
        if self.generation < 0:
            raise ConfigError(f"generation must be >= 0, got {self.generation}")

    def resolved(self) -> SelectConfig:
        """This config with the schedules' values for :attr:`generation` filled in, and an ``auto``
        method as without a calibration (:meth:`for_calibration` decides it with one)."""
        changes: dict = {}
        if self.method == AUTO_METHOD:
            changes["method"] = selection_method(self.method, None)
        if self.threshold_schedule:
            changes["threshold"] = self.threshold_schedule[min(self.generation, len(self.threshold_schedule) - 1)]
        if self.keep_fraction_schedule:
            schedule = self.keep_fraction_schedule
            changes["keep_fraction"] = schedule[min(self.generation, len(schedule) - 1)]
        return dataclasses.replace(self, **changes) if changes else self

    def for_calibration(self, calibration: Calibration | None) -> SelectConfig:
        """This config with an ``auto`` method decided for ``calibration`` (None: none applied)."""
        method = selection_method(self.method, calibration)
        return dataclasses.replace(self, method=method) if method != self.method else self

    def describe(self) -> str:
        """A short policy name for :class:`~selftrain.record.Decision` (e.g. ``threshold=0.8+sanity``)."""
        cfg = self.resolved()
        parts = []
        if cfg.threshold is not None:
            parts.append(f"threshold={cfg.threshold:g}")
        if cfg.keep_fraction is not None:
            parts.append(f"keep_fraction={cfg.keep_fraction:g}" + ("" if cfg.rank_by == "confidence" else f"/{cfg.rank_by}"))
        if cfg.agreement_threshold is not None:
            parts.append(f"{cfg.agreement_key}>={cfg.agreement_threshold:g}")
        if cfg.dust_threshold is not None:
            parts.append(f"dust<={cfg.dust_threshold:g}")
        parts.append("sanity")
        if cfg.segments.enabled:
            parts.append(f"segments({cfg.segments.apply_to},{cfg.segments.method}>={cfg.segments.threshold:g})")
        return f"{cfg.method}:" + "+".join(parts) + (f"@gen{cfg.generation}" if self.generation else "")


def linear_schedule(start: float, end: float, generations: int) -> list[float]:
    """``generations`` values from ``start`` to ``end`` in equal steps, e.g. keep fractions 0.4 -> 0.8.

    >>> linear_schedule(0.4, 0.8, 3)
    [0.4, 0.6, 0.8]
    """
    if generations < 1:
        raise ConfigError(f"a schedule needs at least one generation, got {generations}")
    if generations == 1:
        return [start]
    step = (end - start) / (generations - 1)
    return [round(start + i * step, 10) for i in range(generations)]
