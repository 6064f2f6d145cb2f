"""The configuration and command-line reference pages, generated from the code.

``docs/reference/config.md`` lists every key of the config dataclasses (type, default and the
field's comment, below its class docstring); ``docs/reference/cli.md`` lists every click command with its
arguments and options (type, default, help). Both are written from the code, never by hand, so they
cannot drift; a unit test regenerates them and compares.

    python -m selftrain.reference            # rewrite both pages
    python -m selftrain.reference --check    # exit 1 when a committed page is stale
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

import click

from selftrain.config_docs import class_docs

__all__ = ["config_reference", "cli_reference", "config_keys", "cli_options", "PAGES", "main"]

# The configs a user writes, each with the file or command that reads it: (dataclass, where it is used).
ROOTS: tuple[tuple[str, str], ...] = (
    ("selftrain.generation.config:ExperimentConfig", "`selftrain run --config FILE` and `--set key=value`; the recipes' hparams"),
    ("selftrain.train.config:TrainConfig", "`selftrain train --config FILE`; an experiment's `teacher_train` / `student_train`"),
    ("selftrain.decode.config:DecoderConfig", "`selftrain decode` / `eval` options; an experiment's `decode`"),
    ("selftrain.agreement.rover:AgreementConfig", "an experiment's `agreement`"),
    ("selftrain.select.config:SelectConfig", "`selftrain select` options; an experiment's `select`"),
    ("selftrain.teachers.config:WhisperConfig", "an experiment's `teachers.external_settings.whisper`"),
    ("selftrain.teachers.config:PocketSphinxConfig", "an experiment's `teachers.external_settings.pocketsphinx`"),
    ("selftrain.synth.config:SynthConfig", "`selftrain synth --config FILE`"),
    ("selftrain.data.fillets:FilletsConfig", "`selftrain data prepare fillets` options; `prepare_fillets()` from Python"),
    ("selftrain.lm.doc_text:DocTextConfig", "`selftrain lm text-from-docs` options; `extract_doc_text()` from Python"),
)

# ExperimentConfig fields that hold overrides of another stage's config, by key.
STAGE_OVERRIDES: dict[str, str] = {
    "teacher_train": "TrainConfig",
    "student_train": "TrainConfig",
    "decode": "DecoderConfig",
    "agreement": "AgreementConfig",
    "select": "SelectConfig",
}

# click >= 8.3 marks an option without a default with a sentinel instead of None.
_UNSET = getattr(click.core, "UNSET", None)

CONFIG_PAGE = Path("docs/reference/config.md")
CLI_PAGE = Path("docs/reference/cli.md")


def _load(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _rst_to_markdown(text: str) -> str:
    """``code`` -> `code`, :class:`~a.b.C` -> `C`, :mod:`a.b` -> `a.b`."""
    text = re.sub(r":\w+:`~?([^`]+)`", lambda m: f"`{m.group(1).split('.')[-1] if m.group(0).count('~') else m.group(1)}`", text)
    return text.replace("``", "`")


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _value(value: Any) -> str:
    """A default as it is written in a YAML config."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, Path):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _walk(instance: Any, prefix: str) -> list[tuple[str, Any]]:
    """(dotted prefix, dataclass instance) for ``instance`` and every dataclass nested in it."""
    found = [(prefix, instance)]
    for f in dataclasses.fields(instance):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            found += _walk(value, f"{prefix}.{f.name}" if prefix else f.name)
    return found


def config_keys() -> dict[str, list[str]]:
    """Every dotted key of every root config, by root class name (what the config page must cover)."""
    keys: dict[str, list[str]] = {}
    for spec, _ in ROOTS:
        cls = _load(spec)
        names = []
        for prefix, obj in _walk(cls(), ""):
            names += [f"{prefix}.{f.name}" if prefix else f.name for f in dataclasses.fields(obj)]
        keys[cls.__name__] = names
    return keys


def _section(root: str, prefix: str, obj: Any) -> list[str]:
    cls = type(obj)
    title = f"`{prefix}`" if prefix else f"`{root}`"
    out = [f"### {title} ({cls.__name__}, `{cls.__module__}`)", ""]
    doc = inspect.getdoc(cls) or ""
    if doc.startswith(f"{cls.__name__}("):  # dataclass' generated signature, not a docstring
        doc = ""
    prose, descriptions = class_docs(cls)
    if prose:
        out += [_rst_to_markdown(prose), ""]
    out += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        value = getattr(obj, f.name)
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        description = descriptions.get(f.name, "")
        if dataclasses.is_dataclass(value):
            default = "(section below)"
            description = description or f"see `{key}` below"
        else:
            default = f"`{_cell(_value(value))}`"
        if root == "ExperimentConfig" and not prefix and f.name in STAGE_OVERRIDES:
            stage = STAGE_OVERRIDES[f.name]
            description = f"{description}; keys: [{stage}](#{stage.lower()}) (only the keys you change)".lstrip("; ")
        out.append(f"| `{key}` | `{_cell(kind)}` | {default} | {_cell(_rst_to_markdown(description))} |")
    return out + [""]


def config_reference() -> str:
    """The Markdown of ``docs/reference/config.md``."""
    from selftrain.models.config import PRESETS

    out = ["# Configuration reference", "",
           "Generated by `python -m selftrain.reference` from the config dataclasses; do not edit by hand.",
           "Keys are written in YAML (`--config FILE`) or one at a time with `--set key=value`; nested",
           "keys are dotted (`threshold.target_wer`). An unknown key stops the command before any work.", ""]
    out += ["Contents:", ""]
    out += [f"- [{_load(spec).__name__}](#{_load(spec).__name__.lower()}): {where}" for spec, where in ROOTS]
    out += ["- [Model presets](#model-presets)", ""]
    for spec, where in ROOTS:
        cls = _load(spec)
        out += [f"## {cls.__name__}", "", f"Used by: {where}.", ""]
        for prefix, obj in _walk(cls(), ""):
            out += _section(cls.__name__, prefix, obj)
    out += ["## Model presets", "",
            "`preset` (of an experiment or a training) names a set of `model` keys (`selftrain.models.config.PRESETS`);",
            "`model.*` keys given beside it override the preset's.", "",
            "| preset | model keys |", "| --- | --- |"]
    for name in sorted(PRESETS):
        out.append(f"| `{name}` | `{_cell(_value(PRESETS[name]))}` |")
    return "\n".join(out).rstrip() + "\n"


def _commands() -> list[tuple[str, click.Command]]:
    """(full name, command) for every command and sub-command, sorted by name."""
    from selftrain.cli import main as cli_main

    found: list[tuple[str, click.Command]] = []

    def visit(name: str, command: click.Command, ctx: click.Context) -> None:
        found.append((name, command))
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                child = command.get_command(ctx, sub)
                if child is not None:
                    visit(f"{name} {sub}", child, click.Context(child, info_name=sub, parent=ctx))

    visit("selftrain", cli_main, click.Context(cli_main, info_name="selftrain"))
    return found


def cli_options() -> dict[str, list[str]]:
    """Every option and argument name of every command, by command (what the CLI page must cover);
    hidden options (deprecated names) are left out, as on the page."""
    return {name: [p.opts[0] if isinstance(p, click.Option) else p.name or "" for p in command.params
                   if not getattr(p, "hidden", False)]
            for name, command in _commands()}


def _default(param: click.Parameter) -> str:
    default = param.default
    if isinstance(param, click.Option) and param.is_flag and not callable(default):
        on = default is not _UNSET and bool(default)
        if param.secondary_opts:  # --on/--off: the switch that is in force by default
            return f"`{param.opts[0] if on else param.secondary_opts[0]}`"
        return "`true`" if on else "`false`"
    if default is _UNSET or default is None or default == ():
        return ""
    if callable(default):
        return "(computed)"
    if isinstance(default, tuple | list):
        return "`" + _cell(" ".join(str(v) for v in default)) + "`"
    return f"`{_cell(_value(default) if not isinstance(default, str) else default)}`"


def _type(param: click.Parameter) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    kind = param.type
    if isinstance(kind, click.Choice):
        return " \\| ".join(str(c) for c in kind.choices)
    if isinstance(kind, click.IntRange | click.FloatRange):
        low = "" if kind.min is None else kind.min
        high = "" if kind.max is None else kind.max
        return f"{kind.name}, {low}..{high}"
    return kind.name


def cli_reference() -> str:
    """The Markdown of ``docs/reference/cli.md``."""
    out = ["# Command-line reference", "",
           "Generated by `python -m selftrain.reference` from the click commands; do not edit by hand.",
           "`selftrain COMMAND --help` prints the same. `python cli.py ...` is the same application.", ""]
    commands = _commands()
    out += ["| command | what it does |", "| --- | --- |"]
    for name, command in commands:
        anchor = name.replace(" ", "-")
        out.append(f"| [`{name}`](#{anchor}) | {_cell(command.get_short_help_str(limit=200))} |")
    out.append("")
    for name, command in commands:
        ctx = click.Context(command, info_name=name)
        pieces = command.collect_usage_pieces(ctx)
        out += [f"## {name}", "", "```", f"{name} {' '.join(pieces)}".rstrip(), "```", ""]
        if command.help:
            out += [inspect.cleandoc(command.help).split("\f")[0].strip(), ""]
        params = [p for p in command.params if not getattr(p, "hidden", False)]
        if params:
            out += ["| option | type | default | help |", "| --- | --- | --- | --- |"]
            for param in params:
                if isinstance(param, click.Option):
                    names = ", ".join(param.opts + param.secondary_opts)
                    extra = " (repeatable)" if param.multiple else ""
                    extra += " (required)" if param.required else ""
                    help_text = (param.help or "") + extra
                else:
                    names = (param.name or "").upper()
                    help_text = "argument" + (" (required)" if param.required else "")
                out.append(f"| `{_cell(names)}` | {_type(param)} | {_default(param)} | {_cell(help_text)} |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


PAGES = {CONFIG_PAGE: config_reference, CLI_PAGE: cli_reference}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m selftrain.reference", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root (default: here)")
    parser.add_argument("--check", action="store_true", help="compare with the committed pages; exit 1 when stale")
    args = parser.parse_args(argv)
    stale = []
    for page, make in PAGES.items():
        path = args.root / page
        text = make()
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(page))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)}; run python -m selftrain.reference", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
