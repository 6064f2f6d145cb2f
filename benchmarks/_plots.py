"""The benchmark's figure: test WER per generation, every generation-1 arm against the teacher and
the sample-efficiency curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _arms import ABLATIONS, EXPLORED, first_rows, later_rows
from _report import row_name

__all__ = ["MIN_PLOTTED_WER_SPAN", "plot"]

# the generations panel shows at least this much WER, about a test set's 95 % interval, so that
# differences within the noise do not fill the panel
MIN_PLOTTED_WER_SPAN = 0.03


def plot(result: dict[str, Any], path: Path) -> list[str]:
    """Test WER per generation (control and oracle chains beside), every generation-1 arm against the
    teacher, and the sample-efficiency curve when the run has more than one labeled amount; returns
    the panels' titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = result["analysis"]["curve"]
    panels = 3 if len(curve) > 1 else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
    _plot_generations(axes[0], result)
    _plot_first_generation(axes[1], result)
    if panels == 3:
        hours = [c["labeled_hours"] for c in curve]
        axes[2].plot(hours, [c["supervised_test_wer"] for c in curve], "s--", label="supervised only")
        axes[2].plot(hours, [c["self_training_test_wer"] for c in curve], "o-",
                     label=f"self-training (generation {result['curve_generations']})")
        axes[2].set(xlabel="labeled hours", ylabel="test WER", title="Sample efficiency")
        axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [axis.get_title() for axis in axes]


def _plot_generations(axis, result: dict[str, Any]) -> None:
    arms = result["arms"]
    teacher = [r for r in arms["main"] if r["generation"] == 0]
    for name, label, style in (("main", "self-training (default policy)", "o-"),
                               ("labeled_only", "control: labeled only", "s--"), ("oracle", "oracle: true transcripts", "^:")):
        chain = teacher + later_rows(arms, name)
        if len(chain) > 1:
            line, = axis.plot([r["generation"] for r in chain], [r["test_wer"] for r in chain], style, label=label)
            rejected = [r for r in chain if not r["accepted"]]
            axis.plot([r["generation"] for r in rejected], [r["test_wer"] for r in rejected], style[0],
                      markerfacecolor="white", color=line.get_color())
    no_filter = result["analysis"]["no_filter_test_wer"]
    if no_filter is not None:
        axis.axhline(no_filter, linestyle="-.", color="gray", label=f"no filtering (gen 1) {no_filter:.3f}")
    axis.set_xticks(sorted({r["generation"] for rows in arms.values() for r in rows}))
    low, high = axis.get_ylim()
    if high - low < MIN_PLOTTED_WER_SPAN:
        middle = (low + high) / 2
        axis.set_ylim(middle - MIN_PLOTTED_WER_SPAN / 2, middle + MIN_PLOTTED_WER_SPAN / 2)
    axis.set(xlabel="generation", ylabel="test WER", title="Generations (hollow: rejected on dev)")
    axis.legend(fontsize=8)


def _plot_first_generation(axis, result: dict[str, Any]) -> None:
    """One bar per generation-1 student (main, control, oracle, ablations, explored), teacher as a line;
    hatched bars were rejected on dev."""
    arms = result["arms"]
    names = ["main", "labeled_only", "oracle", *ABLATIONS, *(n for n in arms if n.startswith(EXPLORED))]
    rows = [r for name in names for r in first_rows(arms, name)]
    labels = ["self-training" if r["arm"] == "main" else row_name(r).replace(", generation 1", "") for r in rows]
    bars = axis.barh(range(len(rows)), [r["test_wer"] for r in rows], color="tab:blue")
    for bar, row in zip(bars, rows, strict=True):
        if not row["accepted"]:
            bar.set(hatch="//", alpha=0.5)
    axis.axvline(result["analysis"]["supervised_test_wer"], color="black", linestyle="--",
                 label=f"teacher {result['analysis']['supervised_test_wer']:.3f}")
    axis.set_yticks(range(len(rows)), labels, fontsize=7)
    axis.invert_yaxis()
    values = [r["test_wer"] for r in rows] + [result["analysis"]["supervised_test_wer"]]
    axis.set_xlim(min(values) - 0.02, max(values) + 0.01)
    axis.set(xlabel="test WER", title="Generation 1 (hatched: rejected on dev)")
    axis.legend(fontsize=8, loc="lower right")
