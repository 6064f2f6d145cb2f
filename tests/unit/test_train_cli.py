"""``selftrain train`` on the command line: a tiny run, and user errors as clean messages."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from selftrain.cli import main


def _corpus(tmp_path):
    rows = []
    for i, text in enumerate(["ab", "ba", "ab ab", "ba ba"] * 2):
        wav = tmp_path / f"u{i}.wav"
        t = np.arange(16000) / 16000
        sf.write(str(wav), (0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t)).astype(np.float32), 16000)
        rows.append([f"u{i}", "1.0", str(wav), "s", text])
    path = tmp_path / "labeled.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ID", "duration", "wav", "spk_id", "wrd"])
        writer.writerows(rows)
    return str(path)


@pytest.mark.slow
def test_train_command_runs_and_prints_the_model_folder(tmp_path):
    labeled = _corpus(tmp_path)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--labeled", labeled, "--dev", labeled, "--out", str(out), "--preset", "tiny",
                                       "--epochs", "1", "--set", "data.batch_seconds=4", "--set", "optim.lr=0.003"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(out / "model")
    resolved = (out / "hyperparams.yaml").read_text()
    assert "lr: 0.003" in resolved and "preset: tiny" in resolved
    assert json.loads((out / "summary.json").read_text())["train_utterances"] == 8


def test_config_mistakes_are_usage_errors(tmp_path):
    labeled = _corpus(tmp_path)
    runner = CliRunner()
    for args, message in [
        (["--set", "optim.lrate=1"], "unknown config key config.optim.lrate"),
        (["--set", "nonsense"], "key=value"),
        (["--preset", "galactic"], "unknown preset"),
        (["--set", "combine.strategy=magic"], "combine.strategy"),
    ]:
        result = runner.invoke(main, ["train", "--labeled", labeled, "--out", str(tmp_path / "r"), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output
