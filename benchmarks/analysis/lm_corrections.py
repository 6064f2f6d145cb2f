"""What the pseudo-labels could teach: the words the LM changed, and how many of them are right.

A student decoded with the same LM learns something new from a pseudo-label word only where the
acoustic model alone would not have said it, i.e. where the LM changed the acoustic model's best
path. This script splits every word of the pseudo-labels of a finished selection by two questions:
did the greedy teacher (the acoustic model alone) say it too (jiwer aligns it to an identical
greedy word), and is it right (aligned to an identical reference word)? It reports the shares for
all decoded utterances, the whole utterances the policy kept and the words of the kept runs
(segments)::

    python benchmarks/analysis/lm_corrections.py --decisions W/main/gen_001/select/decisions.jsonl \\
        --reference W/corpus/unlabeled_reference.csv --out benchmarks/results --name lm_corrections
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from selftrain.audit.inputs import attach_references, load_records
from selftrain.confidence.calibrate import word_correctness
from selftrain.record import Utterance

# The helper that writes results files is one folder up, in benchmarks/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _results import save_results  # noqa: E402

GREEDY_TEACHER = "greedy"
CLASSES = ("am_right", "am_wrong", "lm_right", "lm_wrong")  # am_: the greedy teacher said it too; lm_: the LM changed it
SETS = ("decoded", "kept_whole", "kept_runs")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", required=True, help="decisions.jsonl of a selection whose records hold the greedy teacher's hypothesis")
    parser.add_argument("--reference", required=True, help="manifest with the true transcripts of the unlabeled audio")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    parser.add_argument("--name", default="lm_corrections", help="results file name (without extension)")
    return parser.parse_args(argv)


def word_classes(utt: Utterance) -> list[str]:
    """One class of :data:`CLASSES` per word of the utterance's pseudo-label."""
    words = (utt.pseudo_label or "").split()
    greedy = utt.hypothesis(GREEDY_TEACHER)
    said = word_correctness(words, greedy.text) if greedy is not None and greedy.text.split() else [False] * len(words)
    right = word_correctness(words, utt.reference or "") if (utt.reference or "").split() else [False] * len(words)
    return [("am_" if s else "lm_") + ("right" if r else "wrong") for s, r in zip(said, right, strict=True)]


def _run_words(utt: Utterance, classes: list[str]) -> list[str]:
    return [c for seg in utt.segments for c in classes[seg.first_word: seg.last_word + 1]]


def count_classes(utterances: list[Utterance]) -> dict[str, Counter]:
    """Word counts per class for each of :data:`SETS`."""
    counts = {name: Counter() for name in SETS}
    for utt in utterances:
        classes = word_classes(utt)
        counts["decoded"].update(classes)
        kept = utt.decision is not None and utt.decision.kept
        if kept and not utt.segments:
            counts["kept_whole"].update(classes)
        if kept and utt.segments:
            counts["kept_runs"].update(_run_words(utt, classes))
    return counts


def summarise(counts: dict[str, Counter]) -> dict[str, Any]:
    """Shares of each class, and the precision of the LM's changes (right / all changed)."""
    out: dict[str, Any] = {}
    for name, counter in counts.items():
        total = sum(counter.values())
        changed = counter["lm_right"] + counter["lm_wrong"]
        out[name] = {"words": total, **{c: round(counter[c] / total, 4) if total else None for c in CLASSES},
                     "lm_change_precision": round(counter["lm_right"] / changed, 4) if changed else None}
    return out


def to_markdown(result: dict[str, Any], command: str) -> str:
    """The results as a Markdown table."""
    lines = ["# Words the LM changed in the pseudo-labels, and how many are right", "",
             f"Command: `{command}`", "",
             "Shares of the pseudo-label words. am: the acoustic model alone (greedy) said the word too; "
             "lm: the LM changed it. right/wrong: against the true transcript.", "",
             "| words of | words | am, right | am, wrong | lm, right | lm, wrong | precision of the LM's changes |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in result["sets"].items():
        cells = [str(row["words"]), *(f"{row[c]:.3f}" if row[c] is not None else "-" for c in CLASSES),
                 f"{row['lm_change_precision']:.3f}" if row["lm_change_precision"] is not None else "-"]
        lines.append(f"| {name.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    for path in (args.decisions, args.reference):
        if not Path(path).is_file():
            sys.exit(f"no such file: {path}")
    utterances = load_records(args.decisions)
    matched = attach_references(utterances, args.reference)
    if not matched:
        sys.exit(f"no utterance of {args.decisions} has a transcript in {args.reference}")
    if not any(u.hypothesis(GREEDY_TEACHER) for u in utterances):
        sys.exit(f"{args.decisions} holds no {GREEDY_TEACHER!r} hypothesis (run with teachers.greedy on)")
    result = {"decisions": args.decisions, "with_reference": matched,
              "sets": summarise(count_classes([u for u in utterances if u.reference is not None]))}
    print(save_results(result, "analysis/lm_corrections.py", sys.argv[1:] if argv is None else argv, args.out, args.name,
                       to_markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
