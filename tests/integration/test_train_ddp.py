"""Distributed data parallel training through SpeechBrain: 2 CPU processes (gloo) under torchrun."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selftrain.train.config import DataConfig
from selftrain.train.data import make_train_sampler, prepare_data
from tests.tone_corpus import tone_clip, tone_manifest

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # slow: trains under torchrun


def _run_torchrun(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess:
    launcher = tmp_path / "launch.py"
    launcher.write_text("from selftrain.cli import main\nmain()\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(launcher), "train", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("strategy", ["fixed", "pcgrad"])
def test_two_process_gloo_run_shards_batches_and_exports_once(tmp_path, strategy):
    texts = ["ab", "ba", "aa", "ab ba", "ba aa", "aa ab"]
    labeled = tone_manifest(tmp_path / "labeled.csv", [(f"l{i}", tone_clip(tmp_path / f"l{i}.wav", t, i), t) for i, t in enumerate(texts * 2)])
    unlabeled = tone_manifest(tmp_path / "u.csv", [(f"u{i}", tone_clip(tmp_path / f"u{i}.wav", t, 50 + i), "") for i, t in enumerate(texts)])
    dev = tone_manifest(tmp_path / "dev.csv", [(f"d{i}", tone_clip(tmp_path / f"d{i}.wav", t, 90 + i), t) for i, t in enumerate(texts[:3])])
    out = tmp_path / "run"
    result = _run_torchrun(tmp_path, [
        "--labeled", labeled, "--unlabeled", unlabeled, "--dev", dev, "--out", str(out), "--preset", "tiny",
        "--epochs", "2", "--set", "data.batch_seconds=6", "--set", "ssl.objectives=best_rq",
        "--set", "ssl.best_rq_codebook=32", "--set", f"combine.strategy={strategy}",
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs"] == 2
    data_config = DataConfig(labeled=[labeled], unlabeled=[unlabeled], batch_seconds=6)
    batches = len(make_train_sampler(prepare_data(data_config, 16000, 0.04).train, data_config, 1234))
    assert summary["optimizer_steps"] == 2 * math.ceil(batches / 2)  # each process ran half the batches
    assert (out / "model" / "model.pt").exists()
    assert len((out / "train_log.txt").read_text().splitlines()) == 2  # only the main process logs
