"""The generated reference pages: current with the code, and covering every key and option."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from selftrain import config_docs, reference

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("page", sorted(reference.PAGES, key=str), ids=str)
def test_committed_page_is_current(page: Path) -> None:
    committed = (ROOT / page).read_text(encoding="utf-8")
    assert committed == reference.PAGES[page](), f"{page} is stale: run python -m selftrain.reference"


def test_generation_is_deterministic() -> None:
    assert reference.config_reference() == reference.config_reference()
    assert reference.cli_reference() == reference.cli_reference()


def test_config_page_covers_every_key() -> None:
    text = reference.config_reference()
    keys = reference.config_keys()
    assert {"ExperimentConfig", "TrainConfig", "DecoderConfig", "AgreementConfig", "SelectConfig"} <= set(keys)
    assert "model.features" in keys["TrainConfig"] and "threshold.target_wer" in keys["ExperimentConfig"]
    missing = [f"{root}: {key}" for root, names in keys.items() for key in names if f"| `{key}` |" not in text]
    assert not missing


def test_cli_page_covers_every_command_and_option() -> None:
    text = reference.cli_reference()
    options = reference.cli_options()
    assert {"selftrain run", "selftrain data check", "selftrain decode tune"} <= set(options)
    for command, names in options.items():
        assert f"## {command}\n" in text
        section = text.split(f"## {command}\n", 1)[1].split("\n## ", 1)[0]
        missing = [name for name in names if name.upper() not in section and name not in section]
        assert not missing, f"{command}: {missing}"


def test_check_mode_reports_a_stale_page(tmp_path: Path, capsys) -> None:
    assert reference.main(["--root", str(tmp_path)]) == 0
    assert reference.main(["--root", str(tmp_path), "--check"]) == 0
    page = tmp_path / reference.CONFIG_PAGE
    page.write_text(page.read_text(encoding="utf-8") + "edited by hand\n", encoding="utf-8")
    assert reference.main(["--root", str(tmp_path), "--check"]) == 1
    assert "config.md" in capsys.readouterr().err


@dataclass
class _Example:
    """An example."""

    # above the field,
    # on two lines
    plain: int = 1  # and inline
    text: str = "a # not a comment"
    bare: float = 0.5


def test_field_comments_above_and_inline() -> None:
    comments = config_docs._field_comments(_Example)
    assert comments == {"plain": "above the field, on two lines and inline"}


def test_docstring_entries_become_descriptions() -> None:
    doc = ("How it works.\n\nalpha: LM weight; beta: word bonus.\nlow / high: the bounds,\n    in seconds [0, 1].\n"
           "other: not a field.")
    prose, entries = config_docs._split_docstring(doc, {"alpha", "beta", "low", "high"})
    assert prose == "How it works.\n\nother: not a field."
    assert entries == {"alpha": "LM weight", "beta": "word bonus.", "low": "the bounds, in seconds [0, 1].",
                       "high": "the bounds, in seconds [0, 1]."}


@dataclass
class _Documented:
    """Settings (defaults in brackets).

    limit: keep at most this many, see :class:`~selftrain.record.Utterance` and ``Utterance.agreement[key]`` [10].
    """

    limit: int = 10  # a second sentence.
    plain: int = 1


def test_option_help_is_the_field_description_without_its_bracketed_default() -> None:
    assert config_docs.option_help(_Documented, "limit", "Needs 2+.") == (
        "Keep at most this many, see Utterance and 'Utterance.agreement[key]'. a second sentence. Needs 2+.")
    with pytest.raises(KeyError, match="plain"):
        config_docs.option_help(_Documented, "plain")
