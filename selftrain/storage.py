"""A write that fails for lack of space or write access becomes one clear :class:`StorageError`.

A full disk (``ENOSPC``, ``EDQUOT``) or a read-only folder (``EROFS``, ``EACCES``, ``EPERM``) can
strike any write of a stage. Writers of :mod:`selftrain.io` turn the ``OSError`` into a
:class:`~selftrain.errors.StorageError` naming the path and the space needed, and
:meth:`~selftrain.generation.workdir.Workdir.run_stage` does the same for the writes of libraries
(checkpoints, logs). Published files are written atomically, so nothing finished is lost and the
same command resumes once there is room.

>>> raise storage_error(OSError(errno.ENOSPC, "No space left on device"), "W/x.jsonl", 10**6)  # doctest: +SKIP
StorageError: cannot write W/x.jsonl: no space left on the device (0 B free there, about 65.0 MiB needed) ...
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from selftrain.errors import StorageError

__all__ = ["SpaceConfig", "SPACE", "FULL_ERRNOS", "READ_ONLY_ERRNOS", "is_storage_error", "storage_error",
           "free_bytes", "format_bytes", "storage_errors", "as_storage_error",
           "folder_bytes"]

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


@dataclass(frozen=True)
class SpaceConfig:
    """How much room a failed write asks for.

    ``headroom_mib`` (default 64 MiB) is added to what the failed file needed (the bytes it had
    reached, or an estimate of the rest of a stream): room for the stage's next files (checkpoints,
    done markers) so that the rerun does not stop again at the next write.
    """

    headroom_mib: float = 64.0

    @property
    def headroom_bytes(self) -> int:
        return int(self.headroom_mib * 2**20)


SPACE = SpaceConfig()


def is_storage_error(exc: BaseException) -> bool:
    """True for an ``OSError`` meaning a full disk or a folder that cannot be written."""
    return isinstance(exc, OSError) and exc.errno in FULL_ERRNOS | READ_ONLY_ERRNOS


def format_bytes(count: int) -> str:
    """``1536`` -> ``'1.5 KiB'``."""
    value, unit = float(count), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):  # noqa: B007 (the last unit is used below)
        if abs(value) < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the file system holding ``path`` (its nearest existing folder); None if unknown."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def storage_error(exc: OSError, path: str | Path, needed: int = 0, space: SpaceConfig = SPACE) -> StorageError:
    """The one-line :class:`StorageError` for ``exc`` met while writing ``path``.

    ``needed``: the bytes the failed write still needs (to which ``space.headroom_bytes`` is added).
    """
    where = str(path)
    reason = exc.strerror or str(exc)
    if exc.errno in FULL_ERRNOS:
        free = free_bytes(where)
        wanted = max(needed, 0) + space.headroom_bytes
        have = "unknown" if free is None else format_bytes(free)
        message = (f"cannot write {where}: {reason.lower()} ({have} free there, about {format_bytes(wanted)} "
                   "needed); free some space and run the same command again: finished work is kept and the stage resumes")
        return StorageError(message, where, free, wanted)
    message = (f"cannot write {where}: {reason.lower()} (the folder is read-only or not yours); make it writable "
               "and run the same command again: finished work is kept and the stage resumes")
    return StorageError(message, where)


@contextmanager
def storage_errors(path: str | Path, needed: int = 0) -> Iterator[None]:
    """Turn a full-disk or read-only ``OSError`` raised inside the block into a :class:`StorageError`."""
    try:
        yield
    except OSError as exc:
        if not is_storage_error(exc):
            raise
        raise storage_error(exc, path, needed) from exc


# What torch's RuntimeError says when ``torch.save`` cannot write (it raises no OSError); versions differ.
_TORCH_WRITE_MARKERS = ("file write failed", "failed writing file", "PytorchStreamWriter", "inline_container")


def _torch_write_failed(exc: BaseException) -> bool:
    """True for torch's error when a save cannot write its file."""
    return isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in _TORCH_WRITE_MARKERS)


def as_storage_error(exc: BaseException, folder: Path, needed: int = 0, space: SpaceConfig = SPACE) -> StorageError | None:
    """The :class:`StorageError` that ``exc``, raised by any write under ``folder``, stands for; else None.

    An ``OSError`` names its file; torch's failed save (a RuntimeError) counts when ``folder`` is
    nearly full (less than ``space.headroom_bytes`` free) or not writable. ``needed``: what the
    failed write is expected to need (e.g. the size of the last checkpoint).
    """
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError) and is_storage_error(exc):
        return storage_error(exc, exc.filename or folder, needed, space)
    if not _torch_write_failed(exc):
        return None
    free = free_bytes(folder)
    if free is not None and free < space.headroom_bytes + needed:
        return storage_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), folder, needed, space)
    if not os.access(folder, os.W_OK):
        return storage_error(OSError(errno.EROFS, os.strerror(errno.EROFS)), folder, needed, space)
    return None


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder``."""
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
