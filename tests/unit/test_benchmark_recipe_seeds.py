"""benchmarks/analysis/recipe_seeds.py: a recipe's seeds pooled against its labeled-only control and oracle."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "analysis"))

from recipe_seeds import main, seed_results  # noqa: E402

UTTERANCES = 100


def _chain(folder: Path, wrong_by_generation: dict[int, int], rejected: tuple[int, ...] = ()) -> None:
    """A finished work folder: generation g's test hypotheses get the first ``wrong_by_generation[g]``
    utterances' two words both wrong (WER = wrong / UTTERANCES)."""
    rows = []
    for generation, wrong in wrong_by_generation.items():
        out = folder / f"gen_{generation:03d}" / "eval"
        out.mkdir(parents=True)
        hyps = [{"id": f"t{i}", "wav": "a.wav", "duration": 1.0,
                 "hypotheses": [{"teacher": "lm", "text": "bad bad" if i < wrong else "good day"}]} for i in range(UTTERANCES)]
        (out / "test_lm.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hyps))
        rows.append({"generation": generation, "test_wer": wrong / UTTERANCES, "test_cer": None,
                     "accepted": generation not in rejected})
    (folder / "summary.json").write_text(json.dumps({"generations": rows}))


def _seed(tmp_path: Path, seed: int, self_training: int, control: int, oracle: int) -> tuple[Path, Path]:
    """Teacher at 40 wrong utterances; generation 1 of self-training is rejected (60 wrong), its last
    accepted one has ``self_training`` wrong; the control's and the oracle's final ones as given."""
    experiment, controls = tmp_path / f"w{seed}", tmp_path / f"c{seed}"
    _chain(experiment, {0: 40, 1: 60, 2: self_training}, rejected=(1,))
    _chain(controls / "labeled_only", {0: 40, 1: control})
    _chain(controls / "oracle", {0: 40, 1: oracle})
    return experiment, controls


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "test.csv"
    path.write_text("ID,duration,wav,spk_id,wrd\n" + "".join(f"t{i},1.0,a.wav,s,good day\n" for i in range(UTTERANCES)))
    return path


def test_a_seed_takes_each_chain_s_last_accepted_generation(tmp_path, manifest):
    found = seed_results(*_seed(tmp_path, 0, self_training=30, control=38, oracle=20))
    assert {name: (m["generation"], m["test_wer"]) for name, m in found.items()} == {
        "teacher": (0, 0.4), "self_training": (2, 0.3), "labeled_only": (1, 0.38), "oracle": (1, 0.2)}


def test_the_seeds_pool_into_means_gap_recovery_and_paired_intervals(tmp_path, manifest):
    argv = ["--test", str(manifest), "--resamples", "300", "--out", str(tmp_path), "--name", "pooled"]
    for seed, (st, control, oracle) in enumerate([(30, 38, 20), (32, 40, 22), (28, 36, 18)]):
        experiment, controls = _seed(tmp_path, seed, st, control, oracle)
        argv += ["--seed", str(seed), str(experiment), str(controls)]
    assert main(argv) == 0
    result = json.loads((tmp_path / "pooled.json").read_text())
    assert result["pooled"]["means"] == {"teacher": 0.4, "self_training": 0.3, "labeled_only": 0.38, "oracle": 0.2}
    assert result["pooled"]["gap_recovery"] == pytest.approx((0.38 - 0.3) / (0.38 - 0.2), abs=1e-3)
    against_control = result["pooled"]["self_training_against"]["labeled_only"]
    assert against_control["difference"] == pytest.approx(-0.08)
    assert against_control["high"] < 0  # 8 % of the utterances better in every seed: beyond chance
    assert result["pooled"]["self_training_against"]["oracle"]["low"] > 0
    assert "hyps" not in result["seeds"]["0"]["teacher"]  # no machine paths in the results
    assert "| self-training, final | 0.300 (2) | 0.320 (2) | 0.280 (2) | 0.300 |" in (tmp_path / "pooled.md").read_text()


def test_an_unfinished_folder_stops_with_one_line(tmp_path, manifest):
    experiment, controls = _seed(tmp_path, 0, 30, 38, 20)
    (controls / "oracle" / "summary.json").unlink()
    with pytest.raises(SystemExit, match="no summary.json"):
        seed_results(experiment, controls)
