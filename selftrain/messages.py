"""How a message that may span lines is reported where one line is wanted (a CLI error, a config
error naming its file)."""

from __future__ import annotations

__all__ = ["one_line"]


def one_line(message: str) -> str:
    """``message`` on one line: its non-blank lines, stripped, joined by `` | ``.

    >>> one_line("lmplz failed (exit 1):\\n  bad input\\n")
    'lmplz failed (exit 1): | bad input'
    """
    return " | ".join(line.strip() for line in message.splitlines() if line.strip())
