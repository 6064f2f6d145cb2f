"""The experiment config's stage sections: stored as the user's overrides, resolved by typed views,
checked when the config is constructed."""

import dataclasses

import pytest

from selftrain.agreement.rover import AgreementConfig
from selftrain.decode import DecoderConfig
from selftrain.errors import ConfigError
from selftrain.generation import ExperimentConfig, load_experiment_config
from selftrain.generation.config import DataPaths, ThresholdConfig, check_stage_overrides
from selftrain.generation.workdir import experiment_hash
from selftrain.models.config import model_preset
from selftrain.overrides import deep_merge
from selftrain.select import SelectConfig
from selftrain.train.config import TrainConfig, load_train_config

SECTIONS = {"teacher_train": {"epochs": 2, "optim": {"lr": 0.001}},
            "student_train": {"epochs": 3, "distill": {"weight": 0.5}},
            "decode": {"beam_width": 4, "alpha": 0.8},
            "agreement": {"pivot": "first"},
            "select": {"threshold": 0.9, "segments": {"enabled": True}}}


def _config() -> ExperimentConfig:
    return ExperimentConfig(preset="tiny", **SECTIONS)


@pytest.mark.parametrize("section, values, message", [
    ("teacher_train", {"epoch": 3}, "teacher_train: unknown config key config.epoch"),
    ("student_train", {"optim": {"lrr": 1e-3}}, "student_train: unknown config key config.optim.lrr"),
    ("decode", {"beam_widht": 3}, "unknown config key decode.beam_widht"),
    ("agreement", {"pivt": "first"}, "unknown config key agreement.pivt"),
    ("select", {"sanity": {"max_cps": 20}}, "unknown config key select.sanity.max_cps"),
])
def test_a_misspelt_stage_key_fails_when_the_config_is_constructed(section, values, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        ExperimentConfig(**{section: values})


@pytest.mark.parametrize("section, values, message", [
    ("decode", {"beam_width": 0}, "decode.beam_width must be >= 1"),
    ("agreement", {"null_confidence": 2.0}, "agreement.null_confidence must be in [0, 1]"),
    ("select", {"keep_fraction": 1.5}, "select.keep_fraction must be in [0, 1]"),
    ("select", {"segments": {"threshold": 2.0}}, "select.segments.threshold must be in [0, 1]"),
    ("teacher_train", {"checkpoint_metric": "lm_wer"}, "teacher_train.checkpoint_metric lm_wer"),
])
def test_a_value_the_stage_config_refuses_fails_when_the_config_is_constructed(section, values, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        ExperimentConfig(**{section: values})


def test_a_copy_with_a_bad_section_and_a_nested_config_set_unchecked_are_refused():
    config = _config()
    with pytest.raises(ConfigError, match=r"unknown config key decode\.beam"):
        dataclasses.replace(config, decode={"beam": 3})
    config.threshold.mode = "sometimes"  # as update_dataclass sets it: without ThresholdConfig's checks
    with pytest.raises(ConfigError, match=r"threshold\.mode must be auto or fixed"):
        config.__post_init__()


def test_the_views_apply_the_overrides_on_the_stage_configs_defaults():
    config = _config()
    decoder = config.decoder_config()
    assert isinstance(decoder, DecoderConfig)
    assert decoder == dataclasses.replace(DecoderConfig(), beam_width=4, alpha=0.8)
    assert config.agreement_config() == AgreementConfig(pivot="first")
    select = config.select_config(generation=2)
    assert isinstance(select, SelectConfig) and (select.generation, select.threshold) == (2, 0.9)
    assert select.segments.enabled and select.segments.threshold == SelectConfig().segments.threshold
    assert select.sanity == SelectConfig().sanity
    teacher = config.train_config("teacher_train")
    assert isinstance(teacher, TrainConfig) and teacher.model == model_preset("tiny")
    assert (teacher.epochs, teacher.optim.lr, teacher.distill.weight) == (2, 0.001, 0.0)
    student = config.train_config("student_train")
    assert (student.epochs, student.optim.lr, student.distill.weight) == (3, TrainConfig().optim.lr, 0.5)
    assert config.decoder_config() is not decoder  # each call resolves afresh: callers may change their copy


def test_a_selection_view_picks_its_generations_value_of_a_schedule():
    config = ExperimentConfig(select={"threshold_schedule": [0.9, 0.8, 0.7]})
    assert [config.select_config(g).resolved().threshold for g in (0, 1, 5)] == [0.9, 0.8, 0.7]


def test_a_training_view_merges_a_runs_own_settings_under_the_section():
    config = _config()
    extra = {"out": "run", "seed": 5, "epochs": 9, "optim": {"lr": 0.5, "weight_decay": 0.1}}
    trained = config.train_config("teacher_train", extra=extra)
    # the section's keys win key by key; the run's other keys stay
    assert (trained.out, trained.seed, trained.epochs) == ("run", 5, 2)
    assert (trained.optim.lr, trained.optim.weight_decay) == (0.001, 0.1)
    assert trained == load_train_config("tiny", overrides=deep_merge(extra, SECTIONS["teacher_train"]))
    assert extra == {"out": "run", "seed": 5, "epochs": 9, "optim": {"lr": 0.5, "weight_decay": 0.1}}  # not modified
    with pytest.raises(ValueError, match="teacher_train, student_train"):
        config.train_config("decode")  # type: ignore[arg-type]


def test_the_stored_sections_and_the_work_folders_hash_hold_only_what_the_user_set():
    config = _config()
    values = config.to_dict()
    assert {name: values[name] for name in SECTIONS} == SECTIONS
    # the hash this config had before the typed views: its work folders still open
    assert experiment_hash(values) == "feafa5b4eb5840ab"


def test_a_loaded_config_equals_the_one_constructed_directly(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("preset: tiny\nthreshold:\n  mode: fixed\nteacher_train:\n  epochs: 2\n  optim:\n    lr: 0.001\n")
    overrides = {"data": {"labeled": "l.csv"}, **{name: SECTIONS[name] for name in SECTIONS if name != "teacher_train"}}
    loaded = load_experiment_config(path, overrides)
    direct = dataclasses.replace(_config(), data=DataPaths(labeled="l.csv"), threshold=ThresholdConfig(mode="fixed"))
    assert loaded == direct


def test_check_stage_overrides_resolves_every_section():
    config = _config()
    check_stage_overrides(config)
    config.select = {"threshold": 2.0}  # set after construction, so unchecked until now
    with pytest.raises(ConfigError, match=r"select\.threshold must be in \[0, 1\]"):
        check_stage_overrides(config)
