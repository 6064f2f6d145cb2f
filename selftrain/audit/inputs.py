"""Reading records for audits: decoded JSON-lines, and reference transcripts attached by ID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from selftrain.data.manifest import iter_manifest
from selftrain.errors import ManifestError
from selftrain.io import read_jsonl
from selftrain.record import Utterance

__all__ = ["load_records", "iter_records", "reference_texts", "attach_references"]


def load_records(path: str | Path) -> list[Utterance]:
    """Read :class:`Utterance` records from a JSON-lines file (a torn last line is ignored)."""
    try:
        return [Utterance.from_dict(row) for row in read_jsonl(path)]
    except (ValueError, TypeError, KeyError) as exc:
        raise ManifestError(f"{path}: not a file of selftrain records ({exc})") from exc


def iter_records(path: str | Path) -> Iterator[Utterance]:
    """:func:`load_records` one record at a time."""
    try:
        for row in read_jsonl(path):
            yield Utterance.from_dict(row)
    except (ValueError, TypeError, KeyError) as exc:
        raise ManifestError(f"{path}: not a file of selftrain records ({exc})") from exc


def reference_texts(reference_manifest: str | Path) -> dict[str, str | None]:
    """A manifest's transcripts by ID (the last row of a repeated ID), read as a stream: only the texts are held."""
    return {u.id: u.reference for u in iter_manifest(reference_manifest)}


def attach_references(utterances: list[Utterance], reference_manifest: str | Path) -> int:
    """Set ``reference`` from a manifest's transcripts, matched by ID; return how many matched."""
    references = reference_texts(reference_manifest)
    matched = 0
    for utt in utterances:
        if references.get(utt.id) is not None:
            utt.reference = references[utt.id]
            matched += 1
    return matched
