"""Training configuration: presets, YAML, overrides, typed values, unknown keys."""

from __future__ import annotations

import pytest

from selftrain.errors import ConfigError
from selftrain.overrides import parse_overrides
from selftrain.train.config import load_train_config


def test_defaults_follow_the_preset():
    config = load_train_config()
    assert config.preset == "cpu-small" and config.model.encoder == "lstm"
    assert load_train_config("cpu-small-conformer").model.encoder == "conformer"


def test_yaml_then_overrides_apply_in_order_with_types(tmp_path):
    path = tmp_path / "h.yaml"
    path.write_text("preset: tiny\noptim:\n  lr: 0.01\nssl:\n  objectives: [best_rq]\n")
    config = load_train_config(None, path, parse_overrides(["optim.lr=5e-4", "epochs=7", "ssl.shared_forward=false",
                                                             "data.labeled=a.csv,b.csv"]))
    assert config.preset == "tiny" and config.model.d_model == 32
    assert config.optim.lr == pytest.approx(5e-4) and config.epochs == 7
    assert config.ssl.objectives == ["best_rq"] and config.ssl.shared_forward is False
    assert config.data.labeled == ["a.csv", "b.csv"]
    assert load_train_config("cpu-small", overrides={"model": {"num_layers": "4"}}).model.num_layers == 4


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"optimizer": {"lr": 1}}, "unknown config key config.optimizer"),
        ({"optim": {"learning_rate": 1}}, "unknown config key config.optim.learning_rate"),
        ({"model": {"features": {"mels": 40}}}, "config.model.features.mels"),
        ({"epochs": "many"}, "cannot use 'many' as int"),
        ({"epochs": "2.5"}, "as int"),
        ({"ssl": {"shared_forward": "maybe"}}, "as bool"),
        ({"optim": 3}, "expected a mapping"),
        ({"preset": "enormous"}, "unknown preset"),
    ],
)
def test_bad_keys_and_values_are_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(overrides=overrides)


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(ConfigError, match="conflicts"):
        parse_overrides(["a=1", "a.b=2"])


def test_unreadable_yaml_is_a_config_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_train_config(config_file=bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_train_config(config_file=listing)


def test_dev_score_ranks_a_young_model_that_spells_above_one_that_emits_nothing():
    from selftrain.train.brain import dev_score

    silent, spelling = (0.983, 0.981), (1.02, 0.67)  # measured at epochs 7 and 14 of a short run
    assert dev_score(*silent, "wer") < dev_score(*spelling, "wer")
    assert dev_score(*spelling, "wer+cer") < dev_score(*silent, "wer+cer")
    assert dev_score(0.3, 0.1, "cer") == 0.1


def test_unknown_checkpoint_metric_is_a_config_error(tmp_path):
    from selftrain.train.validate import validate_config

    config = load_train_config("tiny", overrides={"out": str(tmp_path), "checkpoint_metric": "bleu"})
    with pytest.raises(ConfigError, match="checkpoint_metric"):
        validate_config(config)
