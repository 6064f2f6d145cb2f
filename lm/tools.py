"""Locating and running KenLM's command-line tools (``lmplz``, ``build_binary``).

The Python ``kenlm`` wheel only queries models; estimating one needs KenLM's own C++ tools, which
``scripts/setup.sh`` builds from kenlm's source distribution into the virtualenv's ``bin`` folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from selftrain.errors import LMError
from selftrain.storage import SPACE, free_bytes, storage_error, storage_errors

__all__ = ["find_kenlm_tool", "run_tool", "HOW_TO_GET_TOOLS"]

HOW_TO_GET_TOOLS = (
    "run scripts/setup.sh, which builds lmplz and build_binary from kenlm's source distribution "
    "into the virtualenv's bin folder (or put KenLM's binaries on PATH)"
)


def find_kenlm_tool(name: str) -> Path:
    """Path of KenLM tool ``name``: the running virtualenv's ``bin`` folder first, then ``PATH``.

    Raises :class:`LMError` saying how to get the tools when neither has it.
    """
    candidate = Path(sys.prefix) / "bin" / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise LMError(f"KenLM's {name!r} was not found in {candidate.parent} or on PATH: {HOW_TO_GET_TOOLS}")


def run_tool(args: list[str], stdin_path: Path | None = None, stdout_path: Path | None = None,
             writes_to: Path | None = None) -> str:
    """Run a tool, feeding/capturing files; returns its stderr. Raises :class:`LMError` on failure,
    or :class:`~selftrain.errors.StorageError` when the folder it writes to (``writes_to``, else the
    folder of ``stdout_path``) is full: a tool's own report of a full disk is not one line."""
    with ExitStack() as files:
        stdin = files.enter_context(open(stdin_path, "rb")) if stdin_path else None
        with storage_errors(stdout_path or "."):
            stdout = files.enter_context(open(stdout_path, "wb")) if stdout_path else subprocess.DEVNULL
        try:
            result = subprocess.run(args, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, check=False)
        except OSError as exc:
            raise LMError(f"cannot run {args[0]}: {exc}") from exc
    stderr = result.stderr.decode("utf-8", errors="replace")
    if result.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        failure = LMError(f"{Path(args[0]).name} failed (exit {result.returncode}):\n{tail}")
        folder = writes_to or (stdout_path.parent if stdout_path else None)
        free = free_bytes(folder) if folder is not None else None
        if folder is not None and free is not None and free < SPACE.headroom_bytes:
            raise storage_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), folder) from failure
        raise failure
    return stderr
