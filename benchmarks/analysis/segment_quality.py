"""How much audio sub-utterance pseudo-labels (segments) keep, and how wrong they are.

Reads a finished selection (``decisions.jsonl`` of ``selftrain select`` or a generation's
``select/``, whose words carry their calibrated scores) and the true transcripts, and measures for
each segment setting the share of the unlabeled audio that trains and the pseudo-label WER/CER of
what trains (segments against the reference words aligned to them), beside the selection as it was.
It also reports, per condition of the synthetic corpus (a ``condition`` column of the reference
manifest), the word accuracy, the share of words the utterance-level decision keeps and the share
with a word score at or above a threshold: whether word-level selection reaches the hard audio::

    python benchmarks/analysis/segment_quality.py --decisions W/main/gen_001/select/decisions.jsonl \\
        --reference W/corpus/unlabeled_reference.csv
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from selftrain.audit.inputs import attach_references, load_records
from selftrain.confidence.calibrate import word_correctness
from selftrain.data.manifest import read_manifest
from selftrain.record import Decision, Utterance
from selftrain.select.config import SegmentConfig
from selftrain.select.output import pseudo_label_wer
from selftrain.select.policy import chosen_hypothesis
from selftrain.select.segments import WAS, apply_segments, trained_seconds
from selftrain.text import TextNormalizer

# The helper that writes results files is one folder up, in benchmarks/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _results import save_results  # noqa: E402

THRESHOLDS = (0.6, 0.7, 0.8, 0.9)
CONDITION_THRESHOLD = 0.6


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", required=True, help="decisions.jsonl of a finished selection")
    parser.add_argument("--reference", required=True, help="manifest with the true transcripts (and condition column)")
    parser.add_argument("--method", default="combined", help="word score of the segments [combined]")
    parser.add_argument("--out", default="benchmarks/results", help="results folder")
    parser.add_argument("--name", default="segment_quality", help="results file stem")
    return parser.parse_args(argv)


def _kept(records: list[Utterance]) -> list[Utterance]:
    return [u for u in records if u.decision is not None and u.decision.kept]


def _row(records: list[Utterance], total_seconds: float, **setting: Any) -> dict[str, Any]:
    kept = _kept(records)
    quality = pseudo_label_wer(kept) or {"wer": None, "cer": None}
    return {**setting, "segmented": sum(1 for u in kept if u.segments),
            "kept_audio": round(sum(trained_seconds(u) for u in kept) / total_seconds, 4),
            "wer": quality["wer"], "cer": quality["cer"]}


def sweep(records: list[Utterance], method: str) -> list[dict[str, Any]]:
    """The selection as it was (segments removed), then each segment setting applied to it."""
    as_selected = [copy.copy(u) for u in records]
    for utt in as_selected:
        if utt.segments and utt.decision is not None:  # the selection's own segments: back to the decision before them
            utt.segments = []
            reason = utt.decision.reason
            # selections written before reasons kept their earlier decision: segments were cut from threshold drops
            before = reason.split(WAS, 1)[1] if WAS in reason else "threshold: dropped before its segments"
            utt.decision = Decision(before.startswith("kept"), before, utt.decision.policy)
    total = sum(u.duration for u in records)
    rows = [_row(as_selected, total, setting="utterance-level decision (no segments)")]
    for apply_to in ("dropped", "all"):
        for threshold in THRESHOLDS:
            for min_words in (2, 3):
                trial = copy.deepcopy(as_selected)
                labelling = {u.id: h for u in trial for h in [chosen_hypothesis(u)] if h is not None}
                config = SegmentConfig(enabled=True, apply_to=apply_to, method=method, threshold=threshold,
                                       min_words=min_words)
                apply_segments(trial, config, labelling)
                rows.append(_row(trial, total, setting=f"segments: {apply_to}, >= {threshold:g}, {min_words}+ words"))
    return rows


def by_condition(records: list[Utterance], reference: str, method: str) -> list[dict[str, Any]]:
    """Per condition: word accuracy of the pseudo-label, share of words kept whole, share scoring high."""
    condition = {u.id: u.extra.get("condition", "?") for u in read_manifest(reference)}
    normalizer = TextNormalizer()
    words: dict[str, list[tuple[bool, bool, bool]]] = defaultdict(list)
    for utt in records:
        hyp = chosen_hypothesis(utt)
        if hyp is None or not hyp.words or utt.reference is None:
            continue
        kept_whole = bool(utt.decision and utt.decision.kept and not utt.segments)
        correct = word_correctness([w.word for w in hyp.words], normalizer(utt.reference))
        for word, right in zip(hyp.words, correct, strict=True):
            score = word.scores.get(method + "_calibrated", word.scores.get(method))
            words[condition.get(utt.id, "?")].append((right, kept_whole, score is not None and score >= CONDITION_THRESHOLD))
    return [{"condition": name, "words": len(rows), "accuracy": round(sum(r[0] for r in rows) / len(rows), 3),
             "kept_whole": round(sum(r[1] for r in rows) / len(rows), 3),
             "high_score": round(sum(r[2] for r in rows) / len(rows), 3)} for name, rows in sorted(words.items())]


def to_markdown(result: dict[str, Any], command: str) -> str:
    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = ["# Segment quality", "", f"Command: `{command}`", "",
             "| setting | utterances with segments | audio that trains | pseudo-label WER | CER |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['setting']} | {r['segmented']} | {100 * r['kept_audio']:.1f} % | {fmt(r['wer'])} | {fmt(r['cer'])} |"
              for r in result["sweep"]]
    lines += ["", f"Per condition (word score `{result['method']}` >= {CONDITION_THRESHOLD}):", "",
              "| condition | words | word accuracy | kept in whole utterances | word score high |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['condition']} | {r['words']} | {r['accuracy']:.3f} | {r['kept_whole']:.3f} | {r['high_score']:.3f} |"
              for r in result["conditions"]]
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    records = load_records(args.decisions)
    attach_references(records, args.reference)
    result = {"decisions": args.decisions, "method": args.method, "sweep": sweep(records, args.method),
              "conditions": by_condition(records, args.reference, args.method)}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    print(save_results(result, "analysis/segment_quality.py", sys.argv[1:] if argv is None else argv, args.out, args.name, to_markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
