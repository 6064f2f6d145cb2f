"""What each stage of an experiment produced: frozen dataclasses, stored as JSON in the stage's done marker.

The JSON keys are those the stages wrote before their results were typed, so work folders made then
open and resume unchanged: a key that older folders lack has a default, and an optional key is
left out of the JSON while it is None, as the stages left it out. Stages hand these to each other
(the selection reads the decode stage's :class:`DecodeResult`), never a dict read by key.

>>> Scores.from_dict({"wer": 0.25, "cer": 0.1, "utterances": 40}).wer
0.25
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from selftrain.errors import ConfigError
from selftrain.generation.workdir import DONE_MARKER, Workdir

__all__ = ["Result", "StageResult", "TeacherFile", "DecodedSplit", "Scores", "ExternalResult", "ExternalFiles",
           "DecodeResult", "SelectResult", "AuditStageResult", "ContinuousTraining", "TrainResult", "LMResult",
           "TuneStageResult", "EvalResult", "run_typed"]

R = TypeVar("R", bound="Result")
# Field metadata: OPTIONAL fields are left out of the JSON while None; a FLAT field's own fields
# are keys of its parent's JSON (a continuous training's figures sit beside the model's folder).
OPTIONAL, FLAT = "optional", "flat"


def optional() -> Any:
    """A field that is None when the stage did not produce it, and then absent from the JSON."""
    return field(default=None, metadata={OPTIONAL: True})


class Result:
    """JSON conversion of the frozen dataclasses below, from their fields' types (nested results,
    ``dict[str, Result]``, tuples and ``X | None``); other values are kept as they are. Written here
    because ``dataclasses.asdict`` can neither leave optional keys out nor read nested types back."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for item in fields(self):  # type: ignore[arg-type]  # every subclass is a dataclass
            value = getattr(self, item.name)
            if value is None and (item.metadata.get(OPTIONAL) or item.metadata.get(FLAT)):
                continue
            if item.metadata.get(FLAT):
                data.update(value.to_dict())
            else:
                data[item.name] = _plain(value)
        return data

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        """The result stored as ``data``; keys this type does not know are ignored. A missing key that
        has no default raises :class:`ConfigError` naming it."""
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for item in fields(cls):  # type: ignore[arg-type]
            if item.metadata.get(FLAT):
                nested = _optional_type(hints[item.name])
                if any(inner.name in data for inner in fields(nested)):
                    values[item.name] = nested.from_dict(data)
            elif item.name in data:
                values[item.name] = _typed(hints[item.name], data[item.name])
            elif item.default is MISSING and item.default_factory is MISSING:
                raise ConfigError(f"{cls.__name__} without its {item.name!r} key")
        return cls(**values)

    @classmethod
    def read(cls: type[R], stage_dir: Path) -> R:
        """The result in a finished stage's done marker (:class:`ConfigError` naming the folder when
        the stage is not finished or its marker is not such a result)."""
        marker = stage_dir / DONE_MARKER
        if not marker.exists():
            raise ConfigError(f"{stage_dir} is not finished (no {DONE_MARKER} marker)")
        try:
            return cls.from_dict(json.loads(marker.read_text(encoding="utf-8")))
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"{marker}: {exc}") from exc


class StageResult(Result):
    """What a stage's done marker holds; ``seconds``, the stage's wall time, is set when the marker
    is written (by :meth:`~selftrain.generation.workdir.Workdir.run_stage`)."""

    seconds: float | None


def _plain(value: Any) -> Any:
    """``value`` as JSON data (results become dicts, tuples lists)."""
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _optional_type(hint: Any) -> Any:
    """``X`` for ``X | None``; other hints as they are."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(arg for arg in args if arg is not type(None))
    return hint


def _typed(hint: Any, value: Any) -> Any:
    """JSON ``value`` as the type ``hint`` names."""
    if value is None:
        return None
    hint = _optional_type(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(hint, type) and issubclass(hint, Result):
        return hint.from_dict(value)
    if origin is tuple:
        return tuple(_typed(args[0], item) for item in value)
    if origin is dict and isinstance(args[1], type) and issubclass(args[1], Result):
        return {key: args[1].from_dict(item) for key, item in value.items()}
    return value


def run_typed(workdir: Workdir, stage_dir: Path, kind: type[R], work: Callable[[Path], R], force: bool = False) -> R:
    """:meth:`Workdir.run_stage` for a stage whose result is a ``kind``: ``work``'s result is stored
    as its JSON, and the result returned is read back from it, so a finished stage and one that has
    just run give the same result."""

    def stored(out: Path) -> dict[str, Any]:
        result = work(out)
        if not isinstance(result, kind):
            raise TypeError(f"{stage_dir}: the stage returned a {type(result).__name__}, not a {kind.__name__}")
        return result.to_dict()

    return kind.from_dict(workdir.run_stage(stage_dir, stored, force))


@dataclass(frozen=True, kw_only=True)
class TeacherFile(Result):
    """One teacher's hypotheses of one split: its JSON-lines file (in the stage's folder), the
    utterances it holds and the rows left out by reason; an external teacher's speed too."""

    file: str
    decoded: int
    bad_audio: dict[str, int]
    real_time_factor: float | None = optional()


@dataclass(frozen=True, kw_only=True)
class DecodedSplit(Result):
    """A split decoded by every teacher of a generation; ``ensemble``: the members averaged in."""

    teachers: dict[str, TeacherFile]
    ensemble: tuple[str, ...] | None = optional()

    def files(self, folder: Path) -> list[Path]:
        """The teachers' hypothesis files, in ``folder`` (the stage's folder that wrote them)."""
        return [folder / teacher.file for teacher in self.teachers.values()]


@dataclass(frozen=True, kw_only=True)
class Scores(Result):
    """Error rates of the LM teacher's hypotheses; ``errors``: the WER by kind (substitutions,
    deletions, insertions per reference word; evaluations made before it was recorded lack it)."""

    wer: float
    cer: float
    utterances: int
    errors: dict[str, float] | None = optional()


@dataclass(frozen=True, kw_only=True)
class ExternalResult(StageResult):
    """Stage ``W/external/``: the external teachers' hypotheses of the unlabeled and dev audio."""

    unlabeled: DecodedSplit
    dev: DecodedSplit
    seconds: float | None = optional()


@dataclass(frozen=True, kw_only=True)
class ExternalFiles(Result):
    """Where a generation's decode stage found the external teachers' hypotheses (``dir``, relative
    to the work folder) and whether an earlier generation had made them (``reused``)."""

    dir: str
    unlabeled: DecodedSplit
    dev: DecodedSplit
    reused: bool


@dataclass(frozen=True, kw_only=True)
class DecodeResult(StageResult):
    """Stage ``decode``: the unlabeled audio decoded by the generation's teacher, and the dev
    hypotheses its selection calibrates on (``dev_dir``: their folder, relative to the work folder).

    ``planted``: instead of hypotheses, why nothing was decoded: the experiment's students do not
    train on pseudo-labels (``labels: none`` or ``oracle``), or a benchmark gave the generation's
    selection from outside (as its control and oracle arms did before ``labels`` existed)."""

    teacher_generation: int
    unlabeled: DecodedSplit | None = optional()
    dev: DecodedSplit | None = optional()
    dev_dir: str | None = optional()
    external: ExternalFiles | None = optional()
    planted: str | None = optional()
    seconds: float | None = optional()


@dataclass(frozen=True, kw_only=True)
class SelectResult(StageResult):
    """Stage ``select``: the threshold and method used and what they kept of the unlabeled audio.

    A selection made without decoding (``labels: none`` or ``oracle``, or given by a benchmark)
    records only the first five figures and the fraction (and ``warnings``, if any)."""

    threshold: float | None
    method: str
    selected_utterances: int
    selected_hours: float
    segmented_utterances: int | None = optional()
    selected_fraction: float
    threshold_choice: dict[str, Any] | None = optional()
    speaking_rate_bounds: tuple[float, ...] | None = optional()
    warnings: tuple[str, ...] | None = optional()
    seconds: float | None = optional()


@dataclass(frozen=True, kw_only=True)
class AuditStageResult(StageResult):
    """Stage ``audit``: the WER of the kept pseudo-labels (None without unlabeled references; with
    ``labels: none`` None, with ``oracle`` 0, with ``given`` that of the whole-utterance labels) and
    how many decisions (given labels) had a reference (absent where nothing was decoded)."""

    pseudo_label_wer: float | None
    with_reference: int | None = optional()
    seconds: float | None = optional()


@dataclass(frozen=True, kw_only=True)
class ContinuousTraining(Result):
    """What the continuous schedule's training adds to its result: its step budget
    (:func:`~selftrain.generation.config.continuous_budget`), its ``continuous`` summary, the steps
    it took and the WER of the kept labels of its audit sample (None without references)."""

    budget: dict[str, Any]
    continuous: dict[str, Any]
    optimizer_steps: int
    pseudo_label_wer: float | None = None

    @property
    def guard_trips(self) -> int:
        return int(self.continuous["guard_trips"])

    @property
    def kept_share(self) -> float:
        """The share of the labels made during training that passed the filter (0 when none were made)."""
        labels = self.continuous.get("labels", {})
        return round(labels.get("kept", 0) / labels["made"], 4) if labels.get("made") else 0.0


@dataclass(frozen=True, kw_only=True)
class TrainResult(StageResult):
    """Stage ``train``: the trained model's folder (in the stage's folder); for the continuous
    schedule's run, its :class:`ContinuousTraining` figures."""

    model: str
    continuous_run: ContinuousTraining | None = field(default=None, metadata={FLAT: True})
    seconds: float | None = optional()


@dataclass(frozen=True, kw_only=True)
class LMResult(StageResult):
    """Stage ``W/lm/``: the n-gram LM's file (in the stage's folder) and its build report."""

    lm: str
    report: dict[str, Any]
    seconds: float | None = optional()


@dataclass(frozen=True, kw_only=True)
class TuneStageResult(StageResult):
    """Stage ``tune``: the decoder settings chosen on dev for the generation's model, the dev WER
    before and after, every point the search decoded and the dev rows left out by reason."""

    best: dict[str, float]
    base_wer: float
    best_wer: float
    utterances: int
    points: tuple[dict[str, Any], ...]
    bad_audio: dict[str, int]
    seconds: float | None = optional()


@dataclass(frozen=True, kw_only=True)
class EvalResult(StageResult):
    """Stage ``eval``: dev decoded by every teacher of the generation (the next generation's
    calibration reads it) and test by the LM teacher, with the LM teacher's scores."""

    dev: DecodedSplit
    dev_scores: Scores
    test: DecodedSplit | None = optional()
    test_scores: Scores | None = optional()
    seconds: float | None = optional()
