"""Stage wiring of `selftrain run`: which data each training sees."""

import pytest

import selftrain.train as train_module
from selftrain.generation import Workdir, load_experiment_config
from selftrain.generation.results import TrainResult
from selftrain.generation.stages import train_model
from selftrain.train.config import DataConfig


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
    assert result == TrainResult(model="model")


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
    assert trained.init.encoder == teacher and trained.init.head
    assert trained.distill.teacher_model == "" and trained.distill.weight == 0.0
    # the unselected unlabeled audio is handed over (training uses it only for SSL or distillation)
    from selftrain.data.manifest import read_manifest

    assert [u.id for u in read_manifest(trained.data.unlabeled[0])] == ["u2"]


@pytest.mark.parametrize("distill", [{"distill": {"weight": 1.0}}, {"teacher": {"distill_weight": 1.0}}],
                         ids=["distill.weight", "the old name teacher.distill_weight"])
def test_a_distilling_student_gets_its_teacher_as_the_distillation_model(tmp_path, captured_train, distill):
    trained, workdir = _student(tmp_path / "d", captured_train, **distill)
    assert trained.distill.teacher_model == str(workdir.stage_dir(0, "train") / "model")
    assert trained.distill.weight == 1.0


@pytest.mark.parametrize("student_init, start", [("teacher", 1), ("base", 0), ("scratch", None)])
def test_a_later_student_starts_where_student_init_says(tmp_path, captured_train, student_init, start):
    trained, workdir = _student(tmp_path, captured_train, generation=2, student_init=student_init,
                                distill={"weight": 1.0})
    expected = "" if start is None else str(workdir.stage_dir(start, "train") / "model")
    assert trained.init.encoder == expected and trained.init.head == (start is not None)
    # whatever the weights start from, the generation's teacher (generation 1) is what it learns from
    assert trained.distill.teacher_model == str(workdir.stage_dir(1, "train") / "model")


def test_an_unknown_student_init_is_refused_naming_the_choices(tmp_path):
    from selftrain.errors import ConfigError

    with pytest.raises(ConfigError, match="teacher, base, scratch"):
        load_experiment_config(overrides={"student_init": "previous"})


def _continuous(tmp_path, monkeypatch, **values):
    import json

    from selftrain.generation.stages import train_continuous  # noqa: F401 (train_model dispatches to it)

    configs = []

    def fake_train(config):
        configs.append(config)
        out = tmp_path / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({"continuous": {"guard_trips": 0}, "optimizer_steps": 7}))
        return f"{config.out}/model"

    monkeypatch.setattr(train_module, "train", fake_train)
    paths = {name: str(tmp_path / f"{name}.csv") for name in ("labeled", "unlabeled", "dev", "unlabeled_reference")}
    config = load_experiment_config(overrides={"data": paths, "schedule": "continuous", **values})
    workdir = Workdir(tmp_path / "w", config.to_dict())
    result = train_model(config, workdir, 1, tmp_path / "out")
    return configs[0], workdir, result


def test_a_continuous_student_labels_all_unlabeled_audio_on_the_offline_budget(tmp_path, monkeypatch):
    trained, workdir, result = _continuous(tmp_path, monkeypatch, generations=3,
                                           student_train={"epochs": 4, "max_steps": 50, "continuous": {"guard_window": 9}})
    assert trained.continuous.enabled and trained.continuous.warmup_steps == 0  # generation 0 was the warm-up
    assert trained.continuous.guard_window == 9  # the student settings still apply
    assert trained.continuous.references == [str(tmp_path / "unlabeled_reference.csv")]
    # greedy labels by default; the experiment's LM is there for continuous.decoder=lm
    assert trained.continuous.decoder == "greedy" and trained.continuous.lm == str(workdir.stage_dir(None, "lm") / "lm.bin")
    assert trained.data.unlabeled == [str(tmp_path / "unlabeled.csv")] and trained.data.pseudo == []
    assert trained.init.encoder == str(workdir.stage_dir(0, "train") / "model")
    # three offline students' budget: 3 x 4 epochs, 3 x 50 steps; the unlabeled audio takes the share that
    # the selected pseudo-labels had (the students have no SSL objective, so no SSL-only share)
    assert (trained.epochs, trained.max_steps) == (12, 150)
    assert trained.data.mix_unlabeled == pytest.approx(trained.data.mix_pseudo)
    run = result.continuous_run
    assert run.budget == {"epochs": 12, "max_steps": 150, "mix_unlabeled": trained.data.mix_pseudo}
    assert run.continuous == {"guard_trips": 0} and run.pseudo_label_wer is None


def test_continuous_steps_set_the_budget_and_scratch_keeps_its_warmup(tmp_path, monkeypatch):
    trained, _, _ = _continuous(tmp_path, monkeypatch, continuous_steps=321, student_init="scratch",
                                student_train={"ssl": {"objectives": ["best_rq"]}})
    assert trained.max_steps == 321 and trained.init.encoder == ""
    assert trained.continuous.warmup_steps > 0
    defaults = DataConfig()
    assert trained.data.mix_unlabeled == pytest.approx(defaults.mix_pseudo + defaults.mix_unlabeled)  # + the SSL-only share


def test_the_schedule_is_checked_and_left_out_of_older_folders_hash(tmp_path):
    from selftrain.errors import ConfigError

    with pytest.raises(ConfigError, match="generations, continuous"):
        load_experiment_config(overrides={"schedule": "online"})
    assert "schedule" not in load_experiment_config().to_dict()
    assert load_experiment_config(overrides={"schedule": "continuous"}).to_dict()["schedule"] == "continuous"
