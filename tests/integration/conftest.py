"""Integration fixtures: one tiny synthesized corpus shared by the tests that need real speech."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FORTUNES = Path("/usr/share/games/fortunes")
TTS_TOOLS = ("espeak-ng", "flite", "festival", "sox")


def tts_available() -> bool:
    return FORTUNES.is_dir() and all(shutil.which(t) for t in TTS_TOOLS)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A corpus from ``selftrain synth --scale 0.01`` (a few utterances per split, ~5 s to make)."""
    if not tts_available():
        pytest.skip("needs the Debian packages espeak-ng flite festival sox fortunes (scripts/setup.sh installs them)")
    from click.testing import CliRunner

    from selftrain.cli import main

    out = tmp_path_factory.mktemp("corpus") / "tiny"
    result = CliRunner().invoke(main, ["synth", "--out", str(out), "--scale", "0.01", "--seed", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    return out
