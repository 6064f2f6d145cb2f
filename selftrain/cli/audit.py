"""``selftrain audit``: sweep confidence thresholds over decoded pseudo-labels and write a report."""

from __future__ import annotations

from pathlib import Path

import click

from selftrain.cli.common import user_errors


@click.command()
@click.option("--hyps", "hyps_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Decoded records (JSON-lines from `selftrain decode` or `selftrain select`).")
@click.option("--reference", "reference_path", type=click.Path(exists=True, path_type=Path),
              help="Manifest with the true transcripts (by ID): enables measured WER, AUROC and calibration plots.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Report folder.")
@click.option("--target-wer", default=0.1, type=click.FloatRange(0.0, 1.0), help="Pseudo-label WER the recommended threshold must stay under.")
@click.option("--teacher", default=None, help="Audit this teacher's hypotheses (default: the first of each record).")
@click.option("--method", "methods", multiple=True, help="Scores to audit (repeatable; default: every score present).")
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A calibration JSON (from `selftrain select`) to add calibrated scores and estimated WER.")
@click.option("--compare", "previous", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Earlier audit folders (e.g. previous generations) to draw drift curves against (repeatable).")
@click.option("--label", default="", help="Name of this audit in drift plots (e.g. gen_002).")
def audit(hyps_path: Path, reference_path: Path | None, out_dir: Path, target_wer: float, teacher: str | None,
          methods: tuple[str, ...], calibration: Path | None, previous: tuple[Path, ...], label: str) -> None:
    """Report kept fraction, kept hours, pseudo-label WER, word AUROC and calibration per threshold.

    With references the WER of the kept part is measured; without them it is estimated from
    calibrated word confidences. Writes audit.json, audit.md and PNG plots into --out.
    """
    from selftrain.audit import load_audit, run_audit, write_audit
    from selftrain.audit.inputs import attach_references, load_records

    with user_errors():
        utterances = load_records(hyps_path)
        if reference_path is not None:
            matched = attach_references(utterances, reference_path)
            click.echo(f"references found for {matched} of {len(utterances)} utterances")
        if calibration is not None:
            from selftrain.confidence.calibrate import Calibration

            Calibration.load(calibration).apply_all(utterances)
        result = run_audit(utterances, target_wer=target_wer, teacher=teacher, methods=methods or None, label=label)
        written = write_audit(result, out_dir, utterances, previous=[load_audit(p) for p in previous])
    best = result.best_method()
    if best is not None and best.recommended is not None:
        r = best.recommended
        click.echo(f"recommended: {best.name} >= {r.threshold:.4f} keeps {100 * r.kept_fraction:.0f} % ({r.kept_hours:.2f} h)")
    else:
        click.echo("no threshold reaches the target WER")
    click.echo("wrote " + ", ".join(str(p) for p in written))
