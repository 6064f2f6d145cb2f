"""The self-training benchmark: does self-training beat the supervised-only model, and by how much?

On a synthetic corpus made for the run (labeled: known voices, nearly clean; unlabeled, dev and
test: the target domain, degraded, with unseen voices), it runs these arms with ``selftrain run``,
each in its own resumable experiment folder under ``--work``:

- ``main``: the supervised teacher (CTC only), then 3 generations with the default policy
  (confidence + agreement of the LM and greedy teachers, threshold chosen on dev);
- ``ssl_teacher``: the same teacher trained with CTC + SSL on the labeled and unlabeled audio;
- ``oracle``: one student trained like a generation-1 student but on the TRUE transcripts of all
  the unlabeled audio (the topline);
- ablations of generation 1, sharing ``main``'s teacher and decoding: ``no_filter`` (every
  pseudo-label), ``confidence_only`` and ``agreement_only`` (ranked by one signal, keeping the
  share the default policy kept), ``no_lm`` (pseudo-labels from greedy decoding), ``student_ssl``
  (the default selection, SSL loss on in the student);
- ``labeled_<pct>``: a teacher and ``curve_generations`` generations on a subset of the labeled set
  (the sample-efficiency curve).

It writes ``self_training.{json,md,png}`` under ``--out``: test WER/CER, pseudo-label WER, kept
fraction and wall time per row, the gap recovery (supervised - final) / (supervised - oracle) and
the targets. Re-running continues an interrupted benchmark. Scales live in
``benchmarks/self_training.yaml``::

    python benchmarks/self_training.py                  # default scale (see benchmarks/README.md for its time)
    python benchmarks/self_training.py --scale quick    # ~9 min: checks every arm runs, for development
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from _results import save_results

from selftrain.data.manifest import read_manifest, write_speechbrain_csv
from selftrain.generation import load_experiment_config
from selftrain.generation.run import open_workdir, run_experiment
from selftrain.generation.workdir import Workdir
from selftrain.overrides import deep_merge
from selftrain.synth import SynthConfig, build_corpus

HERE = Path(__file__).resolve().parent
TARGET_GAP_RECOVERY = 0.6
TEACHER = ["lm", "gen_000"]
DECODED = [*TEACHER, "gen_001/decode"]
SELECTED = [*DECODED, "gen_001/select", "gen_001/audit"]
FILTERED_ARMS = ("confidence_only", "agreement_only", "no_lm", "student_ssl")

log = logging.getLogger("self_training")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="default", help="a scale of the config file [default]")
    parser.add_argument("--config", default=str(HERE / "self_training.yaml"), help="scales file")
    parser.add_argument("--work", default="benchmarks/work/self_training", help="work folder (resumable)")
    parser.add_argument("--out", default="benchmarks/results", help="results folder")
    parser.add_argument("--name", default=None, help="results file stem [self_training, quick: self_training_quick]")
    return parser.parse_args(argv)


def load_scale(path: str | Path, name: str) -> dict[str, Any]:
    """One scale of the benchmark's YAML file."""
    scales = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if name not in scales:
        raise SystemExit(f"unknown scale {name!r}; {path} has {', '.join(scales)}")
    return scales[name]


def make_corpus(scale: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Synthesize (or finish) the corpus; returns its paths and ``corpus.json`` summary."""
    started = time.time()
    summary = build_corpus(SynthConfig.from_dict(scale["corpus"]), folder)
    paths = {name: str(folder / f"{name}.csv") for name in ("labeled", "unlabeled", "dev", "test", "unlabeled_reference")}
    paths["lm_text"] = str(folder / "lm_text.txt")
    return {"paths": paths, "summary": summary, "seconds": round(time.time() - started, 1)}


def labeled_subset(labeled: str, fraction: float, out: Path, seed: int = 0) -> tuple[str, float]:
    """A seeded random ``fraction`` of the labeled manifest; returns its path and hours."""
    rows = read_manifest(labeled)
    chosen = sorted(random.Random(seed).sample(range(len(rows)), round(fraction * len(rows))))
    subset = [rows[i] for i in chosen]
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        write_speechbrain_csv(subset, out)
    return str(out), sum(u.duration for u in subset) / 3600


def run_arm(work: Path, name: str, overrides: dict[str, Any], adopt_from: Path | None = None,
            adopt: list[str] | None = None, before=None) -> Path:
    """Run (or finish) one experiment; ``adopt`` takes finished stages from ``adopt_from``."""
    config = load_experiment_config(overrides=overrides)
    workdir = open_workdir(config, work / name)
    if adopt_from is not None:
        workdir.adopt(adopt_from, adopt or [])
    if before is not None:
        before(workdir)
    log.info("arm %s: %s", name, workdir.root)
    run_experiment(config, workdir.root)
    return workdir.root


def plant_oracle_selection(reference: str, unlabeled: str):
    """A ``before`` hook: generation 1's selection is every unlabeled utterance with its true text."""

    def plant(workdir: Workdir) -> None:
        def select(out: Path) -> dict[str, Any]:
            truth = read_manifest(reference)
            write_speechbrain_csv(truth, out / "selected.csv")
            return {"threshold": None, "method": "oracle (true transcripts)", "selected_utterances": len(truth),
                    "selected_hours": round(sum(u.duration for u in truth) / 3600, 4),
                    "selected_fraction": round(len(truth) / len(read_manifest(unlabeled)), 4)}

        workdir.run_stage(workdir.stage_dir(1, "select"), select)
        workdir.run_stage(workdir.stage_dir(1, "audit"), lambda out: {"pseudo_label_wer": 0.0})

    return plant


def generation_rows(root: Path, arm: str, adopted: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One row per finished generation of an experiment folder (from its ``generation.json``)."""
    rows = []
    for path in sorted(root.glob("gen_*/generation.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        generation = record["generation"]
        own = {stage: seconds for stage, seconds in record["stage_seconds"].items()
               if f"gen_{generation:03d}/{stage}" not in adopted and f"gen_{generation:03d}" not in adopted
               and not (stage == "lm" and "lm" in adopted)}
        rows.append({
            "arm": arm, "generation": generation,
            "test_wer": record["test_wer"], "test_cer": record["test_cer"], "dev_wer": record["dev_wer"],
            "pseudo_label_wer": record.get("pseudo_label_wer"), "kept_fraction": record.get("selected_fraction"),
            "selected_hours": record.get("selected_hours"), "accepted": record.get("accepted", True),
            "wall_seconds": round(sum(v or 0.0 for v in own.values()), 1), "stage_seconds": own,
        })
    return rows


def run_benchmark(scale: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run every arm (resumable) and collect their rows."""
    corpus = make_corpus(scale, work / "corpus")
    paths = corpus["paths"]
    base = deep_merge(scale["experiment"], {"data": paths})
    ssl = {"ssl": scale["ssl"]}
    main = run_arm(work, "main", base)
    arms: dict[str, list[dict[str, Any]]] = {"main": generation_rows(main, "main")}
    one = deep_merge(base, {"generations": 1})
    fraction = next(r["kept_fraction"] for r in arms["main"] if r["generation"] == 1)
    ranked = {"threshold": {"mode": "fixed"}, "select": {"method": "entropy_tsallis_exp", "keep_fraction": fraction}}
    no_sanity = {"min_chars_per_second": None, "max_chars_per_second": None, "max_repeat": None, "max_length_ratio": None}
    variants = [
        ("ssl_teacher", deep_merge(base, {"generations": 0, "teacher_train": ssl}), None, None),
        ("oracle", one, DECODED, plant_oracle_selection(paths["unlabeled_reference"], paths["unlabeled"])),
        ("no_filter", deep_merge(one, {"threshold": {"mode": "fixed"},
                                  "select": {"method": "entropy_tsallis_exp", "keep_fraction": 1.0, "sanity": no_sanity}}),
         DECODED, None),
        ("confidence_only", deep_merge(one, ranked), DECODED, None),
        ("agreement_only", deep_merge(one, deep_merge(ranked, {"select": {"rank_by": "agreement"}})), DECODED, None),
        ("no_lm", deep_merge(one, {"select": {"teacher": "greedy"}}), DECODED, None),
        ("student_ssl", deep_merge(one, {"student_train": ssl}), SELECTED, None),
    ]
    for name, overrides, adopt, before in variants:
        root = run_arm(work, name, overrides, main if adopt else None, adopt, before)
        arms[name] = generation_rows(root, name, tuple(adopt or ()))
    curve = [{"fraction": 1.0, "labeled_hours": corpus["summary"]["hours"]["labeled"], "arm": "main"}]
    for share in scale["labeled_fractions"]:
        if share >= 1.0:
            continue
        name = f"labeled_{round(share * 100):03d}"
        subset, hours = labeled_subset(paths["labeled"], share, work / "subsets" / f"{name}.csv")
        root = run_arm(work, name, deep_merge(base, {"generations": scale["curve_generations"], "data": {"labeled": subset}}))
        arms[name] = generation_rows(root, name)
        curve.append({"fraction": share, "labeled_hours": round(hours, 4), "arm": name})
    return {"corpus": {"hours": corpus["summary"]["hours"], "counts": corpus["summary"]["counts"],
                       "seconds_this_run": corpus["seconds"]},
            "arms": arms, "curve": sorted(curve, key=lambda c: c["fraction"]), "curve_generations": scale["curve_generations"]}


def _test(arms: dict, arm: str, generation: int) -> float | None:
    rows = [r for r in arms.get(arm, []) if r["generation"] == generation]
    return rows[0]["test_wer"] if rows else None


def final_generation(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The last accepted generation of an experiment (rejected students never teach)."""
    return [r for r in rows if r["accepted"]][-1]


def analyse(result: dict[str, Any]) -> dict[str, Any]:
    """Gap recovery, the comparison with no filtering, the sample-efficiency curve and the targets."""
    arms = result["arms"]
    supervised = _test(arms, "main", 0)
    final = final_generation(arms["main"])
    oracle = _test(arms, "oracle", 1)
    gap = supervised - oracle if oracle is not None else None
    recovery = (supervised - final["test_wer"]) / gap if gap else None
    students = [r for r in arms["main"] if r["generation"] > 0]
    chain = [supervised] + [r["test_wer"] for r in students]
    no_filter = _test(arms, "no_filter", 1)
    filtered = {"confidence + agreement (default)": _test(arms, "main", 1),
                **{name: _test(arms, name, 1) for name in FILTERED_ARMS}}
    vs_no_filter = {name: {"test_wer": wer, "better_than_no_filter_by": round(no_filter - wer, 4)}
                    for name, wer in filtered.items() if wer is not None and no_filter is not None}
    curve = []
    for point in result["curve"]:
        rows = arms[point["arm"]]
        after = [r for r in rows if r["generation"] == result["curve_generations"]]
        curve.append({**point, "supervised_test_wer": _test(arms, point["arm"], 0),
                      "self_training_test_wer": (after or rows)[-1]["test_wer"],
                      "final_test_wer": final_generation(rows)["test_wer"]})
    every_filtered = [r["test_wer"] for r in students] + [w for w in filtered.values() if w is not None]
    return {
        "supervised_test_wer": supervised, "final_test_wer": final["test_wer"], "final_generation": final["generation"],
        "oracle_test_wer": oracle, "gap_recovery": round(recovery, 3) if recovery is not None else None,
        "vs_no_filter": vs_no_filter, "no_filter_test_wer": no_filter, "curve": curve,
        "targets": {
            "every_generation_at_least_as_good": all(b <= a for a, b in zip(chain, chain[1:], strict=False)),
            "final_model_not_worse_than_supervised": final["test_wer"] <= supervised,
            "no_filtered_setting_worse_than_supervised": all(w <= supervised for w in every_filtered),
            f"gap_recovery_at_least_{TARGET_GAP_RECOVERY}": recovery is not None and recovery >= TARGET_GAP_RECOVERY,
            "filtering_beats_no_filtering": bool(vs_no_filter) and all(v["better_than_no_filter_by"] > 0 for v in vs_no_filter.values()),
        },
    }


LABELS = {
    "main": "self-training, default policy", "ssl_teacher": "supervised, CTC + SSL (BEST-RQ on all audio)",
    "oracle": "oracle: student on the true transcripts", "no_filter": "ablation: no filtering",
    "confidence_only": "ablation: confidence only", "agreement_only": "ablation: agreement only",
    "no_lm": "ablation: teacher without the LM (greedy labels)", "student_ssl": "ablation: SSL loss on in the student",
}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _row_name(row: dict[str, Any]) -> str:
    if row["arm"] == "main":
        return "supervised, CTC only (teacher)" if row["generation"] == 0 else f"self-training, generation {row['generation']}"
    if row["arm"].startswith("labeled_"):
        kind = "supervised" if row["generation"] == 0 else f"self-training, generation {row['generation']}"
        return f"{int(row['arm'].split('_')[1])} % labeled: {kind}"
    return LABELS.get(row["arm"], row["arm"])


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| row | test WER | test CER | dev WER | pseudo-label WER | kept | wall time (s) | accepted |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {_row_name(r)} | {_fmt(r['test_wer'])} | {_fmt(r['test_cer'])} | {_fmt(r['dev_wer'])} | "
                     f"{_fmt(r['pseudo_label_wer'])} | {_fmt(r['kept_fraction'], 2) if r['generation'] else '-'} | "
                     f"{_fmt(r['wall_seconds'], 0)} | {'yes' if r['accepted'] else 'no (rejected on dev)'} |")
    return lines


def to_markdown(result: dict[str, Any], command: str) -> str:
    a, arms, meta = result["analysis"], result["arms"], result["meta"]
    rows = arms["main"] + arms["ssl_teacher"] + [r for r in arms["oracle"] if r["generation"] == 1]
    ablations = [r for name in ("no_filter", "confidence_only", "agreement_only", "no_lm", "student_ssl")
                 for r in arms.get(name, []) if r["generation"] == 1]
    hours = result["corpus"]["hours"]
    lines = [
        f"# Self-training benchmark ({meta['scale']} scale)", "",
        f"Command: `{command}`  ", f"Date: {meta['date']}; machine: {meta['machine']}, {meta['cpus']} CPU cores, no GPU.  ",
        f"Corpus: labeled {hours['labeled']:.2f} h, unlabeled {hours['unlabeled']:.2f} h, dev {hours['dev']:.2f} h, "
        f"test {hours['test']:.2f} h. Total wall time of the stages: {meta['stage_seconds_total'] / 60:.1f} min "
        f"(this invocation: {meta['invocation_seconds'] / 60:.1f} min).", "",
        "## Main result", "", *_table(rows), "",
        f"Gap recovery (supervised - final) / (supervised - oracle): **{_fmt(a['gap_recovery'])}** "
        f"(supervised {_fmt(a['supervised_test_wer'])}, final generation {a['final_generation']} "
        f"{_fmt(a['final_test_wer'])}, oracle {_fmt(a['oracle_test_wer'])}).", "",
        "## Ablations (generation 1, same teacher and decoding)", "", *_table(ablations), "",
        "| policy | test WER | better than no filtering by |", "| --- | --- | --- |",
        *[f"| {name} | {_fmt(v['test_wer'])} | {_fmt(v['better_than_no_filter_by'], 4)} |" for name, v in a["vs_no_filter"].items()],
        "", f"## Sample efficiency (self-training: generation {result['curve_generations']})", "",
        "| labeled | hours | supervised test WER | self-training test WER | final test WER (accepted) |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {round(c['fraction'] * 100)} % | {c['labeled_hours']:.2f} | {_fmt(c['supervised_test_wer'])} | "
          f"{_fmt(c['self_training_test_wer'])} | {_fmt(c['final_test_wer'])} |" for c in a["curve"]],
        "", "## Targets", "", *[f"- {name}: {'met' if ok else 'NOT met'}" for name, ok in a["targets"].items()],
        "", "Plots: `self_training.png`. What the budget buys and what was tried: `benchmarks/README.md`.", "",
    ]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """Test WER per generation (with supervised and oracle lines) and the sample-efficiency curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, main = result["analysis"], result["arms"]["main"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot([r["generation"] for r in main], [r["test_wer"] for r in main], "o-", label="self-training (default policy)")
    for name, value, style in (("supervised", a["supervised_test_wer"], "--"), ("oracle", a["oracle_test_wer"], ":"),
                               ("no filtering (gen 1)", a["no_filter_test_wer"], "-.")):
        if value is not None:
            left.axhline(value, linestyle=style, color="gray", label=f"{name} {value:.3f}")
    left.set(xlabel="generation", ylabel="test WER", title="Generations")
    left.legend(fontsize=8)
    hours = [c["labeled_hours"] for c in a["curve"]]
    right.plot(hours, [c["supervised_test_wer"] for c in a["curve"]], "s--", label="supervised only")
    right.plot(hours, [c["self_training_test_wer"] for c in a["curve"]], "o-",
               label=f"self-training (generation {result['curve_generations']})")
    right.set(xlabel="labeled hours", ylabel="test WER", title="Sample efficiency")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = _parse(argv)
    scale = load_scale(args.config, args.scale)
    started = time.time()
    result = run_benchmark(scale, Path(args.work) / args.scale)
    result["analysis"] = analyse(result)
    stage_total = sum(r["wall_seconds"] for rows in result["arms"].values() for r in rows) + result["corpus"]["seconds_this_run"]
    result["meta"] = {"scale": args.scale, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "machine": platform.platform(), "cpus": os.cpu_count(),
                      "stage_seconds_total": round(stage_total, 1), "invocation_seconds": round(time.time() - started, 1)}
    name = args.name or ("self_training" if args.scale == "default" else f"self_training_{args.scale}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot(result, out / f"{name}.png")
    print(save_results(result, "self_training.py", sys.argv[1:] if argv is None else argv, out, name, to_markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
