#!/usr/bin/env python
"""Controls for a finished self-training experiment: are its gains the pseudo-labels'?

    python benchmarks/controls.py --experiment W --out benchmarks/work/controls

Two experiments beside ``W``, each adopting its LM and supervised teacher (``lm``, ``gen_000``)
instead of training them again, and otherwise run with ``W``'s own config:

- ``labeled_only`` (``labels: none``): nothing is decoded or selected, so each student trains on the
  labeled audio alone, as many optimizer steps as ``W``'s students and with the same acceptance
  test: what the extra training alone buys;
- ``oracle`` (``labels: oracle``): one generation trained on the true transcripts of all the
  unlabeled audio (needs ``data.unlabeled_reference``): the topline.

Prints dev/test WER per generation of ``W`` and of both controls, and writes ``controls.json`` in
``--out``. Self-training helps only where it beats ``labeled_only``. (Without the teacher's reuse
this is ``selftrain run`` with ``--set labels=none`` / ``--set labels=oracle`` in another work folder.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from selftrain.generation import load_experiment_config, open_workdir, run_experiment

TEACHER = ["lm", "gen_000"]  # what the controls take from the experiment: its LM and supervised teacher


def summary_rows(root: Path) -> list[dict[str, Any]]:
    summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    return [{k: g[k] for k in ("generation", "dev_wer", "test_wer", "selected_fraction", "accepted")}
            for g in summary["generations"]]


def run_control(experiment: Path, root: Path, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Run (or finish) the experiment of ``settings`` in ``root`` from ``experiment``'s teacher and LM."""
    config = load_experiment_config(overrides=settings)
    workdir = open_workdir(config, root)
    workdir.adopt(experiment, TEACHER)
    run_experiment(config, root)
    return summary_rows(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", type=Path, required=True, help="a finished `selftrain run` work folder")
    parser.add_argument("--out", type=Path, required=True, help="where the control experiments go")
    options = parser.parse_args()
    stored = json.loads((options.experiment / "experiment.json").read_text(encoding="utf-8"))["config"]
    rows = {"self_training": summary_rows(options.experiment)}
    rows["labeled_only"] = run_control(options.experiment, options.out / "labeled_only", {**stored, "labels": "none"})
    if stored["data"].get("unlabeled_reference"):
        oracle = {**stored, "labels": "oracle", "generations": 1}
        rows["oracle"] = run_control(options.experiment, options.out / "oracle", oracle)
    for name, generations_rows in rows.items():
        cells = ", ".join(f"gen {r['generation']}: {r['dev_wer']:.3f} / {r['test_wer']:.3f}"
                          for r in generations_rows if r["test_wer"] is not None)
        print(f"{name:14s} dev / test WER  {cells}")
    (options.out / "controls.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
