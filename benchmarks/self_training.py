"""The self-training benchmark: does self-training beat the supervised-only model, and by how much?

On a synthetic corpus made for the run (labeled: known voices, nearly clean; unlabeled, dev and
test: the target domain, degraded, with unseen voices), it runs these arms with ``selftrain run``,
each in its own resumable experiment folder under ``--work``:

- ``main``: the supervised teacher (CTC only), then 3 generations with the default policy
  (confidence + agreement of the LM and greedy teachers, threshold chosen on dev);
- ``labeled_only``: the control (``labels: none``). The same generations from the same teacher with
  nothing decoded or selected, so each student trains on the labeled audio alone, for as many
  optimizer steps as a self-training student and with the same acceptance test: what the extra
  training alone buys. Self-training helps only where it beats this chain;
- ``oracle``: the same generations, each student trained on the TRUE transcripts of all the
  unlabeled audio (``labels: oracle``, the topline);
- ``ssl_teacher``: the teacher trained with CTC + SSL on the labeled and unlabeled audio;
- ablations of generation 1, sharing ``main``'s teacher and decoding: ``no_filter`` (every
  pseudo-label), ``confidence_only`` and ``agreement_only`` (ranked by one signal, keeping the
  share the default policy kept), ``no_lm`` (pseudo-labels from greedy decoding), ``student_ssl``
  (the default selection, SSL loss on in the student);
- ``labeled_<pct>``: a teacher and ``curve_generations`` generations on a subset of the labeled set
  (the sample-efficiency curve);
- explored variants with ``schedule: continuous`` (on any scale): from the main run's teacher, one
  continuous run (labels made during training, :mod:`selftrain.train.continuous`) on the step budget
  of the scale's generations, reported against those generations and the labeled-only control.

It writes ``self_training.{json,md,png}`` under ``--out``: test WER/CER, pseudo-label WER, kept
fraction and wall time per row, the gap recovery (control - final) / (control - oracle) after the
same number of generations (and, as in earlier runs, against the teacher) and the targets. Re-running continues an interrupted benchmark. Scales live in
``benchmarks/self_training.yaml``::

    python benchmarks/self_training.py                  # default scale (its time: benchmarks/results/self_training.md)
    python benchmarks/self_training.py --scale quick    # ~9 min: checks every arm runs, for development
    python benchmarks/self_training.py --skip ssl_teacher   # leave out arms (the results say which)
    python benchmarks/self_training.py --scale pretrained_30min --skip generations ... --explore continuous_best_ema
    python benchmarks/self_training.py --scale followup --report-only   # rewrite .md/.png from the .json

This file runs the arms and writes the results; the parts live beside it: ``_arms`` (arm names, the
corpus and teacher homes, running an arm, its rows), ``_explored`` (explored variants), ``_labels``
(the labels given to analysis arms), ``_analysis`` (comparisons, gap recovery, targets), ``_report`` (Markdown),
``_plots`` (figure), ``_seeds`` (seeds pooled) and ``_results`` (writing the files).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from _analysis import analyse, significance
from _arms import (
    DECODED,
    EXPLORED,
    OPTIONAL_ARMS,
    PRESET_ARM,
    SELECTED,
    TEACHER,
    check_skips,
    corpus_home,
    ensemble_members,
    generation_rows,
    labeled_subset,
    load_scale,
    make_corpus,
    run_arm,
    teacher_evaluation,
    teacher_home,
    teacher_overrides,
    teacher_stages,
)
from _explored import (
    continuous_variant,
    explored_adoption,
    explored_variants,
    missing_recognizer,
    split_variant,
)
from _labels import explored_labels
from _plots import plot
from _report import to_markdown
from _results import save_results
from _seeds import final_generation, pooled_seeds

from selftrain.overrides import deep_merge

# the entry point's own names, and those of the modules it is made of that scripts use as `self_training.<name>`
__all__ = ["HERE", "main", "rewrite_report", "run_benchmark", "TEACHER", "load_scale", "make_corpus", "corpus_home",
           "teacher_home", "run_arm", "teacher_overrides", "teacher_stages", "split_variant", "continuous_variant",
           "explored_labels", "explored_adoption"]

HERE = Path(__file__).resolve().parent

log = logging.getLogger("self_training")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="default", help="a scale of the config file [default]")
    parser.add_argument("--config", default=str(HERE / "self_training.yaml"), help="scales file")
    parser.add_argument("--work", default="benchmarks/work/self_training", help="work folder (resumable)")
    parser.add_argument("--out", default="benchmarks/results", help="results folder")
    parser.add_argument("--name", default=None, help="results file stem [self_training, quick: self_training_quick]")
    parser.add_argument("--skip", action="append", default=[], choices=OPTIONAL_ARMS,
                        help="leave an arm out of this invocation (repeatable); the results list what was left out")
    parser.add_argument("--explore", action="append", default=[], metavar="NAME",
                        help="run and report only this explored variant of the scale (repeatable; default: all of them)")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rewrite the analysis, Markdown and plot from the results JSON, "
                             "keeping its command, date and machine")
    return parser.parse_args(argv)


def scale_skips(scale: dict[str, Any], skip: list[str]) -> tuple[str, ...]:
    """The arms left out: the scale's own ``skip`` list (a scale sized to a time budget) and --skip."""
    own = list(scale.get("skip") or [])
    unknown = sorted(set(own) - set(OPTIONAL_ARMS))
    if unknown:
        raise SystemExit(f"the scale's skip list names unknown arms {', '.join(unknown)}; "
                         f"known: {', '.join(OPTIONAL_ARMS)}")
    return tuple(dict.fromkeys([*own, *skip]))


def run_benchmark(scale: dict[str, Any], work: Path, skip: tuple[str, ...] = (),
                  config: Path = HERE / "self_training.yaml", explore: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run every arm not in ``skip`` (resumable), most important first, and collect their rows;
    ``explore`` names the explored variants to run (all of the scale's when empty)."""
    home = teacher_home(scale, work)
    corpus = make_corpus(scale, corpus_home(scale, work) / "corpus")
    paths = corpus["paths"]
    base = deep_merge(scale["experiment"], {"data": paths})
    if scale.get("state_cache") == "shared":  # one frozen-state cache for every arm on this audio (content-addressed)
        base = deep_merge(base, {"state_cache": str(corpus_home(scale, work).resolve() / "state_cache")})
    members = ensemble_members(scale, work, config)
    if members:
        base = deep_merge(base, {"teachers": {"ensemble": members}})
    generations = int(base["generations"])
    ssl = {"ssl": scale["ssl"]}
    check_skips(skip)
    teacher = run_arm(home, "teacher", teacher_overrides(base))
    shared = teacher_stages(base)
    main = run_arm(work, "main", deep_merge(base, {"generations": 0}) if "generations" in skip else base, teacher, shared)
    if shared == TEACHER:
        students = [r for r in generation_rows(main, "main", tuple(TEACHER)) if r["generation"] > 0]
        arms: dict[str, list[dict[str, Any]]] = {"main": generation_rows(teacher, "main") + students}
    else:  # the teacher's row is main's (evaluated with the decoder settings tuned for it), its training included
        arms = {"main": generation_rows(main, "main")}
    one = deep_merge(base, {"generations": 1})
    fraction = next((r["kept_fraction"] for r in arms["main"] if r["generation"] == 1), None)
    ranked = {"threshold": {"mode": "fixed"}, "select": {"method": "entropy_tsallis_exp", "keep_fraction": fraction}}
    no_sanity = {"min_chars_per_second": None, "max_chars_per_second": None, "max_repeat": None, "max_length_ratio": None}
    variants = [
        ("labeled_only", deep_merge(base, {"labels": "none"}), TEACHER),
        ("oracle", deep_merge(base, {"labels": "oracle"}), TEACHER),
        ("no_filter", deep_merge(one, {"threshold": {"mode": "fixed"}, "speaking_rate_quantile": None,
                                  "select": {"method": "entropy_tsallis_exp", "keep_fraction": 1.0, "sanity": no_sanity}}),
         DECODED),
        ("whole_utterances", deep_merge(one, {"select": {"segments": {"enabled": False}}}), DECODED),
        ("confidence_only", deep_merge(one, ranked), DECODED),
        ("agreement_only", deep_merge(one, deep_merge(ranked, {"select": {"rank_by": "agreement"}})), DECODED),
        ("no_lm", deep_merge(one, {"select": {"label_source": "greedy"}}), DECODED),
        ("student_ssl", deep_merge(one, {"student_train": ssl}), SELECTED),
    ]
    for name, overrides, adopt in variants:
        if name not in skip:
            root = run_arm(work, name, overrides, main, adopt)
            arms[name] = generation_rows(root, name, tuple(adopt))
    unavailable: dict[str, str] = {}
    for name, variant in explored_variants(scale, explore) if "explore" not in skip else []:
        overrides, given = split_variant(one, continuous_variant(variant, generations))
        missing = missing_recognizer(overrides)
        if missing is not None:
            log.warning("explored variant %s not run: %s", name, missing)
            unavailable[name] = missing
            continue
        overrides = deep_merge(overrides, explored_labels(given, paths, main, work / "exp" / "given_labels" / f"{name}.csv",
                                                          (overrides.get("select") or {}).get("segments")))
        adopted = explored_adoption(name, variant)
        if "generations" in skip and adopted != TEACHER:
            raise SystemExit(f"explored variant {name!r} starts from the main run's generation-1 decoding: "
                             "it cannot run with --skip generations")
        root = run_arm(work / "exp", name, overrides, main, adopted)
        arms[EXPLORED + name] = generation_rows(root, EXPLORED + name, tuple(adopted))
    curve = [{"fraction": 1.0, "labeled_hours": corpus["summary"]["hours"]["labeled"], "arm": "main"}]
    for share in scale["labeled_fractions"] if "curve" not in skip else []:
        if share >= 1.0:
            continue
        name = f"labeled_{round(share * 100):03d}"
        subset, hours = labeled_subset(paths["labeled"], share, work / "subsets" / f"{name}.csv")
        root = run_arm(work, name, deep_merge(base, {"generations": scale["curve_generations"], "data": {"labeled": subset}}))
        arms[name] = generation_rows(root, name)
        curve.append({"fraction": share, "labeled_hours": round(hours, 4), "arm": name})
    if "ssl_teacher" not in skip:
        root = run_arm(work, "ssl_teacher", deep_merge(base, {"generations": 0, "teacher_train": ssl}), main, ["lm"])
        arms["ssl_teacher"] = generation_rows(root, "ssl_teacher", ("lm",))
    for preset, settings in (scale.get("compare_presets") or {}).items() if "compare_presets" not in skip else []:
        # another model preset's supervised teacher on the same labeled audio, LM and test set
        name = PRESET_ARM + preset
        root = run_arm(work, name, {**base, "generations": 0, "preset": preset, **settings}, main, ["lm"])
        arms[name] = generation_rows(root, name, ("lm",))
    teacher_eval = teacher_evaluation(teacher, main, shared)

    def test_hyps(arm: str, generation: int) -> Path:
        root = teacher_eval if generation == 0 else work / "exp" / arm[len(EXPLORED):] if arm.startswith(EXPLORED) else work / arm
        return root / f"gen_{generation:03d}" / "eval" / "test_lm.jsonl"

    oracle = final_generation(arms["oracle"])["test_wer"] if arms.get("oracle") else None
    return {"significance": significance(work, teacher_eval, arms, paths["test"]),
            "seeds": pooled_seeds(arms, EXPLORED, oracle, test_hyps, paths["test"]),
            "teacher_from": scale.get("teacher_from"), "corpus_from": scale.get("corpus_from"),
            "ensemble_from": scale.get("ensemble_from"),
            "corpus": {"hours": corpus["summary"]["hours"], "counts": corpus["summary"]["counts"],
                       "seconds_this_run": corpus["seconds"]},
            "arms": arms, "curve": sorted(curve, key=lambda c: c["fraction"]),
            "curve_generations": scale["curve_generations"], "skipped": list(skip), "unavailable": unavailable,
            "explored_only": list(explore)}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = _parse(argv)
    name = args.name or ("self_training" if args.scale == "default" else f"self_training_{args.scale}")
    out = Path(args.out)
    if args.report_only:
        return rewrite_report(out, name)
    scale = load_scale(args.config, args.scale)
    started = time.time()
    result = run_benchmark(scale, Path(args.work) / args.scale, scale_skips(scale, args.skip), Path(args.config),
                           tuple(args.explore))
    result["analysis"] = analyse(result)
    stage_total = sum(r["wall_seconds"] for rows in result["arms"].values() for r in rows) + result["corpus"]["seconds_this_run"]
    result["meta"] = {"scale": args.scale, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "machine": platform.platform(), "cpus": os.cpu_count(),
                      "stage_seconds_total": round(stage_total, 1), "invocation_seconds": round(time.time() - started, 1)}
    out.mkdir(parents=True, exist_ok=True)
    _write_report(result, sys.argv[1:] if argv is None else argv, out, name)
    return 0


def _write_report(result: dict[str, Any], argv: list[str], out: Path, name: str) -> None:
    plot(result, out / f"{name}.png")
    print(save_results(result, "self_training.py", argv, out, name,
                       lambda result, command: to_markdown(result, command, name)))


def rewrite_report(out: Path, name: str) -> int:
    """Re-analyse a recorded run and rewrite its Markdown and plot (after a change to the report);
    the measurements, command, date and machine stay as recorded."""
    path = out / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"no recorded run to report: {path} does not exist")
    result = json.loads(path.read_text(encoding="utf-8"))
    result["analysis"] = analyse(result)
    _write_report(result, shlex.split(result["command"])[2:], out, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
