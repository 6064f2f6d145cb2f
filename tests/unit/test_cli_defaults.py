"""CLI options that mirror a config field have its default (and its choices).

The commands read them from the configs; these tests catch a default or a help text written out
by hand again. `decode`, `lm` and `data` options are listed with the field each one sets, and every
other option of those commands is named as one that sets none, so a new option is classified.
"""

from __future__ import annotations

import operator
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from selftrain.agreement.rover import AgreementConfig
from selftrain.cli import main
from selftrain.cli.data import check as data_check
from selftrain.cli.data import fillets
from selftrain.cli.decode import decode, eval_command, tune
from selftrain.cli.lm import build as lm_build
from selftrain.cli.lm import text_from_docs
from selftrain.cli.select import select
from selftrain.config_docs import option_help
from selftrain.data.check import CheckConfig
from selftrain.data.fillets import FilletsConfig
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
]


def _same(value: object) -> object:
    return value


def _numbers(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def _prune(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split())


# The options of the decoding commands that set a DecoderConfig field, and the field.
DECODER_OPTIONS = [("--decoder", "decoder"), ("--beam", "beam_width"), ("--alpha", "alpha"), ("--beta", "beta"),
                   ("--blank-penalty", "blank_penalty"), ("--nbest", "nbest"), ("--batch-size", "batch_size"),
                   ("--workers", "workers"), ("--max-duration", "max_duration")]
# The options of every decoding command that set no config field: the model, its input and its device.
MODEL_INPUTS = ["--model", "--ensemble", "--manifest", "--lm", "--device", "--state-cache"]

# (command, option, config class, field, what the command makes of the option's default)
FIELD_OPTIONS: list[tuple[click.Command, str, type, str, Callable[[object], object]]] = [
    *[(command, option, DecoderConfig, field, _same) for command in (decode, eval_command, tune)
      for option, field in DECODER_OPTIONS],
    (decode, "--dropout", DecoderConfig, "dropout", _same),
    (decode, "--seed", DecoderConfig, "seed", _same),
    (tune, "--try-blank-penalty", TuneConfig, "blank_penalty", _numbers),
    (tune, "--try-beta", TuneConfig, "beta", _numbers),
    (tune, "--try-alpha", TuneConfig, "alpha", _numbers),
    (tune, "--rounds", TuneConfig, "rounds", _same),
    (lm_build, "--order", LMBuildConfig, "order", _same),
    (lm_build, "--prune", LMBuildConfig, "prune", _prune),
    (lm_build, "--memory", LMBuildConfig, "memory", _same),
    *[(text_from_docs, f"--{field.replace('_', '-')}", DocTextConfig, field, _same)
      for field in ("lang", "chars", "lexicon_min_known", "lexicon_words", "min_words", "max_words")],
    (data_check, "--sample-rate", CheckConfig, "sample_rate", _same),
    (data_check, "--resample", CheckConfig, "strict_format", operator.not_),
    (data_check, "--min-duration", CheckConfig, "min_duration", _same),
    (data_check, "--max-duration", CheckConfig, "max_duration", _same),
    (data_check, "--workers", CheckConfig, "workers", _same),
    *[(fillets, f"--{field}", FilletsConfig, field, _same)
      for field in ("root", "lang", "seed", "labeled", "dev", "test", "unlabeled")],
    (fillets, "--lm-extra", FilletsConfig, "lm_extra", lambda value: value or ""),
]
NO_FIELD_OPTIONS = {
    decode: [*MODEL_INPUTS, "--out", "--shard", "--teacher-name", "--limit"],
    eval_command: [*MODEL_INPUTS, "--out"],
    tune: [*MODEL_INPUTS, "--out"],
    # the discount-fallback flags set LMBuildConfig.discount_fallback to one value each; unset: its default
    lm_build: ["--text", "--out", "--discount-fallback", "--no-discount-fallback", "--tokenizer", "--alphabet",
               "--heldout"],
    text_from_docs: ["--out", "--lexicon", "--no-lexicon"],
    data_check: ["--report", "--alphabet", "--write-valid"],
    fillets: ["--out", "--quiet"],
}


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


@pytest.mark.parametrize(("command", "name", "config", "field", "to_config"), FIELD_OPTIONS,
                         ids=[f"{c.name} {n}" for c, n, *_ in FIELD_OPTIONS])
def test_option_default_is_its_fields(command, name, config, field, to_config):
    """Not given, the option leaves the field at the config's own default."""
    default = to_config(_default(_option(command, name)))
    assert default == getattr(config(), field), (name, default)


@pytest.mark.parametrize(("command", "name", "config", "field", "to_config"), FIELD_OPTIONS,
                         ids=[f"{c.name} {n}" for c, n, *_ in FIELD_OPTIONS])
def test_option_help_is_its_fields_description(command, name, config, field, to_config):
    option = _option(command, name)
    assert option.help is not None and option.help.startswith(option_help(config, field)), (name, option.help)
    assert option.show_default or _default(option) is None, f"{name} hides its default"


@pytest.mark.parametrize("command", list(NO_FIELD_OPTIONS), ids=lambda command: command.name)
def test_every_option_is_a_field_or_named_as_none(command):
    options = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts if opt.startswith("--")}
    fields = {name for c, name, *_ in FIELD_OPTIONS if c is command}
    assert options - fields == set(NO_FIELD_OPTIONS[command])


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
    code = ("import sys; import selftrain.cli.select, selftrain.cli.decode, selftrain.cli.data, selftrain.cli.lm, "
            "selftrain.cli.run, selftrain.cli.synth; sys.exit('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr or "importing the commands imported torch"


def test_the_run_and_synth_options_name_their_configs_defaults():
    from selftrain.cli.run import run
    from selftrain.cli.synth import synth
    from selftrain.generation.config import ExperimentConfig
    from selftrain.synth.config import SynthConfig

    experiment, corpus = ExperimentConfig(), SynthConfig()
    for command, name, named in ((run, "--generations", f"[config: {experiment.generations}]"),
                                 (run, "--preset", f"[config: {experiment.preset}]"),
                                 (synth, "--scale", f"(default {corpus.scale};"), (synth, "--seed", f"(default {corpus.seed})"),
                                 (synth, "--fortunes", f"(default {corpus.fortunes_dir})")):
        option = _option(command, name)
        assert _default(option) is None and named in (option.help or ""), (name, option.help)
