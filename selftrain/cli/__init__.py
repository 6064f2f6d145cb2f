"""The ``selftrain`` command line: one command per stage, each a thin layer over the library.

Commands are imported only when invoked, so ``selftrain --help`` starts instantly (torch and
speechbrain are never imported for it). To add a command, add ``name: "module:attribute"`` to
:data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
import logging

import click

from selftrain import __version__

__all__ = ["main", "COMMANDS"]

# name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "audit": "selftrain.cli.audit:audit",
    "data": "selftrain.cli.data:data",
    "decode": "selftrain.cli.decode:decode",
    "eval": "selftrain.cli.decode:eval_command",
    "generation": "selftrain.cli.run:generation",
    "lm": "selftrain.cli.lm:lm",
    "run": "selftrain.cli.run:run",
    "select": "selftrain.cli.select:select",
    "status": "selftrain.cli.run:status",
    "synth": "selftrain.cli.synth:synth",
    "train": "selftrain.cli.train:train",
    "transcribe": "selftrain.cli.transcribe:transcribe",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands:
            module_name, attribute = self.lazy_commands[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attribute)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="selftrain")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """Semi-supervised self-training of CTC speech recognizers with filtered pseudo-labels."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
