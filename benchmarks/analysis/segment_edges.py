"""Does cutting a segment out of its utterance change what its audio says at the cut?

Segments (sub-utterance pseudo-labels, ``select.segments``) train on audio cut out of the middle of
running speech. This reads a finished selection with segments (a generation's
``select/decisions.jsonl``), cuts each segment's words anew for several ``gap_share`` values, decodes
the cut audio greedily with the model that labelled them, and compares the result with the same
model's greedy decoding of the whole utterance, restricted to the words whose centre lies in the
segment. Both are scored against the segment's label: what the cut alone changes is the
difference. At each inner cut (a boundary that is not the utterance's own start or end) it counts
how often the edge word still agrees, is substituted, deleted, or has an inserted word beside it::

    python benchmarks/analysis/segment_edges.py --decisions W/exp/lowlr_seg_all_06/gen_001/select/decisions.jsonl \\
        --model W/teacher/gen_000/train/model
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import jiwer

from selftrain.audit.inputs import load_records
from selftrain.decode import DecoderPool
from selftrain.decode.config import DecoderConfig
from selftrain.decode.run import iter_decoded
from selftrain.models import load_acoustic_model
from selftrain.record import Hypothesis, Utterance
from selftrain.select.policy import chosen_hypothesis
from selftrain.select.segments import segment_bounds, write_segment_audio

# The helper that writes results files is one folder up, in benchmarks/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _results import save_results  # noqa: E402

WHOLE = "whole utterance, words inside the segment"
EDGE_KINDS = ("equal", "substitute", "delete", "insert")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", required=True, help="decisions.jsonl of a selection with segments")
    parser.add_argument("--model", required=True, help="model folder that decoded the labels (the generation's teacher)")
    parser.add_argument("--shares", default="0,0.25,0.5,1", help="gap_share values to cut with [0,0.25,0.5,1]")
    parser.add_argument("--work", default="benchmarks/work/segment_edges", help="folder for the cut audio")
    parser.add_argument("--out", default="benchmarks/results", help="results folder")
    parser.add_argument("--name", default="segment_edges", help="results file stem")
    return parser.parse_args(argv)


def greedy_texts(model_dir: str, utterances: list[Utterance]) -> dict[str, Hypothesis]:
    """The model's best-path hypothesis of each utterance."""
    model = load_acoustic_model(model_dir)
    with DecoderPool(DecoderConfig(decoder="greedy", workers=0), model.tokenizer.ctc_labels(), None, "greedy") as decoder:
        return {utt.id: hyp for utt, hyp in iter_decoded(model, utterances, decoder)}


def recut(records: list[Utterance], share: float, folder: Path) -> list[tuple[Utterance, int, Utterance]]:
    """Each segment's audio cut with ``share`` of the gaps: (utterance, segment index, training row)."""
    cut = []
    for utt in records:
        hyp = chosen_hypothesis(utt)
        trial = copy.copy(utt)
        bounds = [segment_bounds(hyp, s.first_word, s.last_word, utt.duration, share) for s in utt.segments]
        trial.segments = [dataclasses.replace(s, start=start, end=end) for s, (start, end) in zip(utt.segments, bounds, strict=True)]
        cut += [(utt, k, row) for k, row in enumerate(write_segment_audio(trial, folder))]
    return cut


def inside(hyp: Hypothesis, start: float, end: float, duration: float) -> str:
    """The words of a whole-utterance hypothesis whose centre lies within [start, end] seconds."""
    shift = duration / hyp.num_frames if hyp.num_frames else 0.0
    return " ".join(w.word for w in hyp.words if start <= 0.5 * (w.start + w.end) * shift <= end)


def score(pairs: list[tuple[str, str, bool, bool]]) -> dict[str, Any]:
    """WER of hypotheses against labels, and what happens at the inner cuts: ``pairs`` holds
    (label, hypothesis, start is an inner cut, end is an inner cut)."""
    totals: Counter[str] = Counter()
    edges = {"start": Counter(), "end": Counter()}
    for label, hyp, inner_start, inner_end in pairs:
        out = jiwer.process_words(label, hyp or "<empty>")
        totals.update(words=len(label.split()), errors=out.substitutions + out.deletions + out.insertions,
                      insertions=out.insertions, deletions=out.deletions)
        chunks = out.alignments[0]
        for side, inner, chunk in (("start", inner_start, chunks[0]), ("end", inner_end, chunks[-1])):
            if inner:
                edges[side].update([chunk.type, "cuts"])
    row: dict[str, Any] = {"segments": len(pairs), "wer": round(totals["errors"] / totals["words"], 4),
                           "insertions": round(totals["insertions"] / totals["words"], 4),
                           "deletions": round(totals["deletions"] / totals["words"], 4)}
    for side, counts in edges.items():
        row[f"{side}_cuts"] = counts["cuts"]
        row.update({f"{side}_{kind}": round(counts[kind] / max(counts["cuts"], 1), 3) for kind in EDGE_KINDS})
    return row


def measure(records: list[Utterance], model_dir: str, shares: list[float], work: Path) -> list[dict[str, Any]]:
    """One row for the whole-utterance decoding, one per ``gap_share``."""
    whole = greedy_texts(model_dir, records)
    baseline = []
    for utt in records:
        for segment in utt.segments:
            inner = (segment.start > 0.0, segment.end < utt.duration - 1e-3)
            if utt.id in whole:
                baseline.append((segment.text, inside(whole[utt.id], segment.start, segment.end, utt.duration), *inner))
    rows = [{"setting": WHOLE, **score(baseline)}]
    for share in shares:
        cut = recut(records, share, work / f"gap_share_{share:g}")
        decoded = greedy_texts(model_dir, [row for _, _, row in cut])
        pairs = [(utt.segments[k].text, decoded[row.id].text, utt.segments[k].start > 0.0,
                  utt.segments[k].end < utt.duration - 1e-3) for utt, k, row in cut if row.id in decoded]
        rows.append({"setting": f"cut audio, gap_share {share:g}", "gap_share": share, **score(pairs)})
    return rows


def to_markdown(result: dict[str, Any], command: str) -> str:
    lines = ["# Segment edges: what the cut does to the audio", "", f"Command: `{command}`", "",
             f"{result['segments']} segments of {result['utterances']} utterances, decoded greedily by `{result['model']}`; "
             "each against its label (the teacher's words). Edge columns: share of the inner cuts (not the "
             "utterance's own start or end) whose edge word agrees / is substituted / is deleted / has a word inserted beside it.",
             "", "| setting | WER | insertions | deletions | start: agree / sub / del / ins | end: agree / sub / del / ins |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in result["rows"]:
        edge = {side: " / ".join(f"{r[f'{side}_{kind}']:.2f}" for kind in EDGE_KINDS) for side in ("start", "end")}
        lines.append(f"| {r['setting']} | {r['wer']:.3f} | {r['insertions']:.3f} | {r['deletions']:.3f} | "
                     f"{edge['start']} | {edge['end']} |")
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    records = [u for u in load_records(args.decisions) if u.segments and chosen_hypothesis(u) is not None]
    if not records:
        raise SystemExit(f"{args.decisions}: no utterance has segments (select with --segments)")
    shares = [float(s) for s in args.shares.split(",")]
    result = {"decisions": args.decisions, "model": args.model, "utterances": len(records),
              "segments": sum(len(u.segments) for u in records),
              "rows": measure(records, args.model, shares, Path(args.work))}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    print(save_results(result, "analysis/segment_edges.py", sys.argv[1:] if argv is None else argv, args.out, args.name, to_markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
