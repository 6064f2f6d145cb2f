"""The small sections of an experiment's configuration: its data paths, teachers, threshold,
acceptance test and distributed waiting, with the names of its schedules, student initialisations
and label sources; :mod:`selftrain.generation.config` assembles them into
:class:`~selftrain.generation.config.ExperimentConfig` (and re-exports them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selftrain.errors import ConfigError

if TYPE_CHECKING:
    from selftrain.audit.significance import Comparison

__all__ = ["ACCEPTANCE_TESTS", "SCHEDULES", "STUDENT_INITS", "LABELS", "DataPaths", "TeachersConfig",
           "ThresholdConfig", "AcceptanceConfig", "DistributedConfig", "check_external_teachers"]

@dataclass
class DataPaths:
    """Manifests (any format `read_manifest` knows) and LM text. ``unlabeled_reference``: the true
    transcripts of the unlabeled audio, for audits; students train on them only with ``labels: oracle``.
    ``given_labels``: with ``labels: given``, the labels every student trains on besides the labeled
    audio (a manifest of unlabeled utterances with their text, and optionally a ``runs`` column)."""

    labeled: str = ""
    unlabeled: str = ""
    dev: str = ""
    test: str = ""
    lm_text: str = ""
    unlabeled_reference: str = ""
    given_labels: str = ""


@dataclass
class TeachersConfig:
    """Which hypotheses each generation's teacher produces for the unlabeled audio.

    ``lm``: beam search + n-gram LM (the pseudo-label source) [True]. ``greedy``: the same model
    without the LM, an agreement partner that costs one more pass [True]. ``dropout_samples``:
    decodes with dropout on, for DUST-style agreement [0]. ``previous``: the previous generation's
    teacher also decodes (from generation 2 on) [False].

    ``external``: external recognizers (``whisper``, ``pocketsphinx``: the extras of those names) that
    also transcribe the unlabeled and dev audio, as extra teachers in agreement and in the dev
    calibration; their output does not depend on the generation, so it is made once per experiment
    (``W/external/``) [[]: none]. ``external_settings``: per external teacher, its settings (keys of
    :class:`~selftrain.teachers.WhisperConfig` / :class:`~selftrain.teachers.PocketSphinxConfig`),
    e.g. ``{whisper: {model_dir: DIR}}`` [{}: their defaults].

    ``ensemble``: model folders of other acoustic models trained on the labeled audio alone (e.g.
    generation-0 teachers of the same recipe with other seeds) whose posteriors are averaged with
    each generation's teacher (:class:`~selftrain.models.EnsembleModel`) when it decodes the
    unlabeled audio and, for the selection's calibration, dev; the generation's own evaluation stays
    its single model's. Members must share the teacher's alphabet and frame rate [[]: the teacher alone].
    """

    lm: bool = True
    greedy: bool = True
    dropout_samples: int = 0
    previous: bool = False
    external: list[str] = field(default_factory=list)
    external_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    ensemble: list[str] = field(default_factory=list)


@dataclass
class ThresholdConfig:
    """How the confidence threshold of each generation is chosen.

    ``mode="auto"``: the teacher also decodes the labeled dev set, an audit there finds the lowest
    threshold whose pseudo-label WER stays under ``target_wer``, and it is applied to the unlabeled
    audio (dev is target-domain and transcribed, unlike the unlabeled set). ``mode="fixed"``: the
    selection config's own threshold / keep-fraction (and schedules) are used as given.
    ``min_keep_fraction``: the auto threshold never keeps less than this share of dev, even when
    the target is met only below it or not at all (a few hundred utterances cannot move a student)
    [0.2].
    """

    mode: str = "auto"
    target_wer: float = 0.25
    min_keep_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.mode not in ("auto", "fixed"):
            raise ConfigError(f"threshold.mode must be auto or fixed, got {self.mode!r}")


ACCEPTANCE_TESTS = ("dev_wer", "bootstrap", "improved")
# How self-training runs after generation 0. "generations": offline generations (decode, select,
# audit, train, repeated). "continuous": one training run, generation 1, that labels the unlabeled
# audio as it trains (selftrain.train.continuous), warm-started from generation 0.
SCHEDULES = ("generations", "continuous")
# Where a student's weights start. "teacher": its teacher's (the newest accepted generation; fast on
# CPU, IPL-style). "base": generation 0's supervised model, whichever generation teaches, so what a
# student learned from its own pseudo-labels' errors is not carried into the next student's weights
# (only into the labels it makes). "scratch": random weights, trained anew (noisy student).
STUDENT_INITS = ("teacher", "base", "scratch")
# The values of ExperimentConfig.labels (what each means: that field's comment; the stages that
# make them: selftrain.generation.controls).
LABELS = ("policy", "none", "oracle", "given")


@dataclass
class AcceptanceConfig:
    """How a student is judged against its teacher on dev when ``keep_better_only`` is on.

    ``test="dev_wer"``: accepted when its dev WER is not above the teacher's. ``test="bootstrap"``:
    accepted unless dev shows it is worse: rejected only when a paired bootstrap over the dev
    utterances (``resamples`` draws) puts the ``confidence`` interval of student WER minus teacher
    WER wholly above 0. With a few hundred dev utterances, two trainings of one recipe differ by
    about a point of WER, so ``dev_wer`` rejects students that are better on test as often as it
    keeps them; ``bootstrap`` trades that for accepting students whose small loss dev cannot see.
    ``test="improved"``: accepted only when dev shows it better (that interval wholly below 0), so a
    student level with its teacher within the noise of dev is set aside: no generation that dev
    cannot tell from its teacher replaces it, at the price of the small real gains dev cannot see.
    """

    test: str = "dev_wer"
    confidence: float = 0.95
    resamples: int = 2000

    def __post_init__(self) -> None:
        if self.test not in ACCEPTANCE_TESTS:
            raise ConfigError(f"acceptance.test must be one of {', '.join(ACCEPTANCE_TESTS)}, got {self.test!r}")
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"acceptance.confidence must be in (0, 1), got {self.confidence}")
        if self.resamples < 100:
            raise ConfigError(f"acceptance.resamples must be >= 100, got {self.resamples}")

    def accepts(self, comparison: Comparison) -> bool:
        """This test's verdict on a student from ``comparison``: its dev WER minus its teacher's
        (:func:`~selftrain.audit.significance.paired_bootstrap` over the dev utterances)."""
        if self.test == "improved":
            return comparison.significantly_better
        if self.test == "bootstrap":
            return not comparison.significantly_worse
        return comparison.difference <= 0.0


@dataclass
class DistributedConfig:
    """How the processes of one torchrun job wait for each other's work (an experiment under
    ``torchrun``: :mod:`selftrain.generation.distributed`). A process that needs another's result
    (a decode shard, a stage of rank 0) looks for its done marker in the work folder. Neither
    setting changes a result, so neither is part of the work folder's identity.

    poll_seconds: how often a waiting process looks for the marker [10.0].
    timeout_seconds: how long it waits for one marker before it stops with
        :class:`~selftrain.errors.WaitTimeoutError` naming the marker, so that a process that failed
        does not leave the others waiting for ever. One wait spans one piece of another process'
        work (rank 0's data preparation, LM build, selection or evaluation; the slowest rank's
        decode shard): raise it when one of those takes longer [86400.0: a day].
    """

    poll_seconds: float = 10.0
    timeout_seconds: float = 86400.0

    def __post_init__(self) -> None:
        if self.poll_seconds <= 0 or self.timeout_seconds <= 0:
            raise ConfigError(f"distributed.poll_seconds and timeout_seconds must be > 0, got "
                              f"{self.poll_seconds} and {self.timeout_seconds}")


def _check_ensemble(folders: list[str]) -> None:
    """Ensemble members must be distinct model folders that exist now, not hours later at decoding."""
    for folder in folders:
        if not isinstance(folder, str) or not folder:
            raise ConfigError(f"teachers.ensemble: model folders expected, got {folder!r}")
        missing = [name for name in ("model.pt", "model.json", "tokenizer.json") if not (Path(folder) / name).is_file()]
        if missing:
            raise ConfigError(f"teachers.ensemble: {folder} is not a model folder (no {', '.join(missing)})")
    repeated = sorted({folder for folder in folders if folders.count(folder) > 1})
    if repeated:
        raise ConfigError(f"teachers.ensemble: {', '.join(repeated)} listed more than once")


def check_external_teachers(teachers: TeachersConfig) -> None:
    """Each external teacher must be known, listed once, with valid settings, and its extra installed
    (package and model folder, found without loading the model), and each ensemble member a model
    folder; else :class:`ConfigError`, now."""
    from selftrain.teachers import check_external_teacher, external_teacher_config

    named = [name for name in teachers.external if not isinstance(name, str)]
    if named:
        raise ConfigError(f"teachers.external: teacher names expected (e.g. whisper), got {named[0]!r}")
    repeated = sorted({name for name in teachers.external if teachers.external.count(name) > 1})
    if repeated:
        raise ConfigError(f"teachers.external: {', '.join(repeated)} listed more than once")
    unused = sorted(set(teachers.external_settings) - set(teachers.external))
    if unused:
        raise ConfigError(f"teachers.external_settings.{unused[0]}: not a teacher of teachers.external "
                          f"({', '.join(map(str, teachers.external)) or 'empty'})")
    _check_ensemble(teachers.ensemble)
    for kind in teachers.external:
        try:
            settings = external_teacher_config(kind, teachers.external_settings.get(kind),
                                               f"teachers.external_settings.{kind}")
            check_external_teacher(kind, settings)
        except ConfigError as exc:
            raise ConfigError(f"teachers.external: {exc}") from exc
