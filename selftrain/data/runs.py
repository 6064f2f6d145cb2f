"""The ``runs`` column of a training manifest: the stretches of an utterance's audio that train, each
with its words, while the rest of the utterance is context (the selection's segments trained in
context, or given labels of parts of utterances). A JSON list ``[[start_s, end_s, "words"], ...]``
in an extra CSV column, so the manifest stays a SpeechBrain CSV that other tools read."""

from __future__ import annotations

import json
import math

from selftrain.errors import ManifestError
from selftrain.record import Utterance

__all__ = ["RUNS_COLUMN", "format_runs", "parse_runs"]

RUNS_COLUMN = "runs"


def format_runs(runs: list[tuple[float, float, str]]) -> str:
    """The column's text for ``runs`` (``(start, end, words)``)."""
    return json.dumps([[start, end, words] for start, end, words in runs], ensure_ascii=False)


def parse_runs(utt: Utterance) -> list[tuple[float, float, str]]:
    """The runs of a row's ``runs`` column as ``(start, end, words)`` (empty when it has none);
    :class:`~selftrain.errors.ManifestError` when the column is not a JSON list of ``[start, end, words]``
    with ``0 <= start < end`` (training clamps ``end`` to the audio and drops runs too short for their words)."""
    value = utt.extra.get(RUNS_COLUMN, "")
    if not value:
        return []
    try:
        runs = [(float(start), float(end), str(words)) for start, end, words in json.loads(value)]
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"{utt.id}: {RUNS_COLUMN}={value!r} is not a JSON list of [start, end, words]") from exc
    for start, end, _ in runs:
        if not (math.isfinite(start) and math.isfinite(end) and 0.0 <= start < end):
            raise ManifestError(f"{utt.id}: run [{start}, {end}] is not a span of seconds")
    return runs
