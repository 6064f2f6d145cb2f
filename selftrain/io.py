"""Crash-safe file writing: atomic replacement and resumable JSON-lines streams.

A reader must never take a half-written file for a finished one: whole files are written to a
temporary sibling, fsync'ed and renamed; streams of records are appended line by line and a torn
last line (from a kill mid-write) is dropped when the stream is reopened.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from selftrain.storage import is_storage_error, storage_error, storage_errors

_UMASK = os.umask(0)
os.umask(_UMASK)

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "read_jsonl", "JsonlWriter"]


class _CountedFile(io.FileIO):
    """A file whose writes go through :func:`os.write` (where tests fill the disk) and are counted."""

    written = 0

    def write(self, data: Any) -> int:
        count = os.write(self.fileno(), data)
        self.written += count
        return count


def _open_counted(fd: int, mode: str, encoding: str | None, newline: str | None,
                  errors: str | None) -> tuple[IO[Any], _CountedFile]:
    """What ``os.fdopen(fd, mode, ...)`` opens, over a :class:`_CountedFile`."""
    raw = _CountedFile(fd, "wb")
    buffered = io.BufferedWriter(raw, buffer_size=max(os.fstat(fd).st_blksize, io.DEFAULT_BUFFER_SIZE))
    if "b" in mode:
        return buffered, raw
    return io.TextIOWrapper(buffered, encoding=encoding, errors=errors, newline=newline), raw


@contextmanager
def atomic_write(
    path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None,
    errors: str | None = None,
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    A full disk or a read-only folder raises :class:`~selftrain.errors.StorageError` naming ``path``
    (the old file, if any, is kept and the temporary file removed).
    """
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    raw: _CountedFile | None = None
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; give the usual permissions
        handle, raw = _open_counted(fd, mode, None if "b" in mode else encoding, newline, errors)
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        if raw is None:
            os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and is_storage_error(exc):
            raise storage_error(exc, path, raw.written if raw else 0) from exc
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path) as handle:
        handle.write(text)


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Yield the complete JSON objects of a JSON-lines file, skipping a torn (unterminated) last line."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                return  # torn write from an interrupted run: not a record
            line = line.strip()
            if line:
                yield json.loads(line)


class JsonlWriter:
    """Append records to a JSON-lines file, resuming after an interruption.

    On open, an existing file is scanned: complete records' ``key`` values go to :attr:`done` and a
    torn last line is cut off, so callers skip finished items and never duplicate or lose one.

    >>> with JsonlWriter("hyps.jsonl") as out:  # doctest: +SKIP
    ...     for utt in utterances:
    ...         if utt.id not in out.done:
    ...             out.write(utt.to_dict())
    """

    def __init__(self, path: str | Path, key: str = "id", resume: bool = True, fsync_every: int = 50,
                 buffer_bytes: int = io.DEFAULT_BUFFER_SIZE):
        self.path = Path(path)
        self.key = key
        self.fsync_every = fsync_every
        self.buffer_bytes = buffer_bytes
        self.done: set[str] = set()
        with storage_errors(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if resume and self.path.exists():
                self._recover()
            elif self.path.exists():
                self.path.unlink()
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._buffer = bytearray()
        self._pending = 0

    def _recover(self) -> None:
        good_bytes = 0
        with open(self.path, "rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break
                try:
                    record = json.loads(raw)
                except ValueError:
                    break
                self.done.add(str(record[self.key]))
                good_bytes += len(raw)
        if good_bytes != self.path.stat().st_size:
            with open(self.path, "r+b") as handle:
                handle.truncate(good_bytes)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def write(self, record: dict) -> None:
        """Append one record (one line) and remember its key."""
        self._buffer += (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        self.done.add(str(record[self.key]))
        self._pending += 1
        if len(self._buffer) >= self.buffer_bytes:
            self._flush()
        if self._pending >= self.fsync_every:
            self.sync()

    def _flush(self) -> None:
        """Write the buffered lines; on failure the writer closes (a torn last line is cut on resume)."""
        data, self._buffer = bytes(self._buffer), bytearray()
        offset = 0
        try:
            while offset < len(data):
                offset += os.write(self._open_fd(), data[offset:])
        except OSError as exc:
            self._abandon()
            if is_storage_error(exc):
                raise storage_error(exc, self.path, len(data) - offset) from exc
            raise

    def _open_fd(self) -> int:
        if self._fd is None:
            raise ValueError(f"{self.path}: writer is closed")
        return self._fd

    def _abandon(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._buffer = bytearray()

    def sync(self) -> None:
        self._flush()
        try:
            os.fsync(self._open_fd())
        except OSError as exc:
            self._abandon()
            if is_storage_error(exc):
                raise storage_error(exc, self.path) from exc
            raise
        self._pending = 0

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            self._abandon()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
