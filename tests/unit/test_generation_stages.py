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


def _student(tmp_path, captured_train, generation=1, student_init="teacher", **student_train):
    from selftrain.data.manifest import write_speechbrain_csv
    from selftrain.record import Utterance

    paths = {name: str(tmp_path / f"{name}.csv") for name in ("labeled", "unlabeled", "dev")}
    write_speechbrain_csv([Utterance("u1", "u1.wav", 1.0), Utterance("u2", "u2.wav", 1.0)], paths["unlabeled"])
    config = load_experiment_config(overrides={"data": paths, "student_train": student_train, "student_init": student_init})
    workdir = Workdir(tmp_path / "w", config.to_dict())
    select = workdir.stage_dir(generation, "select")
    select.mkdir(parents=True)
    write_speechbrain_csv([Utterance("u1", "u1.wav", 1.0, reference="a b")], select / "selected.csv")
    train_model(config, workdir, generation, tmp_path / "out")
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


@pytest.mark.parametrize("student_init, start", [("teacher", 1), ("base", 0), ("scratch", None)])
def test_a_later_student_starts_where_student_init_says(tmp_path, captured_train, student_init, start):
    trained, workdir = _student(tmp_path, captured_train, generation=2, student_init=student_init,
                                teacher={"distill_weight": 1.0})
    expected = "" if start is None else str(workdir.stage_dir(start, "train") / "model")
    assert trained.teacher.init_encoder == expected and trained.teacher.init_head == (start is not None)
    # whatever the weights start from, the generation's teacher (generation 1) is what it learns from
    assert trained.teacher.teacher_model == str(workdir.stage_dir(1, "train") / "model")


def test_an_unknown_student_init_is_refused_naming_the_choices(tmp_path):
    from selftrain.errors import ConfigError

    with pytest.raises(ConfigError, match="teacher, base, scratch"):
        load_experiment_config(overrides={"student_init": "previous"})
