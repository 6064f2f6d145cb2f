"""Which pseudo-labels lost words: the kept labels' errors against the teachers' length ratio.

A beam search with an n-gram LM drops words it cannot make sense of; the acoustic model alone
(the greedy teacher) still reads something there. This script takes the whole utterances a
finished selection kept, measures how many times the characters of the pseudo-label the greedy
hypothesis has (the selection's ``sanity.max_length_ratio`` measure, taken one way: greedy over
label) and reports, for each bound on that ratio, how much of the kept audio stays and the
substitutions, deletions and insertions of what stays (per reference word) and of what goes::

    python benchmarks/analysis/length_ratio.py --decisions W/main/gen_001/select/decisions.jsonl \\
        --reference W/corpus/unlabeled_reference.csv --out benchmarks/results --name length_ratio
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jiwer

from selftrain.audit.inputs import attach_references, load_records
from selftrain.record import Utterance
from selftrain.text import TextNormalizer

# The helper that writes results files is one folder up, in benchmarks/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _results import save_results  # noqa: E402

GREEDY_TEACHER = "greedy"
BOUNDS = (1.0, 1.05, 1.1, 1.15, 1.2, 1.3, 1.5, 2.0)
KINDS = ("substitutions", "deletions", "insertions")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", required=True, help="decisions.jsonl of a selection whose records hold the greedy teacher's hypothesis")
    parser.add_argument("--reference", required=True, help="manifest with the true transcripts of the unlabeled audio")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    parser.add_argument("--name", default="length_ratio", help="results file name (without extension)")
    return parser.parse_args(argv)


def _length(text: str) -> int:
    return len(" ".join(text.split()))


def greedy_ratio(utt: Utterance) -> float | None:
    """Characters of the greedy hypothesis per character of the pseudo-label (None without either)."""
    greedy = utt.hypothesis(GREEDY_TEACHER)
    label = _length(utt.pseudo_label or "")
    if greedy is None or label == 0:
        return None
    return _length(greedy.text) / label


def error_kinds(utterances: list[Utterance]) -> dict[str, Any]:
    """Substitutions, deletions and insertions of the pseudo-labels per reference word, and their audio."""
    normalize = TextNormalizer()
    pairs = [(normalize(u.reference or ""), normalize(u.pseudo_label or "")) for u in utterances]
    pairs = [(r, h) for r, h in pairs if r]
    words = sum(len(r.split()) for r, _ in pairs)
    result: dict[str, Any] = {"utterances": len(pairs), "hours": round(sum(u.duration for u in utterances) / 3600, 4)}
    if not pairs:
        return {**result, **{k: float("nan") for k in (*KINDS, "wer")}}
    out = jiwer.process_words([r for r, _ in pairs], [h or "<empty>" for _, h in pairs])
    counts = {"substitutions": out.substitutions, "deletions": out.deletions, "insertions": out.insertions}
    return {**result, **{k: round(v / words, 4) for k, v in counts.items()}, "wer": round(sum(counts.values()) / words, 4)}


def kept_whole(records: list[Utterance]) -> list[Utterance]:
    """The whole utterances a selection kept (not its runs of words of dropped ones)."""
    return [u for u in records if u.decision is not None and u.decision.kept and not u.segments]


def sweep(records: list[Utterance], bounds: tuple[float, ...] = BOUNDS) -> dict[str, Any]:
    """Kept whole utterances split at each bound on :func:`greedy_ratio` (unknown ratios stay)."""
    kept = kept_whole(records)
    ratios = {u.id: greedy_ratio(u) for u in kept}
    hours = sum(u.duration for u in kept) / 3600
    rows = []
    for bound in bounds:
        stays = [u for u in kept if ratios[u.id] is None or ratios[u.id] <= bound]
        goes = [u for u in kept if u not in stays]
        rows.append({"bound": bound, "kept_share": round(sum(u.duration for u in stays) / 3600 / hours, 4) if hours else 0.0,
                     "stays": error_kinds(stays), "goes": error_kinds(goes)})
    return {"kept": error_kinds(kept), "rows": rows}


def to_markdown(result: dict[str, Any], command: str) -> str:
    kept = result["kept"]
    lines = ["# Kept pseudo-labels against the teachers' length ratio", "", f"Command: `{command}`", "",
             f"Kept whole utterances: {kept['utterances']} ({kept['hours']} h), label WER {kept['wer']} "
             f"(substitutions {kept['substitutions']}, deletions {kept['deletions']}, insertions {kept['insertions']} per reference word).",
             "", "| greedy / label characters at most | share of the kept audio | WER | sub | del | ins | deletions of the rest |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in result["rows"]:
        s, g = row["stays"], row["goes"]
        lines.append(f"| {row['bound']} | {row['kept_share']:.3f} | {s['wer']} | {s['substitutions']} | {s['deletions']} | "
                     f"{s['insertions']} | {g['deletions'] if g['utterances'] else '-'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    records = load_records(args.decisions)
    attach_references(records, args.reference)
    result = {"decisions": args.decisions, **sweep(records)}
    print(save_results(result, "analysis/length_ratio.py", sys.argv[1:] if argv is None else argv, args.out, args.name, to_markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
