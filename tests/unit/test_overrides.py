"""The one reader of config files and the one ``--set`` parser (selftrain.overrides)."""

from __future__ import annotations

import pytest

from selftrain.errors import ConfigError
from selftrain.overrides import parse_overrides, read_config_file


def test_yaml_and_json_files_read_as_mappings(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("epochs: 3\noptim:\n  lr: 0.01\n")
    assert read_config_file(yaml_file) == {"epochs": 3, "optim": {"lr": 0.01}}
    json_file = tmp_path / "c.json"
    json_file.write_text('{"epochs": 3, "optim": {"lr": 0.01}}')
    assert read_config_file(str(json_file)) == {"epochs": 3, "optim": {"lr": 0.01}}


@pytest.mark.parametrize("name, text", [("e.yaml", ""), ("c.yaml", "# only a comment\n"), ("e.json", "\n")])
def test_an_empty_file_is_an_empty_mapping(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert read_config_file(path) == {}


@pytest.mark.parametrize("name, text", [("list.yaml", "- 1\n- 2\n"), ("scalar.yaml", "3\n"), ("list.json", "[1, 2]")])
def test_a_top_level_that_is_not_a_mapping_names_the_file_on_one_line(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match="expected a mapping") as caught:
        read_config_file(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("name, text", [("missing.yaml", None), ("bad.yaml", "a: [1,\n"), ("bad.json", "{\"a\": ")])
def test_an_unreadable_file_names_the_file_on_one_line(tmp_path, name, text):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match="cannot read config") as caught:
        read_config_file(path)
    message = str(caught.value)
    assert message.startswith(f"cannot read config {path}: ") and "\n" not in message


def test_set_items_nest_by_dots_and_stay_strings():
    assert parse_overrides(["a.b=1", "a.c=x=y", " d =2"]) == {"a": {"b": "1", "c": "x=y"}, "d": "2"}


def test_the_training_package_reexports_the_one_parser():
    import selftrain.train
    import selftrain.train.config

    assert selftrain.train.parse_overrides is parse_overrides is selftrain.train.config.parse_overrides
