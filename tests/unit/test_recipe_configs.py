"""The `selftrain run` configs shipped with the recipes load without unknown keys."""

from pathlib import Path

import pytest

from selftrain.generation import load_experiment_config

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("name", ["synthetic/demo.yaml", "synthetic/full.yaml", "synthetic/pretrained.yaml",
                                  "fillets_nl/from_scratch.yaml", "fillets_nl/pretrained.yaml"])
def test_run_config_and_its_stage_sections_are_valid(name):
    config = load_experiment_config(RECIPES / name)  # resolves every stage section: unknown keys raise ConfigError
    assert config.generations == 3
