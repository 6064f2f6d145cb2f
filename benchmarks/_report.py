"""The benchmark's results as Markdown: the rows, gap recovery, paired comparisons, ablations, the
continuous schedule, explored variants, the sample-efficiency curve and the targets."""

from __future__ import annotations

from typing import Any

from _arms import ABLATIONS, EXPLORED, PRESET_ARM, explored_name, first_rows, later_rows
from _seeds import seeds_lines

__all__ = ["LABELS", "row_name", "to_markdown"]

LABELS = {
    "main": "self-training, default policy", "ssl_teacher": "supervised, CTC + SSL (BEST-RQ on all audio)",
    "no_filter": "ablation: no filtering", "whole_utterances": "ablation: whole utterances only (no segments)",
    "confidence_only": "ablation: confidence only", "agreement_only": "ablation: agreement only",
    "no_lm": "ablation: teacher without the LM (greedy labels)", "student_ssl": "ablation: SSL loss on in the student",
}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def row_name(row: dict[str, Any]) -> str:
    """A row's name in the tables and the figure."""
    if row["arm"] == "main":
        return "supervised, CTC only (teacher)" if row["generation"] == 0 else f"self-training, generation {row['generation']}"
    if row["arm"] == "labeled_only":
        return f"control: labeled only, generation {row['generation']}"
    if row["arm"] == "oracle":
        return f"oracle: true transcripts, generation {row['generation']}"
    if row["arm"].startswith("labeled_"):
        kind = "supervised" if row["generation"] == 0 else f"self-training, generation {row['generation']}"
        return f"{int(row['arm'].split('_')[1])} % labeled: {kind}"
    if row["arm"].startswith(EXPLORED):
        return explored_name(row)
    if row["arm"].startswith(PRESET_ARM):
        return f"supervised, preset {row['arm'][len(PRESET_ARM):]}"
    return LABELS.get(row["arm"], row["arm"])


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| row | test WER | test CER | test sub / del / ins | dev WER | pseudo-label WER | kept | wall time (s) | accepted |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {row_name(r)} | {_fmt(r['test_wer'])} | {_fmt(r['test_cer'])} | {_error_kinds(r)} | {_fmt(r['dev_wer'])} | "
                     f"{_fmt(r['pseudo_label_wer'])} | {_fmt(r['kept_fraction'], 2) if r['generation'] else '-'} | "
                     f"{_fmt(r['wall_seconds'], 0)} | {'yes' if r['accepted'] else 'no (rejected on dev)'} |")
    return lines


def _tuning_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The decoder settings each model's ``tune`` stage chose on dev (``decode_tuning``), if any."""
    tuned = [r for r in rows if r.get("decoder_tuning")]
    if not tuned:
        return []
    lines = ["## Decoder settings tuned on dev", "",
             "Each model's blank penalty, word bonus (beta) and LM weight (alpha), chosen on dev before it was "
             "evaluated and before it decoded the next generation's unlabeled audio; dev WER at the configured "
             "settings and at the chosen ones.", "",
             "| row | blank penalty | beta | alpha | dev WER, configured | dev WER, tuned |", "| --- | --- | --- | --- | --- | --- |"]
    for r in tuned:
        best, t = r["decoder_tuning"]["best"], r["decoder_tuning"]
        lines.append(f"| {row_name(r)} | {best['blank_penalty']:g} | {best['beta']:g} | {best['alpha']:g} | "
                     f"{_fmt(t['base_wer'])} | {_fmt(t['best_wer'])} |")
    return [*lines, ""]


def _error_kinds(row: dict[str, Any]) -> str:
    kinds = row.get("test_errors")  # absent from results written before it was recorded
    return " / ".join(_fmt(kinds[k]) for k in ("substitutions", "deletions", "insertions")) if kinds else "-"


def _explored_lines(arms: dict[str, list[dict[str, Any]]], compared: dict[str, dict[str, float]]) -> list[str]:
    rows = [r for name in arms if name.startswith(EXPLORED) for r in later_rows(arms, name)]
    if not rows:
        return []
    lines = ["", "## Explored on the way (from the main run's teacher and generation-1 decoding; settings: the scale's `explore`)",
             "", *_table(rows)]
    against = [f"| {explored_name(r)} | {c['difference']:+.4f} | [{c['low']:+.4f}, {c['high']:+.4f}] |"
               for r in rows for c in [compared.get(explored_name(r))] if c]
    if against:
        lines += ["", "Each against the teacher (paired bootstrap, 2000 resamples; an interval that excludes 0 is a real difference):", "",
                  "| row | test WER difference | 95 % interval |", "| --- | --- | --- |", *against]
    return lines


def _significance_lines(compared: dict[str, dict[str, float]], a: dict[str, Any]) -> list[str]:
    if not compared or a["final_generation"] == 0:  # no student was accepted: the final model is the teacher
        return []
    names = {"teacher": "the supervised teacher", "labeled_only": "the labeled-only control", "oracle": "the oracle"}
    lines = ["Final self-training model against each, on the same test utterances (paired bootstrap, 2000 "
             "resamples; an interval that excludes 0 is a real difference):", "",
             "| against | test WER difference | 95 % interval |", "| --- | --- | --- |"]
    lines += [f"| {names[name]} | {c['difference']:+.4f} | [{c['low']:+.4f}, {c['high']:+.4f}] |"
              for name, c in compared.items() if name in names]
    return [*lines, ""]


def to_markdown(result: dict[str, Any], command: str, name: str = "self_training") -> str:
    """The results as Markdown; sections whose arms did not run (``--skip``) are left out."""
    a, arms, meta = result["analysis"], result["arms"], result["meta"]
    rows = arms["main"] + later_rows(arms, "labeled_only") + later_rows(arms, "oracle") + arms.get("ssl_teacher", [])
    rows += [r for name in arms if name.startswith(PRESET_ARM) for r in arms[name]]
    hours = result["corpus"]["hours"]
    skipped = result.get("skipped") or []
    lines = [
        f"# Self-training benchmark ({meta['scale']} scale)", "",
        f"Command: `{command}`  ", f"Date: {meta['date']}; machine: {meta['machine']}, {meta['cpus']} CPU cores, no GPU.  ",
        f"Corpus: labeled {hours['labeled']:.2f} h, unlabeled {hours['unlabeled']:.2f} h, dev {hours['dev']:.2f} h, "
        f"test {hours['test']:.2f} h. Total wall time of the stages: {meta['stage_seconds_total'] / 60:.1f} min "
        f"(this invocation: {meta['invocation_seconds'] / 60:.1f} min).",
        *([f"Corpus and teacher: the `{result['teacher_from']}` scale's (trained by its run; their stage "
           "times are in the total)."] if result.get("teacher_from") else []),
        *([f"Corpus: the `{result['corpus_from']}` scale's (synthesized by its run; the teacher is this "
           "scale's own)."] if result.get("corpus_from") and not result.get("teacher_from") else []),
        *([f"Teacher ensemble: each generation's teacher labels the unlabeled audio (and dev, for the "
           f"selection's calibration) together with the generation-0 teacher of the "
           f"{', '.join(f'`{n}`' for n in result['ensemble_from'])} scale, their posteriors averaged "
           "(`teachers.ensemble`); test and dev WERs are each generation's single model's."]
          if result.get("ensemble_from") else []),
        *([f"Arms left out of this run (`--skip`): {', '.join(skipped)}."] if skipped else []),
        *([f"Explored variants run (`--explore`): {', '.join(result['explored_only'])}; the scale's others are left out."]
          if result.get("explored_only") else []),
        *[f"Explored variant `{n}` not run: {why}." for n, why in (result.get("unavailable") or {}).items()], "",
        "## Main result", "", *_table(rows), "", *_recovery_lines(a), *_significance_lines(result.get("significance") or {}, a),
        *seeds_lines(result.get("seeds"), a["oracle_test_wer"]), *_tuning_lines(rows),
        *_ablation_lines(arms, a), *_continuous_lines(a.get("continuous")), *_explored_lines(arms, result.get("significance") or {}),
        *_curve_lines(result),
        "", "## Targets", "", *([f"- {target}: {'met' if ok else 'NOT met'}" for target, ok in a["targets"].items()]
                                or ["- none: every arm a target is judged on was left out of this run"]),
        "", f"Plots: `{name}.png`. What the budget buys and what was tried: `docs/experiments/`.", "",
    ]
    return "\n".join(lines)


def _recovery_lines(a: dict[str, Any]) -> list[str]:
    if a["oracle_test_wer"] is None:
        return []
    lines = [f"Against the teacher, (teacher - final) / (teacher - oracle), as earlier runs reported it: "
             f"{_fmt(a['gap_recovery_vs_teacher'])} (teacher {_fmt(a['supervised_test_wer'])}).", ""]
    if a["labeled_only_test_wer"] is None:
        return lines
    return [f"Gap recovery against the labeled-only control, (control - final) / (control - oracle), each after its "
            f"last accepted generation: **{_fmt(a['gap_recovery'])}** (control {_fmt(a['labeled_only_test_wer'])}, "
            f"self-training generation {a['final_generation']} {_fmt(a['final_test_wer'])}, "
            f"oracle {_fmt(a['oracle_test_wer'])}).  ", *lines]


def _ablation_lines(arms: dict[str, list[dict[str, Any]]], a: dict[str, Any]) -> list[str]:
    ablations = [r for name in ABLATIONS for r in first_rows(arms, name)]
    if not ablations:
        return []
    lines = ["## Ablations (generation 1, same teacher and decoding)", "",
             *_table(first_rows(arms, "labeled_only") + ablations), ""]
    if a["vs_no_filter"]:
        lines += ["Each filtered policy against no filtering (generation 1; the interval is the paired bootstrap's "
                  "95 % interval of policy - no filtering: below 0 throughout is a clear win):", "",
                  "| policy | test WER | better than no filtering by | 95 % interval |", "| --- | --- | --- | --- |",
                  *[f"| {policy} | {_fmt(v['test_wer'])} | {_fmt(v['better_than_no_filter_by'], 4)} | "
                    f"{_fmt_interval(v.get('interval'))} |" for policy, v in a["vs_no_filter"].items()]]
    return lines


def _continuous_lines(c: dict[str, Any] | None) -> list[str]:
    """The continuous schedule against the offline generations and the labeled-only control."""
    if not c:
        return []
    offline, control = c["generations"], c["labeled_only"]
    lines = ["## Continuous schedule (one run on the generations' step budget) against offline generations", "",
             "Wall time: the stages after the shared teacher (continuous: its training and evaluation; generations: "
             "decoding, selection, audit, training and evaluation of each). Intervals: paired bootstrap (2000 resamples) "
             "of the continuous model's test WER minus the other's; below 0 throughout is a clear win.", "",
             "Gap recovery: against the labeled-only control chain, and against the arm's own labeled-only variant "
             "(the same run without unlabeled audio), each with the oracle chain's final test WER.", "",
             "| row | test WER | wall time (s) | gap recovery | gap recovery vs own variant | guard trips | steps | "
             "sampled label WER | accepted | vs teacher | vs labeled-only control | vs offline generations | "
             "vs own labeled-only variant |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    if offline is not None:
        lines.append(f"| offline generations (final: generation {offline['final_generation']}) | {_fmt(offline['test_wer'])} | "
                     f"{_fmt(offline['wall_seconds'], 0)} | - | - | - | - | - | - | - | - | - | - |")
    if control is not None:
        lines.append(f"| control: labeled only (final) | {_fmt(control['test_wer'])} | {_fmt(control['wall_seconds'], 0)} | "
                     "- | - | - | - | - | - | - | - | - | - |")
    for arm in c["arms"]:
        lines.append(f"| {arm['name']} | {_fmt(arm['test_wer'])} | {_fmt(arm['wall_seconds'], 0)} | {_fmt(arm['gap_recovery'])} | "
                     f"{_fmt(arm.get('own_gap_recovery'))} | "
                     f"{_fmt(arm['guard_trips'])} | {_fmt(arm['optimizer_steps'])} | {_fmt(arm['pseudo_label_wer'])} | "
                     f"{'yes' if arm['accepted'] else 'no (rejected on dev)'} | {_fmt_interval(arm['vs_teacher'])} | "
                     f"{_fmt_interval(arm['vs_labeled_only'])} | {_fmt_interval(arm['vs_generations'])} | "
                     f"{_fmt_interval(arm.get('vs_own_labeled_only'))} |")
    return [*lines, ""]


def _fmt_interval(interval: list[float] | None) -> str:
    return f"[{interval[0]:+.4f}, {interval[1]:+.4f}]" if interval else "- (not measured in this run)"


def _curve_lines(result: dict[str, Any]) -> list[str]:
    curve = result["analysis"]["curve"]
    if len(curve) < 2:
        return []
    return ["", f"## Sample efficiency (self-training: generation {result['curve_generations']})", "",
            "| labeled | hours | supervised test WER | self-training test WER | final test WER (accepted) |",
            "| --- | --- | --- | --- | --- |",
            *[f"| {round(c['fraction'] * 100)} % | {c['labeled_hours']:.2f} | {_fmt(c['supervised_test_wer'])} | "
              f"{_fmt(c['self_training_test_wer'])} | {_fmt(c['final_test_wer'])} |" for c in curve]]
