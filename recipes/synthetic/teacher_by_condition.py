#!/usr/bin/env python
"""WER/CER of decoded hypotheses per condition of the synthetic corpus (known/unseen voice x clean/noisy).

Used to calibrate the corpus: the supervised teacher must be informative on the target domain.

    python recipes/synthetic/teacher_by_condition.py --hyps HYPS.jsonl --reference REF.csv [--teacher NAME]

Prints a markdown table; ``--json FILE`` also writes the figures.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import click

from selftrain.audit.inputs import load_records
from selftrain.confidence.calibrate import pick_hypothesis
from selftrain.data.manifest import read_manifest
from selftrain.decode.scoring import error_rates
from selftrain.io import atomic_write_json
from selftrain.text import TextNormalizer


@click.command()
@click.option("--hyps", "hyps_path", required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--reference", "reference_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="Manifest with transcripts and the synthetic corpus' `condition` column.")
@click.option("--teacher", default=None, help="Teacher name in the hypotheses (default: the first).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the figures here.")
def main(hyps_path: Path, reference_path: Path, teacher: str | None, json_path: Path | None) -> None:
    """Print WER/CER per condition and overall."""
    normalizer = TextNormalizer()
    references = {u.id: u for u in read_manifest(reference_path)}
    groups: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for utt in load_records(hyps_path):
        ref = references.get(utt.id)
        hyp = pick_hypothesis(utt, teacher)
        if ref is None or ref.reference is None or hyp is None:
            continue
        for group in (ref.extra.get("condition", "all") or "all", "all"):
            groups[group][0].append(normalizer(ref.reference))
            groups[group][1].append(hyp.text)
    rows = {}
    for group in sorted(groups, key=lambda g: (g == "all", g)):
        refs, hyps = groups[group]
        wer, cer = error_rates(refs, hyps)
        rows[group] = {"utterances": len(refs), "wer": round(wer, 4), "cer": round(cer, 4)}
    click.echo("| condition | utterances | WER | CER |\n| --- | --- | --- | --- |")
    for group, row in rows.items():
        click.echo(f"| {group} | {row['utterances']} | {row['wer']:.3f} | {row['cer']:.3f} |")
    if json_path:
        atomic_write_json(json_path, rows)


if __name__ == "__main__":
    main()
