"""CLI options that mirror a config field have its default (and its choices).

`select`, `lm` and `data check` read them from the configs; `decode` keeps a copy (importing
DecoderConfig imports the decode package, torch included, which `decode --help` does without),
checked here against DecoderConfig and TuneConfig.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from selftrain.agreement.rover import AgreementConfig
from selftrain.cli import main
from selftrain.cli.data import check as data_check
from selftrain.cli.decode import decode, tune
from selftrain.cli.lm import build as lm_build
from selftrain.cli.lm import text_from_docs
from selftrain.cli.select import select
from selftrain.data.check import CheckConfig
from selftrain.decode.config import DECODERS, DecoderConfig, TuneConfig
from selftrain.lm.build import LMBuildConfig
from selftrain.lm.doc_text import DocTextConfig
from selftrain.select.config import (
    AGREEMENT_KEYS,
    RANK_BY,
    SEGMENT_CONTEXTS,
    SEGMENTS_APPLY_TO,
    SPEAKING_RATE_QUANTILE,
    SanityConfig,
    SegmentConfig,
    SelectConfig,
)

REPO = Path(__file__).resolve().parents[2]

SELECT, SANITY, SEGMENTS = SelectConfig(), SanityConfig(), SegmentConfig()
DECODER, TUNING = DecoderConfig(), TuneConfig()

# (command, option, the library's default); every option below mirrors one config field or constant
MIRRORED = [
    (select, "--method", SELECT.method),
    (select, "--label-source", SELECT.label_source),
    (select, "--rank-by", SELECT.rank_by),
    (select, "--agreement-key", SELECT.agreement_key),
    (select, "--generation", SELECT.generation),
    (select, "--threshold", SELECT.threshold),
    (select, "--keep-fraction", SELECT.keep_fraction),
    (select, "--agreement", SELECT.agreement_threshold),
    (select, "--dust-threshold", SELECT.dust_threshold),
    (select, "--dust-samples", AgreementConfig().dust_samples),
    (select, "--dust-reference", AgreementConfig().dust_reference),
    (select, "--min-cps", SANITY.min_chars_per_second),
    (select, "--max-cps", SANITY.max_chars_per_second),
    (select, "--max-repeat", SANITY.max_repeat),
    (select, "--max-length-ratio", SANITY.max_length_ratio),
    (select, "--rate-quantile", SPEAKING_RATE_QUANTILE),
    (select, "--segments", SEGMENTS.enabled),
    (select, "--segments-apply-to", SEGMENTS.apply_to),
    (select, "--segment-method", SEGMENTS.method),
    (select, "--segment-threshold", SEGMENTS.threshold),
    (select, "--segment-min-words", SEGMENTS.min_words),
    (select, "--segment-min-seconds", SEGMENTS.min_seconds),
    (select, "--segment-gap-share", SEGMENTS.gap_share),
    (select, "--segment-context", SEGMENTS.context),
    *[(decode, f"--{name.replace('_', '-')}", getattr(DECODER, name))
      for name in ("decoder", "alpha", "beta", "blank_penalty", "nbest", "batch_size", "workers", "max_duration",
                   "seed")],
    (decode, "--beam", DECODER.beam_width),
    (tune, "--try-blank-penalty", ",".join(f"{v:g}" for v in TUNING.blank_penalty)),
    (tune, "--try-beta", ",".join(f"{v:g}" for v in TUNING.beta)),
    (tune, "--try-alpha", ",".join(f"{v:g}" for v in TUNING.alpha)),
    (tune, "--rounds", TUNING.rounds),
    (lm_build, "--order", LMBuildConfig().order),
    (lm_build, "--prune", " ".join(str(v) for v in LMBuildConfig().prune)),
    (lm_build, "--memory", LMBuildConfig().memory),
    (text_from_docs, "--lang", DocTextConfig().lang),
    (text_from_docs, "--chars", DocTextConfig().chars),
    (data_check, "--sample-rate", CheckConfig().sample_rate),
    (data_check, "--resample", not CheckConfig().strict_format),
    (data_check, "--min-duration", CheckConfig().min_duration),
    (data_check, "--max-duration", CheckConfig().max_duration),
    (data_check, "--workers", CheckConfig().workers),
]


def _option(command: click.Command, name: str) -> click.Option:
    found = [p for p in command.params if isinstance(p, click.Option) and name in p.opts]
    assert len(found) == 1, f"{command.name} has no option {name}"
    return found[0]


def _default(option: click.Option) -> object:
    """The value the command receives when the option is not given (click >= 8.3 marks "none" by a sentinel)."""
    default = option.get_default(click.Context(click.Command("x")), call=True)
    return None if default is getattr(click.core, "UNSET", None) else default


@pytest.mark.parametrize(("command", "name", "expected"), MIRRORED, ids=[f"{c.name} {n}" for c, n, _ in MIRRORED])
def test_option_default_is_the_libraries(command, name, expected):
    default = _default(_option(command, name))
    assert default == expected, (name, default, expected)


@pytest.mark.parametrize(("command", "name", "choices"), [
    (select, "--rank-by", RANK_BY), (select, "--agreement-key", AGREEMENT_KEYS),
    (select, "--segments-apply-to", SEGMENTS_APPLY_TO), (select, "--segment-context", SEGMENT_CONTEXTS),
    (decode, "--decoder", DECODERS),
])
def test_option_choices_are_the_libraries(command, name, choices):
    kind = _option(command, name).type
    assert isinstance(kind, click.Choice) and tuple(kind.choices) == tuple(choices)


def test_select_method_default_is_the_one_run_uses():
    """`selftrain run` sets no method of its own: its select stage uses SelectConfig's, as `select` does."""
    from selftrain.generation.config import ExperimentConfig

    assert "method" not in ExperimentConfig().select and _default(_option(select, "--method")) == SelectConfig().method


def test_select_help_lists_the_defaults():
    result = CliRunner().invoke(main, ["select", "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"[default: {SELECT.method}]" in text and "--segment-context [cut|whole]" in text
    assert f"[default: {SEGMENTS.gap_share}; 0<=x<=1]" in text and f"[default: {SANITY.max_repeat}]" in text


def test_help_of_the_commands_that_read_config_defaults_needs_no_torch():
    code = ("import sys; import selftrain.cli.select, selftrain.cli.decode, selftrain.cli.data, selftrain.cli.lm; "
            "sys.exit('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr or "importing the commands imported torch"
