"""benchmarks/results_index.py: the committed results index is current, and every results file is registered."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import results_index as index  # noqa: E402


def test_committed_index_is_current() -> None:
    assert index.INDEX.read_text(encoding="utf-8") == index.render(), "run python benchmarks/results_index.py"


def test_every_results_file_has_a_question_and_a_command() -> None:
    for path in sorted(index.RESULTS.glob("*.json")):
        assert path.stem in index.QUESTIONS, f"register {path.name} in benchmarks/results_index.py QUESTIONS"
        command, _, _ = index._meta(json.loads(path.read_text(encoding="utf-8")))
        assert command.startswith("python benchmarks/"), path.name


def test_research_log_pages_exist() -> None:
    docs = index.RESULTS.parents[1] / "docs" / "experiments"
    for _question, page, _ in index.QUESTIONS.values():
        assert not page or (docs / f"{page}.md").is_file(), page


def test_render_reads_date_and_machine_from_the_file(tmp_path: Path) -> None:
    (tmp_path / "decode_speed.json").write_text(json.dumps(
        {"meta": {"command": "python benchmarks/decode_speed.py", "date": "2030-01-01 00:00 UTC",
                  "machine": "box", "cpus": 4}}), encoding="utf-8")
    (tmp_path / "new_analysis.json").write_text(json.dumps({"command": "python benchmarks/x.py"}), encoding="utf-8")
    text = index.render(tmp_path)
    assert "| 2030-01-01 00:00 UTC | box, 4 CPU cores | `python benchmarks/decode_speed.py` |" in text
    assert "(not registered in benchmarks/results_index.py)" in text and "| not recorded | not recorded |" in text


def test_every_recorded_command_names_a_script_that_exists() -> None:
    # A results file's command must stay re-runnable when scripts move (e.g. into benchmarks/analysis/).
    root = index.RESULTS.parents[1]
    for path in sorted(index.RESULTS.glob("*.json")):
        command, _, _ = index._meta(json.loads(path.read_text(encoding="utf-8")))
        script = command.split()[1]
        assert (root / script).is_file(), f"{path.name}: {script} does not exist"


def test_analyses_are_grouped_apart_from_the_maintained_benchmarks(tmp_path: Path) -> None:
    (tmp_path / "kinds.json").write_text(json.dumps({"command": "python benchmarks/analysis/error_kinds.py --x"}),
                                         encoding="utf-8")
    (tmp_path / "speed.json").write_text(json.dumps({"command": "python benchmarks/decode_speed.py"}), encoding="utf-8")
    text = index.render(tmp_path)
    maintained = text.index("## decode_speed.py (maintained benchmark)")
    analysis = text.index("## analysis/error_kinds.py (one-off analysis)")
    assert maintained < analysis


def test_settings_pooled_over_seeds_get_their_own_table(tmp_path: Path) -> None:
    pooled = {"setting": "continuous_best_ema", "seeds": [0, 1, 2], "mean_test_wer": 0.395, "control_mean_test_wer": 0.424,
              "gap_recovery": 0.369, "vs_control": {"difference": -0.0288, "low": -0.0425, "high": -0.0165},
              "own_control_mean_test_wer": 0.41, "own_gap_recovery": 0.236}
    alone = {"setting": "control", "seeds": [0, 1], "mean_test_wer": 0.424}  # the control itself has nothing to compare
    (tmp_path / "self_training_x.json").write_text(json.dumps(
        {"meta": {"command": "python benchmarks/self_training.py"}, "seeds": [pooled, alone]}), encoding="utf-8")
    text = index.render(tmp_path)
    assert ("| [`self_training_x`](self_training_x.md) | continuous_best_ema | 0, 1, 2 | 0.395 | 0.424 | 0.369 "
            "| -0.0288 [-0.0425, -0.0165] | 0.410 | 0.236 |") in text
    assert "| control |" not in text
    (tmp_path / "self_training_x.json").write_text(json.dumps({"meta": {"command": "python benchmarks/self_training.py"}}))
    assert "pooled" not in index.render(tmp_path)
