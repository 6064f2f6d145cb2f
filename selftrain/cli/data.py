"""``selftrain data``: validate manifests and convert between manifest formats."""

from __future__ import annotations

from pathlib import Path

import click

from selftrain.cli.common import user_errors


@click.group()
def data() -> None:
    """Validate and convert manifests (SpeechBrain CSV, NeMo JSON-lines, Kaldi data dirs)."""


@data.command()
@click.argument("manifest", type=click.Path(exists=True, path_type=Path))
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full report here (.json for JSON, anything else for text).")
@click.option("--alphabet", "tokenizer_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A model's tokenizer.json: flag transcripts with characters it cannot emit.")
@click.option("--sample-rate", default=16000, help="The model's sample rate.")
@click.option("--resample/--strict", default=False,
              help="Accept other rates / stereo (they will be resampled / downmixed) or skip such rows.")
@click.option("--min-duration", default=0.1, help="Skip shorter utterances (seconds).")
@click.option("--max-duration", default=60.0, help="Skip longer utterances (seconds).")
@click.option("--write-valid", type=click.Path(path_type=Path), help="Write the usable rows to this manifest.")
@click.option("--workers", default=4, help="Threads reading audio.")
def check(manifest: Path, report_path: Path | None, tokenizer_path: Path | None, sample_rate: int, resample: bool,
          min_duration: float, max_duration: float, write_valid: Path | None, workers: int) -> None:
    """Check every row of MANIFEST; exit 1 if any row would be skipped.

    Problems found: missing, unreadable, truncated, empty or silent audio, NaN/inf samples, wrong rate
    or channels, too short/long, duration mismatch, empty, non-UTF-8 or out-of-alphabet transcripts,
    duplicate IDs.
    """
    from selftrain.data.check import CheckConfig, filter_valid, save_report
    from selftrain.data.manifest import read_manifest, write_manifest
    from selftrain.data.tokenizer import load_tokenizer

    with user_errors():
        utterances = read_manifest(manifest)
        tokenizer = load_tokenizer(tokenizer_path) if tokenizer_path else None
        config = CheckConfig(sample_rate=sample_rate, strict_format=not resample, min_duration=min_duration,
                             max_duration=max_duration, workers=workers)
        kept, report = filter_valid(
            utterances,
            config,
            normalizer=tokenizer.normalizer if tokenizer else None,
            alphabet=getattr(tokenizer, "alphabet", None),
        )
        click.echo(report.summary())
        if report_path:
            save_report(report, report_path)
            click.echo(f"report written to {report_path}")
        if write_valid:
            write_manifest(kept, write_valid)
            click.echo(f"{len(kept)} usable rows written to {write_valid}")
    if report.skipped:
        raise SystemExit(1)


@data.command()
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.argument("target", type=click.Path(path_type=Path))
def convert(source: Path, target: Path) -> None:
    """Convert a manifest between formats, chosen by path: .csv (SpeechBrain), .jsonl (NeMo), a folder (Kaldi)."""
    from selftrain.data.manifest import read_manifest, write_manifest

    with user_errors():
        utterances = read_manifest(source)
        write_manifest(utterances, target)
    click.echo(f"{len(utterances)} rows written to {target}")
