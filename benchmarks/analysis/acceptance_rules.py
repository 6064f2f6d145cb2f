"""Which acceptance test keeps students that are worse than their teachers on test?

Every generation after the first is judged against its teacher on dev before it may teach
(``keep_better_only`` with ``acceptance.test``). This script takes finished experiment folders,
pairs each generation with the teacher it was judged against (``teacher_generation`` in its
``generation.json``), compares them on dev and on test with the paired bootstrap the pipeline uses
(:func:`selftrain.audit.significance.paired_bootstrap` on the LM-decoded evaluations), and reports
what each acceptance test would have decided and how the accepted students fared on test::

    python benchmarks/analysis/acceptance_rules.py --experiment W/main --experiment W/exp/seed1 \\
        --out benchmarks/results --name acceptance_rules

A decision is replayed exactly only where the pair is the one the run made; where another test
would have rejected an earlier generation, the later pairs would have had another teacher, so the
counts describe decisions on recorded pairs, not whole chains run under each test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from selftrain.audit.significance import Comparison, paired_bootstrap, utterance_errors
from selftrain.generation.sections import ACCEPTANCE_TESTS, AcceptanceConfig

# The helper that writes results files is one folder up, in benchmarks/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _results import save_results  # noqa: E402


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", action="append", required=True,
                        help="a finished `selftrain run` folder (repeat for several)")
    parser.add_argument("--resamples", type=int, default=AcceptanceConfig.resamples)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "results"))
    parser.add_argument("--name", default="acceptance_rules", help="results file name (without extension)")
    return parser.parse_args(argv)


def _config(folder: Path) -> dict[str, Any]:
    path = folder / "experiment.json"
    if not path.is_file():
        raise SystemExit(f"{folder}: not a `selftrain run` work folder (no experiment.json)")
    return json.loads(path.read_text(encoding="utf-8"))["config"]


def _errors(folder: Path, generation: int, split: str, manifest: str) -> dict[str, tuple[int, int]]:
    hyps = folder / f"gen_{generation:03d}" / "eval" / f"{split}_lm.jsonl"
    if not hyps.is_file():
        raise SystemExit(f"{hyps}: missing (generation {generation} was not evaluated on {split} with the LM)")
    return utterance_errors(hyps, manifest)


def _compare(folder: Path, student: int, teacher: int, split: str, manifest: str, resamples: int, seed: int) -> Comparison:
    return paired_bootstrap(_errors(folder, student, split, manifest), _errors(folder, teacher, split, manifest),
                            resamples, seed)


def experiment_pairs(folder: Path, resamples: int) -> list[dict[str, Any]]:
    """One row per judged generation of ``folder``: its dev and test comparison with its teacher and
    what each acceptance test decides from the dev comparison."""
    config = _config(folder)
    data, seed = config["data"], int(config.get("seed", 0))
    rows = []
    for record_file in sorted(folder.glob("gen_*/generation.json")):
        record = json.loads(record_file.read_text(encoding="utf-8"))
        teacher = record.get("teacher_generation")
        if teacher is None:
            continue
        generation = int(record["generation"])
        dev = _compare(folder, generation, teacher, "dev", data["dev"], resamples, seed)
        test = _compare(folder, generation, teacher, "test", data["test"], resamples, seed)
        rows.append({"experiment": str(folder), "generation": generation, "teacher_generation": teacher,
                     "schedule": record.get("schedule", "generations"), "accepted_in_run": record.get("accepted", True),
                     "dev": dev.to_dict(), "test": test.to_dict(),
                     "decisions": {name: AcceptanceConfig(test=name).accepts(dev) for name in ACCEPTANCE_TESTS}})
    return rows


def tally(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per acceptance test: pairs accepted, accepted but worse on test (difference > 0), accepted and
    significantly worse on test, and rejected although significantly better on test."""
    out = {}
    for name in ACCEPTANCE_TESTS:
        accepted = [r for r in rows if r["decisions"][name]]
        rejected = [r for r in rows if not r["decisions"][name]]
        out[name] = {"pairs": len(rows), "accepted": len(accepted),
                     "accepted_worse_on_test": sum(r["test"]["difference"] > 0 for r in accepted),
                     "accepted_significantly_worse_on_test": sum(r["test"]["low"] > 0 for r in accepted),
                     "rejected_significantly_better_on_test": sum(r["test"]["high"] < 0 for r in rejected)}
    return out


def _interval(c: dict[str, float]) -> str:
    return f"{c['difference']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}]"


def to_markdown(result: dict[str, Any], command: str) -> str:
    lines = ["# Acceptance tests on recorded student-teacher pairs", "", f"Command: `{command}`", "",
             "Student minus teacher WER (LM-decoded), paired bootstrap 95 % interval over the utterances. "
             "Decisions from dev: `dev_wer` accepts when the student's dev WER is not above the teacher's, "
             "`bootstrap` unless dev shows it worse, `improved` only when dev shows it better.", "",
             "| test | pairs | accepted | accepted, worse on test | accepted, significantly worse on test | rejected, significantly better on test |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, t in result["tally"].items():
        lines.append(f"| `{name}` | {t['pairs']} | {t['accepted']} | {t['accepted_worse_on_test']} | "
                     f"{t['accepted_significantly_worse_on_test']} | {t['rejected_significantly_better_on_test']} |")
    lines += ["", "| experiment | schedule | generation (teacher) | accepted in the run | dev | test | "
              + " | ".join(f"`{n}`" for n in ACCEPTANCE_TESTS) + " |",
              "| --- | --- | --- | --- | --- | --- | " + " | ".join("---" for _ in ACCEPTANCE_TESTS) + " |"]
    for r in result["pairs"]:
        marks = " | ".join("accept" if r["decisions"][n] else "reject" for n in ACCEPTANCE_TESTS)
        lines.append(f"| {r['experiment']} | {r['schedule']} | {r['generation']} ({r['teacher_generation']}) | "
                     f"{'yes' if r['accepted_in_run'] else 'no'} | {_interval(r['dev'])} | {_interval(r['test'])} | {marks} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    rows = [row for folder in args.experiment for row in experiment_pairs(Path(folder), args.resamples)]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(), "cpus": os.cpu_count()}
    result = {"meta": meta, "resamples": args.resamples, "tally": tally(rows), "pairs": rows}
    print(save_results(result, "analysis/acceptance_rules.py", sys.argv[1:] if argv is None else argv,
                       args.out, args.name, to_markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
