"""PNG plots of an audit: yield vs WER, reliability diagram, score histograms and drift over generations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from selftrain.audit.report import AuditResult  # noqa: E402
from selftrain.audit.sweep import utterance_scores  # noqa: E402
from selftrain.audit.table import ScoreTable  # noqa: E402
from selftrain.confidence.calibrate import labeled_scores  # noqa: E402
from selftrain.record import Utterance  # noqa: E402

__all__ = ["plot_yield", "plot_reliability", "plot_histograms", "plot_drift"]


LINE_STYLES = ("-", "--", ":", "-.")


def _wer_curve(points) -> tuple[list[float], list[float], str]:
    measured = [(p.kept_fraction, p.wer) for p in points if p.wer is not None]
    if measured:
        return [x for x, _ in measured], [y for _, y in measured], "pseudo-label WER (measured)"
    estimated = [(p.kept_fraction, p.estimated_wer) for p in points if p.estimated_wer is not None]
    return [x for x, _ in estimated], [y for _, y in estimated], "pseudo-label WER (estimated)"


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # keeps legends placed outside the axes
    plt.close(fig)
    return path


def plot_yield(result: AuditResult, path: Path) -> Path | None:
    """Kept fraction (x) against pseudo-label WER of the kept part (y), one curve per score."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    label_y = "pseudo-label WER"
    drawn = False
    for index, method in enumerate(result.methods):
        xs, ys, label_y = _wer_curve(method.points)
        if not xs:
            continue
        if method.name == "selection":  # the score this generation selected with stands out
            ax.plot(xs, ys, color="black", linewidth=2.5, label="selection (used)")
        else:  # the colour cycle has 10 colours: a new line style for each further ten curves
            ax.plot(xs, ys, marker=".", label=method.name, linestyle=LINE_STYLES[(index // 10) % len(LINE_STYLES)])
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.axhline(result.target_wer, color="grey", linestyle="--", linewidth=1, label=f"target {result.target_wer:.2f}")
    ax.set_xlabel("fraction of unlabeled utterances kept")
    ax.set_ylabel(label_y)
    ax.set_xlim(1.02, 0.0)  # read left to right as "stricter"
    ax.set_title("How wrong is the kept data at each threshold?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: curves stay visible
    return _save(fig, path)


def plot_reliability(result: AuditResult, path: Path) -> Path | None:
    """Word-level reliability diagram: mean confidence vs accuracy per bin, raw and calibrated."""
    methods = [m for m in result.methods if m.reliability]
    if not methods:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
    for ax, key, title in ((axes[0], "reliability", "raw scores"), (axes[1], "reliability_calibrated", "calibrated")):
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
        for method in methods:
            bins = getattr(method, key)
            if bins:
                ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", markersize=3, label=method.name)
        ax.set_title(f"Word reliability ({title})")
        ax.set_xlabel("mean confidence in bin")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of words correct")
    axes[0].legend(fontsize=7)
    return _save(fig, path)


def _histogram_values(source: Sequence[Utterance] | ScoreTable, name: str,
                      teacher: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Word scores and correctness of ``name`` (labeled words), and its utterance scores."""
    if isinstance(source, ScoreTable):
        return (*source.word_scores(name), source.scores(name))
    return (*labeled_scores(source, name, "word", teacher), utterance_scores(source, name, teacher))


def plot_histograms(result: AuditResult, utterances: Sequence[Utterance] | ScoreTable, path: Path) -> Path | None:
    """Distribution of each utterance-level score (word scores split into correct/wrong when known)."""
    methods = [m.name for m in result.methods]
    if not methods:
        return None
    cols = min(3, len(methods))
    rows = int(np.ceil(len(methods) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, methods, strict=False):
        scores, correct, values = _histogram_values(utterances, name, result.teacher)
        if scores.size and correct.any() and (~correct).any():
            ax.hist([scores[correct], scores[~correct]], bins=20, range=(0, 1), label=["correct words", "wrong words"], stacked=True)
            ax.legend(fontsize=6)
        else:
            ax.hist(values[~np.isnan(values)], bins=20)
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    return _save(fig, path)


def plot_drift(results: Sequence[AuditResult], path: Path, method: str | None = None) -> Path | None:
    """One yield-vs-WER curve per audit (generation) for ``method`` (default: the latest best method)."""
    if method is None:
        best = results[-1].best_method() or (results[-1].methods[0] if results[-1].methods else None)
        if best is None:
            return None
        method = best.name
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for index, result in enumerate(results):
        audit = result.method(method)
        if audit is None:
            continue
        xs, ys, label_y = _wer_curve(audit.points)
        ax.plot(xs, ys, marker=".", label=result.label or f"audit {index}")
        ax.set_ylabel(label_y)
    ax.set_xlim(1.02, 0.0)
    ax.set_xlabel("fraction of unlabeled utterances kept")
    ax.set_title(f"Drift across generations ({method})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
