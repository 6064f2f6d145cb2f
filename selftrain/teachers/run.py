"""Transcribing a manifest with any teacher into selftrain records, resumably.

The output is the JSON-lines file ``selftrain decode`` writes (one :class:`~selftrain.record.Utterance`
per line with this teacher's hypothesis), so selection, agreement and audits read it unchanged; a
rerun skips the ids already written (:class:`~selftrain.io.JsonlWriter`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selftrain.data.audio import SkipLog
from selftrain.decode.run import screen_rows
from selftrain.errors import ConfigError
from selftrain.io import JsonlWriter
from selftrain.models.config import update_dataclass
from selftrain.record import Utterance
from selftrain.teachers.base import OutputSpace, Teacher
from selftrain.teachers.config import PocketSphinxConfig, WhisperConfig

__all__ = ["EXTERNAL_TEACHERS", "TranscribeReport", "external_teacher_config", "check_external_teacher",
           "load_external_teacher", "build_external_teacher", "transcribe_manifest"]

log = logging.getLogger(__name__)

EXTERNAL_TEACHERS = ("whisper", "pocketsphinx")
_CONFIGS = {"whisper": WhisperConfig, "pocketsphinx": PocketSphinxConfig}  # each teacher's settings


def _unknown_teacher(kind: str) -> ConfigError:
    return ConfigError(f"unknown teacher {kind!r}; choose one of {', '.join(EXTERNAL_TEACHERS)}")


@dataclass
class TranscribeReport:
    """What a transcription run did: ``bad_audio`` counts the rows skipped, by reason (as decoding's
    :class:`~selftrain.decode.DecodeReport` does)."""

    out: str
    teacher: str
    utterances: int
    already_done: int
    transcribed: int = 0
    bad_audio: dict[str, int] = field(default_factory=dict)
    audio_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        """Processing time per second of audio (lower is faster)."""
        return self.seconds / self.audio_seconds if self.audio_seconds else 0.0


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


def transcribe_manifest(teacher: Teacher, utterances: Sequence[Utterance], out: str | Path,
                        limit: int | None = None, progress: bool = True) -> TranscribeReport:
    """Transcribe ``utterances`` with ``teacher`` into the JSON-lines file ``out``, resuming.

    ``limit`` stops after that many newly written records. Rows are skipped and counted as in
    decoding: a repeated ID, text that is not UTF-8, unreadable audio.
    """
    started = time.monotonic()
    skipped = SkipLog()
    usable = screen_rows(utterances, skipped)
    bad = skipped.bad
    with JsonlWriter(out) as writer:
        done = frozenset(writer.done)
        report = TranscribeReport(str(out), teacher.name, len(utterances), sum(u.id in done for u in usable))
        for utt, hyp in teacher.transcribe(usable, bad, skip=done, progress=progress):
            writer.write(utt.with_hypothesis(hyp).to_dict())
            report.transcribed += 1
            report.audio_seconds += utt.duration
            if limit is not None and report.transcribed >= limit:
                break
    report.bad_audio = dict(bad)
    report.seconds = round(time.monotonic() - started, 3)
    if bad:
        log.warning("skipped %d utterances: %s", sum(bad.values()), dict(bad))
    return report
