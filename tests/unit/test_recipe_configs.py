"""The `selftrain run` configs shipped with the recipes load without unknown keys."""

from pathlib import Path

import pytest

from selftrain.agreement.rover import AgreementConfig
from selftrain.decode import DecoderConfig
from selftrain.generation import load_experiment_config
from selftrain.models.config import update_dataclass
from selftrain.select import SelectConfig
from selftrain.train import load_train_config

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("name", ["synthetic/demo.yaml", "synthetic/full.yaml", "synthetic/pretrained.yaml",
                                  "fillets_nl/from_scratch.yaml", "fillets_nl/pretrained.yaml"])
def test_run_config_and_its_stage_sections_are_valid(name):
    config = load_experiment_config(RECIPES / name)
    assert config.generations == 3
    for section in (config.teacher_train, config.student_train):
        load_train_config(config.preset, overrides=section)  # unknown keys raise ConfigError
    for section, stage in ((config.decode, DecoderConfig()), (config.agreement, AgreementConfig()),
                           (config.select, SelectConfig())):
        update_dataclass(stage, section, name)
