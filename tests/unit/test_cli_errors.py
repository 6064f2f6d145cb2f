"""How the command line reports failures, and ``python -m selftrain``.

A configuration mistake is the user's usage (click.UsageError: exit code 2, after the usage line);
any other selftrain error is a runtime failure (one ``Error:`` line, exit code 1, no usage text).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from selftrain import __version__, errors
from selftrain.cli import main
from selftrain.cli.common import one_line, user_errors
from selftrain.synth.errors import MissingToolError

REPO = Path(__file__).resolve().parents[2]

# One instance of each runtime error of selftrain.errors (the constructors differ).
RUNTIME_ERRORS = {
    "ManifestError": errors.ManifestError("m.csv: missing column 'wav'"),
    "AudioError": errors.AudioError("missing", "a.wav: no such file"),
    "TextError": errors.TextError("characters outside the alphabet: '#'"),
    "LMError": errors.LMError("lmplz failed (exit 1):\n=== 1/5 Counting ===\nERROR: bad input\n"),
    "CheckpointError": errors.CheckpointError("model folder not found: m"),
    "DecodeError": errors.DecodeError("vocabulary mismatch"),
    "WorkdirBusyError": errors.WorkdirBusyError("work is in use by pid 1 on host h"),
    "StorageError": errors.StorageError("cannot write out: no space left on device", "out"),
    "CorpusError": errors.CorpusError("install fillets-ng-data-nl"),
    "WaitTimeoutError": errors.WaitTimeoutError("waited 60 s for rank 0's audit stage, but w/gen_001/audit/.done did not appear"),
    "MissingToolError": MissingToolError("no fortune files in /none", package="fortunes"),
}


def test_every_error_of_the_package_is_classified():
    # A new error type must say here whether it is usage or runtime.
    names = {name for name in errors.__all__ if name not in ("SelftrainError", "ConfigError")}
    assert names == set(RUNTIME_ERRORS) - {"MissingToolError"}


@pytest.mark.parametrize("name", sorted(RUNTIME_ERRORS))
def test_runtime_errors_become_one_line_click_exceptions(name):
    error = RUNTIME_ERRORS[name]
    with pytest.raises(click.ClickException) as caught, user_errors():
        raise error
    assert not isinstance(caught.value, click.UsageError)
    assert caught.value.exit_code == 1 and caught.value.__cause__ is error
    message = caught.value.format_message()
    assert "\n" not in message and message == one_line(str(error))


def test_config_errors_become_usage_errors():
    error = errors.ConfigError("threshold.mode must be auto or fixed, got 'sometimes'")
    with pytest.raises(click.UsageError) as caught, user_errors():
        raise error
    assert caught.value.exit_code == 2 and caught.value.format_message() == str(error)


def test_other_exceptions_keep_their_traceback():
    with pytest.raises(KeyError), user_errors():
        raise KeyError("a bug, not the user's input")


def test_one_line_keeps_every_non_blank_line():
    assert one_line("lmplz failed (exit 1):\n  === 1/5 ===\n\nERROR: bad\n") == "lmplz failed (exit 1): | === 1/5 === | ERROR: bad"
    assert one_line("already one line") == "already one line"


def test_a_runtime_failure_prints_one_error_line_without_usage(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"nothing": 1}\n')
    result = CliRunner().invoke(main, ["audit", "--hyps", str(bad), "--out", str(tmp_path / "o")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and "not a file of selftrain records" in lines[0]


def test_a_config_mistake_prints_the_usage_line(tmp_path):
    names = ["labeled", "unlabeled", "dev", "lm-text"]
    inputs = []
    for name in names:
        (tmp_path / f"{name}.txt").write_text("x\n")
        inputs += [f"--{name}", str(tmp_path / f"{name}.txt")]
    result = CliRunner().invoke(main, ["run", "--workdir", str(tmp_path / "w"), *inputs,
                                       "--set", "threshold.mode=sometimes"])
    assert result.exit_code == 2 and "Usage:" in result.output and "threshold.mode" in result.output
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("args, message", [
    (["lm", "build", "--text", "{text}", "--out", "{tmp}/lm.txt"], "must end in .arpa or .bin"),
    (["lm", "text-from-docs", "--lang", "zz", "--out", "{tmp}/t.txt"], "pass the files or folders to read"),
    (["eval", "--model", "{tmp}", "--manifest", "{text}", "--lm", "{tmp}/none.bin"], "language model not found"),
])
def test_bad_option_values_are_usage_errors(tmp_path, args, message):
    text = tmp_path / "text.txt"
    text.write_text("the cat sat\n")
    args = [a.format(text=text, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "Usage:" in result.output and message in result.output, result.output


def test_python_dash_m_selftrain_is_the_command():
    version = subprocess.run([sys.executable, "-m", "selftrain", "--version"], cwd=REPO, capture_output=True,
                             text=True, timeout=120, check=False)
    assert version.returncode == 0 and version.stdout.strip() == f"selftrain, version {__version__}", version.stderr
    # `lm` imports selftrain.lm (the top-level lm/ folder) in a fresh interpreter.
    lm_help = subprocess.run([sys.executable, "-m", "selftrain", "lm", "build", "--help"], cwd=REPO,
                             capture_output=True, text=True, timeout=120, check=False)
    assert lm_help.returncode == 0 and "Usage: python -m selftrain lm build" in lm_help.stdout, lm_help.stderr
    missing = subprocess.run([sys.executable, "-m", "selftrain", "run"], cwd=REPO, capture_output=True, text=True,
                             timeout=120, check=False)
    assert missing.returncode == 2 and "Missing option" in missing.stderr
