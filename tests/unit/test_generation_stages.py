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
