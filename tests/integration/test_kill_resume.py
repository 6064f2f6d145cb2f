"""Kill -9 during a tiny `selftrain run`, restart, and get exactly what an uninterrupted run gets.

Also the determinism check: two clean runs in fresh processes (different hash seeds) write
byte-identical hypotheses, decisions, pseudo-labels, audits and models. The same two checks cover a
continuous run (labels made during training: cache, EMA teacher and calibration in the checkpoint).
The long version (more kills, more generations) is ``scripts/kill_suite.py``.
"""

from __future__ import annotations

import json

import pytest

from tests.kill_harness import compared_files, run_args, run_clean, run_with_kills

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # slow: runs (and kills) experiments on a synthesized corpus

SETTINGS = ["--preset", "tiny", "--set", "teacher_train.epochs=3", "--set", "student_train.epochs=2",
            "--set", "decode.workers=0", "--set", "decode.beam_width=4", "--set", "decode.nbest=2"]
KILLS = 8


@pytest.fixture(scope="module")
def clean_run(tiny_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    workdir = root / "clean"
    run_clean(run_args(tiny_corpus, workdir, 1, SETTINGS), root / "clean.log", hash_seed="1")
    return workdir


def test_two_clean_runs_write_identical_files(clean_run, tiny_corpus, tmp_path):
    again = tmp_path / "again"
    run_clean(run_args(tiny_corpus, again, 1, SETTINGS), tmp_path / "again.log", hash_seed="2")
    expected, got = compared_files(clean_run), compared_files(again)
    assert len(expected) >= 15 and any(k.endswith("selected.csv") for k in expected)
    assert sorted(k for k in expected if expected[k] != got.get(k)) == []


def test_killed_run_finishes_with_the_clean_runs_files(clean_run, tiny_corpus, tmp_path):
    workdir = tmp_path / "killed"
    result = run_with_kills(run_args(tiny_corpus, workdir, 1, SETTINGS), workdir, 1, KILLS, clean_run,
                            tmp_path / "logs", seed=5)
    assert len(result.kills) == KILLS, result
    assert len({k.stage for k in result.kills}) >= 3  # the kills hit several stages
    assert result.problems == []
    assert result.differing == []
    assert result.compared >= 15


# A continuous run: the cache source (its label cache is part of the checkpoint), recalibrated and
# audited often so that a kill lands between those events; labeling starts at generation 0's weights.
CONTINUOUS = SETTINGS + ["--set", "schedule=continuous", "--set", "student_train.continuous.source=cache",
                         "--set", "student_train.continuous.calibrate_every=2", "--set", "student_train.continuous.audit_every=1"]
CONTINUOUS_KILLS = 4


@pytest.fixture(scope="module")
def clean_continuous_run(tiny_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("kill_continuous")
    workdir = root / "clean"
    run_clean(run_args(tiny_corpus, workdir, 1, CONTINUOUS), root / "clean.log", hash_seed="1")
    return workdir


def test_two_clean_continuous_runs_write_identical_files(clean_continuous_run, tiny_corpus, tmp_path):
    again = tmp_path / "again"
    run_clean(run_args(tiny_corpus, again, 1, CONTINUOUS), tmp_path / "again.log", hash_seed="2")
    expected, got = compared_files(clean_continuous_run), compared_files(again)
    assert "gen_001/train/continuous/labels.jsonl" in expected and "gen_001/train/model/model.pt" in expected
    from selftrain.generation import experiment_status

    assert [line.strip() for line in experiment_status(again)[1:3]] == ["gen_000: done", "gen_001: done"]
    assert sorted(k for k in expected if expected[k] != got.get(k)) == []
    record = json.loads((again / "gen_001" / "generation.json").read_text())
    labels = record["continuous"]["labels"]  # the kept share of the labels made stands for the selection
    assert record["schedule"] == "continuous" and labels["made"] > 0
    assert record["selected_fraction"] == round(labels["kept"] / labels["made"], 4)


def test_killed_continuous_run_finishes_with_the_clean_runs_files(clean_continuous_run, tiny_corpus, tmp_path):
    workdir = tmp_path / "killed"
    result = run_with_kills(run_args(tiny_corpus, workdir, 1, CONTINUOUS), workdir, 1, CONTINUOUS_KILLS,
                            clean_continuous_run, tmp_path / "logs", seed=3, schedule="continuous")
    assert len(result.kills) == CONTINUOUS_KILLS, result
    assert any(k.stage == "gen_001/train" for k in result.kills)  # at least one kill inside the continuous run
    assert result.problems == []
    assert result.differing == []
