"""``selftrain select``: choose the pseudo-labels a student trains on, recording why for every utterance."""

from __future__ import annotations

from pathlib import Path

import click

from selftrain.agreement.rover import AgreementConfig
from selftrain.cli.common import field_option, user_errors
from selftrain.select.config import (
    AGREEMENT_KEYS,
    AUTO_METHOD,
    RANK_BY,
    SEGMENT_CONTEXTS,
    SEGMENTS_APPLY_TO,
    SPEAKING_RATE_QUANTILE,
    SanityConfig,
    SegmentConfig,
    SelectConfig,
    selection_method,
)

# The options' defaults, choices and help are the library's: these configs' fields (field_option),
# their descriptions (selftrain.config_docs) and constants.
_SELECT, _AGREEMENT = SelectConfig(), AgreementConfig()


def _label_source(label_source: str, old_label_source: str | None) -> str:
    """``--label-source``, or the value of its deprecated name ``--teacher`` (with a warning)."""
    if old_label_source is None:
        return label_source
    click.echo("Warning: --teacher is deprecated: use --label-source", err=True)
    if label_source not in (_SELECT.label_source, old_label_source):
        raise click.UsageError("--teacher is the old name of --label-source: give one of them")
    return old_label_source


def _fractions(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError as exc:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}") from exc


@click.command()
@click.option("--hyps", "hyps", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Hypotheses JSONL (selftrain records or external id/text lines); repeat for more teachers.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: selected.csv, decisions.jsonl, summary.json.")
@click.option("--manifest", type=click.Path(exists=True, path_type=Path),
              help="Manifest giving audio paths, durations and references for the hypothesis ids.")
@field_option(SelectConfig, "method")
@field_option(SelectConfig, "label_source")
@click.option("--teacher", "old_label_source", hidden=True, help="Deprecated name of --label-source.")
@field_option(SelectConfig, "threshold", type=click.FloatRange(0, 1))
@field_option(SelectConfig, "keep_fraction", type=click.FloatRange(0, 1))
@field_option(SelectConfig, "rank_by", type=click.Choice(RANK_BY))
@field_option(SelectConfig, "agreement_threshold", "--agreement", "agreement_threshold", type=click.FloatRange(0, 1),
              extra="Needs 2+ teachers.")
@field_option(SelectConfig, "agreement_key", type=click.Choice(AGREEMENT_KEYS))
@field_option(AgreementConfig, "dust_reference")
@field_option(AgreementConfig, "dust_samples")
@field_option(SelectConfig, "dust_threshold", type=click.FloatRange(0))
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Calibration JSON to apply (scores become probabilities of being right).")
@click.option("--generation", default=SelectConfig.generation, show_default=True, type=click.IntRange(0),
              help="Generation index for schedules.")
@field_option(SelectConfig, "keep_fraction_schedule", extra="Comma-separated, e.g. 0.4,0.6,0.8.")
@field_option(SelectConfig, "threshold_schedule", extra="Comma-separated, e.g. 0.9,0.8,0.7.")
@field_option(SanityConfig, "min_chars_per_second", "--min-cps", "min_cps", type=float, extra="The lower bound.")
@field_option(SanityConfig, "max_chars_per_second", "--max-cps", "max_cps", type=float, extra="The upper bound.")
@click.option("--rate-from", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Transcribed manifest of the same kind of speech (e.g. the labeled set): the speaking-rate bounds "
                   "become its chars/s at --rate-quantile and 1 - it, replacing --min-cps/--max-cps.")
@click.option("--rate-quantile", default=SPEAKING_RATE_QUANTILE, show_default=True,
              type=click.FloatRange(0, 0.5, max_open=True),
              help="Quantile of --rate-from's speaking rate used as the bounds.")
@field_option(SanityConfig, "max_repeat", type=int)
@field_option(SanityConfig, "max_length_ratio", type=float)
@field_option(SegmentConfig, "enabled", "--segments/--no-segments", "segments",
              extra="Runs of confident words train beside the whole utterances (see --segments-apply-to).")
@field_option(SegmentConfig, "apply_to", "--segments-apply-to", "segments_apply_to", type=click.Choice(SEGMENTS_APPLY_TO))
@field_option(SegmentConfig, "method", "--segment-method", "segment_method")
@field_option(SegmentConfig, "threshold", "--segment-threshold", "segment_threshold", type=click.FloatRange(0, 1))
@field_option(SegmentConfig, "min_words", "--segment-min-words", "segment_min_words", type=click.IntRange(1))
@field_option(SegmentConfig, "min_seconds", "--segment-min-seconds", "segment_min_seconds", type=click.FloatRange(0))
@field_option(SegmentConfig, "gap_share", "--segment-gap-share", "segment_gap_share", type=click.FloatRange(0, 1))
@field_option(SegmentConfig, "context", "--segment-context", "segment_context", type=click.Choice(SEGMENT_CONTEXTS))
@click.option("--fit-calibration", type=click.Path(dir_okay=False, path_type=Path),
              help="Instead of selecting: fit a calibration on these (labeled) hypotheses and save it here.")
@click.option("--calibration-kind", type=click.Choice(["isotonic", "temperature"]), default="isotonic", show_default=True,
              help="Calibration fitted by --fit-calibration.")
def select(hyps: tuple[Path, ...], out_dir: Path | None, manifest: Path | None, method: str, label_source: str,
           old_label_source: str | None,
           threshold: float | None, keep_fraction: float | None, rank_by: str, agreement_threshold: float | None,
           agreement_key: str, dust_reference: str | None, dust_samples: str, dust_threshold: float | None,
           calibration: Path | None, generation: int, keep_fraction_schedule: str | None, threshold_schedule: str | None,
           min_cps: float, max_cps: float, rate_from: Path | None, rate_quantile: float, max_repeat: int, max_length_ratio: float, segments: bool,
           segments_apply_to: str, segment_method: str, segment_threshold: float, segment_min_words: int,
           segment_min_seconds: float, segment_gap_share: float, segment_context: str, fit_calibration: Path | None, calibration_kind: str) -> None:
    """Select pseudo-labels from one or more teachers' hypotheses (merged by utterance id).

    Policies combine with AND: sanity filters always; --threshold, --agreement, --dust-threshold when
    given; --keep-fraction last; then, with --segments, the confident runs of words of the utterances
    dropped for their confidence. Every utterance's decision and reason goes to decisions.jsonl.
    """
    label_source = _label_source(label_source, old_label_source)
    if fit_calibration is not None:
        _fit(hyps, manifest, fit_calibration, calibration_kind, selection_method(method, None))
        return
    if out_dir is None:
        raise click.UsageError("--out is required (unless --fit-calibration is given)")
    from selftrain.select.stream import run_selection_stream

    with user_errors():
        if rate_from is not None:
            from selftrain.data.manifest import read_manifest
            from selftrain.select.policy import speaking_rate_bounds

            min_cps, max_cps = (round(v, 2) for v in speaking_rate_bounds(read_manifest(rate_from), rate_quantile))
            click.echo(f"speaking-rate bounds from {rate_from}: {min_cps}-{max_cps} chars/s")
        config = SelectConfig(
            label_source=label_source, method=method, threshold=threshold, keep_fraction=keep_fraction, rank_by=rank_by,
            agreement_threshold=agreement_threshold, agreement_key=agreement_key, dust_threshold=dust_threshold,
            generation=generation, threshold_schedule=_fractions(threshold_schedule),
            keep_fraction_schedule=_fractions(keep_fraction_schedule),
            sanity=SanityConfig(min_chars_per_second=min_cps, max_chars_per_second=max_cps, max_repeat=max_repeat,
                                max_length_ratio=max_length_ratio),
            segments=SegmentConfig(enabled=segments, apply_to=segments_apply_to, method=segment_method,
                                   threshold=segment_threshold, min_words=segment_min_words,
                                   min_seconds=segment_min_seconds, gap_share=segment_gap_share,
                                   context=segment_context))
        # An explicit --method is also the agreement's vote confidence (a word score of that name).
        vote_confidence = _AGREEMENT.confidence_method if method == AUTO_METHOD else method
        agreement = AgreementConfig(confidence_method=vote_confidence, dust_reference=dust_reference,
                                    dust_samples=dust_samples)
        result = run_selection_stream(list(hyps), out_dir, config, agreement, calibration, manifest)
    for line in result.warnings:
        click.echo(f"warning: {line}", err=True)
    _echo_summary(result.paths["summary"])


def _echo_summary(summary_path: Path) -> None:
    import json

    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    segmented = f", {summary['segmented']} in segments" if summary.get("segmented") else ""
    click.echo(f"kept {summary['kept']}/{summary['utterances']} ({summary['kept_fraction']:.1%}, "
               f"{summary['kept_hours']:.2f} h{segmented}) with policy {summary['policy']}")
    for reason, count in summary["reasons"].items():
        click.echo(f"  {reason}: {count}")
    quality = summary["pseudo_label_quality"]
    if quality["all"] and quality["kept"]:
        click.echo(f"pseudo-label WER: all {quality['all']['wer']:.3f} -> kept {quality['kept']['wer']:.3f}")
    click.echo(f"written to {summary_path.parent}")


def _fit(hyps: tuple[Path, ...], manifest: Path | None, out: Path, kind: str, method: str) -> None:
    from selftrain.agreement import merge_teachers
    from selftrain.confidence import error_detection_metrics, fit_calibration, labeled_scores
    from selftrain.select import attach_manifest

    with user_errors():
        utterances, _ = merge_teachers(list(hyps))
        if manifest is not None:
            attach_manifest(utterances, manifest)
        calibration = fit_calibration(utterances, kind)
        calibration.save(out)
        raw_scores, correct = labeled_scores(utterances, method)
        if raw_scores.size:
            before = error_detection_metrics(raw_scores, correct)
            calibration.apply_all(utterances)
            after = error_detection_metrics(*labeled_scores(utterances, method + "_calibrated"))
            click.echo(f"{method} on {before.count} words: AUROC {before.auroc:.3f}, ECE {before.ece:.3f} -> "
                       f"{after.ece:.3f} after {kind} calibration")
    click.echo(f"calibration for {len(calibration.word)} word / {len(calibration.utterance)} utterance methods "
               f"written to {out}")
