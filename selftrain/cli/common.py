"""Helpers shared by the CLI commands: options made from config fields, and library errors turned
into click errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from selftrain.config_docs import option_help
from selftrain.errors import ConfigError, SelftrainError
from selftrain.messages import one_line

__all__ = ["field_option", "user_errors", "one_line"]


def field_option(config: type, field: str, *decls: str, extra: str = "", **attrs: Any) -> Callable[[Any], Any]:
    """A click option that sets ``config``'s ``field``: its default (shown in ``--help`` unless it is
    None) and its help (the field's description, then ``extra``) come from the dataclass, so neither
    is written twice. ``decls`` default to ``--field-name``; other click attributes (``type``, a
    ``default`` the command must translate) are passed on."""
    default = getattr(config(), field)
    attrs.setdefault("default", default)
    attrs.setdefault("show_default", attrs["default"] is not None)
    return click.option(*(decls or (f"--{field.replace('_', '-')}",)), help=option_help(config, field, extra), **attrs)


@contextmanager
def user_errors() -> Iterator[None]:
    """Report a :class:`SelftrainError` as a clean CLI error instead of a traceback.

    A :class:`ConfigError` (a bad option value, config file or ``--set`` key) is a usage error:
    ``click.UsageError``, exit code 2, after the command's usage line. Every other one is a runtime
    failure (unreadable input, a corrupt model or LM, a busy work folder, a full disk, a missing
    package): a ``click.ClickException`` on one line, exit code 1, without the usage text, which
    says nothing about it. Other exceptions are bugs and keep their traceback.
    """
    try:
        yield
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    except SelftrainError as exc:
        raise click.ClickException(one_line(str(exc))) from exc
