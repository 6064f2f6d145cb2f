"""Training configuration: nested dataclasses with documented defaults.

A run is configured by a preset (model architecture), an optional YAML (or JSON) file and ``key=value``
overrides, applied in that order; every key must exist (:class:`~selftrain.errors.ConfigError`
otherwise). The resolved configuration is written to the run folder as ``hyperparams.yaml``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selftrain.decode.config import DecoderConfig
from selftrain.errors import ConfigError
from selftrain.models.config import ModelConfig, model_preset, update_dataclass
from selftrain.overrides import parse_overrides, read_config_file
from selftrain.renames import TRAIN_RENAMES, with_new_names
from selftrain.select.config import SPEAKING_RATE_QUANTILE, SanityConfig, SelectConfig

__all__ = [
    "DataConfig",
    "OptimConfig",
    "AugmentConfig",
    "SSLConfig",
    "CombineConfig",
    "InitConfig",
    "DistillConfig",
    "ContinuousConfig",
    "LABEL_SOURCES",
    "LABEL_DECODERS",
    "CONTINUOUS_EXPORTS",
    "TrainConfig",
    "load_train_config",
    "parse_overrides",  # re-exported: its home is selftrain.overrides
]


@dataclass
class DataConfig:
    """Manifests, filtering and batching.

    ``batch_seconds`` is the total audio per batch; ``mix`` gives the share of each batch's audio
    drawn from the labeled, pseudo-labeled and unlabeled pools (renormalised over the pools given;
    an epoch is one pass over the labeled pool, the others are cycled). ``weight_column`` names a
    per-utterance CTC weight column of pseudo-labeled manifests (e.g. ``confidence``, in [0, 1]);
    empty (the default): every selected pseudo-label weighs 1. Not weighting by default because
    the confidence that selection writes is the calibrated probability that the whole utterance is
    right, which is low for most selected utterances of a weak teacher: weighting by it made the
    pseudo-labeled audio count for a small share of the labeled audio (an early observation on the
    default corpus; no results file holds it).
    """

    labeled: list[str] = field(default_factory=list)
    pseudo: list[str] = field(default_factory=list)
    unlabeled: list[str] = field(default_factory=list)
    dev: str = ""
    tokenizer: str = "char"  # "char" (alphabet from the labeled text) or a tokenizer.json path
    batch_seconds: float = 60.0
    max_batch_utterances: int = 64
    num_buckets: int = 10
    mix_labeled: float = 0.6
    mix_pseudo: float = 0.2
    mix_unlabeled: float = 0.2
    min_duration: float = 0.2
    max_duration: float = 25.0
    weight_column: str = ""
    min_weight: float = 0.0  # pseudo-labeled rows whose weight is below this are dropped
    norm_utterances: int = 150  # utterances used to estimate global feature statistics
    num_workers: int = 0


@dataclass
class OptimConfig:
    """Adam with linear warmup then exponential decay (SpeechBrain ``WarmAndExpDecayLRSchedule``)."""

    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_steps: int = 200
    decay_factor: float = 0.1  # lr multiplier reached at the last step
    max_grad_norm: float = 5.0
    pretrained_lr_scale: float = 0.1  # a pretrained encoder's fine-tuned blocks train at this share of lr


@dataclass
class AugmentConfig:
    """Noisy-student augmentation of the student's input (training only)."""

    specaugment: bool = True
    time_masks: int = 2
    time_mask_frames: int = 20
    freq_masks: int = 2
    freq_mask_bins: int = 15
    speed_perturb: bool = False
    speeds: list[int] = field(default_factory=lambda: [90, 100, 110])
    noise_prob: float = 0.0  # share of utterances that get additive noise
    noise_csv: str = ""  # SpeechBrain noise CSV (ID,duration,wav,wav_format,wav_opts); empty: generated noise
    noise_color: str = "white"  # generated noise when there is no noise_csv: white or pink
    noise_snr_low: float = 10.0
    noise_snr_high: float = 30.0
    # On cached frozen states (a pretrained encoder's bottom, see TrainConfig.state_cache), where the
    # waveform and filterbank augmentations above cannot reach: masks of 20 ms frames and of channels,
    # and dropout.
    state_time_masks: int = 2
    state_time_mask_frames: int = 10
    state_channel_masks: int = 2
    state_channel_width: int = 32
    state_dropout: float = 0.1


@dataclass
class SSLConfig:
    """Self-supervised objectives (:mod:`selftrain.ssl`); they run on every utterance of a batch.

    ``objectives``: any of ``reconstruction``, ``best_rq``, ``contrastive``. Masks cover about
    ``mask_prob`` of the frames (of the batch's shortest utterance; the same span count for every
    utterance) in spans of ``mask_span`` latent frames (SpeechBrain's wav2vec 2.0 ``compute_mask``). With ``shared_forward`` the
    CTC loss is computed on the same masked forward pass (the mask doubles as time masking), so SSL
    costs only its heads; otherwise the CTC loss gets its own unmasked pass.
    """

    objectives: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)  # per-objective weight, default 1
    mask_prob: float = 0.15
    mask_span: int = 5
    shared_forward: bool = True
    cache_targets: bool = True
    best_rq_codebook: int = 512
    best_rq_dim: int = 16
    contrastive_negatives: int = 20
    contrastive_temperature: float = 0.1
    contrastive_dim: int = 128


@dataclass
class CombineConfig:
    """How CTC and SSL losses are combined (:mod:`selftrain.ssl.combine`).

    ``strategy``: ``fixed``, ``curriculum``, ``gradnorm``, ``pcgrad`` or ``bl_just``. The default
    ``ssl_weight`` suits training from scratch; a student fine-tuned from a CTC teacher lost test WER
    at 0.3 and stayed within noise of no SSL at 0.05 (docs/experiments/2026-12-03-ssl-student.md).
    """

    strategy: str = "fixed"
    ctc_weight: float = 1.0
    ssl_weight: float = 0.3
    curriculum_steps: int = 1000  # curriculum: steps over which the weights move
    curriculum_ctc_start: float = 0.1
    curriculum_ssl_end: float = 0.1
    gradnorm_alpha: float = 1.5
    gradnorm_lr: float = 0.025
    bl_just_gamma_start: float = 0.1
    bl_just_gamma_end: float = 1.0
    bl_just_gamma_steps: int = 1000
    bl_just_lower_lr: float = 1e-3


@dataclass
class DistillConfig:
    """Distillation (off by default): a KL term to a teacher model's posteriors on every row,
    unlabeled ones too. Formerly ``teacher.distill_weight`` / ``teacher.teacher_model``."""

    weight: float = 0.0  # >0: the KL term's weight (needs teacher_model)
    teacher_model: str = ""  # the teacher's model folder


@dataclass
class InitConfig:
    """Where the weights start instead of at random (a student from its teacher, a model from a
    checkpoint). Formerly ``teacher.init_encoder`` / ``teacher.init_head``."""

    encoder: str = ""  # a local model folder or checkpoint whose encoder weights are copied
    head: bool = False  # also copy its CTC head (same tokenizer, e.g. a student from its teacher)


LABEL_SOURCES = ("ema", "cache")
CONTINUOUS_EXPORTS = ("student", "best_ema")
LABEL_DECODERS = ("greedy", "lm")


@dataclass
class ContinuousConfig:
    """Continuous pseudo-labeling inside one training run (:mod:`selftrain.train.continuous`).

    Off by default: a run then trains on the labels it is given (offline generations). On, the
    first ``warmup_steps`` optimizer steps are supervised; from then on every batch's unlabeled rows
    (``data.unlabeled``, at the share ``data.mix_unlabeled``) are labeled on the fly by greedy
    decoding of their clean audio while the student trains on their augmented audio. ``source``:
    ``ema`` labels with an exponential moving average of the student (decay ``ema_decay``, reset to
    the student's weights when the warm-up ends; momentum pseudo-labeling) or ``cache``, a
    slimIPL-style cache of up to ``cache_size`` labels made by the student itself with dropout off;
    a cached label is used as it is and remade with probability ``cache_replace_prob`` each time
    its utterance comes back. ``decoder``: ``greedy`` (best path) or ``lm``: beam search with the
    KenLM model ``lm`` through the offline decoder (:class:`~selftrain.decode.DecoderPool` with
    the settings ``decode``), in the training process (no worker pool: forking a process that
    trains is not safe).

    Labels are filtered as the offline selection filters them: utterance confidence from the CTC
    posteriors (:func:`~selftrain.confidence.score_hypothesis`), calibrated on dev
    (:func:`~selftrain.confidence.calibrate.fit_calibration`), with the threshold that keeps the
    pseudo-label WER on dev under ``target_wer`` but at least ``min_keep_fraction`` of dev, both
    refit every ``calibrate_every`` steps; then the ``sanity`` filters, whose speaking-rate bounds
    become the labeled audio's rate at ``speaking_rate_quantile`` and 1 - it (None: the fixed bounds).

    The guard: every ``guard_window`` steps, when more than ``guard_max_short_share`` of the labels
    made were empty or slower than the lower speaking-rate bound, or when a calibration finds the
    teacher's dev WER more than ``guard_max_wer_rise`` above its best, the weights go back to the
    best checkpoint and the label cache is emptied; after ``guard_max_trips`` trips the run stops.
    ``patience`` > 0 stops the run once that many calibrations in a row found the labeling teacher no
    better on dev than its best; with ``restarts`` > 0 the first ``restarts`` such plateaus instead put
    the student and the EMA back to the best snapshot and training goes on (each restart a new round
    of labels from the best teacher so far, inside the same step budget). ``export``: which weights become the run's ``model/``: the student's
    best checkpoint (by the dev score), or ``best_ema``, the labeling EMA teacher as it was at the
    calibration with its lowest dev WER (a snapshot kept in the checkpoints). The EMA is what improves
    while the student trains on its own labels (its dev WER can fall below the teacher's and then drift
    up again), so that snapshot is the run's best model by the measure its labels are chosen on.
    Every ``audit_every`` steps up to ``audit_sample`` labels of the batch are written to
    ``continuous/labels.jsonl`` (records for ``selftrain audit``).
    """

    enabled: bool = False  # on: label the unlabeled rows during training
    source: str = "ema"  # ema or cache
    warmup_steps: int = 500  # supervised steps before labeling starts (0: label from the first step)
    warmup_dev_wer: float = 0.0  # >0: the warm-up also ends at a dev evaluation whose WER is below this
    decoder: str = "greedy"  # greedy or lm (beam search + the LM `lm`)
    lm: str = ""  # decoder lm: a KenLM model (.bin/.arpa, with its unigram list beside it)
    decode: DecoderConfig = field(default_factory=DecoderConfig)  # decoder lm: the beam search (always in this process)
    ema_decay: float = 0.999  # source ema: the teacher's decay per step (momentum pseudo-labeling's value)
    cache_size: int = 1000  # source cache: labels kept (the oldest leaves first)
    cache_replace_prob: float = 0.1  # source cache: chance that a reused label is made again
    calibrate_every: int = 200  # steps between dev calibrations (and threshold refits)
    target_wer: float = 0.25  # as the offline selection's threshold.target_wer
    min_keep_fraction: float = 0.2  # as the offline selection's threshold.min_keep_fraction
    method: str = SelectConfig.method  # utterance score, as select.method (auto: the calibrated combination if fit)
    speaking_rate_quantile: float | None = SPEAKING_RATE_QUANTILE  # as ExperimentConfig.speaking_rate_quantile
    sanity: SanityConfig = field(default_factory=SanityConfig)
    guard_window: int = 100  # steps over which the share of empty / too-short labels is judged
    guard_max_short_share: float = 0.5  # above this share of empty / too-short labels the guard trips
    guard_max_wer_rise: float = 0.1  # the guard trips when the teacher's dev WER is this far above its best
    guard_max_trips: int = 3  # the run stops at this many trips (each earlier one goes back to the best checkpoint)
    patience: int = 0  # >0: the run stops after this many calibrations without a better labeling teacher on dev
    restarts: int = 0  # with patience and export best_ema: times the run goes back to the best labeling teacher instead of stopping
    export: str = "student"  # student: the student's best checkpoint; best_ema: the labeling EMA at its best calibration
    audit_every: int = 50  # steps between label samples written to continuous/labels.jsonl
    audit_sample: int = 8  # labels of the batch written each time (0: no audit file)
    references: list[str] = field(default_factory=list)  # manifests with the unlabeled audio's transcripts (audit only)

    def check(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work."""
        if self.source not in LABEL_SOURCES:
            raise ConfigError(f"continuous.source must be one of {LABEL_SOURCES}, not {self.source!r}")
        if self.decoder not in LABEL_DECODERS:
            raise ConfigError(f"continuous.decoder must be one of {LABEL_DECODERS}, not {self.decoder!r}")
        if self.decoder == "lm" and not Path(self.lm).is_file():
            raise ConfigError(f"continuous.decoder=lm needs continuous.lm, a KenLM model file (got {self.lm!r})")
        if self.export not in CONTINUOUS_EXPORTS:
            raise ConfigError(f"continuous.export must be one of {CONTINUOUS_EXPORTS}, not {self.export!r}")
        if self.restarts < 0:
            raise ConfigError(f"continuous.restarts must not be negative, got {self.restarts}")
        if self.restarts and (self.export != "best_ema" or not self.patience):
            raise ConfigError("continuous.restarts go back to the best EMA snapshot on a plateau: "
                              "they need continuous.export=best_ema and continuous.patience > 0")
        if self.export == "best_ema" and self.source != "ema":
            raise ConfigError("continuous.export=best_ema exports the labeling EMA teacher: it needs continuous.source=ema")
        if not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"continuous.ema_decay must be in (0, 1), got {self.ema_decay}")
        if not 0.0 <= self.cache_replace_prob <= 1.0:
            raise ConfigError(f"continuous.cache_replace_prob must be in [0, 1], got {self.cache_replace_prob}")
        for name in ("cache_size", "calibrate_every", "guard_window", "guard_max_trips", "audit_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"continuous.{name} must be >= 1, got {getattr(self, name)}")
        if self.warmup_steps < 0 or self.audit_sample < 0 or self.patience < 0:
            raise ConfigError("continuous.warmup_steps, continuous.audit_sample and continuous.patience must not be negative")
        for name in ("target_wer", "min_keep_fraction", "guard_max_short_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"continuous.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.speaking_rate_quantile is not None and not 0.0 <= self.speaking_rate_quantile < 0.5:
            raise ConfigError(f"continuous.speaking_rate_quantile must be in [0, 0.5) or null, got {self.speaking_rate_quantile}")


@dataclass
class TrainConfig:
    """Everything a training run needs. ``preset`` names the model architecture (see ``models.config``)."""

    preset: str = "cpu-small"
    out: str = ""
    epochs: int = 30
    max_steps: int = 0  # >0 stops after this many optimizer steps
    max_minutes: float = 0.0  # >0 stops at the end of the epoch that passes this wall time
    eval_every: int = 1  # epochs between dev evaluations
    early_stop_patience: int = 0  # >0: stop after this many evaluations without dev score improvement
    # Dev score for checkpoint choice / early stopping: wer, cer, wer+cer (their mean; all greedy) or
    # lm_wer (dev decoded with the LM at dev_lm by the beam search in dev_decoder).
    checkpoint_metric: str = "wer+cer"
    dev_lm: str = ""  # KenLM model (binary or ARPA) for checkpoint_metric lm_wer
    # The LM beam search for lm_wer: narrower than a teacher's (it runs at every dev evaluation, in
    # the training process); `selftrain run` sets alpha, beta and blank_penalty from its decoder.
    dev_decoder: DecoderConfig = field(default_factory=lambda: DecoderConfig(beam_width=16))
    seed: int = 1234
    precision: str = "fp32"  # fp32, bf16 or fp16 (autocast)
    device: str = "cpu"
    keep_checkpoints: int = 1
    # Folder of the on-disk cache of a pretrained encoder's frozen bottom (models.state_cache); empty:
    # computed live at every step. Only models whose front never trains (encoder "whisper") use it.
    state_cache: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    ssl: SSLConfig = field(default_factory=SSLConfig)
    combine: CombineConfig = field(default_factory=CombineConfig)
    # >0 keeps an EMA copy (fp32) of the student, exported as model_ema (formerly teacher.ema_decay)
    ema_decay: float = 0.0
    init: InitConfig = field(default_factory=InitConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    continuous: ContinuousConfig = field(default_factory=ContinuousConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_train_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """Build a :class:`TrainConfig`: preset, then YAML file, then overrides (unknown keys -> ConfigError)."""
    layers: list[tuple[str, dict[str, Any]]] = []
    if config_file:
        layers.append((f"{config_file}: ", read_config_file(config_file)))
    if overrides:
        layers.append(("", overrides))
    chosen = preset
    for _, layer in layers:
        if "preset" in layer:
            chosen = str(layer["preset"])
    config = TrainConfig()
    config.preset = chosen or config.preset
    config.model = model_preset(config.preset)
    for source, layer in layers:
        try:
            update_dataclass(config, with_new_names(layer, TRAIN_RENAMES), "config")
        except ConfigError as exc:
            if not source:
                raise
            raise ConfigError(f"{source}{exc}") from exc
    return config
