"""benchmarks/analysis/acceptance_rules.py: each acceptance test's verdicts on recorded student-teacher pairs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "analysis"))

from acceptance_rules import experiment_pairs, main, tally  # noqa: E402


def _eval(folder: Path, generation: int, split: str, wrong_words: list[int]) -> None:
    """Generation ``generation``'s LM hypotheses: utterance i has ``wrong_words[i]`` of its two words wrong."""
    out = folder / f"gen_{generation:03d}" / "eval"
    out.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"{split}{i}", "wav": "a.wav", "duration": 1.0,
             "hypotheses": [{"teacher": "lm", "text": " ".join(["good", "day"][: 2 - wrong] + ["bad"] * wrong)}]}
            for i, wrong in enumerate(wrong_words)]
    (out / f"{split}_lm.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def _experiment(tmp_path: Path) -> Path:
    """Generation 0 (teacher), generation 1 better on dev and on test, generation 2 (taught by 1)
    level with it on dev and worse on test."""
    folder = tmp_path / "exp"
    manifests = {}
    for split in ("dev", "test"):
        manifests[split] = tmp_path / f"{split}.csv"
        manifests[split].write_text("ID,duration,wav,spk_id,wrd\n" + "".join(f"{split}{i},1.0,a.wav,s,good day\n" for i in range(100)))
    folder.mkdir()
    (folder / "experiment.json").write_text(json.dumps({"config": {"seed": 0, "data": {k: str(v) for k, v in manifests.items()}}}))
    errors = {0: ([1] * 60 + [0] * 40, [1] * 60 + [0] * 40), 1: ([0] * 100, [0] * 100), 2: ([0] * 99 + [1], [1] * 50 + [0] * 50)}
    teachers = {0: None, 1: 0, 2: 1}
    for generation, (dev, test) in errors.items():
        _eval(folder, generation, "dev", dev)
        _eval(folder, generation, "test", test)
        (folder / f"gen_{generation:03d}" / "generation.json").write_text(json.dumps(
            {"generation": generation, "teacher_generation": teachers[generation], "accepted": True}))
    return folder


def test_each_test_decides_from_dev_and_the_tally_counts_what_test_says(tmp_path):
    rows = experiment_pairs(_experiment(tmp_path), resamples=500)
    assert [(r["generation"], r["teacher_generation"]) for r in rows] == [(1, 0), (2, 1)]
    better, level = rows
    assert better["decisions"] == {"dev_wer": True, "bootstrap": True, "improved": True}
    assert level["decisions"] == {"dev_wer": False, "bootstrap": True, "improved": False}
    assert level["test"]["low"] > 0  # generation 2 is worse on test beyond chance
    counts = tally(rows)
    assert counts["bootstrap"] == {"pairs": 2, "accepted": 2, "accepted_worse_on_test": 1,
                                   "accepted_significantly_worse_on_test": 1, "rejected_significantly_better_on_test": 0}
    assert counts["improved"]["accepted"] == 1 and counts["improved"]["accepted_worse_on_test"] == 0


def test_the_script_writes_both_results_files(tmp_path, capsys):
    folder = _experiment(tmp_path)
    assert main(["--experiment", str(folder), "--resamples", "200", "--out", str(tmp_path), "--name", "rules"]) == 0
    result = json.loads((tmp_path / "rules.json").read_text())
    assert result["tally"]["dev_wer"]["accepted"] == 1 and len(result["pairs"]) == 2
    assert "| `improved` | 2 | 1 | 0 | 0 | 0 |" in (tmp_path / "rules.md").read_text()
