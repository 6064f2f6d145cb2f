"""The benchmark's settings repeated with other seeds, pooled: mean and spread of the final test WER,
gap recovery from the means, and one paired interval against the labeled-only control over all seeds.

Seeds are found by name: the main chain and the labeled-only control are seed 0 of ``generations``
and ``control``; an explored variant ``seed<N>`` / ``control_seed<N>`` is seed N of those, and
``<name>_seed<N>`` seed N of the explored variant ``<name>`` (which is its seed 0). A setting is pooled
when it ran with two seeds or more; its interval pairs each seed's model with the control of the
same seed, utterance by utterance, summing word errors over the seeds (resampling utterances, so an
utterance that is hard for every seed counts once as hard). A setting ``<name>`` whose own control
``<name>_labeled_only`` ran with the same seeds (the same training without the unlabeled audio) is
also measured against it, and every explored setting against the offline generations of the same
seeds (the main chain and ``seed<N>``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from statistics import mean
from typing import Any

from selftrain.audit.significance import paired_bootstrap, utterance_errors

__all__ = ["final_generation", "gap_recovery", "own_control_arm", "seed_families", "summed_errors", "pooled_seeds",
           "seeds_lines"]

GENERATIONS, CONTROL = "generations", "control"
OWN_CONTROL_SUFFIX = "_labeled_only"  # an explored setting `<name>_labeled_only` is the control of `<name>`
_SEEDED = re.compile(r"^(?P<family>.*?)_?seed(?P<seed>\d+)$")


def own_control_arm(arm: str) -> str:
    """The arm of a setting's own labeled-only variant: ``<name>_labeled_only`` for ``<name>``, and
    ``<name>_labeled_only_seed<N>`` for ``<name>_seed<N>`` (the family :func:`seed_families` pools)."""
    match = _SEEDED.match(arm)
    if match and match["family"]:
        return f"{match['family']}{OWN_CONTROL_SUFFIX}_seed{match['seed']}"
    return arm + OWN_CONTROL_SUFFIX


def seed_families(arms: dict[str, list[dict[str, Any]]], explored_prefix: str) -> dict[str, dict[int, str]]:
    """Setting -> {seed: arm name}, for the settings that ran with two seeds or more."""
    families: dict[str, dict[int, str]] = {}
    for name, family in (("main", GENERATIONS), ("labeled_only", CONTROL)):
        if any(r["generation"] > 0 for r in arms.get(name) or []):  # a main run kept at its teacher has no chain
            families[family] = {0: name}
    for name in arms:
        if not name.startswith(explored_prefix) or not arms[name]:
            continue
        variant = name[len(explored_prefix):]
        match = _SEEDED.match(variant)
        family, seed = (match["family"], int(match["seed"])) if match else (variant, 0)
        families.setdefault(family or GENERATIONS, {})[seed] = name
    return {family: seeds for family, seeds in families.items() if len(seeds) > 1}


def final_generation(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The last accepted generation of an experiment (rejected students never teach)."""
    return [r for r in rows if r["accepted"]][-1]


def gap_recovery(baseline: float | None, final: float, oracle: float | None) -> float | None:
    """(baseline - final) / (baseline - oracle), rounded; None without a baseline, an oracle or a gap."""
    gap = baseline - oracle if baseline is not None and oracle is not None else None
    return round((baseline - final) / gap, 3) if gap else None


def summed_errors(errors: list[dict[str, tuple[int, int]]]) -> dict[str, tuple[int, int]]:
    """Per utterance scored in every one of ``errors``, the word errors and reference words summed
    over them: several seeds' models as one system for a paired interval over utterances."""
    shared = set.intersection(*(set(e) for e in errors))
    return {u: (sum(e[u][0] for e in errors), sum(e[u][1] for e in errors)) for u in sorted(shared)}


def pooled_seeds(arms: dict[str, list[dict[str, Any]]], explored_prefix: str, oracle: float | None,
                 test_hyps: Callable[[str, int], Path], test: str) -> list[dict[str, Any]]:
    """One entry per seeded setting: its seeds and final test WER by seed, their mean and range, the control's
    mean over the same seeds, gap recovery from the means and the pooled paired interval against the
    control. ``test_hyps(arm, generation)``: the test hypotheses file of that model."""
    families = seed_families(arms, explored_prefix)
    control = families.get(CONTROL, {})

    def errors(arm: str) -> dict[str, tuple[int, int]]:
        return utterance_errors(test_hyps(arm, final_generation(arms[arm])["generation"]), test)

    pooled = []
    for family, seeds in families.items():
        wers = [final_generation(arms[arm])["test_wer"] for _, arm in sorted(seeds.items())]
        entry: dict[str, Any] = {"setting": family, "seeds": sorted(seeds), "test_wer_by_seed": wers,
                                 "mean_test_wer": round(mean(wers), 4), "min": min(wers), "max": max(wers)}
        own_control = families.get(family + OWN_CONTROL_SUFFIX, {})
        offline = families.get(GENERATIONS, {}) if family not in (GENERATIONS, CONTROL) else {}
        for key, other in (("", control), ("own_", own_control), ("offline_", offline)):
            shared = {seed: arm for seed, arm in seeds.items() if seed in other}
            if family == CONTROL or len(shared) < min(2, len(seeds)):
                continue
            # Against the seeds both ran (every seed of the setting, or at least two of them, named in the
            # report): the setting's mean over those seeds, so both sides of the comparison are the same runs.
            setting_mean = round(mean(final_generation(arms[arm])["test_wer"] for arm in shared.values()), 4)
            entry.update(_against(key, shared, other, arms, errors, oracle, setting_mean))
            if len(shared) < len(seeds):
                entry[f"{key}shared_seeds"] = sorted(shared)
                entry[f"{key}shared_mean_test_wer"] = setting_mean
        pooled.append(entry)
    return pooled


def _against(key: str, seeds: dict[int, str], control: dict[int, str], arms: dict[str, list[dict[str, Any]]],
             errors: Callable[[str], dict[str, tuple[int, int]]], oracle: float | None, setting_mean: float) -> dict[str, Any]:
    """The control's mean over ``seeds``, gap recovery from the means and the pooled paired interval,
    under keys prefixed ``key``."""
    control_mean = mean(final_generation(arms[control[s]])["test_wer"] for s in seeds)
    comparison = paired_bootstrap(summed_errors([errors(seeds[s]) for s in sorted(seeds)]),
                                  summed_errors([errors(control[s]) for s in sorted(seeds)]))
    return {f"{key}control_mean_test_wer": round(control_mean, 4),
            f"{key}gap_recovery": gap_recovery(control_mean, setting_mean, oracle),
            f"vs_{key}control": comparison.to_dict()}


def seeds_lines(pooled: list[dict[str, Any]] | None, oracle: float | None) -> list[str]:
    """The Markdown section of the pooled settings (nothing when no setting ran with several seeds)."""
    if not pooled:
        return []
    lines = ["## Seeds pooled", "",
             "Each setting's final model (its last accepted generation) with every seed it ran with; gap recovery "
             f"from the means, (control - setting) / (control - oracle), oracle {oracle if oracle is not None else '-'} "
             "(seed 0); interval: paired bootstrap (2000 resamples) of the setting minus the labeled-only control "
             "of the same seeds, word errors summed over the seeds utterance by utterance.", "",
             "Own control: the setting's `<name>_labeled_only` variant (the same training without unlabeled audio), "
             "where it ran with the same seeds; gap recovery against it uses the same oracle.", "",
             "Offline: the three offline generations of the same seeds (the main chain and `seed<N>`), their final "
             "models' mean and the pooled interval of the setting minus them.", "",
             "A comparison whose other side ran with only some of the setting's seeds (at least two) is made on "
             "those seeds alone, named in its cell with the setting's mean over them.", "",
             "| setting | test WER by seed | mean | range | control mean | gap recovery | vs control | "
             "own control mean | gap recovery vs own | vs own control | offline mean | vs offline |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for entry in pooled:
        by_seed = ", ".join(f"{seed}: {wer:.3f}" for seed, wer in zip(entry["seeds"], entry["test_wer_by_seed"], strict=True))
        lines.append(f"| {entry['setting']} | {by_seed} | {entry['mean_test_wer']:.3f} | {entry['min']:.3f}-{entry['max']:.3f} | "
                     f"{_against_cells(entry, '')} | {_against_cells(entry, 'own_')} | {_against_cells(entry, 'offline_', False)} |")
    return [*lines, ""]


def _against_cells(entry: dict[str, Any], key: str, with_recovery: bool = True) -> str:
    control, recovery, versus = (entry.get(f"{key}control_mean_test_wer"), entry.get(f"{key}gap_recovery"),
                                 entry.get(f"vs_{key}control"))
    interval = f"{versus['difference']:+.4f} [{versus['low']:+.4f}, {versus['high']:+.4f}]" if versus else "-"
    if versus and entry.get(f"{key}shared_seeds"):  # on a subset of the setting's seeds: which, and its mean there
        interval += (f" (seeds {', '.join(map(str, entry[f'{key}shared_seeds']))}; setting mean there "
                     f"{entry[f'{key}shared_mean_test_wer']:.3f})")
    cells = [f"{'-' if control is None else f'{control:.3f}'}", interval]
    if with_recovery:
        cells.insert(1, f"{'-' if recovery is None else f'{recovery:.3f}'}")
    return " | ".join(cells)
