"""``selftrain decode`` (teacher pseudo-labels, sharded and resumable) and ``selftrain eval`` (WER/CER)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import click

from selftrain.cli.common import user_errors

__all__ = ["decode", "eval_command"]

# Mirrors DecoderConfig (kept here so --help needs no import).
_DEFAULTS = {"decoder": "pyctcdecode", "beam_width": 32, "alpha": 0.5, "beta": 1.0, "nbest": 5,
             "batch_size": 8, "workers": 2, "max_duration": 60.0}


def _decoder_options(func: Callable) -> Callable:
    options = [
        click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False),
                     help="Model folder (model.pt, model.json, tokenizer.json)."),
        click.option("--ensemble", "ensemble", multiple=True, type=click.Path(exists=True, file_okay=False),
                     help="Another model folder whose posteriors are averaged with --model's (repeatable; "
                          "same alphabet and frame rate)."),
        click.option("--manifest", type=click.Path(exists=True), help="Manifest (.csv, .jsonl or Kaldi dir)."),
        click.option("--lm", "lm_path", type=click.Path(dir_okay=False),
                     help="KenLM model (.arpa or .bin from 'selftrain lm build'); none: no LM."),
        click.option("--decoder", type=click.Choice(["greedy", "pyctcdecode", "flashlight"]),
                     default=_DEFAULTS["decoder"], show_default=True, help="Decoding backend."),
        click.option("--beam", "beam_width", type=int, default=_DEFAULTS["beam_width"], show_default=True,
                     help="Beam width."),
        click.option("--alpha", type=float, default=_DEFAULTS["alpha"], show_default=True, help="LM weight."),
        click.option("--beta", type=float, default=_DEFAULTS["beta"], show_default=True, help="Word insertion bonus."),
        click.option("--nbest", type=int, default=_DEFAULTS["nbest"], show_default=True,
                     help="n-best entries kept per utterance."),
        click.option("--batch-size", type=int, default=_DEFAULTS["batch_size"], show_default=True,
                     help="Utterances per forward pass."),
        click.option("--workers", type=int, default=_DEFAULTS["workers"], show_default=True,
                     help="Beam-search worker processes (0: in this process)."),
        click.option("--max-duration", type=float, default=_DEFAULTS["max_duration"], show_default=True,
                     help="Skip utterances longer than this many seconds (0: no limit)."),
        click.option("--device", default="cpu", show_default=True, help="Torch device of the acoustic model."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _config(kwargs: dict):
    from selftrain.decode import DecoderConfig

    names = {f.name for f in fields(DecoderConfig)}
    return DecoderConfig(**{k: v for k, v in kwargs.items() if k in names})


def _required(ctx: click.Context, name: str, value: str | None) -> str:
    """Options required unless a sub-command runs (click cannot express that itself)."""
    if value is None:
        raise click.UsageError(f"missing option --{name}", ctx)
    return value


@click.group(invoke_without_command=True)
@_decoder_options
@click.option("--out", type=click.Path(dir_okay=False), help="Output hypotheses (JSON lines; resumes if it exists).")
@click.option("--shard", default=None, help="Decode shard i of N (0-based 'i/N'); merge with 'decode merge'.")
@click.option("--teacher-name", default="teacher", show_default=True, help="Name stored with each hypothesis.")
@click.option("--dropout", is_flag=True, help="Keep dropout on (a dropout-sampled teacher; see --seed).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed for --dropout.")
@click.option("--limit", type=int, default=None, help="Stop after this many new records (trial runs).")
@click.pass_context
def decode(ctx: click.Context, model_dir: str | None, ensemble: tuple[str, ...], manifest: str | None,
           lm_path: str | None, device: str, out: str | None, shard: str | None, teacher_name: str, limit: int | None, **kwargs: object) -> None:
    """Decode a manifest with a trained model (+ LM) into hypotheses with word spans, n-best and confidences."""
    if ctx.invoked_subcommand is not None:
        return
    model_dir, manifest = _required(ctx, "model", model_dir), _required(ctx, "manifest", manifest)
    out = _required(ctx, "out", out)
    from selftrain.data.manifest import read_manifest
    from selftrain.decode import Shard, TeacherDecoder, decode_manifest
    from selftrain.models import load_ensemble

    with user_errors():
        config = _config(kwargs)
        shard_spec = Shard.parse(shard) if shard else None
        utterances = read_manifest(manifest)
        model = load_ensemble([model_dir, *ensemble], device)
        with TeacherDecoder(config, model.tokenizer.ctc_labels(), lm_path, teacher_name) as decoder:
            report = decode_manifest(model, utterances, decoder, out, shard_spec, limit)
    click.echo(f"{report.decoded} decoded, {report.already_done} already in {report.out}, {report.skipped} skipped "
               f"{report.bad_audio or ''}; {report.seconds:.1f} s, real-time factor {report.real_time_factor:.3f}")
    if report.converted:
        click.echo(f"converted to the model's format (kept): {report.converted}")


@decode.command("merge")
@click.argument("shards", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--manifest", "merge_manifest", required=True, type=click.Path(exists=True),
              help="The manifest the shards were decoded from (gives the order).")
@click.option("--out", "merge_out", required=True, type=click.Path(dir_okay=False), help="Merged hypotheses.")
def merge(shards: tuple[str, ...], merge_manifest: str, merge_out: str) -> None:
    """Join the outputs of 'decode --shard i/N' jobs into one file, in manifest order."""
    from selftrain.data.manifest import read_manifest
    from selftrain.decode import merge_shards

    with user_errors():
        report = merge_shards(shards, read_manifest(merge_manifest), merge_out)
    click.echo(f"wrote {report.written} records to {report.out}; {len(report.missing)} manifest ids have none")


@click.command("eval")
@_decoder_options
@click.option("--out", type=click.Path(dir_okay=False), help="Write the result as JSON here.")
@click.pass_context
def eval_command(ctx: click.Context, model_dir: str | None, ensemble: tuple[str, ...], manifest: str | None,
                 lm_path: str | None, device: str, out: str | None, **kwargs: object) -> None:
    """Word and character error rates of a model (+ LM) on a labeled manifest."""
    model_dir, manifest = _required(ctx, "model", model_dir), _required(ctx, "manifest", manifest)
    from selftrain.data.manifest import read_manifest
    from selftrain.decode import TeacherDecoder, evaluate
    from selftrain.io import atomic_write_json
    from selftrain.models import load_ensemble

    with user_errors():
        config = _config({**kwargs, "confidence": False})
        model = load_ensemble([model_dir, *ensemble], device)
        with TeacherDecoder(config, model.tokenizer.ctc_labels(), lm_path) as decoder:
            result = evaluate(model, read_manifest(manifest), decoder)
    if out:
        atomic_write_json(out, result.to_dict())
    click.echo(f"WER {result.wer:.4f}  CER {result.cer:.4f}  ({result.utterances} utterances, {result.words} words; "
               f"decoder {result.decoder}, beam {config.beam_width}, alpha {config.alpha}, beta {config.beta}, "
               f"LM {result.lm or 'none'})")
    if result.skipped_rows:
        click.echo(f"{len(result.skipped_rows)} labeled rows skipped: {result.bad_audio}")
