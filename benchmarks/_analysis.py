"""What a run's rows say: paired comparisons of the final models on the test utterances, gap
recovery, the comparison with no filtering, the continuous schedule, the sample-efficiency curve and
the targets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _arms import CONTINUOUS, EXPLORED, FILTERED_ARMS, explored_name, first_rows, later_rows
from _seeds import GENERATIONS, final_generation, gap_recovery, own_control_arm

from selftrain.audit.significance import paired_bootstrap, utterance_errors

__all__ = ["TARGET_GAP_RECOVERY", "POLICY_NAMES", "NO_FILTER", "VS_CONTROL", "VS_OFFLINE", "VS_OWN", "significance",
           "analyse", "continuous_analysis"]

TARGET_GAP_RECOVERY = 0.6
POLICY_NAMES = {"main": "confidence + agreement (default)"}  # the filtered policies' names in the no-filtering table
NO_FILTER = "no_filter:"  # key prefix of a policy's comparison with no filtering in the results' significance
# key suffixes of a continuous arm's comparisons: the labeled-only control chain, the offline generations,
# and its own `<name>_labeled_only` variant (the same run without unlabeled audio)
VS_CONTROL, VS_OFFLINE, VS_OWN = ":vs_labeled_only", ":vs_generations", ":vs_own_labeled_only"


def significance(work: Path, teacher_root: Path, arms: dict[str, list[dict[str, Any]]], test: str) -> dict[str, dict[str, float]]:
    """Paired bootstrap of the final self-training model against the teacher, the control and the oracle."""
    def final_errors(arm: str) -> dict[str, tuple[int, int]] | None:
        if not arms.get(arm):
            return None
        generation = final_generation(arms[arm])["generation"]
        root = teacher_root if arm == "main" and generation == 0 else work / arm
        return utterance_errors(root / f"gen_{generation:03d}" / "eval" / "test_lm.jsonl", test)

    final = final_errors("main")
    offline = final if later_rows(arms, "main") else None  # --skip generations: no offline generations to compare with
    teacher = utterance_errors(teacher_root / "gen_000" / "eval" / "test_lm.jsonl", test)
    compared = {"teacher": teacher, "labeled_only": final_errors("labeled_only"), "oracle": final_errors("oracle")}
    result = {name: paired_bootstrap(final, errors).to_dict() for name, errors in compared.items() if errors and final}
    for row in (r for n in arms if n.startswith(EXPLORED) for r in later_rows(arms, n)):  # every explored student against the teacher
        folder = work / "exp" / row["arm"][len(EXPLORED):] / f"gen_{row['generation']:03d}"
        result[explored_name(row)] = paired_bootstrap(utterance_errors(folder / "eval" / "test_lm.jsonl", test), teacher).to_dict()
    return {**result, **_against_no_filter(work, arms, test), **_continuous_against(work, arms, offline, compared)}


def _continuous_against(work: Path, arms: dict[str, list[dict[str, Any]]], offline, compared: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Paired bootstrap of each continuous arm's model against the labeled-only control's final model,
    the offline generations' final model and its own labeled-only variant's (keys: the arm's row name +
    :data:`VS_CONTROL` / :data:`VS_OFFLINE` / :data:`VS_OWN`)."""
    def errors(arm: str, generation: int) -> dict[str, tuple[int, int]]:
        folder = work / "exp" / arm[len(EXPLORED):] / f"gen_{generation:03d}"
        return utterance_errors(folder / "eval" / "test_lm.jsonl", _test_manifest(folder.parent))

    result = {}
    for row in _continuous_rows(arms):
        own = arms.get(own_control_arm(row["arm"]))
        own_errors = errors(own_control_arm(row["arm"]), final_generation(own)["generation"]) if own else None
        mine = errors(row["arm"], row["generation"])
        for suffix, other in ((VS_CONTROL, compared.get("labeled_only")), (VS_OFFLINE, offline), (VS_OWN, own_errors)):
            if other:
                result[explored_name(row) + suffix] = paired_bootstrap(mine, other).to_dict()
    return result


def _test_manifest(root: Path) -> str:
    return json.loads((root / "experiment.json").read_text(encoding="utf-8"))["config"]["data"]["test"]


def _continuous_rows(arms: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [r for name in arms if name.startswith(EXPLORED) for r in later_rows(arms, name) if r.get("schedule") == CONTINUOUS]


def _against_no_filter(work: Path, arms: dict[str, list[dict[str, Any]]], test: str) -> dict[str, dict[str, float]]:
    """Paired bootstrap of each filtered policy's generation-1 student against the unfiltered one's,
    keyed ``no_filter:<arm>``: how clearly filtering beats no filtering."""
    if not first_rows(arms, "no_filter"):
        return {}
    def errors(arm: str):
        return utterance_errors(work / arm / "gen_001" / "eval" / "test_lm.jsonl", test)
    unfiltered = errors("no_filter")
    return {f"{NO_FILTER}{arm}": paired_bootstrap(errors(arm), unfiltered).to_dict()
            for arm in ("main", *FILTERED_ARMS) if first_rows(arms, arm)}


def _test(arms: dict, arm: str, generation: int) -> float | None:
    rows = [r for r in arms.get(arm, []) if r["generation"] == generation]
    return rows[0]["test_wer"] if rows else None


def analyse(result: dict[str, Any]) -> dict[str, Any]:
    """Gap recovery, the control, the comparison with no filtering, the sample-efficiency curve and the targets."""
    arms = result["arms"]
    supervised = _test(arms, "main", 0)
    final = final_generation(arms["main"])
    control = final_generation(arms["labeled_only"])["test_wer"] if arms.get("labeled_only") else None
    oracle_rows = arms.get("oracle")
    oracle = final_generation(oracle_rows)["test_wer"] if oracle_rows else None
    oracle_1 = _test(arms, "oracle", 1)
    students = [r for r in arms["main"] if r["generation"] > 0]
    chain = [supervised] + [r["test_wer"] for r in students]
    no_filter = _test(arms, "no_filter", 1)
    filtered = {"main": _test(arms, "main", 1), **{name: _test(arms, name, 1) for name in FILTERED_ARMS}}
    compared = result.get("significance") or {}
    vs_no_filter = {POLICY_NAMES.get(name, name): {"test_wer": wer, "better_than_no_filter_by": round(no_filter - wer, 4),
                                                   "interval": _interval(compared.get(NO_FILTER + name))}
                    for name, wer in filtered.items() if wer is not None and no_filter is not None}
    default_vs_no_filter = vs_no_filter.get(POLICY_NAMES["main"], {}).get("interval")
    curve = []
    for point in result["curve"]:
        rows = arms[point["arm"]]
        after = [r for r in rows if r["generation"] == result["curve_generations"]]
        curve.append({**point, "supervised_test_wer": _test(arms, point["arm"], 0),
                      "self_training_test_wer": (after or rows)[-1]["test_wer"],
                      "final_test_wer": final_generation(rows)["test_wer"]})
    every_filtered = [r["test_wer"] for r in students] + [w for w in filtered.values() if w is not None]
    recovery = gap_recovery(control, final["test_wer"], oracle) if students else None
    pooled_generations = next((p for p in result.get("seeds") or [] if p["setting"] == GENERATIONS), None)
    # (name, whether its arms ran, met): a target whose arms were skipped is left out, not failed
    targets = [
        ("every_generation_at_least_as_good", bool(students), all(b <= a for a, b in zip(chain, chain[1:], strict=False))),
        ("final_model_not_worse_than_supervised", bool(students), final["test_wer"] <= supervised),
        ("final_model_better_than_labeled_only_control", control is not None and bool(students), control is not None and final["test_wer"] < control),
        ("no_filtered_setting_worse_than_supervised", bool(every_filtered), all(w <= supervised for w in every_filtered)),
        (f"gap_recovery_at_least_{TARGET_GAP_RECOVERY}", control is not None and oracle is not None and bool(students),
         recovery is not None and recovery >= TARGET_GAP_RECOVERY),
        # "clearly": every policy better, and the default one by more than the test set's noise where
        # the run measured its interval (runs recorded before it was measured: the margins alone)
        (f"gap_recovery_mean_of_seeds_at_least_{TARGET_GAP_RECOVERY}", pooled_generations is not None,
         pooled_generations is not None and (pooled_generations.get("gap_recovery") or -1.0) >= TARGET_GAP_RECOVERY
         and (pooled_generations.get("vs_control") or {}).get("high", 1.0) < 0),
        ("filtering_beats_no_filtering", no_filter is not None,
         bool(vs_no_filter) and all(v["better_than_no_filter_by"] > 0 for v in vs_no_filter.values())
         and (default_vs_no_filter is None or default_vs_no_filter[1] < 0)),
    ]
    return {
        "supervised_test_wer": supervised, "final_test_wer": final["test_wer"], "final_generation": final["generation"],
        "labeled_only_test_wer": control, "oracle_test_wer": oracle, "oracle_generation_1_test_wer": oracle_1,
        "gap_recovery": recovery, "gap_recovery_vs_teacher": gap_recovery(supervised, final["test_wer"], oracle) if students else None,
        "vs_no_filter": vs_no_filter, "no_filter_test_wer": no_filter, "curve": curve,
        "continuous": continuous_analysis(result, control, oracle),
        "targets": {name: met for name, ran, met in targets if ran},
    }


def continuous_analysis(result: dict[str, Any], control: float | None, oracle: float | None) -> dict[str, Any] | None:
    """Each continuous arm against the offline generations and the labeled-only control: test WER, wall
    time (the self-training stages after the shared teacher), gap recovery, guard trips and intervals."""
    arms, compared = result["arms"], result.get("significance") or {}
    rows = _continuous_rows(arms)
    if not rows:
        return None
    final = final_generation(arms["main"])

    def wall(arm: str) -> float:
        return round(sum(r["wall_seconds"] for r in later_rows(arms, arm)), 1)

    def own_recovery(row: dict[str, Any]) -> float | None:  # against the arm's own labeled-only variant
        own = arms.get(own_control_arm(row["arm"]))
        return gap_recovery(final_generation(own)["test_wer"], row["test_wer"], oracle) if own else None

    return {
        "generations": ({"test_wer": final["test_wer"], "final_generation": final["generation"], "wall_seconds": wall("main")}
                        if later_rows(arms, "main") else None),
        "labeled_only": {"test_wer": control, "wall_seconds": wall("labeled_only")} if control is not None else None,
        "arms": [{"name": explored_name(r), "test_wer": r["test_wer"], "dev_wer": r["dev_wer"], "accepted": r["accepted"],
                  "wall_seconds": r["wall_seconds"], "optimizer_steps": r.get("optimizer_steps"), "guard_trips": r.get("guard_trips"),
                  "pseudo_label_wer": r["pseudo_label_wer"], "gap_recovery": gap_recovery(control, r["test_wer"], oracle),
                  "own_gap_recovery": own_recovery(r), "vs_teacher": _interval(compared.get(explored_name(r))),
                  "vs_labeled_only": _interval(compared.get(explored_name(r) + VS_CONTROL)),
                  "vs_generations": _interval(compared.get(explored_name(r) + VS_OFFLINE)),
                  "vs_own_labeled_only": _interval(compared.get(explored_name(r) + VS_OWN))} for r in rows],
    }


def _interval(comparison: dict[str, float] | None) -> list[float] | None:
    return [comparison["low"], comparison["high"]] if comparison else None
