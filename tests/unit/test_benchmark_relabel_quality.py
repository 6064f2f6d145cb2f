"""benchmarks/analysis/relabel_quality.py on a constructed two-generation experiment folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "analysis"))

from relabel_quality import generation_rows, main  # noqa: E402

TRUTH = {"u1": "a b c d", "u2": "e f g h", "u3": "i j k l"}


def _generation(root: Path, generation: int, hypotheses: dict[str, str], selected: dict[str, str]) -> None:
    folder = root / f"gen_{generation:03d}"
    (folder / "decode").mkdir(parents=True)
    (folder / "select").mkdir()
    rows = [{"id": i, "wav": f"{i}.wav", "duration": 1.0, "hypotheses": [{"teacher": "lm", "text": text}]}
            for i, text in hypotheses.items()]
    (folder / "decode" / "unlabeled_lm.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "select" / "selected.csv").write_text(
        "ID,duration,wav,spk_id,wrd\n" + "".join(f"{i},1.0,{i}.wav,s,{text}\n" for i, text in selected.items()))


@pytest.fixture
def experiment(tmp_path):
    reference = tmp_path / "reference.csv"
    reference.write_text("ID,duration,wav,spk_id,wrd\n" + "".join(f"{i},1.0,{i}.wav,s,{t}\n" for i, t in TRUTH.items()))
    root = tmp_path / "main"
    # generation 1 (teacher: generation 0) keeps u1 and u2, each with one wrong word
    _generation(root, 1, {"u1": "a b c x", "u2": "e f g y", "u3": "i x x l"}, {"u1": "a b c x", "u2": "e f g y"})
    # generation 2's teacher trained on u1 and u2: it repeats u1's error, moves u2's, fixes one word of u3
    _generation(root, 2, {"u1": "a b c x", "u2": "e z g h", "u3": "i j x l"}, {"u1": "a b c x", "u2": "e z g h", "u3": "i j x l"})
    return root, reference


def test_teachers_are_scored_apart_on_the_audio_they_trained_on(experiment):
    root, reference = experiment
    (row,) = generation_rows(root, str(reference))
    assert row["generation"] == 2
    assert row["sets"]["trained_on"] == {"utterances": 2, "wer_previous_teacher": 0.25, "wer_teacher": 0.25}
    assert row["sets"]["not_trained_on"] == {"utterances": 1, "wer_previous_teacher": 0.5, "wer_teacher": 0.25}
    assert row["sets"]["all"]["wer_teacher"] == 0.25
    assert row["kept_by_both"] == {"utterances": 2, "changed_share": 0.5, "wer_before": 0.25, "wer_after": 0.25}


def test_the_script_writes_its_tables_and_refuses_a_one_generation_folder(experiment, tmp_path):
    root, reference = experiment
    assert main(["--experiment", str(root), "--reference", str(reference), "--out", str(tmp_path), "--name", "r"]) == 0
    report = (tmp_path / "r.md").read_text()
    assert "| 2 | not trained on | 1 | 0.5000 | 0.2500 |" in report and "| 2 | 2 | 0.5000 | 0.2500 | 0.2500 |" in report
    assert json.loads((tmp_path / "r.json").read_text())["generations"][0]["generation"] == 2
    with pytest.raises(SystemExit, match="no finished selection of generation 2"):
        main(["--experiment", str(tmp_path / "nothing"), "--reference", str(reference), "--out", str(tmp_path)])


def test_an_unfinished_generation_is_named_instead_of_a_traceback(experiment):
    root, reference = experiment
    (root / "gen_001" / "decode" / "unlabeled_lm.jsonl").unlink()
    with pytest.raises(SystemExit, match="unlabeled_lm.jsonl is missing: generation gen_001"):
        generation_rows(root, str(reference))
