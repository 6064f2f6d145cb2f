"""Stage wiring of `selftrain run`: which data each training sees."""

import pytest

import selftrain.train as train_module
from selftrain.generation import Workdir, load_experiment_config
from selftrain.generation.stages import train_model


@pytest.fixture
def captured_train(monkeypatch):
    configs = []

    def fake_train(config):
        configs.append(config)
        return f"{config.out}/model"

    monkeypatch.setattr(train_module, "train", fake_train)
    return configs


def _config(tmp_path, **teacher_train):
    paths = {name: str(tmp_path / f"{name}.csv") for name in ("labeled", "unlabeled", "dev")}
    return load_experiment_config(overrides={"data": paths, "teacher_train": teacher_train})


def test_a_supervised_teacher_sees_only_the_labeled_audio(tmp_path, captured_train):
    config = _config(tmp_path)
    train_model(config, Workdir(tmp_path / "w", config.to_dict()), 0, tmp_path / "out")
    assert captured_train[0].data.labeled == [config.data.labeled] and captured_train[0].data.unlabeled == []


def test_a_teacher_with_ssl_objectives_also_learns_from_the_unlabeled_audio(tmp_path, captured_train):
    config = _config(tmp_path, ssl={"objectives": ["best_rq"]})
    result = train_model(config, Workdir(tmp_path / "w", config.to_dict()), 0, tmp_path / "out")
    trained = captured_train[0]
    assert trained.data.unlabeled == [config.data.unlabeled] and trained.ssl.objectives == ["best_rq"]
    assert result == {"model": "model"}


def _student(tmp_path, captured_train, **student_train):
    from selftrain.data.manifest import write_speechbrain_csv
    from selftrain.record import Utterance

    paths = {name: str(tmp_path / f"{name}.csv") for name in ("labeled", "unlabeled", "dev")}
    write_speechbrain_csv([Utterance("u1", "u1.wav", 1.0), Utterance("u2", "u2.wav", 1.0)], paths["unlabeled"])
    config = load_experiment_config(overrides={"data": paths, "student_train": student_train})
    workdir = Workdir(tmp_path / "w", config.to_dict())
    select = workdir.stage_dir(1, "select")
    select.mkdir(parents=True)
    write_speechbrain_csv([Utterance("u1", "u1.wav", 1.0, reference="a b")], select / "selected.csv")
    train_model(config, workdir, 1, tmp_path / "out")
    return captured_train[0], workdir


def test_a_student_starts_from_its_teacher_and_distils_from_it_only_when_asked(tmp_path, captured_train):
    trained, workdir = _student(tmp_path, captured_train)
    teacher = str(workdir.stage_dir(0, "train") / "model")
    assert trained.teacher.init_encoder == teacher and trained.teacher.init_head
    assert trained.teacher.teacher_model == "" and trained.teacher.distill_weight == 0.0
    # the unselected unlabeled audio is handed over (training uses it only for SSL or distillation)
    from selftrain.data.manifest import read_manifest

    assert [u.id for u in read_manifest(trained.data.unlabeled[0])] == ["u2"]


def test_a_distilling_student_gets_its_teacher_as_the_distillation_model(tmp_path, captured_train):
    trained, workdir = _student(tmp_path / "d", captured_train, teacher={"distill_weight": 1.0})
    assert trained.teacher.teacher_model == str(workdir.stage_dir(0, "train") / "model")
    assert trained.teacher.distill_weight == 1.0
