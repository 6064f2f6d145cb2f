"""Helpers shared by the CLI commands: turning library errors into click errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from selftrain.errors import SelftrainError

__all__ = ["user_errors"]


@contextmanager
def user_errors() -> Iterator[None]:
    """Report a :class:`SelftrainError` as a clean CLI error (exit code 2) instead of a traceback."""
    try:
        yield
    except SelftrainError as exc:
        raise click.UsageError(str(exc)) from exc
