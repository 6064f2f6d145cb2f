"""``selftrain train``: train (or resume) a CTC student on labeled, pseudo-labeled and unlabeled audio."""

from __future__ import annotations

import click

from selftrain.cli.common import user_errors

__all__ = ["train"]


@click.command("train")
@click.option("--labeled", "labeled", multiple=True, type=click.Path(exists=True), help="Labeled manifest (repeatable).")
@click.option("--pseudo", "pseudo", multiple=True, type=click.Path(exists=True), help="Pseudo-labeled manifest (repeatable); its weight column scales the CTC loss.")
@click.option("--unlabeled", "unlabeled", multiple=True, type=click.Path(exists=True), help="Unlabeled manifest for the SSL losses, distillation or continuous labels (--set continuous.enabled=true) (repeatable).")
@click.option("--dev", type=click.Path(exists=True), default=None, help="Labeled dev manifest: checkpoint choice and early stopping by its WER.")
@click.option("--out", required=True, type=click.Path(), help="Run folder (re-run with the same folder to resume).")
@click.option("--preset", default=None, help="Model preset: cpu-small, cpu-small-conformer, gpu-base, cpu-whisper-tiny, gpu-whisper-base or gpu-whisper-small [default: cpu-small].")
@click.option("--config", "config_file", type=click.Path(exists=True), default=None, help="YAML file of config overrides.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one config key, e.g. --set optim.lr=1e-3 (repeatable).")
@click.option("--epochs", type=int, default=None, help="Shortcut for --set epochs=N.")
@click.option("--device", default=None, help="Shortcut for --set device=... (cpu, cuda, cuda:1).")
def train(labeled, pseudo, unlabeled, dev, out, preset, config_file, overrides, epochs, device) -> None:
    """Train a CTC acoustic model (CTC + optional SSL losses); writes OUT/model and OUT/summary.json."""
    with user_errors():
        from selftrain.overrides import parse_overrides
        from selftrain.train import load_train_config
        from selftrain.train import train as run_training

        values = parse_overrides(list(overrides))
        data = values.setdefault("data", {})
        if not isinstance(data, dict):
            from selftrain.errors import ConfigError

            raise ConfigError("--set data=... must name a key inside data, e.g. data.batch_seconds=60")
        for key, given in (("labeled", labeled), ("pseudo", pseudo), ("unlabeled", unlabeled)):
            if given:
                data[key] = [str(p) for p in given]
        if dev:
            data["dev"] = str(dev)
        values["out"] = str(out)
        if epochs is not None:
            values["epochs"] = epochs
        if device is not None:
            values["device"] = device
        config = load_train_config(preset, config_file, values)
        model_dir = run_training(config)
        click.echo(str(model_dir))
