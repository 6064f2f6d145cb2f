"""Does self-training beat the labeled-only control over several seeds of a recipe?

A recipe run per seed with ``selftrain run`` (the teacher and its offline generations) and
``benchmarks/controls.py`` (the labeled-only control chain and the oracle of the same seed) gives
one work folder and one controls folder per seed. This script pools the seeds as the benchmark's
"Seeds pooled" section does: each chain's final model is its last accepted generation; gap
recovery comes from the means over the seeds, (control - self-training) / (control - oracle); the
paired interval sums each utterance's word errors over the seeds (the LM-decoded test
evaluations), so an utterance hard for every seed counts once as hard::

    python benchmarks/analysis/recipe_seeds.py --seed 0 W0 C0 --seed 1 W1 C1 --seed 2 W2 C2 \\
        --test D/test.csv --title "Fish Fillets NG, Dutch" --out benchmarks/results --name fillets_nl_seeds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from statistics import mean
from typing import Any

from selftrain.audit.significance import paired_bootstrap, utterance_errors

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _results import save_results  # noqa: E402
from _seeds import final_generation, gap_recovery, summed_errors  # noqa: E402

# chain -> where its work folder sits: the experiment itself, or a subfolder of the controls folder
CHAINS = {"self_training": None, "labeled_only": "labeled_only", "oracle": "oracle"}
TEST_HYPS = "eval/test_lm.jsonl"  # a generation's LM-decoded test evaluation


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", nargs=3, action="append", required=True, metavar=("SEED", "EXPERIMENT", "CONTROLS"),
                        help="a seed, its `selftrain run` work folder and its benchmarks/controls.py folder (repeat)")
    parser.add_argument("--test", required=True, help="the test manifest (references of the test evaluations)")
    parser.add_argument("--title", default="a recipe", help="what the runs are, for the report's title")
    parser.add_argument("--resamples", type=int, default=2000, help="paired bootstrap resamples [2000]")
    parser.add_argument("--out", default="benchmarks/results", help="results folder [benchmarks/results]")
    parser.add_argument("--name", required=True, help="results file stem")
    return parser.parse_args(argv)


def _generations(folder: Path) -> list[dict[str, Any]]:
    summary = folder / "summary.json"
    if not summary.is_file():
        raise SystemExit(f"{folder}: no summary.json (not a finished `selftrain run` work folder)")
    return json.loads(summary.read_text())["generations"]


def _model(folder: Path, row: dict[str, Any]) -> dict[str, Any]:
    """A generation's test WER and CER and the path of its test hypotheses."""
    hyps = folder / f"gen_{row['generation']:03d}" / TEST_HYPS
    if not hyps.is_file():
        raise SystemExit(f"{hyps}: missing (the generation has no LM-decoded test evaluation)")
    return {"generation": row["generation"], "test_wer": row["test_wer"], "test_cer": row.get("test_cer"),
            "hyps": str(hyps)}


def seed_results(experiment: Path, controls: Path) -> dict[str, dict[str, Any]]:
    """One seed: the teacher and each chain's final model."""
    found = {"teacher": _model(experiment, _generations(experiment)[0])}
    for chain, sub in CHAINS.items():
        folder = experiment if sub is None else controls / sub
        found[chain] = _model(folder, final_generation(_generations(folder)))  # its last accepted generation
    return found


def pooled(seeds: dict[int, dict[str, dict[str, Any]]], test: str, resamples: int) -> dict[str, Any]:
    """Means over the seeds, gap recovery from the means and the pooled paired intervals."""
    means = {name: round(mean(s[name]["test_wer"] for s in seeds.values()), 4) for name in ("teacher", *CHAINS)}
    errors = {name: summed_errors([utterance_errors(s[name]["hyps"], test) for s in seeds.values()])
              for name in ("teacher", *CHAINS)}
    against = {other: paired_bootstrap(errors["self_training"], errors[other], samples=resamples).to_dict()
               for other in ("labeled_only", "teacher", "oracle")}
    return {"means": means, "gap_recovery": gap_recovery(means["labeled_only"], means["self_training"], means["oracle"]),
            "self_training_against": against}


def _interval(c: dict[str, float]) -> str:
    return f"{c['difference']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}]"


def to_markdown(result: dict[str, Any], command: str) -> str:
    names = {"teacher": "supervised teacher", "self_training": "self-training, final", "labeled_only":
             "labeled-only control, final", "oracle": "oracle (true transcripts), final"}
    seeds = result["seeds"]
    lines = [f"# Seeds pooled: {result['title']}", "", f"Command: `{command}`  ",
             f"Date: {result['meta']['date']}; machine: {result['meta']['machine']}, {result['meta']['cpus']} CPU cores.", "",
             "Test WER (LM-decoded, each model's decoder tuned on dev as the recipe sets it); a chain's final model is "
             "its last accepted generation (in brackets).", "",
             "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean |",
             "| --- | " + " | ".join("---" for _ in seeds) + " | --- |"]
    for name, label in names.items():
        cells = [f"{seeds[s][name]['test_wer']:.3f} ({seeds[s][name]['generation']})" for s in seeds]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {result['pooled']['means'][name]:.3f} |")
    recovery = result["pooled"]["gap_recovery"]
    lines += ["", f"Gap recovery from the means, (control - self-training) / (control - oracle): "
              f"**{recovery if recovery is not None else '-'}**.", "",
              f"Self-training minus each, word errors summed over the seeds utterance by utterance (paired bootstrap, "
              f"{result['resamples']} resamples, 95 %; an interval that excludes 0 is a real difference):", "",
              "| against | difference [interval] |", "| --- | --- |"]
    for other, comparison in result["pooled"]["self_training_against"].items():
        lines.append(f"| {names[other]} | {_interval(comparison)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if not Path(args.test).is_file():
        raise SystemExit(f"{args.test}: no such test manifest")
    seeds = {int(seed): seed_results(Path(experiment), Path(controls)) for seed, experiment, controls in args.seed}
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(), "cpus": os.cpu_count()}
    result = {"meta": meta, "title": args.title, "resamples": args.resamples, "seeds": dict(sorted(seeds.items())),
              "pooled": pooled(seeds, args.test, args.resamples)}
    for found in result["seeds"].values():  # the report names files by what they are, not where they were
        for model in found.values():
            model.pop("hyps")
    print(save_results(result, "analysis/recipe_seeds.py", sys.argv[1:] if argv is None else argv,
                       args.out, args.name, to_markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
