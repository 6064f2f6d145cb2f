"""Which errors grow over generations, and on which audio? Substitutions, deletions and insertions by condition.

WER hides a student that trades substitutions for deletions. For each generation of finished
`selftrain run` work folders this script splits the test WER of its LM-decoded output by kind of
error and by the test manifest's ``condition`` column (the synthetic corpus: known/unseen voices,
clean/noisy), counts the utterances that lost more than half their words, and, given the true
transcripts of the unlabeled audio, does the same for the whole-utterance pseudo-labels each
generation kept (with the 10th percentile of their length against the true one)::

    python benchmarks/analysis/error_kinds.py --experiment main=W/main --experiment control=W/labeled_only \\
        --test W/corpus/test.csv --reference W/corpus/unlabeled_reference.csv --name error_kinds
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from selftrain.audit.inputs import attach_references, load_records
from selftrain.confidence.calibrate import pick_hypothesis
from selftrain.data.manifest import read_manifest
from selftrain.text import TextNormalizer

# The helper that writes results files is one folder up, in benchmarks/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _results import save_results  # noqa: E402

KINDS = ("substitutions", "deletions", "insertions")
ALL = "all"
MOSTLY_DELETED = 0.5  # an utterance "lost its words" when more than this share of them is deleted


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", action="append", required=True, metavar="NAME=FOLDER",
                        help="a `selftrain run` work folder and its name in the tables (repeatable)")
    parser.add_argument("--test", required=True, help="the test manifest the folders were evaluated on")
    parser.add_argument("--reference", help="true transcripts of the unlabeled audio: also split the kept pseudo-labels")
    parser.add_argument("--column", default="condition", help="manifest column that groups the utterances")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    parser.add_argument("--name", default="error_kinds", help="results file name (without extension)")
    return parser.parse_args(argv)


def error_kinds_by_group(triples: list[tuple[str, str, str]]) -> dict[str, dict[str, Any]]:
    """(group, reference, hypothesis) triples -> per group and over all: each kind of error per
    reference word, the utterance count, the share of utterances that lost more than half their
    words, and the 10th percentile of hypothesis/reference length in characters."""
    import jiwer
    import numpy as np

    counts: dict[str, dict[str, Any]] = {}
    for group, reference, hypothesis in triples:
        out = jiwer.process_words(reference, hypothesis)
        words = len(reference.split())
        for key in (group, ALL):
            cell = counts.setdefault(key, {"words": 0, "utterances": 0, "mostly_deleted": 0, "length_ratios": [],
                                           **dict.fromkeys(KINDS, 0)})
            for kind in KINDS:
                cell[kind] += getattr(out, kind)
            cell["words"] += words
            cell["utterances"] += 1
            cell["mostly_deleted"] += out.deletions > MOSTLY_DELETED * words
            cell["length_ratios"].append(len(hypothesis) / len(reference))
    return {group: {**{kind: round(cell[kind] / cell["words"], 4) for kind in KINDS},
                    "utterances": cell["utterances"],
                    "mostly_deleted_share": round(cell["mostly_deleted"] / cell["utterances"], 4),
                    "length_ratio_p10": round(float(np.percentile(cell["length_ratios"], 10)), 3)}
            for group, cell in sorted(counts.items())}


def _triples(records_path: Path, manifest: str, groups: dict[str, str], keep=None) -> list[tuple[str, str, str]]:
    normalize = TextNormalizer()
    records = load_records(records_path)
    attach_references(records, manifest)
    triples = []
    for utt in records:
        hyp = pick_hypothesis(utt, "lm")
        reference = normalize(utt.reference or "")
        if hyp is not None and reference and (keep is None or keep(utt)):
            triples.append((groups.get(utt.id, "-"), reference, hyp.text))
    return triples


def _kept_whole(utt) -> bool:
    return bool(utt.decision and utt.decision.kept and not utt.segments)


def experiment_rows(root: Path, test: str, test_groups: dict[str, str], reference: str | None,
                    reference_groups: dict[str, str]) -> list[dict[str, Any]]:
    """One row per generation of ``root`` with test hypotheses (and kept labels, given ``reference``)."""
    rows = []
    for hyps in sorted(root.glob("gen_*/eval/test_lm.jsonl")):
        folder = hyps.parent.parent
        row: dict[str, Any] = {"generation": int(folder.name.split("_")[1]),
                               "test": error_kinds_by_group(_triples(hyps, test, test_groups))}
        decisions = folder / "select" / "decisions.jsonl"
        if reference and decisions.is_file():
            row["kept_labels"] = error_kinds_by_group(_triples(decisions, reference, reference_groups, _kept_whole))
        rows.append(row)
    return rows


def _groups(manifest: str, column: str) -> dict[str, str]:
    return {utt.id: utt.extra.get(column, "-") for utt in read_manifest(manifest)}


def to_markdown(result: dict[str, Any], command: str) -> str:
    """Two tables: the test output, and the kept pseudo-labels when measured."""
    lines = ["# Kinds of word errors by generation and condition", "", f"Command: `{command}`", ""]
    for part, title in (("test", "Test output (LM decoding)"), ("kept_labels", "Kept whole-utterance pseudo-labels")):
        rows = [(name, row) for name, rows in result["experiments"].items() for row in rows if part in row]
        if not rows:
            continue
        groups = sorted({g for _, row in rows for g in row[part] if g != ALL})
        lines += [f"## {title}", "",
                  "Substitutions / deletions / insertions per reference word; then, per "
                  f"`{result['column']}`, the deletion share; utterances that lost more than half their words; "
                  "10th percentile of hypothesis/reference length.", "",
                  f"| experiment | generation | sub / del / ins | {' | '.join(f'del, {g}' for g in groups)} | lost half | length p10 |",
                  f"| --- | --- | --- |{' --- |' * len(groups)} --- | --- |"]
        for name, row in rows:
            cells = row[part]
            total = cells[ALL]
            lines.append(f"| {name} | {row['generation']} | {' / '.join(f'{total[k]:.3f}' for k in KINDS)} | "
                         + " | ".join(f"{cells[g]['deletions']:.3f}" if g in cells else "-" for g in groups)
                         + f" | {total['mostly_deleted_share']:.3f} | {total['length_ratio_p10']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    for path in (args.test, args.reference):
        if path and not Path(path).is_file():
            sys.exit(f"no such file: {path}")
    experiments: dict[str, list[dict[str, Any]]] = {}
    test_groups = _groups(args.test, args.column)
    reference_groups = _groups(args.reference, args.column) if args.reference else {}
    for spec in args.experiment:
        name, _, folder = spec.partition("=")
        if not folder or not Path(folder).is_dir():
            sys.exit(f"--experiment expects NAME=FOLDER with an existing folder, got {spec!r}")
        experiments[name] = experiment_rows(Path(folder), args.test, test_groups, args.reference, reference_groups)
        if not experiments[name]:
            sys.exit(f"{folder} has no evaluated generation (gen_*/eval/test_lm.jsonl)")
    result = {"column": args.column, "experiments": experiments}
    print(save_results(result, "analysis/error_kinds.py", sys.argv[1:] if argv is None else argv, args.out, args.name, to_markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
