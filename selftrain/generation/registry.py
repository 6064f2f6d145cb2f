"""The stages of an experiment, each declared once: its folder's name, when it applies, the function
that runs it and the type of its result (kept in its done marker).

:func:`~selftrain.generation.run.run_generation` runs a generation's stages in the order of
:data:`STAGES` and :func:`~selftrain.generation.run.experiment_status` reports them from the same
list, so adding a stage is one entry here.

>>> [stage.name for stage in generation_stages(Plan(generations=2), 1)]
['decode', 'select', 'audit', 'train', 'eval']
>>> [stage.name for stage in generation_stages(Plan(generations=2, decode_tuning=True), 0)]
['train', 'lm', 'tune', 'eval']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from selftrain.generation import controls, stages
from selftrain.generation.config import ExperimentConfig
from selftrain.generation.results import (
    AuditStageResult,
    DecodeResult,
    EvalResult,
    ExternalFiles,
    ExternalResult,
    LMResult,
    SelectResult,
    StageResult,
    TrainResult,
    TuneStageResult,
    run_typed,
)
from selftrain.generation.workdir import Workdir

__all__ = ["Plan", "StageCall", "Stage", "STAGES", "EXTERNAL", "GenerationResults", "generation_stages", "stage_named",
           "external_hypotheses"]

R = TypeVar("R", bound=StageResult)
K = TypeVar("K", bound=StageResult)
# Where a stage's folder lies: in its generation's folder (W/gen_XXX/<name>) or, for a stage made
# once per experiment, in the work folder (W/<name>).
GENERATION, EXPERIMENT = "generation", "experiment"


@dataclass(frozen=True)
class Plan:
    """What decides which stages an experiment's generations have."""

    generations: int
    continuous: bool = False
    decode_tuning: bool = False
    external_teachers: tuple[str, ...] = ()

    @classmethod
    def of(cls, config: dict[str, Any]) -> Plan:
        """The plan of an experiment config as :meth:`ExperimentConfig.to_dict` gives it and
        ``experiment.json`` keeps it (a setting at its default left out). External teachers only
        label audio that is decoded: not with ``labels`` other than the policy's."""
        decoded = config.get("labels", "policy") == "policy"
        return cls(generations=config["generations"], continuous=config.get("schedule") == "continuous",
                   decode_tuning=bool(config.get("decode_tuning", {}).get("enabled")),
                   external_teachers=tuple(config.get("teachers", {}).get("external", ())) if decoded else ())

    @property
    def last_generation(self) -> int:
        """The continuous schedule has one self-training generation (generation 1) on the budget of
        ``generations``; the offline schedule has ``generations``."""
        return min(1, self.generations) if self.continuous else self.generations

    def offline_student(self, generation: int) -> bool:
        """Whether ``generation`` is a student of the offline schedule: its labels are decoded,
        selected and audited before it trains."""
        return generation > 0 and not self.continuous


@dataclass(frozen=True)
class StageCall:
    """What a stage's function is given besides its folder: the experiment, its work folder, the
    generation, and whether a finished stage is redone (``force``)."""

    config: ExperimentConfig
    workdir: Workdir
    generation: int
    force: bool = False


@dataclass(frozen=True)
class Stage(Generic[R]):
    """One stage: its folder's ``name``, the ``result`` type its done marker holds, when it
    ``applies`` (to a generation of a plan), the function that runs it in its folder (``run``),
    and whether that folder is its generation's or the work folder (``scope``)."""

    name: str
    result: type[R]
    applies: Callable[[Plan, int], bool]
    run: Callable[[StageCall, Path], R]
    scope: str = GENERATION

    def folder(self, workdir: Workdir, generation: int) -> Path:
        return workdir.stage_dir(generation if self.scope == GENERATION else None, self.name)

    def execute(self, call: StageCall) -> R:
        """Run the stage for ``call``'s generation, or take its done marker's result when it is finished."""
        return self.record(call.workdir, call.generation, lambda out: self.run(call, out), call.force)

    def record(self, workdir: Workdir, generation: int, work: Callable[[Path], R], force: bool = False) -> R:
        """Run ``work`` in the stage's folder in place of the stage's function (what :meth:`execute`
        does with it; a caller that makes a stage's result otherwise, such as a test, uses it
        directly); its result must be of the stage's type."""
        return run_typed(workdir, self.folder(workdir, generation), self.result, work, force)


def _every_generation(plan: Plan, generation: int) -> bool:
    return True


def _generation_zero(plan: Plan, generation: int) -> bool:
    return generation == 0


def _decode_tuning(plan: Plan, generation: int) -> bool:
    return plan.decode_tuning


def _external_teachers(plan: Plan, generation: int) -> bool:
    return bool(plan.external_teachers)


# The decode, select and audit stages of an experiment whose students do not train on the
# policy's pseudo-labels (``labels: none``, ``oracle`` or ``given``) decode nothing: selftrain.generation.controls.


def _decode(call: StageCall, out: Path) -> DecodeResult:
    if call.config.labels != "policy":
        return controls.decode_nothing(call.config, call.workdir, call.generation)
    # The external teachers' hypotheses: made by the first generation (redone by its --force), reused by the later ones.
    external = external_hypotheses(call.config, call.workdir, call.force and call.generation == 1)
    return stages.decode_generation(call.config, call.workdir, call.generation, out, external)


def _select(call: StageCall, out: Path) -> SelectResult:
    if call.config.labels != "policy":
        return controls.given_selection(call.config, out)
    return stages.select_pseudo_labels(call.config, call.workdir, call.generation, out)


def _audit(call: StageCall, out: Path) -> AuditStageResult:
    if call.config.labels != "policy":
        return controls.given_audit(call.config, call.workdir, call.generation)
    return stages.audit_generation(call.config, call.workdir, call.generation, out)


def _train(call: StageCall, out: Path) -> TrainResult:
    return stages.train_model(call.config, call.workdir, call.generation, out)


def _lm(call: StageCall, out: Path) -> LMResult:
    return stages.build_language_model(call.config, call.workdir, out)


def _tune(call: StageCall, out: Path) -> TuneStageResult:
    return stages.tune_generation(call.config, call.workdir, call.generation, out)


def _evaluate(call: StageCall, out: Path) -> EvalResult:
    return stages.evaluate_generation(call.config, call.workdir, call.generation, out)


def _transcribe(call: StageCall, out: Path) -> ExternalResult:
    return stages.transcribe_external(call.config, call.workdir, out)


# A generation's stages, in the order they run.
STAGES: tuple[Stage[Any], ...] = (
    Stage("decode", DecodeResult, Plan.offline_student, _decode),
    Stage("select", SelectResult, Plan.offline_student, _select),
    Stage("audit", AuditStageResult, Plan.offline_student, _audit),
    Stage("train", TrainResult, _every_generation, _train),
    # One LM per experiment, built after the teacher's training: its text is normalised by the teacher's tokenizer.
    Stage("lm", LMResult, _generation_zero, _lm, scope=EXPERIMENT),
    Stage(stages.TUNE_STAGE, TuneStageResult, _decode_tuning, _tune),
    Stage("eval", EvalResult, _every_generation, _evaluate),
)
# The external teachers' hypotheses: not a step of a generation, but made inside the decode stage of
# the first generation that needs them (:func:`external_hypotheses`) and reused by the later ones.
EXTERNAL = Stage(stages.EXTERNAL_STAGE, ExternalResult, _external_teachers, _transcribe, scope=EXPERIMENT)


def generation_stages(plan: Plan, generation: int) -> list[Stage[Any]]:
    """The stages ``generation`` of ``plan`` has, in the order they run."""
    return [stage for stage in STAGES if stage.applies(plan, generation)]


def stage_named(name: str) -> Stage[Any]:
    """The stage whose folder is ``name`` (``decode``, ``select``, ... ``external``)."""
    found = [stage for stage in (*STAGES, EXTERNAL) if stage.name == name]
    if not found:
        raise KeyError(f"no stage named {name!r}")
    return found[0]


@dataclass(frozen=True)
class GenerationResults:
    """The results of one generation's stages by name, in the order they ran; ``results[EvalResult]``
    is its evaluation's."""

    by_stage: dict[str, StageResult]

    def get(self, kind: type[K]) -> K | None:
        """The result of the generation's stage whose result is a ``kind`` (None when it has none)."""
        return next((result for result in self.by_stage.values() if isinstance(result, kind)), None)

    def __getitem__(self, kind: type[K]) -> K:
        result = self.get(kind)
        if result is None:
            raise KeyError(f"the generation has no stage whose result is a {kind.__name__}")
        return result

    def seconds(self) -> dict[str, float | None]:
        """Each stage's wall time, by name (that of the run that made it, for a stage finished earlier)."""
        return {name: result.seconds for name, result in self.by_stage.items()}


def external_hypotheses(config: ExperimentConfig, workdir: Workdir, force: bool = False) -> ExternalFiles | None:
    """The external teachers' hypothesis files for a generation's decode stage (None without external teachers).

    They do not change between generations: the first generation that asks runs the :data:`EXTERNAL`
    stage, later ones reuse it (``reused``).
    """
    if not config.teachers.external:
        return None
    call = StageCall(config, workdir, generation=0, force=force)  # an experiment's stage: the generation is not used
    reused = workdir.is_done(EXTERNAL.folder(workdir, call.generation)) and not force
    made = EXTERNAL.execute(call)
    return ExternalFiles(dir=EXTERNAL.name, unlabeled=made.unlabeled, dev=made.dev, reused=reused)
