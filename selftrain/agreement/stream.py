"""Teachers' hypothesis files merged one utterance at a time, never held whole.

:func:`~selftrain.agreement.teachers.merge_teachers` loads every file; :class:`MergedTeachers` gives
the same utterances in the same order (first appearance across the files) while holding only an
index: each id once, and per file the byte offset of its line. Iterating it reads, for each
utterance, its line from every file that has it (files written in one order, as decoding writes
them, are read front to back).

>>> merged = MergedTeachers(["hyps_lm.jsonl", "hyps_greedy.jsonl"])  # doctest: +SKIP
>>> for utt in merged: ...                                          # doctest: +SKIP
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from selftrain.agreement.teachers import CoverageReport, absorb, teacher_record
from selftrain.errors import ManifestError
from selftrain.record import Utterance
from selftrain.text import TextNormalizer

__all__ = ["MergedTeachers"]

_MISSING = -1


def _lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` of the complete, non-blank lines (as :func:`~selftrain.io.read_jsonl` reads them)."""
    offset = 0
    for raw in handle:
        if not raw.endswith(b"\n"):
            return  # torn write from an interrupted run: not a record
        if raw.strip():
            yield offset, raw
        offset += len(raw)


def _parse(raw: bytes, path: Path) -> object:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ManifestError(f"{path}: not JSON lines ({exc})") from exc


class MergedTeachers:
    """Hypothesis files merged by utterance id, streamed (see the module docstring).

    Raises :class:`ManifestError` at creation for what :func:`merge_teachers` refuses (a missing
    file, a line that is not JSON, a line without an id, an id twice in one file).
    """

    def __init__(self, hyp_files: list[str | Path], teachers: list[str | None] | None = None,
                 normalizer: TextNormalizer | None = None):
        self.paths = [Path(p) for p in hyp_files]
        self.names = teachers or [None] * len(self.paths)
        if len(self.names) != len(self.paths):
            raise ManifestError(f"{len(self.names)} teacher names for {len(self.paths)} hypothesis files")
        self.normalizer = normalizer
        self._order: dict[str, int] = {}
        self._offsets: list[array] = []
        self._line_numbers: list[array] = []
        for path in self.paths:
            self._index(path)

    def _index(self, path: Path) -> None:
        if not path.exists():
            raise ManifestError(f"hypothesis file not found: {path}")
        offsets, numbers = array("q"), array("q")
        seen: set[int] = set()
        with open(path, "rb") as handle:
            for line_no, (offset, raw) in enumerate(_lines(handle), start=1):
                row = _parse(raw, path)
                if not isinstance(row, dict) or "id" not in row:
                    raise ManifestError(f"{path}:{line_no}: a hypothesis line needs an 'id'")
                index = self._order.setdefault(str(row["id"]), len(self._order))
                if index in seen:
                    raise ManifestError(f"{path}:{line_no}: duplicate utterance id {str(row['id'])!r}")
                seen.add(index)
                while len(offsets) <= index:
                    offsets.append(_MISSING)
                    numbers.append(0)
                offsets[index], numbers[index] = offset, line_no
        self._offsets.append(offsets)
        self._line_numbers.append(numbers)

    def __len__(self) -> int:
        return len(self._order)

    def _has(self, file: int, index: int) -> bool:
        offsets = self._offsets[file]
        return index < len(offsets) and offsets[index] != _MISSING

    def report(self) -> CoverageReport:
        """Which ids each file lacks, as :func:`merge_teachers` reports them."""
        report = CoverageReport(files=[str(p) for p in self.paths])
        for file, path in enumerate(self.paths):
            lacking = [utt_id for utt_id, index in self._order.items() if not self._has(file, index)]
            if lacking:
                report.missing[str(path)] = lacking
        return report

    def _record(self, handle: IO[bytes], file: int, index: int) -> Utterance:
        path, name = self.paths[file], self.names[file]
        handle.seek(self._offsets[file][index])
        where = f"{path}:{self._line_numbers[file][index]}"
        return teacher_record(_parse(handle.readline(), path), name or path.stem, bool(name), self.normalizer, where)

    def __iter__(self) -> Iterator[Utterance]:
        handles = [open(p, "rb") for p in self.paths]  # noqa: SIM115 (closed below)
        try:
            for index in range(len(self._order)):
                merged: Utterance | None = None
                for file, handle in enumerate(handles):
                    if not self._has(file, index):
                        continue
                    utt = self._record(handle, file, index)
                    if merged is None:
                        merged = utt
                    else:
                        absorb(merged, utt, self.paths[file].stem)
                if merged is not None:
                    yield merged
        finally:
            for handle in handles:
                handle.close()
