#!/usr/bin/env python
"""External teachers: pseudo-label WER vs kept fraction for the CTC teacher, external recognizers and
their agreement.

Inputs: the CTC teacher's hypotheses (``selftrain decode``), one or more external teachers'
hypotheses (``selftrain transcribe --teacher whisper|pocketsphinx``, or any JSONL import) and the
reference manifest. One section per external teacher (the CTC teacher with it) and, with several,
one for all of them; a section measures the utterances that all its teachers hold (with a
reference). Rows, each the corpus WER of the top 100/80/60/40 % of pseudo-labels by a ranking:

* ``ctc alone``: the CTC teacher's labels ranked by its best utterance confidence (lowest WER at 60 %
  kept, chosen on this same data) and by the oracle (true utterance WER);
* ``<ext> alone``: the external labels ranked by their mean word confidence (``external``) and by
  the system's sequence probability (``external_sequence``);
* ``agreement``: 1 - symmetric word disagreement of the teachers (``selftrain.agreement``), ranking
  the CTC labels and the external labels; ``rover``: the ROVER combination's labels by vote share;
* ``combination``: a teacher's confidence x agreement, on that teacher's labels.

Example::

    python benchmarks/analysis/external_teachers.py --ctc work/unlabeled_lm.jsonl \\
        --external work/external/unlabeled_whisper.jsonl --reference work/corpus/unlabeled_reference.csv
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from collections.abc import Callable
from pathlib import Path

from selftrain.agreement import AgreementConfig, compute_agreement, merge_teachers
from selftrain.record import Utterance
from selftrain.select import attach_manifest
from selftrain.select.quality import Labeled, labeled_items, utterance_wer, wer_at_fractions
from selftrain.teachers import EXTERNAL_SCORE, SEQUENCE_SCORE

# The helper that writes results files is one folder up, in benchmarks/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _results import save_results  # noqa: E402

FRACTIONS = (1.0, 0.8, 0.6, 0.4)
COMBINED = "rover"
Score = Callable[[Labeled], float | None]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ctc", required=True, help="CTC teacher hypotheses (selftrain records, one teacher)")
    parser.add_argument("--external", action="append", required=True, help="external hypotheses (repeat per system)")
    parser.add_argument("--reference", required=True, help="reference manifest")
    parser.add_argument("--out-dir", default=str(Path(__file__).resolve().parents[1] / "results"), help="where results go")
    parser.add_argument("--name", default="external_teachers", help="results file stem")
    return parser.parse_args(argv)


def _common(utterances: list[Utterance], teachers: list[str]) -> list[Utterance]:
    """Utterances with a reference and a hypothesis from every teacher."""
    return [u for u in utterances if u.reference is not None and all(u.hypothesis(t) for t in teachers)]


def _curve(utterances: list[Utterance], labels: str, score: Score) -> dict[str, float]:
    return wer_at_fractions(labeled_items(utterances, lambda u: u.hypothesis(labels)), score, FRACTIONS)


def _best_ctc_method(utterances: list[Utterance], ctc: str) -> str | None:
    """The CTC teacher's utterance score with the lowest WER at 60 % kept (chosen on this data)."""
    items = labeled_items(utterances, lambda u: u.hypothesis(ctc))
    methods = sorted({k for i in items for k in i.hyp.scores})
    at_60 = {m: wer_at_fractions(items, lambda i, m=m: i.hyp.scores.get(m), (0.6,))["0.6"] for m in methods}
    finite = {m: v for m, v in at_60.items() if not math.isnan(v)}
    return min(finite, key=lambda m: finite[m]) if finite else None


def _agreement(item: Labeled) -> float | None:
    return item.utt.agreement.get("agreement")


def _times(score: Score) -> Score:
    return lambda i: (score(i) or 0.0) * (i.utt.agreement.get("agreement") or 0.0)


def _scored(name: str) -> Score:
    return lambda i: i.hyp.scores.get(name)


def _single_rows(utterances: list[Utterance], ctc: str, best: str | None, externals: list[str]) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    if best:
        rows[f"ctc alone | {ctc} | {best}"] = _curve(utterances, ctc, _scored(best))
    rows[f"ctc alone | {ctc} | oracle"] = _curve(utterances, ctc, lambda i: -utterance_wer(i))
    for ext in externals:
        rows[f"{ext} alone | {ext} | {EXTERNAL_SCORE}"] = _curve(utterances, ext, _scored(EXTERNAL_SCORE))
        rows[f"{ext} alone | {ext} | {SEQUENCE_SCORE}"] = _curve(utterances, ext, _scored(SEQUENCE_SCORE))
        rows[f"{ext} alone | {ext} | oracle"] = _curve(utterances, ext, lambda i: -utterance_wer(i))
    return rows


def _agreement_rows(utterances: list[Utterance], teachers: list[str], ctc: str, best: str | None) -> dict[str, dict]:
    """Rows for one set of teachers agreeing (agreement computed on a copy of the records)."""
    group = copy.deepcopy(utterances)
    config = AgreementConfig(teachers=teachers, combined_name=COMBINED)
    for utt in group:
        compute_agreement(utt, config)
    rows: dict[str, dict] = {}
    for labels in teachers:
        rows[f"agreement | {labels} | agreement"] = _curve(group, labels, _agreement)
    rows[f"agreement | {COMBINED} | rover vote share"] = _curve(group, COMBINED, _scored(COMBINED))
    if best:
        rows[f"combination | {ctc} | {best} x agreement"] = _curve(group, ctc, _times(_scored(best)))
    for ext in teachers[1:]:
        rows[f"combination | {ext} | {EXTERNAL_SCORE} x agreement"] = _curve(
            group, ext, _times(_scored(EXTERNAL_SCORE)))
    return rows


def _section(utterances: list[Utterance], ctc: str, externals: list[str]) -> dict:
    """Every ranking for the CTC teacher with ``externals``, on the utterances all of them hold."""
    common = _common(utterances, [ctc, *externals])
    best = _best_ctc_method(common, ctc)
    rows = {**_single_rows(common, ctc, best, externals), **_agreement_rows(common, [ctc, *externals], ctc, best)}
    return {"teachers": [ctc, *externals], "utterances": len(common), "best_ctc_method_at_60": best,
            "first_id": common[0].id if common else None, "last_id": common[-1].id if common else None,
            "wer_at_kept_fraction": rows}


def evaluate(ctc_file: str, external_files: list[str], reference: str) -> dict:
    """All figures as one JSON-able dict: one section per external teacher, and one for all of them."""
    utterances, report = merge_teachers([ctc_file, *external_files])
    warnings = attach_manifest(utterances, reference)
    ctc = next(h.teacher for u in utterances for h in u.hypotheses)
    externals = sorted({h.teacher for u in utterances for h in u.hypotheses} - {ctc})
    sections = {f"{ctc}+{ext}": _section(utterances, ctc, [ext]) for ext in externals}
    if len(externals) > 1:
        sections["+".join([ctc, *externals])] = _section(utterances, ctc, externals)
    return {"ctc_teacher": ctc, "external_teachers": externals, "warnings": warnings,
            "files_missing_ids": {k: len(v) for k, v in report.missing.items()}, "sections": sections}


def _fmt(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def to_markdown(result: dict, command: str) -> str:
    """The results as Markdown tables, one per section."""
    lines = ["# External teachers: pseudo-label WER vs kept fraction", "", f"Produced by: `{command}`", ""]
    for name, section in result["sections"].items():
        lines += [f"## {name}", "", f"{section['utterances']} utterances held by every file of this section, with "
                  f"references ({section['first_id']} .. {section['last_id']} in manifest order); best CTC "
                  f"confidence at 60 % kept (chosen on this data): `{section['best_ctc_method_at_60']}`.", "",
                  "| ranking | labels | score | " + " | ".join(f"{f:.0%}" for f in FRACTIONS) + " |",
                  "|---" * (len(FRACTIONS) + 3) + "|"]
        for row_name, row in section["wer_at_kept_fraction"].items():
            cells = " | ".join(_fmt(row[f"{f:g}"]) for f in FRACTIONS)
            lines.append(f"| {row_name} | {cells} |")
        lines.append("")
    return "\n".join(lines)




def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    result = evaluate(args.ctc, args.external, args.reference)
    print(save_results(result, "analysis/external_teachers.py", argv or sys.argv[1:], args.out_dir, args.name, to_markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
