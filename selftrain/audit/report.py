"""Confidence-threshold audits: sweeps for every score, error-detection quality, a recommended threshold.

:func:`run_audit` computes an :class:`AuditResult` from decoded records (references attached when
known); :func:`write_audit` writes ``audit.json``, a readable ``audit.md`` and PNG plots.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from selftrain.audit.sweep import (
    AGREEMENT_PREFIX,
    DEFAULT_FRACTIONS,
    ErrorCounts,
    SweepPoint,
    error_counts,
    recommend_threshold,
    score_names,
    sweep,
    sweep_table,
)
from selftrain.audit.table import ScoreTable
from selftrain.confidence.calibrate import CALIBRATED_SUFFIX, labeled_scores
from selftrain.confidence.metrics import DetectionMetrics, error_detection_metrics
from selftrain.io import atomic_write_json, atomic_write_text
from selftrain.record import Utterance
from selftrain.sums import exact_sum

__all__ = ["MethodAudit", "AuditResult", "run_audit", "run_audit_table", "write_audit", "load_audit", "reliability_bins"]


@dataclass
class MethodAudit:
    """Everything measured for one score."""

    name: str
    points: list[SweepPoint]
    recommended: SweepPoint | None
    word_metrics: dict | None = None  # DetectionMetrics as a dict, raw word scores
    word_metrics_calibrated: dict | None = None
    reliability: list[dict] = field(default_factory=list)  # bins of raw word scores
    reliability_calibrated: list[dict] = field(default_factory=list)


@dataclass
class AuditResult:
    utterances: int
    hours: float
    with_reference: int
    target_wer: float
    teacher: str | None
    methods: list[MethodAudit]
    label: str = ""  # e.g. "gen_001", used as the curve name in drift plots

    def method(self, name: str) -> MethodAudit | None:
        return next((m for m in self.methods if m.name == name), None)

    def best_method(self) -> MethodAudit | None:
        """The method whose recommendation keeps the most data (ties: higher word AUROC)."""
        candidates = [m for m in self.methods if m.recommended is not None]
        if not candidates:
            return None
        return max(candidates, key=lambda m: (m.recommended.kept, (m.word_metrics or {}).get("auroc") or 0.0))  # type: ignore[union-attr]

    def to_dict(self) -> dict:
        return asdict(self)


def reliability_bins(confidences: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Equal-width confidence bins: mean confidence, accuracy and count of each non-empty bin."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.digitize(confidences, edges[1:-1]), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = index == b
        if mask.any():
            bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "confidence": float(confidences[mask].mean()),
                         "accuracy": float(correct[mask].mean()), "count": int(mask.sum())})
    return bins


def _word_quality(utterances: Sequence[Utterance], name: str, teacher: str | None) -> tuple[DetectionMetrics | None, list[dict]]:
    scores, correct = labeled_scores(utterances, name, "word", teacher)
    if scores.size == 0 or correct.all() or not correct.any():
        return None, []  # AUROC is undefined with a single class
    return error_detection_metrics(scores, correct), reliability_bins(scores, correct)


def _audit_method(utterances: Sequence[Utterance], name: str, teacher: str | None, target_wer: float,
                  fractions: Sequence[float], errors: ErrorCounts) -> MethodAudit:
    points = sweep(utterances, name, teacher, fractions, errors=errors)
    audit = MethodAudit(name, points, recommend_threshold(points, target_wer))
    if not name.startswith(AGREEMENT_PREFIX) and name != "selection":
        metrics, bins = _word_quality(utterances, name, teacher)
        audit.word_metrics, audit.reliability = (metrics.to_dict() if metrics else None), bins
        metrics, bins = _word_quality(utterances, name + CALIBRATED_SUFFIX, teacher)
        audit.word_metrics_calibrated, audit.reliability_calibrated = (metrics.to_dict() if metrics else None), bins
    return audit


def _table_word_quality(table: ScoreTable, name: str) -> tuple[DetectionMetrics | None, list[dict]]:
    scores, correct = table.word_scores(name)
    if scores.size == 0 or correct.all() or not correct.any():
        return None, []  # AUROC is undefined with a single class
    return error_detection_metrics(scores, correct), reliability_bins(scores, correct)


def _audit_table_method(table: ScoreTable, name: str, target_wer: float, fractions: Sequence[float],
                        errors: ErrorCounts) -> MethodAudit:
    points = sweep_table(table, name, fractions, errors=errors)
    audit = MethodAudit(name, points, recommend_threshold(points, target_wer))
    if not name.startswith(AGREEMENT_PREFIX) and name != "selection":
        metrics, bins = _table_word_quality(table, name)
        audit.word_metrics, audit.reliability = (metrics.to_dict() if metrics else None), bins
        metrics, bins = _table_word_quality(table, name + CALIBRATED_SUFFIX)
        audit.word_metrics_calibrated, audit.reliability_calibrated = (metrics.to_dict() if metrics else None), bins
    return audit


def run_audit_table(
    table: ScoreTable,
    target_wer: float = 0.1,
    methods: Sequence[str] | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    label: str = "",
) -> AuditResult:
    """:func:`run_audit` from the scores and sizes gathered in a :class:`~selftrain.audit.table.ScoreTable`
    (the same result; memory of a few numbers per utterance instead of the records)."""
    names = list(methods) if methods else sorted(table.names)
    errors = table.errors()
    return AuditResult(
        utterances=table.size,
        hours=table.hours,
        with_reference=table.with_reference,
        target_wer=target_wer,
        teacher=table.teacher,
        methods=[_audit_table_method(table, n, target_wer, fractions, errors) for n in names],
        label=label,
    )


def run_audit(
    utterances: Sequence[Utterance],
    target_wer: float = 0.1,
    teacher: str | None = None,
    methods: Sequence[str] | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    label: str = "",
) -> AuditResult:
    """Audit every score (or the named ``methods``) of the decoded ``utterances``."""
    names = list(methods) if methods else score_names(utterances, teacher)
    errors = error_counts(utterances, teacher)
    return AuditResult(
        utterances=len(utterances),
        hours=exact_sum(u.duration for u in utterances) / 3600,
        with_reference=sum(u.reference is not None for u in utterances),
        target_wer=target_wer,
        teacher=teacher,
        methods=[_audit_method(utterances, n, teacher, target_wer, fractions, errors) for n in names],
        label=label,
    )


def load_audit(path: str | Path) -> AuditResult:
    """Read an ``audit.json`` (or the folder holding it) back into an :class:`AuditResult`."""
    path = Path(path)
    data = json.loads((path / "audit.json" if path.is_dir() else path).read_text(encoding="utf-8"))
    methods = []
    for m in data.pop("methods"):
        m["points"] = [SweepPoint(**p) for p in m["points"]]
        m["recommended"] = SweepPoint(**m["recommended"]) if m["recommended"] else None
        methods.append(MethodAudit(**m))
    return AuditResult(methods=methods, **data)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _markdown(result: AuditResult, plots: list[str]) -> str:
    measured = result.with_reference > 0
    lines = [
        f"# Pseudo-label audit{(' ' + result.label) if result.label else ''}",
        "",
        f"{result.utterances} utterances ({result.hours:.2f} h), {result.with_reference} with a reference transcript"
        f"{'' if result.teacher is None else f', teacher {result.teacher}'}. Target pseudo-label WER: {result.target_wer:.3f}.",
        "",
        "How to read this: each score ranks the utterances; keeping those above a threshold keeps a fraction of the",
        "data. " + ("`WER` is measured against the reference transcripts of the kept part." if measured else
                    "No reference: `est. WER` comes from calibrated word confidences (needs a calibration)."),
        "The recommended threshold keeps the most data whose pseudo-label WER stays under the target.",
        "",
    ]
    best = result.best_method()
    if best is not None and best.recommended is not None:
        r = best.recommended
        lines += [f"**Recommendation:** `{best.name} >= {r.threshold:.4f}` keeps {r.kept} utterances "
                  f"({100 * r.kept_fraction:.0f} %, {r.kept_hours:.2f} h) at WER {_fmt(r.wer if r.wer is not None else r.estimated_wer)}.", ""]
    else:
        lines += ["**Recommendation:** no score reaches the target WER at any kept fraction: lower the target, or improve the teacher.", ""]
    lines += ["## Scores at a glance", "", "| score | word AUROC | word ECE (raw -> calibrated) | WER at 100 % | at 80 % | at 60 % | at 40 % | recommended threshold | kept |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in result.methods:
        at = {round(p.kept_fraction, 1): p for p in m.points}
        def wer_at(f: float, at: dict = at) -> str:
            p = at.get(f)
            return _fmt(None if p is None else (p.wer if p.wer is not None else p.estimated_wer))
        metrics, calibrated = m.word_metrics or {}, m.word_metrics_calibrated or {}
        rec = m.recommended
        lines.append(f"| {m.name} | {_fmt(metrics.get('auroc'))} | {_fmt(metrics.get('ece'))} -> {_fmt(calibrated.get('ece'))} | "
                     f"{wer_at(1.0)} | {wer_at(0.8)} | {wer_at(0.6)} | {wer_at(0.4)} | "
                     f"{_fmt(rec.threshold, 4) if rec else '-'} | {f'{100 * rec.kept_fraction:.0f} %' if rec else '-'} |")
    lines += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_audit(result: AuditResult, out_dir: str | Path, utterances: Sequence[Utterance] | ScoreTable | None = None,
                previous: Sequence[AuditResult] = ()) -> list[Path]:
    """Write ``audit.json``, ``audit.md`` and the PNG plots into ``out_dir``; return the written paths.

    ``utterances`` (or their :class:`~selftrain.audit.table.ScoreTable`, for score histograms) and
    ``previous`` audits (for drift curves) are optional.
    """
    from selftrain.audit.plots import plot_drift, plot_histograms, plot_reliability, plot_yield

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = [plot_yield(result, out_dir / "yield_vs_wer.png"), plot_reliability(result, out_dir / "reliability.png")]
    if utterances is not None:
        plots.append(plot_histograms(result, utterances, out_dir / "score_histograms.png"))
    if previous:
        plots.append(plot_drift([*previous, result], out_dir / "drift.png"))
    written = [p for p in plots if p is not None]
    atomic_write_json(out_dir / "audit.json", result.to_dict())
    atomic_write_text(out_dir / "audit.md", _markdown(result, [p.name for p in written]))
    return [out_dir / "audit.json", out_dir / "audit.md", *written]
