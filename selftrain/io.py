"""Crash-safe file writing: atomic replacement and resumable JSON-lines streams.

A reader must never take a half-written file for a finished one: whole files are written to a
temporary sibling, fsync'ed and renamed; streams of records are appended line by line and a torn
last line (from a kill mid-write) is dropped when the stream is reopened.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_UMASK = os.umask(0)
os.umask(_UMASK)

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "read_jsonl", "JsonlWriter"]


@contextmanager
def atomic_write(
    path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None,
    errors: str | None = None,
) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; give the usual permissions
    if "b" in mode:
        encoding = None
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline, errors=errors) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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

    def __init__(self, path: str | Path, key: str = "id", resume: bool = True, fsync_every: int = 50):
        self.path = Path(path)
        self.key = key
        self.fsync_every = fsync_every
        self.done: set[str] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.exists():
            self._recover()
        elif self.path.exists():
            self.path.unlink()
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
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

    def write(self, record: dict) -> None:
        """Append one record (one line) and remember its key."""
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.done.add(str(record[self.key]))
        self._pending += 1
        if self._pending >= self.fsync_every:
            self.sync()

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._pending = 0

    def close(self) -> None:
        if not self._handle.closed:
            self.sync()
            self._handle.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
