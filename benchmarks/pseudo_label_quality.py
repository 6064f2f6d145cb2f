#!/usr/bin/env python
"""Pseudo-label quality: WER of the kept pseudo-labels vs kept fraction, per confidence method.

Given decoded hypotheses (one JSONL per teacher, as written by ``selftrain decode`` or imported from
another system) and the reference manifest, this writes ``pseudo_label_quality.json`` and ``.md``:

* for each utterance-level confidence method of the primary teacher (plus ``<method>@min``, the
  minimum over its word scores), the corpus WER of the top 100/80/60/40 % of utterances ranked by it;
* with two or more teachers: ranking by teacher ``agreement``; the ROVER combination's labels ranked
  by their vote share; and combinations: best confidence x agreement, on the primary teacher's labels
  and on the ROVER labels (there with the best word-level method, the one ROVER words carry);
* ``policy``: ``selftrain select`` itself (sanity filters + keep-fraction on the best method);
* ``combined`` (2-fold): a logistic regression on all scores (word level, with each word's context:
  its utterance's scores and lexical features; and utterance level), fit on one half of the
  utterances and applied to the other, as ``selftrain select --fit-calibration`` would fit it on a
  labeled dev set; ``word-mean`` ranks by the mean combined word probability;
* with ``--dev-hyps``/``--dev-reference``: the same combination fit on that dev set (as a
  ``selftrain run`` generation fits it) and measured here (``fit on dev``), and, to show what each
  input adds, fit without the word context and with the earlier inputs only (no peer or LM scores);
* with ``--lm``: the LM word scores added to hypotheses decoded before they existed;
* with two or more teachers, every hypothesis' words carry the peer scores (agreement with the
  other teachers' aligned words), as in ``selftrain select``;
* ``oracle``: ranking by the true utterance WER (the best any score could do);
* word-level AUROC/AUPRC (detecting wrong words) and ECE before/after calibration (2-fold CV);
* with ``--model DIR`` (the teacher that produced the primary hypotheses): the primary hypotheses
  re-scored under confidence variants (frames: non-blank/all x word aggregation: mean/min/prod x
  entropy alpha), giving the word AUROC of every measure and the WER at 60 % kept for each variant.

"Best method" is the one with the lowest WER at 60 % kept, chosen on this same data (say so when
quoting it). Example::

    python benchmarks/pseudo_label_quality.py --hyps work/gen0/hyps.jsonl --reference data/unlabeled.csv

The re-scoring sweeps are in ``_quality_variants.py``, the targets and the Markdown in ``_quality_report.py``.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from pathlib import Path

from _quality_report import FRACTIONS, targets_met, to_markdown
from _quality_variants import confidence_variants, nbest_temperatures
from _results import save_results

from selftrain.agreement import (
    PEER_SCORES,
    AgreementConfig,
    add_peer_scores,
    compute_agreement,
    merge_teachers,
)
from selftrain.confidence import (
    COMBINED,
    LM_SCORES,
    add_lm_scores,
    aggregate,
    fit_calibration,
)
from selftrain.select import SelectConfig, attach_manifest, select_utterances
from selftrain.select.quality import (
    Labeled,
    cross_validated_combination,
    labeled_items,
    utterance_wer,
    wer_at_fractions,
    word_detection,
)

ROVER = "rover"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hyps", action="append", required=True, help="hypotheses JSONL (repeat per teacher)")
    parser.add_argument("--reference", required=True, help="reference manifest (SpeechBrain CSV, NeMo JSONL, Kaldi dir)")
    parser.add_argument("--teacher", help="primary teacher (default: the first teacher of the first file)")
    parser.add_argument("--out-dir", default=str(Path(__file__).parent / "results"), help="where results go")
    parser.add_argument("--name", default="pseudo_label_quality", help="results file stem")
    parser.add_argument("--model", help="teacher model folder: also sweep confidence variants on its posteriors")
    parser.add_argument("--blank", type=int, default=0, help="blank index of the model's output")
    parser.add_argument("--lm", help="KenLM binary: add the LM word scores to hypotheses decoded without them")
    parser.add_argument("--dev-hyps", action="append", default=[],
                        help="the same teachers' hypotheses of a transcribed dev set (repeat per teacher): also fit the "
                             "calibration and combination there, as `selftrain run` does, and measure them here")
    parser.add_argument("--dev-reference", help="reference manifest of --dev-hyps")
    return parser.parse_args(argv)


def _method_names(items: list[Labeled]) -> tuple[list[str], list[str]]:
    """Utterance-level and word-level score names present in at least half of the items."""
    def common(counts: dict[str, int]) -> list[str]:
        return sorted(k for k, n in counts.items() if n >= len(items) / 2 and k not in ("agreement", ROVER))

    utt_counts: dict[str, int] = {}
    word_counts: dict[str, int] = {}
    for item in items:
        for key in item.hyp.scores:
            utt_counts[key] = utt_counts.get(key, 0) + 1
        for key in {k for w in item.hyp.words for k in w.scores}:
            word_counts[key] = word_counts.get(key, 0) + 1
    return common(utt_counts), common(word_counts)


def _min_word(method: str):
    def score(item: Labeled) -> float | None:
        values = [w.scores[method] for w in item.hyp.words if method in w.scores]
        return aggregate(values, "min") if values else item.hyp.scores.get(method)
    return score


def _mean_word(method: str):
    def score(item: Labeled) -> float | None:
        values = [w.scores[method] for w in item.hyp.words if method in w.scores]
        return aggregate(values, "mean") if values else None
    return score


def _rankings(items: list[Labeled], utt_methods: list[str], word_methods: list[str]) -> dict[str, dict[str, float]]:
    rows: dict[str, dict[str, float]] = {}
    for method in utt_methods:
        rows[method] = wer_at_fractions(items, lambda i, m=method: i.hyp.scores.get(m), FRACTIONS)
    for method in word_methods:
        rows[f"{method}@min"] = wer_at_fractions(items, _min_word(method), FRACTIONS)
    return rows


def _best(rows: dict[str, dict[str, float]]) -> str | None:
    finite = {k: v["0.6"] for k, v in rows.items() if not math.isnan(v["0.6"])}
    return min(finite, key=lambda k: finite[k]) if finite else None


def _score_of(name: str):
    if name.endswith("@min"):
        return _min_word(name[:-4])
    return lambda i: i.hyp.scores.get(name)


def _policy_row(utterances, teacher: str, best: str) -> dict[str, float]:
    """WER of what ``selftrain select`` keeps (sanity filters + keep-fraction on ``best``) per fraction."""
    from selftrain.select.output import pseudo_label_wer

    method = best[:-4] if best.endswith("@min") else best
    row = {}
    for fraction in FRACTIONS:
        select_utterances(utterances, SelectConfig(label_source=teacher, method=method, keep_fraction=fraction))
        kept = [u for u in utterances if u.decision and u.decision.kept]
        quality = pseudo_label_wer(kept)
        row[f"{fraction:g}"] = quality["wer"] if quality else float("nan")
    return row


def _agreement_rows(utterances, items: list[Labeled], rows: dict, words: dict, word_methods: list[str],
                    best: str | None) -> None:
    """Rankings that need two or more teachers: agreement, ROVER labels and combinations."""
    rows["agreement"] = wer_at_fractions(items, lambda i: i.utt.agreement.get("agreement"), FRACTIONS)
    rover_items = labeled_items(utterances, lambda u: u.hypothesis(ROVER))
    rows["rover_labels:rover"] = wer_at_fractions(rover_items, lambda i: i.hyp.scores.get(ROVER), FRACTIONS)
    # ROVER hypotheses carry the teachers' word-level scores only: combine with the best of those.
    word_best = _best({k: v for k, v in rows.items() if k in word_methods})
    if word_best:
        rows[f"combination:rover_labels:{word_best}*agreement"] = wer_at_fractions(
            rover_items, lambda i: i.hyp.scores.get(word_best, 0.0) * i.utt.agreement.get("agreement", 0.0),
            FRACTIONS)
    if best:
        score = _score_of(best)
        rows[f"combination:{best}*agreement"] = wer_at_fractions(
            items, lambda i: (score(i) or 0.0) * i.utt.agreement.get("agreement", 0.0), FRACTIONS)
    words["rover:agreement"] = word_detection(rover_items, "agreement")


def _combined_rows(items: list[Labeled], rows: dict, words: dict) -> None:
    combined_items, combined_words = cross_validated_combination(items)
    if combined_words is not None:
        words["combined (2-fold)"] = combined_words
        rows["combined:utterance (2-fold)"] = wer_at_fractions(
            combined_items, lambda i: i.hyp.scores.get(COMBINED), FRACTIONS)
        rows["combined:word-mean (2-fold)"] = wer_at_fractions(combined_items, _mean_word(COMBINED), FRACTIONS)


def _load(hyps: list[str], reference: str, lm_path: str | None) -> tuple[list, list[str], list[str]]:
    """Merged, reference-attached utterances (LM scores added where missing; peer scores with 2+ teachers)."""
    utterances, report = merge_teachers(hyps)
    warnings = report.lines() + attach_manifest(utterances, reference)
    if lm_path:
        _add_missing_lm_scores(utterances, lm_path)
    teachers = sorted({h.teacher for u in utterances for h in u.hypotheses})
    if len(teachers) >= 2:
        for utt in utterances:  # peer scores before any calibration, as `selftrain select` does
            add_peer_scores(utt, AgreementConfig())
    return utterances, teachers, warnings


def _strip(hyps, names: tuple[str, ...]) -> None:
    """Remove the scores ``names`` from ``hyps`` and their words, in place."""
    for hyp in hyps:
        for scores in [hyp.scores, *(w.scores for w in hyp.words)]:
            for name in names:
                scores.pop(name, None)


# (row label, scores left out, word context) of the combinations fit on dev: the default, and the
# inputs the combination had before the peer scores, the LM word scores and the word context
DEV_FIT_VARIANTS = (("fit on dev", (), True),
                    ("fit on dev, no word context", (), False),
                    ("fit on dev, earlier inputs", (*PEER_SCORES, *LM_SCORES), False))


def _dev_fit_rows(dev_hyps: list[str], dev_reference: str, lm_path: str | None, primary: str,
                  items: list[Labeled], rows: dict, words: dict) -> None:
    """The calibration and combination fit on the dev set (what a real run has), applied to ``items``."""
    dev, _, _ = _load(dev_hyps, dev_reference, lm_path)
    for label, left_out, context in DEV_FIT_VARIANTS:
        fit_on = copy.deepcopy(dev)
        _strip((h for u in fit_on for h in u.hypotheses), left_out)
        calibration = fit_calibration(fit_on, teacher=primary, word_context=context)
        applied = [Labeled(i.utt, copy.deepcopy(i.hyp), i.reference) for i in items]
        _strip((i.hyp for i in applied), left_out)
        for item in applied:
            calibration.apply(item.hyp)
        words[f"combined ({label})"] = word_detection(applied, COMBINED)
        rows[f"combined:utterance ({label})"] = wer_at_fractions(applied, lambda i: i.hyp.scores.get(COMBINED), FRACTIONS)
        rows[f"combined:word-mean ({label})"] = wer_at_fractions(applied, _mean_word(COMBINED), FRACTIONS)


def _add_missing_lm_scores(utterances, lm_path: str) -> None:
    from selftrain.lm import load_kenlm

    model = load_kenlm(lm_path)
    for utt in utterances:
        for hyp in utt.hypotheses:
            if not all(name in hyp.scores for name in LM_SCORES):
                add_lm_scores(hyp, model)


def evaluate(hyps: list[str], reference: str, teacher: str | None = None, model: str | None = None,
             blank: int = 0, lm_path: str | None = None, dev_hyps: list[str] | None = None,
             dev_reference: str | None = None) -> dict:
    """All figures as one JSON-able dict (see module docstring)."""
    utterances, teachers, warnings = _load(hyps, reference, lm_path)
    primary = teacher or next(h.teacher for u in utterances for h in u.hypotheses)
    if len(teachers) >= 2:
        for utt in utterances:
            compute_agreement(utt, AgreementConfig())
    items = labeled_items(utterances, lambda u: u.hypothesis(primary))
    utt_methods, word_methods = _method_names(items)
    rows = _rankings(items, utt_methods, word_methods)
    best = _best(rows)
    words = {m: word_detection(items, m) for m in word_methods}
    _combined_rows(items, rows, words)
    if dev_hyps and dev_reference:
        _dev_fit_rows(dev_hyps, dev_reference, lm_path, primary, items, rows, words)
    if len(teachers) >= 2:
        _agreement_rows(utterances, items, rows, words, word_methods, best)
    if best:
        rows["policy"] = _policy_row(utterances, primary, best)
    rows["oracle"] = wer_at_fractions(items, lambda i: -utterance_wer(i), FRACTIONS)
    unfiltered = rows["oracle"]["1"] if items else float("nan")
    confidence_rows = {k: v for k, v in rows.items() if k != "oracle" and not math.isnan(v["0.6"])}
    best_any = min(confidence_rows, key=lambda k: confidence_rows[k]["0.6"]) if confidence_rows else None
    aurocs = {m: v["auroc"] for m, v in words.items() if v is not None and not math.isnan(v["auroc"])}
    variants = confidence_variants(items, model, blank) if model else None
    return {
        "nbest_temperatures": nbest_temperatures(items),
        "confidence_variants": variants,
        "utterances": len(items), "teachers": teachers, "primary_teacher": primary, "warnings": warnings,
        "unfiltered_wer": unfiltered, "wer_at_kept_fraction": rows, "word_detection": words,
        "best_method_at_60": best_any, "best_confidence_method_at_60": best,
        "best_word_auroc": max(aurocs.items(), key=lambda kv: kv[1]) if aurocs else None,
        "targets": targets_met(unfiltered, rows.get(best_any or "", {}).get("0.6"), max(aurocs.values()) if aurocs else None,
                               rows["oracle"]["0.6"] if items else None),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if bool(args.dev_hyps) != bool(args.dev_reference):
        raise SystemExit("--dev-hyps and --dev-reference go together")
    result = evaluate(args.hyps, args.reference, args.teacher, args.model, args.blank, args.lm, args.dev_hyps,
                      args.dev_reference)
    print(save_results(result, "pseudo_label_quality.py", argv or sys.argv[1:], args.out_dir, args.name, to_markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
