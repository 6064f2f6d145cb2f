"""``selftrain decode`` (teacher pseudo-labels, sharded and resumable) and ``selftrain eval`` (WER/CER)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from selftrain.cli.common import field_option, user_errors
from selftrain.decode.config import DECODERS, DecoderConfig, TuneConfig

__all__ = ["decode", "eval_command", "tune"]

# The options that set a config field take its default and its description (selftrain.config_docs).
_TUNING = TuneConfig()


def _decoder_option(name: str, *flags: str, **kwargs: Any) -> Callable:
    """An option that sets ``DecoderConfig.<name>`` (``--<name>`` unless ``flags`` are given)."""
    return field_option(DecoderConfig, name, *flags, name, **kwargs) if flags else field_option(DecoderConfig, name, **kwargs)


def _existing_lm(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--lm`` names an existing file: a usage error before any model is loaded or audio decoded."""
    if value is not None and not Path(value).is_file():
        raise click.BadParameter(f"language model not found: {value}", ctx, param)
    return value


def _decoder_options(func: Callable) -> Callable:
    options = [
        click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False),
                     help="Model folder (model.pt, model.json, tokenizer.json)."),
        click.option("--ensemble", "ensemble", multiple=True, type=click.Path(exists=True, file_okay=False),
                     help="Another model folder whose posteriors are averaged with --model's (repeatable; "
                          "same alphabet and frame rate)."),
        click.option("--manifest", type=click.Path(exists=True), help="Manifest (.csv, .jsonl or Kaldi dir)."),
        click.option("--lm", "lm_path", type=click.Path(dir_okay=False), callback=_existing_lm,
                     help="KenLM model (.arpa or .bin from 'selftrain lm build'); none: no LM."),
        _decoder_option("decoder", type=click.Choice(DECODERS)),
        _decoder_option("beam_width", "--beam", type=int),
        _decoder_option("alpha", type=float),
        _decoder_option("beta", type=float),
        _decoder_option("blank_penalty", type=float),
        _decoder_option("nbest", type=int),
        _decoder_option("batch_size", type=int),
        _decoder_option("workers", type=int),
        _decoder_option("max_duration", type=float),
        click.option("--device", default="cpu", show_default=True, help="Torch device of the acoustic model."),
        click.option("--state-cache", "state_cache", type=click.Path(file_okay=False), default=None,
                     help="Folder caching a pretrained encoder's frozen states (e.g. a run's W/state_cache); "
                          "models without a frozen front ignore it."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _config(kwargs: dict) -> DecoderConfig:
    names = {f.name for f in fields(DecoderConfig)}
    return DecoderConfig(**{k: v for k, v in kwargs.items() if k in names})


def _state_cache(kwargs: dict) -> str | None:
    value = kwargs.get("state_cache")
    return str(value) if value else None


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
@_decoder_option("dropout", is_flag=True)
@_decoder_option("seed", type=int)
@click.option("--limit", type=int, default=None, help="Stop after this many new records (trial runs).")
@click.pass_context
def decode(ctx: click.Context, model_dir: str | None, ensemble: tuple[str, ...], manifest: str | None,
           lm_path: str | None, device: str, out: str | None, shard: str | None, teacher_name: str, limit: int | None, **kwargs: object) -> None:
    """Decode a manifest with a trained model (+ LM) into hypotheses with word spans, n-best and confidences."""
    if ctx.invoked_subcommand is not None:
        return
    model_dir, manifest = _required(ctx, "model", model_dir), _required(ctx, "manifest", manifest)
    out = _required(ctx, "out", out)
    from selftrain.data.manifest import ManifestStream
    from selftrain.decode import DecoderPool, Shard, decode_manifest
    from selftrain.models import load_ensemble

    with user_errors():
        config = _config(kwargs)
        shard_spec = Shard.parse(shard) if shard else None
        utterances = ManifestStream(manifest)
        model = load_ensemble([model_dir, *ensemble], device, _state_cache(kwargs))
        with DecoderPool(config, model.tokenizer.ctc_labels(), lm_path, teacher_name) as decoder:
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
    from selftrain.data.manifest import ManifestStream
    from selftrain.decode import merge_shards

    with user_errors():
        report = merge_shards(shards, ManifestStream(merge_manifest), merge_out)
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
    from selftrain.decode import DecoderPool, evaluate
    from selftrain.io import atomic_write_json
    from selftrain.models import load_ensemble

    with user_errors():
        config = _config({**kwargs, "confidence": False})
        model = load_ensemble([model_dir, *ensemble], device, _state_cache(kwargs))
        with DecoderPool(config, model.tokenizer.ctc_labels(), lm_path) as decoder:
            result = evaluate(model, read_manifest(manifest), decoder)
    if out:
        atomic_write_json(out, result.to_dict())
    click.echo(f"WER {result.wer:.4f}  CER {result.cer:.4f}  ({result.utterances} utterances, {result.words} words; "
               f"decoder {result.decoder}, beam {config.beam_width}, alpha {config.alpha}, beta {config.beta}, "
               f"blank penalty {config.blank_penalty}, "
               f"LM {result.lm or 'none'})")
    if result.skipped_rows:
        click.echo(f"{len(result.skipped_rows)} labeled rows skipped: {result.bad_audio}")


def _float_list(ctx: click.Context, param: click.Parameter, value: str) -> list[float]:
    try:
        return [float(v) for v in value.split(",") if v.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"comma-separated numbers expected, got {value!r}", ctx, param) from exc


def _tune_option(name: str) -> Callable:
    """``--try-<name>``: the values the search tries for ``TuneConfig.<name>``, comma-separated."""
    flag = name.replace("_", "-")
    values = ",".join(f"{v:g}" for v in getattr(_TUNING, name))
    return field_option(TuneConfig, name, f"--try-{flag}", f"try_{name}", default=values, callback=_float_list,
                        extra=f"Comma-separated (empty: keep --{flag}).")


@decode.command("tune")
@_decoder_options
@_tune_option("blank_penalty")
@_tune_option("beta")
@_tune_option("alpha")
@field_option(TuneConfig, "rounds", type=int)
@click.option("--out", "tune_out", type=click.Path(dir_okay=False), help="Write every setting tried and the choice as JSON.")
@click.pass_context
def tune(ctx: click.Context, model_dir: str | None, ensemble: tuple[str, ...], manifest: str | None, lm_path: str | None,
         device: str, try_blank_penalty: list[float], try_beta: list[float], try_alpha: list[float], rounds: int,
         tune_out: str | None, **kwargs: object) -> None:
    """Choose the blank penalty, word bonus and LM weight that give the lowest WER on a transcribed
    manifest (a dev set): a coordinate search from the given settings, posteriors computed once."""
    model_dir, manifest = _required(ctx, "model", model_dir), _required(ctx, "manifest", manifest)
    from selftrain.data.manifest import read_manifest
    from selftrain.decode.tune import dev_log_probs, tune_decoder
    from selftrain.io import atomic_write_json
    from selftrain.models import load_ensemble

    with user_errors():
        config = _config(kwargs)
        search = TuneConfig(enabled=True, blank_penalty=try_blank_penalty, beta=try_beta, alpha=try_alpha, rounds=rounds)
        model = load_ensemble([model_dir, *ensemble], device, _state_cache(kwargs))
        utterances, log_probs, skipped = dev_log_probs(model, read_manifest(manifest), config.batch_size,
                                                       config.max_duration)
        references = [model.tokenizer.normalizer(u.reference or "") for u in utterances]
        result = tune_decoder(log_probs, references, model.tokenizer.ctc_labels(), lm_path, config, search)
    if tune_out:
        atomic_write_json(tune_out, {**result.to_dict(), "bad_audio": dict(skipped.bad)})
    best = "  ".join(f"--{name.replace('_', '-')} {value:g}" for name, value in result.best.items())
    click.echo(f"best: {best}  WER {result.best_wer:.4f} (given settings {result.base_wer:.4f}; "
               f"{len(result.points)} settings tried on {result.utterances} utterances, {result.seconds:.0f} s)")
    if skipped.rows:
        click.echo(f"{len(skipped.rows)} rows skipped: {dict(skipped.bad)}")
