#!/usr/bin/env python
"""Controls for a finished self-training experiment: are its gains the pseudo-labels'?

    python benchmarks/controls.py --experiment W --out benchmarks/work/controls

Two experiments beside ``W``, each adopting its LM and supervised teacher (``lm``, ``gen_000``) and
otherwise run with ``W``'s own config:

- ``labeled_only``: every generation's selection is empty, so each student trains on the labeled
  audio alone, with the same schedule and acceptance test: what the extra training alone buys;
- ``oracle``: one generation whose selection is all the unlabeled audio with its true transcripts
  (needs ``data.unlabeled_reference``): the topline.

Prints dev/test WER per generation of ``W`` and of both controls, and writes ``controls.json`` in
``--out``. Self-training helps only where it beats ``labeled_only``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from self_training import TEACHER, plant_empty_selections, plant_oracle_selections, run_arm  # noqa: E402


def summary_rows(root: Path) -> list[dict[str, Any]]:
    summary = json.loads((root / "summary.json").read_text(encoding="utf-8"))
    return [{k: g[k] for k in ("generation", "dev_wer", "test_wer", "selected_fraction", "accepted")}
            for g in summary["generations"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", type=Path, required=True, help="a finished `selftrain run` work folder")
    parser.add_argument("--out", type=Path, required=True, help="where the control experiments go")
    options = parser.parse_args()
    stored = json.loads((options.experiment / "experiment.json").read_text(encoding="utf-8"))["config"]
    generations = int(stored["generations"])
    rows = {"self_training": summary_rows(options.experiment)}
    root = run_arm(options.out, "labeled_only", stored, options.experiment, TEACHER, plant_empty_selections(generations))
    rows["labeled_only"] = summary_rows(root)
    if stored["data"].get("unlabeled_reference"):
        one = {**stored, "generations": 1}
        oracle = plant_oracle_selections(stored["data"]["unlabeled_reference"], stored["data"]["unlabeled"], 1)
        rows["oracle"] = summary_rows(run_arm(options.out, "oracle", one, options.experiment, TEACHER, oracle))
    for name, generations_rows in rows.items():
        cells = ", ".join(f"gen {r['generation']}: {r['dev_wer']:.3f} / {r['test_wer']:.3f}"
                          for r in generations_rows if r["test_wer"] is not None)
        print(f"{name:14s} dev / test WER  {cells}")
    (options.out / "controls.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
