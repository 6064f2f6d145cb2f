"""``selftrain synth``: make the synthetic speech corpus (see ``recipes/synthetic/README.md``)."""

from __future__ import annotations

from pathlib import Path

import click

from selftrain.cli.common import user_errors
from selftrain.synth.config import SynthConfig  # its defaults name the options' (no synthesis tools or numpy)

__all__ = ["synth"]


@click.command("synth")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (created; an existing one with the same config is resumed).",
)
@click.option(
    "--scale", type=float, default=None, help=f"Multiply every split size (default {SynthConfig.scale}; 0.01 is a smoke test)."
)
@click.option("--seed", type=int, default=None, help=f"Seed of every random choice (default {SynthConfig.seed}).")
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML/JSON file with SynthConfig keys to override (only the keys that change).",
)
@click.option(
    "--fortunes",
    "fortunes_dir",
    type=click.Path(path_type=Path),
    default=None,
    help=f"Folder of fortune files (default {SynthConfig.fortunes_dir}).",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def synth(
    out_dir: Path,
    scale: float | None,
    seed: int | None,
    workers: int | None,
    config_file: Path | None,
    fortunes_dir: Path | None,
    quiet: bool,
) -> None:
    """Synthesize labeled/unlabeled/dev/test/dev_source speech, LM text and corpus.json into OUT."""
    from selftrain.overrides import read_config_file
    from selftrain.synth import build_corpus

    with user_errors():
        overrides = read_config_file(config_file) if config_file else {}
        for key, value in (("scale", scale), ("seed", seed), ("fortunes_dir", fortunes_dir)):
            if value is not None:
                overrides[key] = str(value) if key == "fortunes_dir" else value
        if workers is not None and workers < 1:
            raise click.BadParameter("must be at least 1", param_hint="--workers")
        config = SynthConfig.from_dict(overrides)
        summary = build_corpus(config, out_dir, workers=workers, progress=not quiet)
    for split, hours in summary["hours"].items():
        click.echo(f"{split:>11}: {summary['counts'][split]:5d} utterances, {hours:.3f} h")
    if summary["failed"]:
        click.echo(f"{len(summary['failed'])} utterance(s) failed; see {out_dir / 'corpus.json'}", err=True)
    click.echo(f"corpus written to {out_dir} in {summary['last_run']['wall_seconds']:.0f} s")
