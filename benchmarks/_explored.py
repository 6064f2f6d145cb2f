"""The scale's explored variants (``explore``): which run, their experiment settings, the labels the
benchmark gives them and the main run's stages they reuse."""

from __future__ import annotations

from typing import Any

from _arms import CONTINUOUS, DECODED, TEACHER

from selftrain.errors import ConfigError
from selftrain.generation import load_experiment_config
from selftrain.overrides import deep_merge

__all__ = ["ANALYSIS_LABELS", "EXPLORED_LABELS", "explored_variants", "split_variant", "continuous_variant",
           "explored_adoption", "missing_recognizer"]

# What an explored student trains on: the experiment's own ``labels`` (policy, none, oracle) or an
# analysis oracle made from the main run's selection (ANALYSIS_LABELS: given to it, _labels.py)
ANALYSIS_LABELS = ("oracle_selected", "oracle_random", "oracle_runs")
EXPLORED_LABELS = ("policy", "none", "oracle", *ANALYSIS_LABELS)


def explored_variants(scale: dict[str, Any], names: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The scale's explored variants named in ``names`` (every one when empty), in the scale's order;
    a name the scale does not have is refused."""
    variants = scale.get("explore") or {}
    unknown = sorted(set(names) - set(variants))
    if unknown:
        raise SystemExit(f"unknown explored variants {', '.join(unknown)}; the scale has {', '.join(variants) or 'none'}")
    return [(name, variant) for name, variant in variants.items() if not names or name in names]


def split_variant(one: dict[str, Any], variant: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """An explored variant's experiment settings (over the one-generation ``one``) and the labels the
    benchmark gives it (``labels: given``, :func:`_labels.explored_labels`; None: the experiment makes
    them). Its ``labels`` (``policy`` unless given): ``none`` and ``oracle`` are the experiment's own
    setting; the analysis oracles (:data:`ANALYSIS_LABELS`) and a ``labels: none`` variant with
    ``match_steps: false`` (a control at its config's epochs, not a student's steps: an empty file)
    are given."""
    labels = variant.get("labels", "policy")
    if labels not in EXPLORED_LABELS:
        raise SystemExit(f"unknown explored labels {labels!r}: expected one of {', '.join(EXPLORED_LABELS)}")
    if "match_steps" in variant and labels != "none":
        raise SystemExit(f"match_steps is a setting of labeled-only controls (labels: none), not of labels {labels!r}")
    overrides = deep_merge(one, {k: v for k, v in variant.items() if k not in ("labels", "match_steps")})
    if labels in ANALYSIS_LABELS or not variant.get("match_steps", True):
        return overrides, labels
    return (deep_merge(overrides, {"labels": labels}) if labels != "policy" else overrides), None


def continuous_variant(variant: dict[str, Any], generations: int) -> dict[str, Any]:
    """A ``schedule: continuous`` variant runs on the budget of the scale's ``generations`` (unless it
    sets its own) and labels its audio itself (``labels: policy``); other variants are returned as given."""
    if variant.get("schedule") != CONTINUOUS:
        return variant
    if variant.get("labels", "policy") != "policy":
        raise SystemExit(f"a continuous variant makes its own labels: labels {variant['labels']!r} cannot go with it")
    return {"generations": generations, **variant}


def explored_adoption(name: str, variant: dict[str, Any]) -> list[str]:
    """The main run's stages an explored variant reuses: its teacher always, its generation-1
    decoding unless the variant's students train on other labels than the policy's (``labels``) or
    it changes how the unlabeled audio is decoded.
    A variant that changes the teacher itself (its data, model, LM or training) is refused: explored
    variants differ from the main run after generation 0 only (change those in the scale's
    ``experiment`` instead)."""
    changes_teacher = sorted(set(variant) & {"data", "preset", "lm_order", "teacher_train"})
    if changes_teacher:
        raise SystemExit(f"explored variant {name!r} changes the teacher ({', '.join(changes_teacher)}); "
                         "set those in the scale's `experiment` (a scale of its own) instead")
    continuous = variant.get("schedule") == CONTINUOUS  # decodes nothing before it trains
    own_labels = variant.get("labels", "policy") != "policy"
    return TEACHER if own_labels or continuous or {"teachers", "decode"} & set(variant) else DECODED


def missing_recognizer(overrides: dict[str, Any]) -> str | None:
    """Why an experiment's external teachers cannot run here (their extra or model folder is
    missing), or None: such a variant is left out and the results say why, not the whole run."""
    from selftrain.teachers.errors import MissingExtraError, ModelFolderError

    try:
        load_experiment_config(overrides=overrides)
    except ConfigError as exc:
        if isinstance(exc.__cause__, MissingExtraError | ModelFolderError):
            return str(exc)
        raise
    return None
