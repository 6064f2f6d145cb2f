"""The configuration of a whole self-training experiment (all generations).

Nested dataclasses with documented defaults; a YAML/JSON file and ``key=value`` overrides are applied
on top (unknown keys raise :class:`~selftrain.errors.ConfigError`). Training, decoding, agreement and
selection settings are stored as overrides of those stages' own configs, so their defaults stay in one
place; :class:`ExperimentConfig`'s typed views (``train_config``, ``decoder_config``,
``agreement_config``, ``select_config``) resolve them, and constructing the config resolves every
section once, so a misspelt key fails before any work instead of when its stage starts hours later.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from selftrain.decode.config import DecoderConfig, TuneConfig
from selftrain.errors import ConfigError
from selftrain.generation.sections import (
    LABELS,
    SCHEDULES,
    STUDENT_INITS,
    AcceptanceConfig,
    DataPaths,
    DistributedConfig,
    TeachersConfig,
    ThresholdConfig,
    check_external_teachers,
)
from selftrain.models.config import update_dataclass
from selftrain.overrides import deep_merge, read_config_file
from selftrain.renames import SECTION_RENAMES, with_new_names
from selftrain.select.config import SPEAKING_RATE_QUANTILE, SelectConfig

if TYPE_CHECKING:  # imported where used: the agreement and training modules stay out of this module's imports
    from selftrain.agreement.rover import AgreementConfig
    from selftrain.train.config import TrainConfig

__all__ = ["SCHEDULES", "LABELS", "TRAIN_STAGES", "TrainStage", "continuous_budget", "DataPaths", "TeachersConfig", "ThresholdConfig", "AcceptanceConfig", "DistributedConfig", "ExperimentConfig", "load_experiment_config",
           "check_stage_overrides", "check_external_teachers"]

_EXTERNAL_KEYS = ("external", "external_settings")
# The experiment's training sections: generation 0's teacher and the students of generations >= 1.
TrainStage = Literal["teacher_train", "student_train"]
TRAIN_STAGES: tuple[TrainStage, ...] = ("teacher_train", "student_train")
_Stage = TypeVar("_Stage")


def _check_nested(config: Any) -> None:
    """The ``__post_init__`` checks of a dataclass' nested dataclasses, deepest first:
    :func:`~selftrain.models.config.update_dataclass` sets fields without them."""
    for item in fields(config):
        value = getattr(config, item.name)
        if is_dataclass(value) and not isinstance(value, type):
            _run_checks(value)


def _run_checks(config: Any) -> None:
    """A dataclass' own ``__post_init__`` checks, after those of its nested dataclasses."""
    _check_nested(config)
    check = getattr(config, "__post_init__", None)
    if check is not None:
        check()


def _with_overrides(stage_config: _Stage, overrides: dict[str, Any], section: str) -> _Stage:
    """``stage_config`` with a stage section's overrides applied, then checked; every problem is a
    :class:`ConfigError` naming the key (``decode.beam``, ``select.segments.threshold``)."""
    update_dataclass(stage_config, overrides, section)
    try:
        _run_checks(stage_config)
    except ConfigError as exc:
        raise ConfigError(f"{section}.{exc}") from exc
    return stage_config


@dataclass
class ExperimentConfig:
    """Everything `selftrain run` needs. The stage sections hold only the keys set, as overrides of
    each stage's own config (whose defaults apply to the rest); they are checked when the config is
    constructed and resolved by the typed views ``train_config``, ``decoder_config``,
    ``agreement_config`` and ``select_config``."""

    data: DataPaths = field(default_factory=DataPaths)
    generations: int = 3
    # "generations" or "continuous" (SCHEDULES). Continuous: one run replaces generations 1..N, with the
    # step budget of those N students (continuous_budget), evaluated and accepted as generation 1.
    schedule: str = "generations"
    continuous_steps: int = 0  # continuous: the run's optimizer steps; 0: those of the offline generations
    seed: int = 0  # every run's seed derives from it (Workdir.run_seed: generation g trains with seed * 1000 + g)
    preset: str = "cpu-small"
    lm_order: int = 4
    student_init: str = "teacher"  # where a student's weights start: one of STUDENT_INITS
    # What students train on besides the labeled audio. "policy": the pseudo-labels the selection
    # keeps. "none": nothing, the labeled-only control: nothing is decoded and each student trains as
    # many optimizer steps as a "policy" student would, so what the pseudo-labels add is told apart
    # from what longer training adds. "oracle": the true transcripts of every unlabeled utterance
    # (data.unlabeled_reference), nothing decoded: what the audio could give. "given": the labels in
    # data.given_labels (made elsewhere, or a chosen part of the true transcripts), nothing decoded,
    # each student at its configured epochs (an empty file: the control without step matching).
    # All but "policy" go with schedule "generations"; the unlabeled audio still trains their SSL
    # objectives and distillation.
    labels: str = "policy"
    keep_better_only: bool = True  # a student worse than its teacher on dev does not teach the next generation
    acceptance: AcceptanceConfig = field(default_factory=AcceptanceConfig)  # what "worse on dev" means
    # The selection's speaking-rate bounds (select.sanity.min/max_chars_per_second) become the labeled
    # audio's character rate at this quantile and at 1 - it, so labels that lost or invented words are
    # dropped (selftrain.select.policy.speaking_rate_bounds). Without them later generations drift
    # towards deleting words (docs/experiments/2026-12-03-speaking-rate-bounds.md). None keeps the sanity
    # config's fixed bounds; so does a labeled set with too few usable utterances (with a warning).
    speaking_rate_quantile: float | None = SPEAKING_RATE_QUANTILE
    teachers: TeachersConfig = field(default_factory=TeachersConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    teacher_train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides, generation 0
    student_train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides, generations >= 1
    decode: dict[str, Any] = field(default_factory=dict)  # DecoderConfig overrides
    # Each generation's model gets its own LM weight, word bonus and blank penalty, chosen on dev
    # (selftrain.decode.tune); off by default (docs/experiments/2026-12-03-tuned-decoding.md).
    decode_tuning: TuneConfig = field(default_factory=TuneConfig)
    agreement: dict[str, Any] = field(default_factory=dict)  # AgreementConfig overrides
    select: dict[str, Any] = field(default_factory=dict)  # SelectConfig overrides
    # Folder of the on-disk cache of a pretrained encoder's frozen bottom, shared by every training and
    # decoding of the experiment (selftrain.models.state_cache); empty: ``<workdir>/state_cache``.
    # Content-addressed, so experiments on the same audio and encoder may share one; not part of the
    # work folder's identity (it never changes a result).
    state_cache: str = ""
    # How the processes of a torchrun job wait for each other (never changes a result).
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def __post_init__(self) -> None:
        if self.generations < 0:
            raise ConfigError("generations must be >= 0")
        if self.speaking_rate_quantile is not None and not 0.0 <= self.speaking_rate_quantile < 0.5:
            raise ConfigError(f"speaking_rate_quantile must be in [0, 0.5) or null, got {self.speaking_rate_quantile}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.continuous_steps < 0:
            raise ConfigError(f"continuous_steps must be >= 0, got {self.continuous_steps}")
        if self.student_init not in STUDENT_INITS:
            raise ConfigError(f"student_init must be one of {', '.join(STUDENT_INITS)}, got {self.student_init!r}")
        self._check_labels()
        _check_nested(self)  # threshold, acceptance, ...: the loader sets their fields unchecked
        check_stage_overrides(self)

    def _check_labels(self) -> None:
        if self.labels not in LABELS:
            raise ConfigError(f"labels must be one of {', '.join(LABELS)}, got {self.labels!r}")
        if self.labels == "oracle" and not self.data.unlabeled_reference:
            raise ConfigError("labels: oracle trains on the true transcripts of the unlabeled audio: "
                              "give them in data.unlabeled_reference (--unlabeled-reference)")
        if (self.labels == "given") != bool(self.data.given_labels):
            raise ConfigError("labels: given trains on the labels in data.given_labels: give both or neither "
                              f"(labels: {self.labels}, data.given_labels: {self.data.given_labels!r})")
        if self.labels != "policy" and self.schedule == "continuous":
            raise ConfigError(f"labels: {self.labels} goes with schedule: generations (a continuous run makes its own labels)")

    # The typed views of the stage sections, the only place those are resolved. The sections store only
    # the keys the user set, because to_dict() (the work folder's identity) is made of them: a field
    # added to a stage config with a default then changes no existing folder's hash. A training's
    # defaults also depend on the experiment's preset, so a stored TrainConfig would go stale with it.

    def train_config(self, stage: TrainStage, extra: dict[str, Any] | None = None) -> TrainConfig:
        """A training's :class:`~selftrain.train.TrainConfig`: the preset's defaults, then ``extra`` (one
        run's own settings: its out folder, seed, data, init), then the ``stage`` section, whose keys win
        over ``extra``'s key by key. Errors name the section (``student_train: ...``)."""
        from selftrain.train.config import load_train_config

        if stage not in TRAIN_STAGES:
            raise ValueError(f"stage must be one of {', '.join(TRAIN_STAGES)}, got {stage!r}")
        section = getattr(self, stage)
        try:
            train = load_train_config(self.preset, overrides=deep_merge(extra, section) if extra else section)
            _run_checks(train)
        except ConfigError as exc:
            raise ConfigError(f"{stage}: {exc}") from exc
        return train

    def decoder_config(self) -> DecoderConfig:
        """The decoder settings: :class:`~selftrain.decode.DecoderConfig`'s defaults with the ``decode``
        section (before any per-model tuning: :func:`~selftrain.generation.artifacts.decoder_for`)."""
        return _with_overrides(DecoderConfig(), self.decode, "decode")

    def agreement_config(self) -> AgreementConfig:
        """How teachers are combined: :class:`~selftrain.agreement.AgreementConfig`'s defaults with the
        ``agreement`` section."""
        from selftrain.agreement.rover import AgreementConfig

        return _with_overrides(AgreementConfig(), self.agreement, "agreement")

    def select_config(self, generation: int = 0) -> SelectConfig:
        """``generation``'s selection (it picks the schedules' values): :class:`~selftrain.select.SelectConfig`'s
        defaults with the ``select`` section; the speaking-rate bounds are the selection stage's to set."""
        return _with_overrides(SelectConfig(generation=generation), self.select, "select")

    def validate_paths(self) -> None:
        """Check that the required inputs exist before any work starts, and warn now when the labeled
        set is too small to give speaking-rate bounds (the selection then keeps its fixed bounds)."""
        for name in ("labeled", "unlabeled", "dev", "lm_text"):
            value = getattr(self.data, name)
            if not value:
                raise ConfigError(f"data.{name} is required")
        for name, value in asdict(self.data).items():
            if value and not Path(value).exists():
                raise ConfigError(f"data.{name}: {value} does not exist")
        if self.speaking_rate_quantile is not None:
            from selftrain.data.manifest import read_manifest
            from selftrain.errors import ManifestError
            from selftrain.select.policy import speaking_rate_bounds_or_warning

            try:
                labeled = read_manifest(self.data.labeled)
            except ManifestError:  # the teacher's training reads it first and reports what is wrong
                return
            speaking_rate_bounds_or_warning(labeled, self.speaking_rate_quantile, self.data.labeled)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (what the work folder's hash is made of)."""
        values = asdict(self)
        # Without external teachers the dict (and hash) is that of older versions: their folders still open.
        for key in _EXTERNAL_KEYS:
            if not values["teachers"][key]:
                del values["teachers"][key]
        if self.acceptance == AcceptanceConfig():  # likewise for the acceptance test's defaults
            del values["acceptance"]
        if self.speaking_rate_quantile is None:  # and for the speaking-rate bounds, off
            del values["speaking_rate_quantile"]
        if self.decode_tuning == TuneConfig():  # and for decoder tuning at its defaults (off)
            del values["decode_tuning"]
        del values["state_cache"]  # where a cache lives never changes a result
        del values["distributed"]  # nor how the processes of a torchrun job wait for each other
        if self.schedule == "generations" and not self.continuous_steps:  # folders of older versions still open
            del values["schedule"], values["continuous_steps"]
        if self.labels == "policy":  # and for the selection's pseudo-labels, what every older folder trained on
            del values["labels"]
        if not self.data.given_labels:  # which only labels: given reads
            del values["data"]["given_labels"]
        return values


def check_stage_overrides(config: ExperimentConfig) -> None:
    """Resolve every stage section through its typed view: unknown keys, values of the wrong type and
    values the stage config's own checks refuse raise :class:`ConfigError` now, naming the key (e.g.
    ``decode.beam``). Constructing an :class:`ExperimentConfig` runs this."""
    teacher = config.train_config("teacher_train")
    config.train_config("student_train")
    if teacher.checkpoint_metric == "lm_wer":
        raise ConfigError("teacher_train.checkpoint_metric lm_wer: the LM is built with the teacher's tokenizer, "
                          "after its training; use lm_wer in student_train")
    config.decoder_config()
    config.agreement_config()
    config.select_config()


def _with_new_names(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the stage sections' renamed keys under their new names (a warning for each old one)."""
    if not isinstance(values, dict):
        return values
    return {**values, **{section: with_new_names(values[section], moves, f"{section}.")
                         for section, moves in SECTION_RENAMES.items() if isinstance(values.get(section), dict)}}


def load_experiment_config(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Defaults, then a YAML/JSON file, then overrides (nested dicts); then the checks construction runs
    (``ExperimentConfig.__post_init__``, stage sections included) and :func:`check_external_teachers`.

    Overrides merge into the file's stage settings key by key (``teacher_train.max_minutes`` changes
    that key and keeps the file's other training keys). Every problem is a :class:`ConfigError`
    naming the key (and the file, for the file's keys).
    """
    config = ExperimentConfig()
    values: dict[str, Any] = {}
    if config_file:
        values = _with_new_names(read_config_file(config_file))
        try:
            update_dataclass(config, values, "config")
        except ConfigError as exc:
            raise ConfigError(f"{config_file}: {exc}") from exc
    if overrides:
        # Stage settings are plain dicts, which a field update would replace whole: merge first.
        update_dataclass(config, deep_merge(values, _with_new_names(overrides)), "config")
    config.__post_init__()  # the updates above set fields without the checks construction runs
    check_external_teachers(config.teachers)
    return config


def continuous_budget(config: ExperimentConfig) -> dict[str, Any]:
    """The continuous run's budget and mix: what ``config.generations`` offline students would use.

    An offline student trains ``student_train.epochs`` epochs (one pass over the labeled audio each)
    of batches whose labeled share is ``mix_labeled`` against ``mix_pseudo`` and, with SSL objectives,
    ``mix_unlabeled``. The continuous run gives the unlabeled audio the share those pools had, so its
    batches hold the same labeled audio and an epoch has the same steps; it trains ``generations``
    times the epochs (and ``generations`` times ``student_train.max_steps`` when that is set), or
    ``continuous_steps`` steps when that is set. Returns ``{"epochs", "max_steps", "mix_unlabeled"}``.
    """
    student = config.train_config("student_train")
    unlabeled_share = student.data.mix_pseudo + (student.data.mix_unlabeled if student.ssl.objectives else 0.0)
    return {"epochs": config.generations * student.epochs,
            "max_steps": config.continuous_steps or config.generations * student.max_steps,
            "mix_unlabeled": round(unlabeled_share, 6)}
