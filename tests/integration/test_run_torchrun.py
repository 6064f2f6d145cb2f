"""`selftrain run` under torchrun (2 CPU processes): sharded pseudo-labeling, DDP training, rank 0 reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # trains tiny models on a synthesized corpus

REPO = Path(__file__).resolve().parents[2]
# Several batches per epoch: SpeechBrain's DDP wrapper of a batch sampler fails when a rank gets exactly one.
TRAIN = {"epochs": 1, "max_minutes": 0, "early_stop_patience": 0, "data.num_workers": 0, "data.batch_seconds": 8,
         "augment.speed_perturb": "false"}
SETTINGS = {**{f"{stage}.{key}": value for stage in ("teacher_train", "student_train") for key, value in TRAIN.items()},
            "decode.workers": 0, "decode.beam_width": 4, "decode.nbest": 2, "decode.batch_size": 4,
            "distributed.poll_seconds": 1, "distributed.timeout_seconds": 300}


def test_run_under_torchrun_shards_pseudo_labeling_and_rank_0_reports(tiny_corpus, tmp_path):
    workdir = tmp_path / "w"
    args = ["run", "--workdir", str(workdir), "--generations", "1", "--preset", "tiny",
            *(f"--{name.replace('_', '-')}={tiny_corpus / file}" for name, file in (
                ("labeled", "labeled.csv"), ("unlabeled", "unlabeled.csv"), ("dev", "dev.csv"), ("test", "test.csv"),
                ("lm_text", "lm_text.txt"), ("unlabeled_reference", "unlabeled_reference.csv"))),
            *(item for key, value in SETTINGS.items() for item in ("--set", f"{key}={value}"))]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "selftrain", *args], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.count("| generation | dev WER |") == 1  # printed by rank 0 only
    summary = json.loads((workdir / "summary.json").read_text())
    assert [g["generation"] for g in summary["generations"]] == [0, 1]
    shards = workdir / "gen_001" / "decode_shards"
    counts = [json.loads((shards / f"rank_{r}_of_2" / ".done").read_text())["teachers"]["lm"]["decoded"] for r in (0, 1)]
    merged = (workdir / "gen_001" / "decode" / "unlabeled_lm.jsonl").read_text().splitlines()
    assert sum(counts) == len(merged) > 0
