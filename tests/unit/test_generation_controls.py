"""The `labels` setting: the labeled-only control and the oracle as configuration of the pipeline."""

from __future__ import annotations

import pytest

import selftrain.train as train_module
from selftrain.data.manifest import read_manifest, write_speechbrain_csv
from selftrain.errors import ConfigError
from selftrain.generation import Workdir, experiment_status, load_experiment_config
from selftrain.generation.controls import step_matched_epochs
from selftrain.generation.registry import Plan, StageCall, generation_stages
from selftrain.generation.results import AuditStageResult, DecodeResult, SelectResult
from selftrain.generation.stages import train_model
from selftrain.generation.workdir import experiment_hash
from selftrain.overrides import parse_overrides
from selftrain.record import Utterance


def test_labels_default_to_the_policy_and_leave_older_folders_hash_alone():
    default = load_experiment_config()
    assert default.labels == "policy" and "labels" not in default.to_dict()  # folders made before it still open
    assert experiment_hash(load_experiment_config(overrides={"labels": "policy"}).to_dict()) == experiment_hash(default.to_dict())
    control = load_experiment_config(overrides=parse_overrides(["labels=none"]))  # `--set labels=none`: the text, not null
    oracle = load_experiment_config(overrides={"labels": "oracle", "data": {"unlabeled_reference": "truth.csv"}})
    assert (control.to_dict()["labels"], oracle.to_dict()["labels"]) == ("none", "oracle")
    hashes = {experiment_hash(c.to_dict()) for c in (default, control, oracle)}
    with_reference = load_experiment_config(overrides={"data": {"unlabeled_reference": "truth.csv"}})
    assert len(hashes | {experiment_hash(with_reference.to_dict())}) == 4  # each is an experiment of its own


@pytest.mark.parametrize(("overrides", "message"), [
    ({"labels": "pseudo"}, "labels must be one of policy, none, oracle, given, got 'pseudo'"),
    ({"labels": "given"}, r"labels: given trains on the labels in data.given_labels: give both or neither"),
    ({"data": {"given_labels": "mine.csv"}}, r"give both or neither \(labels: policy, data.given_labels: 'mine.csv'\)"),
    ({"labels": "oracle"}, r"labels: oracle trains on the true transcripts .* give them in data.unlabeled_reference"),
    ({"labels": "none", "schedule": "continuous"}, "labels: none goes with schedule: generations"),
])
def test_labels_that_cannot_run_are_refused_in_one_line_when_the_config_loads(overrides, message):
    with pytest.raises(ConfigError, match=message) as error:
        load_experiment_config(overrides=overrides)
    assert "\n" not in str(error.value)


def test_the_labeled_only_control_trains_as_many_steps_as_a_student():
    def epochs(student_train):
        return step_matched_epochs(load_experiment_config(overrides={"student_train": student_train}))

    assert epochs({"epochs": 2, "data": {"mix_labeled": 0.5, "mix_pseudo": 0.5}}) == 4
    assert epochs({"epochs": 3, "data": {"mix_labeled": 0.75, "mix_pseudo": 0.25}}) == 4  # 3 x 1.33
    # SSL or distillation keep the unlabeled pool in both, so it counts on both sides
    assert epochs({"epochs": 2, "ssl": {"objectives": ["best_rq"]},
                   "data": {"mix_labeled": 0.4, "mix_pseudo": 0.4, "mix_unlabeled": 0.2}}) == 3  # 2 x 1.0 / 0.6
    assert epochs({"epochs": 1, "data": {"mix_labeled": 0.9, "mix_pseudo": 0.1}}) == 1


def _experiment(tmp_path, labels: str, given: list[Utterance] | None = None):
    """A config of ``labels`` over 3 unlabeled utterances (u2 has no true transcript), its work folder;
    ``given``: the rows of ``data.given_labels``."""
    unlabeled = [Utterance(f"u{i}", f"u{i}.wav", 1.0 + i) for i in range(3)]
    truth = [Utterance("u0", "u0.wav", 1.0, reference="one"), Utterance("u1", "u1.wav", 2.0, reference="two words")]
    paths = {name: str(tmp_path / f"{name}.csv") for name in ("labeled", "unlabeled", "dev", "unlabeled_reference")}
    write_speechbrain_csv(unlabeled, paths["unlabeled"])
    write_speechbrain_csv(truth, paths["unlabeled_reference"])
    if given is not None:
        paths["given_labels"] = str(tmp_path / "given.csv")
        write_speechbrain_csv(given, paths["given_labels"])
    config = load_experiment_config(overrides={"data": paths, "labels": labels, "student_train": {"epochs": 3}})
    return config, Workdir(tmp_path / "w", config.to_dict())


def _given_stages(config, workdir, generation: int = 1):
    """Run the decode, select and audit stages of ``generation`` through the registry."""
    call = StageCall(config, workdir, generation)
    return {stage.name: stage.execute(call) for stage in generation_stages(Plan.of(config.to_dict()), generation)
            if stage.name in ("decode", "select", "audit")}


def test_the_control_decodes_nothing_selects_nothing_and_trains_a_students_steps(tmp_path, monkeypatch):
    config, workdir = _experiment(tmp_path, "none")
    results = _given_stages(config, workdir)
    assert results["decode"] == DecodeResult(teacher_generation=0, planted="labels: none (labeled-only control): nothing decoded",
                                             seconds=results["decode"].seconds)
    assert [p.name for p in workdir.stage_dir(1, "decode").iterdir()] == [".done"]  # no hypotheses
    select = results["select"]
    assert (select.method, select.selected_utterances, select.selected_fraction, select.threshold) == (
        "control: nothing selected", 0, 0.0, None)
    assert read_manifest(workdir.stage_dir(1, "select") / "selected.csv") == []
    assert results["audit"].pseudo_label_wer is None
    trained = []
    monkeypatch.setattr(train_module, "train", lambda c: trained.append(c) or f"{c.out}/model")
    train_model(config, workdir, 1, tmp_path / "out")
    assert trained[0].epochs == 4  # 3 epochs of batches 0.6 labeled / 0.2 pseudo-labeled: 3 x 0.8 / 0.6
    assert trained[0].data.pseudo == [str(workdir.stage_dir(1, "select") / "selected.csv")]
    assert [u.id for u in read_manifest(trained[0].data.unlabeled[0])] == ["u0", "u1", "u2"]  # SSL only
    assert experiment_status(workdir.root)[0].endswith("preset cpu-small, labels: none (labeled-only control)")
    # nothing is decoded, so external teachers have nothing to label: no stage of theirs is planned
    with_external = {**config.to_dict(), "teachers": {"external": ["whisper"]}}
    assert Plan.of(with_external).external_teachers == () and Plan.of({**with_external, "labels": "policy"}).external_teachers


def test_the_oracle_trains_on_the_true_transcript_of_every_unlabeled_utterance(tmp_path, monkeypatch):
    config, workdir = _experiment(tmp_path, "oracle")
    results = _given_stages(config, workdir, generation=2)
    assert results["decode"].planted == "labels: oracle (true transcripts): nothing decoded"
    assert results["decode"].teacher_generation == 1 and results["decode"].unlabeled is None
    select = results["select"]
    assert isinstance(select, SelectResult) and select.method == "oracle (true transcripts)"
    assert (select.selected_utterances, select.selected_fraction, select.selected_hours) == (2, 0.6667, round(3.0 / 3600, 4))
    assert select.warnings == (f"1 of 3 unlabeled utterances have no transcript in {config.data.unlabeled_reference}: left out",)
    rows = read_manifest(workdir.stage_dir(2, "select") / "selected.csv")
    assert [(u.id, u.reference, u.duration) for u in rows] == [("u0", "one", 1.0), ("u1", "two words", 2.0)]
    assert results["audit"] == AuditStageResult(pseudo_label_wer=0.0, seconds=results["audit"].seconds)
    trained = []
    monkeypatch.setattr(train_module, "train", lambda c: trained.append(c) or f"{c.out}/model")
    train_model(config, workdir, 2, tmp_path / "out")
    assert trained[0].epochs == 3  # the student's own epochs: only the control is step-matched
    assert [u.id for u in read_manifest(trained[0].data.unlabeled[0])] == ["u2"]


def test_given_labels_train_every_student_at_its_own_epochs_and_are_audited_against_the_transcripts(tmp_path, monkeypatch):
    given = [Utterance("u0", "u0.wav", 1.0, reference="one"), Utterance("u1", "u1.wav", 2.0, reference="two birds"),
             Utterance("u2", "u2.wav", 3.0, reference="")]  # u2: no label, left out
    config, workdir = _experiment(tmp_path, "given", given)
    assert config.to_dict()["data"]["given_labels"] == str(tmp_path / "given.csv")
    assert "given_labels" not in load_experiment_config().to_dict()["data"]  # older folders hash as before
    results = _given_stages(config, workdir)
    assert results["decode"].planted == "labels: given (labels from data.given_labels): nothing decoded"
    select = results["select"]
    assert (select.method, select.selected_utterances, select.selected_fraction, select.selected_hours) == (
        "given labels (given.csv)", 2, 0.6667, round(3.0 / 3600, 4))
    assert select.warnings == (f"1 of 3 rows of {tmp_path / 'given.csv'} have no label: left out",)
    rows = read_manifest(workdir.stage_dir(1, "select") / "selected.csv")
    assert [(u.id, u.reference) for u in rows] == [("u0", "one"), ("u1", "two birds")]
    assert results["audit"] == AuditStageResult(pseudo_label_wer=round(1 / 3, 4), with_reference=2,
                                                seconds=results["audit"].seconds)  # "two birds" for "two words"
    trained = []
    monkeypatch.setattr(train_module, "train", lambda c: trained.append(c) or f"{c.out}/model")
    train_model(config, workdir, 1, tmp_path / "out")
    assert trained[0].epochs == 3 and [u.id for u in read_manifest(trained[0].data.unlabeled[0])] == ["u2"]


def test_given_labels_keep_their_runs_measure_their_seconds_and_stop_on_a_bad_run(tmp_path):
    from selftrain.errors import ManifestError

    runs = Utterance("u1", "u1.wav", 2.0, reference="two", extra={"runs": '[[0.5, 1.0, "two"]]'})
    config, workdir = _experiment(tmp_path, "given", [runs, Utterance("x9", "x9.wav", 4.0, reference="far")])
    select = _given_stages(config, workdir)["select"]
    assert read_manifest(workdir.stage_dir(1, "select") / "selected.csv") == read_manifest(tmp_path / "given.csv")
    assert select.selected_hours == round(4.5 / 3600, 4)  # the run's half second, all of x9
    assert select.warnings == ("1 of 2 given labels are for utterances not in data.unlabeled: they train all the same",)
    assert _given_stages(config, workdir, 2)["audit"].pseudo_label_wer is None  # a run has no reference of its own
    bad = Utterance("u1", "u1.wav", 2.0, reference="two", extra={"runs": "[[1.0]]"})
    config, workdir = _experiment(tmp_path / "bad", "given", [bad])
    with pytest.raises(ManifestError, match="u1: runs="):
        _given_stages(config, workdir)


def test_run_cli_given_labels_sets_the_labels(tmp_path):
    from click.testing import CliRunner

    from selftrain.cli import main

    result = CliRunner().invoke(main, ["run", "--workdir", str(tmp_path / "w"), "--given-labels", str(tmp_path),
                                       "--set", "schedule=continuous"])
    assert result.exit_code == 2 and "labels: given goes with schedule: generations" in result.output


def test_run_cli_refuses_an_oracle_without_transcripts_before_creating_the_workdir(tmp_path):
    from click.testing import CliRunner

    from selftrain.cli import main

    result = CliRunner().invoke(main, ["run", "--workdir", str(tmp_path / "w"), "--set", "labels=oracle"])
    assert result.exit_code == 2 and "give them in data.unlabeled_reference (--unlabeled-reference)" in result.output
    assert not (tmp_path / "w").exists()
