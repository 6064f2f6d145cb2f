"""``selftrain data``: validate manifests, convert between manifest formats, prepare corpora."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from selftrain.cli.common import field_option, user_errors
from selftrain.data.check import CheckConfig
from selftrain.data.fillets import FilletsConfig

# The options that set a config field take its default and its description (selftrain.config_docs).
CHECK_DEFAULTS = CheckConfig()
FILLETS_DEFAULTS = FilletsConfig()


@click.group()
def data() -> None:
    """Validate and convert manifests (SpeechBrain CSV, NeMo JSON-lines, Kaldi data dirs); prepare corpora."""


@data.command()
@click.argument("manifest", type=click.Path(exists=True, path_type=Path))
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full report here (.json for JSON, anything else for text).")
@click.option("--alphabet", "tokenizer_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A model's tokenizer.json: flag transcripts with characters it cannot emit.")
@field_option(CheckConfig, "sample_rate")
@field_option(CheckConfig, "strict_format", "--resample/--strict", "resample", default=not CHECK_DEFAULTS.strict_format,
              extra="--strict is True, --resample False.")
@field_option(CheckConfig, "min_duration")
@field_option(CheckConfig, "max_duration")
@click.option("--write-valid", type=click.Path(path_type=Path), help="Write the usable rows to this manifest.")
@field_option(CheckConfig, "workers")
def check(manifest: Path, report_path: Path | None, tokenizer_path: Path | None, sample_rate: int, resample: bool,
          min_duration: float, max_duration: float, write_valid: Path | None, workers: int) -> None:
    """Check every row of MANIFEST; exit 1 if any row would be skipped.

    Problems found: missing, unreadable, truncated, empty or silent audio, NaN/inf samples, wrong rate
    or channels, too short/long, duration mismatch, empty, non-UTF-8 or out-of-alphabet transcripts,
    duplicate IDs.
    """
    from selftrain.data.check import filter_valid, save_report
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


@data.group()
def prepare() -> None:
    """Turn an installed speech corpus into self-training manifests (labeled, unlabeled, dev, test, LM text)."""


def _split_size(name: str) -> Callable:
    """``--<name>``: the size of ``FilletsConfig.<name>``, one of the splits."""
    return field_option(FilletsConfig, name, type=float, extra="A fraction (< 1) or a number (>= 1) of sentences.")


@prepare.command("fillets")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created; running again resumes: converted WAVs are kept).")
@field_option(FilletsConfig, "root", type=click.Path(path_type=Path))
@field_option(FilletsConfig, "lang")
@field_option(FilletsConfig, "seed")
@_split_size("labeled")
@_split_size("dev")
@_split_size("test")
@_split_size("unlabeled")
@field_option(FilletsConfig, "lm_extra", type=click.Path(exists=True, dir_okay=False), default=FILLETS_DEFAULTS.lm_extra or None)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def fillets(out_dir: Path, root: Path, lang: str, seed: int, labeled: float, dev: float, test: float,
            unlabeled: float | None, lm_extra: str | None, quiet: bool) -> None:
    """The spoken dialogs of Fish Fillets NG (Dutch: `apt-get install fillets-ng-data-nl`) as a corpus.

    Writes 16 kHz mono WAVs, labeled.csv, unlabeled.csv (+ unlabeled_reference.csv), dev.csv,
    test.csv, lm_text.txt and corpus.json to OUT: recipes/fillets_nl/README.md.
    """
    from selftrain.data.fillets import FilletsConfig, prepare_fillets

    with user_errors():
        config = FilletsConfig(root=str(root), lang=lang, seed=seed, labeled=labeled, dev=dev, test=test,
                               unlabeled=unlabeled, lm_extra=lm_extra or "")
        corpus = prepare_fillets(config, out_dir, progress=not quiet)
    for name, stats in corpus.splits.items():
        click.echo(f"{name:9} {stats.utterances:5d} utterances {stats.sentences:5d} sentences {stats.hours:7.3f} h")
    dropped = ", ".join(f"{reason} {n}" for reason, n in corpus.dropped.items()) or "none"
    click.echo(f"alphabet {corpus.alphabet!r}; dropped: {dropped}; {corpus.duplicate_clips} duplicate clips")
    click.echo(f"written to {out_dir} (corpus.json has the details)")
