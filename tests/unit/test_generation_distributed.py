"""An experiment across the processes of a torchrun job, without torchrun: ranks given as arguments,
decoding and training replaced by fakes, waits that give up after a few milliseconds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import selftrain.generation.distributed as distributed
import selftrain.generation.stages as stages
from selftrain.cli import main
from selftrain.data.manifest import read_manifest, write_speechbrain_csv
from selftrain.errors import ConfigError, WaitTimeoutError
from selftrain.generation import Workdir, load_experiment_config, open_workdir
from selftrain.generation.config import DistributedConfig, ExperimentConfig
from selftrain.generation.distributed import (
    Rank,
    on_own_gpu,
    open_distributed_workdir,
    pseudo_label_shards,
    rank_device,
    run_generation_distributed,
    shard_dir,
    stages_around_training,
    wait_for,
)
from selftrain.generation.registry import Plan
from selftrain.generation.results import DecodedSplit, TeacherFile, TrainResult
from selftrain.generation.workdir import DONE_MARKER
from selftrain.io import read_jsonl
from selftrain.record import Utterance

QUICK = DistributedConfig(poll_seconds=0.001, timeout_seconds=0.05)
UTTERANCES = 24


def _config(tmp_path: Path, **values) -> ExperimentConfig:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    rows = [Utterance(id=f"utt{i:03d}", wav=str(corpus / f"utt{i:03d}.wav"), duration=1.0 + i / 10) for i in range(UTTERANCES)]
    write_speechbrain_csv(rows, corpus / "unlabeled.csv")
    paths = {name: str(corpus / f"{name}.csv") for name in ("labeled", "unlabeled", "dev")} | {"lm_text": str(corpus / "lm.txt")}
    return load_experiment_config(overrides={"data": paths, "decode": {"batch_size": 2},
                                             "distributed": {"poll_seconds": 0.001, "timeout_seconds": 0.05}, **values})


@pytest.fixture
def fake_decoding(monkeypatch):
    """Each teacher "decodes" a manifest into one record per row; the manifests decoded are kept."""
    decoded: list[list[str]] = []

    def fake(config, workdir, teacher, manifest, out, prefix, ensemble=False):
        ids = [u.id for u in read_manifest(manifest)]
        decoded.append(ids)
        files = {}
        for name in ("lm", "greedy"):
            (out / f"{prefix}_{name}.jsonl").write_text("".join(json.dumps({"id": i, "teacher": name}) + "\n" for i in ids))
            files[name] = TeacherFile(file=f"{prefix}_{name}.jsonl", decoded=len(ids), bad_audio={})
        return DecodedSplit(teachers=files)

    monkeypatch.setattr(distributed, "decode_teachers", fake)
    return decoded


@pytest.fixture
def fake_training(monkeypatch):
    """Training records the generation; meanwhile rank 0 evaluates and writes the generation's record."""
    trained: list[int] = []

    def fake(config, workdir, generation, out):
        trained.append(generation)
        _plant(workdir.stage_dir(generation, "eval"))
        (workdir.generation_dir(generation) / "generation.json").write_text("{}")
        return TrainResult(model="model")

    monkeypatch.setattr(stages, "train_model", fake)
    return trained


def _plant(folder: Path, result: dict | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DONE_MARKER).write_text(json.dumps(result or {}))


def test_rank_comes_from_the_torchrun_environment():
    assert Rank.from_env({}) == Rank(0, 1) and Rank.from_env({}).main
    assert Rank.from_env({"RANK": "3", "WORLD_SIZE": "4"}) == Rank(3, 4)
    assert str(Rank(1, 2).shard()) == "1/2"
    for env in ({"RANK": "4", "WORLD_SIZE": "4"}, {"RANK": "x", "WORLD_SIZE": "2"}):
        with pytest.raises(ConfigError, match="RANK|rank"):
            Rank.from_env(env)


def test_a_wait_gives_up_after_its_timeout_naming_the_marker(tmp_path):
    marker = tmp_path / "gen_001" / "audit" / DONE_MARKER
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError) as caught:
        wait_for(marker, "rank 0's audit stage", QUICK)
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "\n" not in message and "rank 0's audit stage" in message and str(marker) in message and "0.05 s" in message


def test_a_wait_ends_when_the_marker_appears(tmp_path):
    marker = tmp_path / DONE_MARKER
    marker.touch()
    wait_for(marker, "a marker that is there", QUICK)
    checks = iter([False, False, True])
    wait_for(tmp_path / "report.json", "a condition that comes true", QUICK, ready=lambda: next(checks))


def test_waiting_settings_are_checked_and_are_not_part_of_the_experiment(tmp_path):
    with pytest.raises(ConfigError, match="timeout_seconds"):
        load_experiment_config(overrides={"distributed": {"timeout_seconds": 0}})
    config = load_experiment_config(overrides={"distributed": {"poll_seconds": 1, "timeout_seconds": 60}})
    assert config.distributed == DistributedConfig(1.0, 60.0)
    assert config.to_dict() == ExperimentConfig().to_dict()  # the work folder's hash does not change


def test_each_torchrun_process_trains_on_its_own_gpu(tmp_path):
    assert rank_device("cuda:0", {}) == "cuda:0"
    assert rank_device("cuda:0", {"LOCAL_RANK": "3"}) == "cuda:3" and rank_device("cpu", {"LOCAL_RANK": "3"}) == "cpu"
    config = _config(tmp_path, teacher_train={"device": "cuda"})
    own = on_own_gpu(config, {"LOCAL_RANK": "1"})
    assert own.teacher_train["device"] == "cuda:1" and "device" not in own.student_train


def test_ranks_decode_their_shards_and_rank_0_merges_them_in_manifest_order(tmp_path, fake_decoding):
    config = _config(tmp_path)
    workdir = Workdir(tmp_path / "w", config.to_dict())
    assert pseudo_label_shards(config, workdir, 1, Rank(1, 2)) is None  # another rank only decodes
    reports = pseudo_label_shards(config, workdir, 1, Rank(0, 2))
    first, second = (set(ids) for ids in fake_decoding)
    assert first and second and not first & second  # each utterance in one shard
    assert len(first) % 2 == 0 and len(second) % 2 == 0  # whole decoding batches
    assert set(reports) == {"lm", "greedy"} and all(r.written == UTTERANCES and not r.missing for r in reports.values())
    merged = [r["id"] for r in read_jsonl(workdir.stage_dir(1, "decode") / "unlabeled_lm.jsonl")]
    assert merged == [u.id for u in read_manifest(config.data.unlabeled)]
    pseudo_label_shards(config, workdir, 1, Rank(0, 2))  # a rerun keeps the finished shard
    assert len(fake_decoding) == 2


def test_rank_0_gives_up_on_a_shard_that_never_comes(tmp_path, fake_decoding):
    config = _config(tmp_path)
    workdir = Workdir(tmp_path / "w", config.to_dict())
    with pytest.raises(WaitTimeoutError, match="rank 1's pseudo-labeling shard") as caught:
        pseudo_label_shards(config, workdir, 1, Rank(0, 2))
    assert str(shard_dir(workdir, 1, Rank(1, 2)) / DONE_MARKER) in str(caught.value)


@pytest.mark.parametrize(("plan", "generation", "before", "after"), [
    (Plan(2), 0, [], ["lm", "eval"]),
    (Plan(2), 1, ["decode", "select", "audit"], ["eval"]),
    (Plan(2, decode_tuning=True), 2, ["decode", "select", "audit"], ["tune", "eval"]),
    (Plan(2, continuous=True), 1, [], ["eval"]),
])
def test_the_other_ranks_wait_for_the_registry_s_stages_around_training(plan, generation, before, after):
    stages_before, stages_after = stages_around_training(plan, generation)
    assert [s.name for s in stages_before] == before and [s.name for s in stages_after] == after


def test_another_rank_decodes_its_shard_trains_with_rank_0_and_waits_for_the_rest(tmp_path, fake_decoding, fake_training):
    config = _config(tmp_path)
    workdir = Workdir(tmp_path / "w", config.to_dict())
    for name in ("decode", "select", "audit"):
        _plant(workdir.stage_dir(1, name))
    run_generation_distributed(config, workdir, 1, Rank(1, 2))
    assert fake_training == [1] and len(fake_decoding) == 0  # rank 0's decode stage was done: no shard
    assert not workdir.is_done(workdir.stage_dir(1, "train"))  # rank 0 marks the training done


def test_another_rank_gives_up_on_rank_0_s_stage_naming_it(tmp_path, fake_decoding, fake_training):
    config = _config(tmp_path)
    workdir = Workdir(tmp_path / "w", config.to_dict())
    _plant(workdir.stage_dir(1, "decode"))
    _plant(workdir.stage_dir(1, "select"))
    with pytest.raises(WaitTimeoutError, match="rank 0's audit stage of generation 1") as caught:
        run_generation_distributed(config, workdir, 1, Rank(1, 2))
    assert str(workdir.stage_dir(1, "audit") / DONE_MARKER) in str(caught.value) and fake_training == []


def test_a_continuous_generation_trains_without_waiting_for_a_selection(tmp_path, fake_decoding, fake_training):
    config = _config(tmp_path, schedule="continuous")
    workdir = Workdir(tmp_path / "w", config.to_dict())
    run_generation_distributed(config, workdir, 1, Rank(1, 2))
    assert fake_training == [1] and fake_decoding == []  # nothing to shard: the run labels as it trains


def test_the_other_ranks_open_the_work_folder_after_rank_0(tmp_path, monkeypatch):
    config = _config(tmp_path)
    root = tmp_path / "w"
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(WaitTimeoutError, match="rank 0 to open the work folder"):
        open_distributed_workdir(config, root, Rank(1, 2))
    monkeypatch.setenv("RANK", "0")
    for name in ("labeled.csv", "dev.csv", "lm.txt"):
        (tmp_path / "corpus" / name).touch()
    config = _config(tmp_path, speaking_rate_quantile=None)
    open_workdir(config, root)
    monkeypatch.setenv("RANK", "1")
    assert open_distributed_workdir(config, root, Rank(1, 2)).config() == config.to_dict()


def test_run_refuses_force_under_torchrun(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = CliRunner().invoke(main, ["run", "--workdir", str(tmp_path / "w"), "--force"])
    assert result.exit_code == 2 and "--force" in result.output and not (tmp_path / "w").exists()
