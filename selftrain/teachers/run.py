"""Transcribing a manifest with any teacher (CTC model or ensemble, Whisper, PocketSphinx) into
selftrain records, resumably: the one writer of teacher output.

The output is the JSON-lines file ``selftrain decode`` writes (one :class:`~selftrain.record.Utterance`
per line with this teacher's hypothesis), so selection, agreement and audits read it unchanged; a
rerun skips the ids already written (:class:`~selftrain.io.JsonlWriter`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Set, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selftrain.data.audio import SkipLog
from selftrain.decode.run import DecodeReport, Shard, iter_screened
from selftrain.errors import ConfigError, StorageError
from selftrain.io import JsonlWriter
from selftrain.models.config import update_dataclass
from selftrain.record import Hypothesis, Utterance
from selftrain.storage import storage_error
from selftrain.teachers.base import OutputSpace, Teacher
from selftrain.teachers.config import PocketSphinxConfig, WhisperConfig

__all__ = ["EXTERNAL_TEACHERS", "external_teacher_config", "check_external_teacher",
           "load_external_teacher", "build_external_teacher", "transcribe_manifest"]

log = logging.getLogger(__name__)

EXTERNAL_TEACHERS = ("whisper", "pocketsphinx")
_CONFIGS = {"whisper": WhisperConfig, "pocketsphinx": PocketSphinxConfig}  # each teacher's settings


def _unknown_teacher(kind: str) -> ConfigError:
    return ConfigError(f"unknown teacher {kind!r}; choose one of {', '.join(EXTERNAL_TEACHERS)}")


def external_teacher_config(kind: str, settings: dict[str, Any] | None = None,
                            where: str = "settings") -> WhisperConfig | PocketSphinxConfig:
    """The settings of the external teacher ``kind`` with ``settings`` (a mapping of its fields) applied.

    An unknown kind, an unknown key (named ``<where>.<key>``) or a bad value raises :class:`ConfigError`.

    >>> external_teacher_config("whisper", {"beam_size": 2}).beam_size
    2
    """
    if kind not in _CONFIGS:
        raise _unknown_teacher(kind)
    config = _CONFIGS[kind]()
    update_dataclass(config, settings or {}, where)
    config.__post_init__()  # the checks of the constructor, on the updated values
    return config


def check_external_teacher(kind: str, config: WhisperConfig | PocketSphinxConfig) -> None:
    """Raise a :class:`ConfigError` (:class:`MissingExtraError`, :class:`ModelFolderError`) when the teacher
    could not be built: its package or model folder is missing. Loads no model, so it is cheap."""
    if kind == "whisper":
        from selftrain.teachers.whisper import check_whisper

        check_whisper(config)  # type: ignore[arg-type]
    elif kind == "pocketsphinx":
        from selftrain.teachers.sphinx import check_pocketsphinx

        check_pocketsphinx(config)  # type: ignore[arg-type]
    else:
        raise _unknown_teacher(kind)


def load_external_teacher(kind: str, config: WhisperConfig | PocketSphinxConfig, space: OutputSpace | None = None,
                          name: str | None = None) -> Teacher:
    """Load the external teacher ``kind`` with its settings ``config`` (see :func:`external_teacher_config`)."""
    if kind == "whisper":
        from selftrain.teachers.whisper import WhisperTeacher

        return WhisperTeacher(config, space, name or kind)  # type: ignore[arg-type]
    if kind == "pocketsphinx":
        from selftrain.teachers.sphinx import PocketSphinxTeacher

        return PocketSphinxTeacher(config, space, name or kind)  # type: ignore[arg-type]
    raise _unknown_teacher(kind)


def build_external_teacher(kind: str, model_dir: str | None = None, space: OutputSpace | None = None,
                           name: str | None = None, beam_size: int | None = None) -> Teacher:
    """A Whisper or PocketSphinx teacher with default settings except those given."""
    if kind == "pocketsphinx" and beam_size is not None:
        raise ConfigError("a beam size applies to whisper only (pocketsphinx's beam is a pruning threshold)")
    settings: dict[str, Any] = {"model_dir": model_dir}
    if beam_size is not None:
        settings["beam_size"] = beam_size
    return load_external_teacher(kind, external_teacher_config(kind, settings), space, name)


@dataclass
class _Tally:
    """Counts of a manifest read as a stream: rows handed to the teacher and those of them already done."""

    selected: int = 0
    already_done: int = 0


def _tallied(utterances: Iterable[Utterance], done: Set[str], tally: _Tally) -> Iterator[Utterance]:
    for utt in utterances:
        tally.selected += 1
        tally.already_done += utt.id in done
        yield utt


def _audio_seconds(utt: Utterance, hyp: Hypothesis, frame_shift: float | None) -> float:
    """The manifest's duration; without one, the hypothesis' frames (a CTC teacher reads them all)."""
    return utt.duration or hyp.num_frames * (frame_shift or 0.0)


def transcribe_manifest(teacher: Teacher, utterances: Iterable[Utterance], out: str | Path,
                        limit: int | None = None, progress: bool = True, *, shard: Shard | None = None) -> DecodeReport:
    """Transcribe ``utterances`` (this ``shard`` of them) with any ``teacher`` into the JSON-lines file
    ``out``, resuming: the one writer of teacher output (``selftrain decode``, ``selftrain transcribe``
    and the decode stage of ``selftrain run``).

    ``utterances`` may be a stream (:class:`~selftrain.data.manifest.ManifestStream`): only the
    teacher's current batch, the ids seen (for repeated ones) and the ids already written are held,
    so memory does not grow with the manifest. ``limit`` stops after that many newly written records
    (tests and trial runs); the rest of the manifest is still read for the counts. Rows are skipped
    and listed in the report, never a crash: a repeated ID or text that is not UTF-8 before any audio
    is read, then unusable audio (see :class:`~selftrain.decode.DecodeReport`). The teacher stays
    open for the caller.
    """
    started = time.monotonic()
    screened, skipped = SkipLog(), SkipLog()  # rows left out before any audio is read; then audio problems
    tally = _Tally()
    usable = iter_screened(utterances, screened, shard)
    selected = shard.stream(usable, teacher.batch_size) if shard else usable
    with JsonlWriter(out) as writer:
        done = frozenset(writer.done)
        stream = _tallied(selected, done, tally)
        report = DecodeReport(str(out), teacher.name, teacher.decoder_name, str(shard) if shard else None, 0, 0, 0)
        try:
            for utt, hyp in teacher.transcribe(stream, skipped, skip=done, progress=progress):
                writer.write(utt.with_hypothesis(hyp).to_dict())
                report.decoded += 1
                report.audio_seconds += _audio_seconds(utt, hyp, teacher.frame_shift_seconds)
                if limit is not None and report.decoded >= limit:
                    break
        except StorageError as exc:
            left = len(utterances) - tally.already_done - report.decoded if isinstance(utterances, Sized) else None
            raise _space_for_the_rest(exc, Path(out), tally.already_done + report.decoded, left) from exc.__cause__
    for _ in stream:  # a limited run: count the rows it did not reach
        pass
    report.utterances = tally.selected + len(screened.rows)
    report.already_done = tally.already_done
    report.bad_audio = dict(screened.bad + skipped.bad)
    report.skipped_rows, report.converted = screened.rows + skipped.rows, dict(skipped.converted)
    report.seconds = round(time.monotonic() - started, 3)
    if report.skipped_rows:
        log.warning("skipped %d utterances: %s", len(report.skipped_rows), report.bad_audio)
    return report


def _space_for_the_rest(exc: StorageError, out: Path, written: int, left: int | None) -> StorageError:
    """``exc`` asking for room for the ``left`` records still to write (at the size of those written);
    ``exc`` itself when that is unknown (a manifest read as a stream)."""
    cause = exc.__cause__
    if exc.needed_bytes is None or not isinstance(cause, OSError) or not written or left is None or not out.exists():
        return exc
    per_record = out.stat().st_size / written
    return storage_error(cause, out, int(per_record * max(left, 1)))
