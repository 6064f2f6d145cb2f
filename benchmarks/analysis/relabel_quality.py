"""Do later generations label the unlabeled audio better? Split by what the labeling model trained on.

From generation 2 on, the teacher that decodes the unlabeled audio is a student that trained on
part of that same audio, with the previous generation's pseudo-labels. For each generation of a
finished experiment this script scores its teacher's LM hypotheses of every unlabeled utterance
against the true transcripts, apart for the utterances the previous generation selected (the audio
the teacher trained on) and the others, beside the previous teacher's hypotheses of the same
utterances; and, over the utterances both generations selected, how many labels changed and
whether the new ones are more often right::

    python benchmarks/analysis/relabel_quality.py --experiment W/main \\
        --reference W/corpus/unlabeled_reference.csv --name relabel_quality
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from selftrain.audit.significance import utterance_errors
from selftrain.data.manifest import read_manifest

# The helper that writes results files is one folder up, in benchmarks/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _results import save_results  # noqa: E402

SETS = ("trained_on", "not_trained_on", "all")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", required=True, help="a finished `selftrain run` work folder with 2 or more generations")
    parser.add_argument("--reference", required=True, help="manifest with the true transcripts of the unlabeled audio")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    parser.add_argument("--name", default="relabel_quality", help="results file name (without extension)")
    return parser.parse_args(argv)


def wer_of(errors: dict[str, tuple[int, int]], ids: set[str]) -> float | None:
    """Corpus WER of ``errors`` over ``ids`` (those it scored); None when there is none."""
    scored = [errors[i] for i in ids if i in errors]
    words = sum(n for _, n in scored)
    return round(sum(e for e, _ in scored) / words, 4) if words else None


def selected_labels(selection: Path) -> dict[str, str]:
    """Utterance ID -> pseudo-label of a generation's ``selected.csv``."""
    return {utt.id: utt.reference or "" for utt in read_manifest(selection)}


def label_changes(before: dict[str, str], after: dict[str, str], truth: dict[str, str]) -> dict[str, Any]:
    """Over the utterances both selections kept: how many labels changed, and the WER of each
    generation's labels against the true transcripts there."""
    import jiwer

    shared = sorted(set(before) & set(after) & set(truth))
    if not shared:
        return {"utterances": 0, "changed_share": None, "wer_before": None, "wer_after": None}
    references = [truth[i] for i in shared]

    def wer(labels: dict[str, str]) -> float:
        return round(jiwer.wer(references, [labels[i] or "<empty>" for i in shared]), 4)

    changed = sum(before[i] != after[i] for i in shared)
    return {"utterances": len(shared), "changed_share": round(changed / len(shared), 4),
            "wer_before": wer(before), "wer_after": wer(after)}


def generation_rows(root: Path, reference: str) -> list[dict[str, Any]]:
    """One row per generation >= 2 whose decoding and selection are finished."""
    truth = {utt.id: utt.reference or "" for utt in read_manifest(reference)}
    rows = []
    generation = 2
    while (root / f"gen_{generation:03d}" / "select" / "selected.csv").exists():
        previous, current = (root / f"gen_{g:03d}" for g in (generation - 1, generation))
        for needed in (previous / "decode" / "unlabeled_lm.jsonl", current / "decode" / "unlabeled_lm.jsonl",
                       previous / "select" / "selected.csv"):
            if not needed.is_file():
                sys.exit(f"{needed} is missing: generation {needed.parent.parent.name} of {root} is not finished")
        before = utterance_errors(previous / "decode" / "unlabeled_lm.jsonl", reference)
        after = utterance_errors(current / "decode" / "unlabeled_lm.jsonl", reference)
        previous_labels = selected_labels(previous / "select" / "selected.csv")
        trained_on = set(previous_labels)
        ids = {"trained_on": trained_on & set(after), "not_trained_on": set(after) - trained_on, "all": set(after)}
        rows.append({
            "generation": generation,
            "sets": {name: {"utterances": len(chosen), "wer_previous_teacher": wer_of(before, chosen),
                            "wer_teacher": wer_of(after, chosen)} for name, chosen in ids.items()},
            "kept_by_both": label_changes(previous_labels, selected_labels(current / "select" / "selected.csv"), truth),
        })
        generation += 1
    return rows


def to_markdown(result: dict[str, Any], command: str) -> str:
    """The results as Markdown tables."""
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    lines = ["# Does each generation's teacher label the unlabeled audio better?", "", f"Command: `{command}`", "",
             "LM-teacher WER of the unlabeled audio against the true transcripts, by whether the generation's "
             "teacher (the previous generation's student) trained on the utterance.", "",
             "| generation | utterances the teacher | count | WER, previous teacher | WER, this teacher |",
             "| --- | --- | --- | --- | --- |"]
    for row in result["generations"]:
        for name in SETS:
            cell = row["sets"][name]
            lines.append(f"| {row['generation']} | {name.replace('_', ' ')} | {cell['utterances']} | "
                         f"{fmt(cell['wer_previous_teacher'])} | {fmt(cell['wer_teacher'])} |")
    lines += ["", "Pseudo-labels of the utterances both this and the previous generation selected:", "",
              "| generation | utterances | labels changed | label WER, previous generation | label WER, this generation |",
              "| --- | --- | --- | --- | --- |"]
    for row in result["generations"]:
        both = row["kept_by_both"]
        lines.append(f"| {row['generation']} | {both['utterances']} | {fmt(both['changed_share'])} | "
                     f"{fmt(both['wer_before'])} | {fmt(both['wer_after'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    root = Path(args.experiment)
    if not Path(args.reference).is_file():
        sys.exit(f"no such file: {args.reference}")
    rows = generation_rows(root, args.reference)
    if not rows:
        sys.exit(f"{root} has no finished selection of generation 2 or later (gen_002/select/selected.csv)")
    result = {"experiment": str(root), "generations": rows}
    print(save_results(result, "analysis/relabel_quality.py", sys.argv[1:] if argv is None else argv, args.out, args.name,
                       to_markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
