"""Checks of a :class:`~selftrain.train.config.TrainConfig` before a run starts: every refusal is a
:class:`~selftrain.errors.ConfigError` that names the setting."""

from __future__ import annotations

from pathlib import Path

from selftrain.errors import ConfigError
from selftrain.train.config import TrainConfig

__all__ = ["validate_config"]


def validate_config(config: TrainConfig) -> None:
    """Raise :class:`ConfigError` for a setting (or a combination) that cannot train."""
    from selftrain.models.config import ENCODERS
    from selftrain.ssl.combine import STRATEGIES
    from selftrain.ssl.objectives import OBJECTIVES

    if not config.out:
        raise ConfigError("config.out (the run folder) is required")
    if config.precision not in ("fp32", "bf16"):
        raise ConfigError(f"precision must be fp32 or bf16, not {config.precision!r}")
    if config.model.encoder not in ENCODERS:
        raise ConfigError(f"model.encoder must be one of {ENCODERS}")
    if config.combine.strategy not in STRATEGIES:
        raise ConfigError(f"combine.strategy must be one of {STRATEGIES}, not {config.combine.strategy!r}")
    bad = [o for o in config.ssl.objectives if o not in OBJECTIVES]
    if bad:
        raise ConfigError(f"unknown SSL objective(s) {bad}; choose from {list(OBJECTIVES)}")
    unknown_weights = set(config.ssl.weights) - set(config.ssl.objectives)
    if unknown_weights:
        raise ConfigError(f"ssl.weights names objectives that are not enabled: {sorted(unknown_weights)}")
    if not 0 <= config.ssl.mask_prob < 1:
        raise ConfigError("ssl.mask_prob must be in [0, 1)")
    from selftrain.train.objective import CHECKPOINT_METRICS

    if config.checkpoint_metric not in CHECKPOINT_METRICS:
        raise ConfigError(f"checkpoint_metric must be one of {CHECKPOINT_METRICS}, not {config.checkpoint_metric!r}")
    if config.checkpoint_metric == "lm_wer" and not Path(config.dev_lm).is_file():
        raise ConfigError(f"checkpoint_metric lm_wer needs dev_lm, a KenLM model file (got {config.dev_lm!r})")
    if config.epochs < 0 or config.optim.warmup_steps < 0:
        raise ConfigError("epochs and optim.warmup_steps must not be negative")
    if config.data.batch_seconds <= 0:
        raise ConfigError("data.batch_seconds must be positive")
    if config.distill.weight > 0 and not config.distill.teacher_model:
        raise ConfigError("distill.weight > 0 needs distill.teacher_model (a model folder)")
    if config.model.encoder == "whisper":
        _validate_frozen_front(config)
    if config.continuous.enabled:
        _validate_continuous(config)


def _validate_continuous(config: TrainConfig) -> None:
    config.continuous.check()
    if not config.data.unlabeled:
        raise ConfigError("continuous.enabled needs unlabeled audio to label: data.unlabeled is empty")
    if not config.data.dev:
        raise ConfigError("continuous.enabled needs a dev set (data.dev): labels are calibrated and the guard judged on it")
    if config.continuous.source == "ema" and config.ema_decay > 0:
        raise ConfigError("continuous.source=ema keeps its own EMA teacher (continuous.ema_decay): leave ema_decay at 0")


def _validate_frozen_front(config: TrainConfig) -> None:
    """A pretrained encoder's frozen states are what the student sees (masked): the SSL objectives,
    which predict from the filterbanks, do not apply; cached states stand for the clean audio, so
    nothing may change the audio either."""
    if config.ssl.objectives:
        raise ConfigError("ssl.objectives are not available with a pretrained (whisper) encoder, whose frozen "
                          "front the student never sees as filterbanks: leave ssl.objectives empty")
    if not config.state_cache:
        return
    changes_audio = [name for name, on in (("augment.speed_perturb", config.augment.speed_perturb),
                                           ("augment.noise_prob", config.augment.noise_prob > 0)) if on]
    if changes_audio:
        raise ConfigError(f"{', '.join(changes_audio)} change the audio, so the frozen encoder states cannot come "
                          "from the cache (state_cache): turn them off, or set state_cache='' to run the frozen part live")
