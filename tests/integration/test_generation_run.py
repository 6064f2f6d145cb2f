"""`selftrain run` end to end on a tiny corpus: summary contract, resume after interruption, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from selftrain.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # slow: runs experiments on a synthesized corpus

FAST = ["--preset", "tiny", "--set", "teacher_train.epochs=1", "--set", "student_train.epochs=1",
        "--set", "decode.workers=0", "--set", "decode.beam_width=4", "--set", "decode.nbest=2"]


def _args(corpus: Path, workdir: Path, generations: int = 1) -> list[str]:
    return ["run", "--workdir", str(workdir), "--labeled", str(corpus / "labeled.csv"),
            "--unlabeled", str(corpus / "unlabeled.csv"), "--dev", str(corpus / "dev.csv"),
            "--test", str(corpus / "test.csv"), "--lm-text", str(corpus / "lm_text.txt"),
            "--unlabeled-reference", str(corpus / "unlabeled_reference.csv"),
            "--generations", str(generations), *FAST]


@pytest.fixture(scope="module")
def experiment(tiny_corpus, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("exp") / "w"
    result = CliRunner().invoke(main, _args(tiny_corpus, workdir), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "| generation | dev WER |" in result.output
    return workdir


def test_summary_follows_the_contract(experiment):
    summary = json.loads((experiment / "summary.json").read_text())
    assert [g["generation"] for g in summary["generations"]] == [0, 1]
    for g in summary["generations"]:
        for key in ("dev_wer", "test_wer", "selected_utterances", "selected_hours", "selected_fraction"):
            assert isinstance(g[key], (int, float)), key
        assert 0.0 <= g["dev_wer"] <= 2.0 and 0.0 <= g["selected_fraction"] <= 1.0
        kinds = g["test_errors"]  # the test WER, split by kind of error
        assert set(kinds) == {"substitutions", "deletions", "insertions"}
        assert sum(kinds.values()) == pytest.approx(g["test_wer"], abs=3e-4)
    first, second = summary["generations"]
    assert first["pseudo_label_wer"] is None and first["threshold"] is None
    assert isinstance(second["pseudo_label_wer"], float)  # unlabeled references were given
    assert summary["supervised_test_wer"] == first["test_wer"]
    assert first["accepted"] and second["teacher_generation"] == 0
    # The experiment's final model is the student only when it is not worse than its teacher on dev.
    assert second["accepted"] == (second["dev_wer"] <= first["dev_wer"])
    final = second if second["accepted"] else first
    assert summary["final_test_wer"] == final["test_wer"] and summary["final_generation"] == final["generation"]
    record = json.loads((experiment / "gen_001" / "generation.json").read_text())
    assert record["versions"]["torch"] and record["config_hash"]
    for name in ("decode", "select", "audit", "train", "eval"):
        assert (experiment / "gen_001" / name / ".done").exists()
    assert (experiment / "gen_001" / "audit" / "audit.md").exists()
    assert (experiment / "gen_001" / "select" / "selected.csv").exists()
    # 15 labeled utterances are too few for the default speaking-rate bounds: the selection says so
    # in its record and goes on with the fixed bounds
    select_info = json.loads((experiment / "gen_001" / "select" / ".done").read_text())
    assert "speaking_rate_bounds" not in select_info
    assert any("speaking-rate bounds off" in warning for warning in select_info["warnings"])


def test_interrupted_run_finishes_with_the_same_pseudo_labels(experiment, tiny_corpus, tmp_path):
    copy = tmp_path / "w"
    shutil.copytree(experiment, copy)
    selected = (copy / "gen_001" / "select" / "selected.csv").read_bytes()
    # Simulate a kill during selection and during the student's training: their markers are gone.
    (copy / "gen_001" / "select" / ".done").unlink()
    shutil.rmtree(copy / "gen_001" / "train")
    (copy / "summary.json").unlink()
    result = CliRunner().invoke(main, ["run", "--workdir", str(copy)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (copy / "gen_001" / "select" / "selected.csv").read_bytes() == selected
    summary = json.loads((copy / "summary.json").read_text())
    assert [g["generation"] for g in summary["generations"]] == [0, 1]


def test_status_and_refusals(experiment, tiny_corpus, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["status", "--workdir", str(experiment)])
    assert result.exit_code == 0 and "gen_001: done" in result.output
    result = runner.invoke(main, [*_args(tiny_corpus, experiment), "--set", "seed=7"])
    assert result.exit_code == 2 and "another experiment" in result.output and "seed" in result.output
    result = runner.invoke(main, [*_args(tiny_corpus, tmp_path / "w2"), "--set", "threshold.mode=sometimes"])
    assert result.exit_code == 2 and "threshold.mode" in result.output
    assert not (tmp_path / "w2").exists()
    missing = tmp_path / "nothing.txt"
    result = runner.invoke(main, ["run", "--workdir", str(tmp_path / "w3"), "--lm-text", str(missing)])
    assert result.exit_code == 2


def _from_teacher_of(experiment: Path, workdir: Path) -> None:
    """Start ``workdir`` with ``experiment``'s LM and supervised teacher: their stages are done there."""
    for folder in ("lm", "gen_000"):
        shutil.copytree(experiment / folder, workdir / folder)


def test_a_labeled_only_control_decodes_nothing_and_trains_as_many_steps_as_a_student(experiment, tiny_corpus, tmp_path):
    import yaml

    workdir = tmp_path / "control"
    _from_teacher_of(experiment, workdir)
    args = [*_args(tiny_corpus, workdir), "--set", "labels=none", "--set", "student_train.epochs=3"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    teacher, student = json.loads((workdir / "summary.json").read_text())["generations"]
    assert teacher["test_wer"] == json.loads((experiment / "summary.json").read_text())["generations"][0]["test_wer"]
    assert (student["pseudo_label_wer"], student["selected_utterances"], student["selected_fraction"], student["threshold"]) == (
        None, 0, 0.0, None)
    assert [p.name for p in (workdir / "gen_001" / "decode").iterdir()] == [".done"]  # nothing decoded
    assert json.loads((workdir / "gen_001" / "decode" / ".done").read_text())["planted"].startswith("labels: none")
    # 3 epochs of batches with 0.6 labeled and 0.2 pseudo-labeled audio take the steps of 4 epochs of labeled audio
    assert yaml.safe_load((workdir / "gen_001" / "train" / "hyperparams.yaml").read_text())["epochs"] == 4
    status = CliRunner().invoke(main, ["status", "--workdir", str(workdir)])
    assert "labels: none (labeled-only control)" in status.output and "gen_001: done" in status.output


def test_an_oracle_trains_on_the_true_transcripts_of_all_unlabeled_audio(experiment, tiny_corpus, tmp_path):
    from selftrain.data.manifest import read_manifest

    workdir = tmp_path / "oracle"
    _from_teacher_of(experiment, workdir)
    result = CliRunner().invoke(main, [*_args(tiny_corpus, workdir), "--set", "labels=oracle"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    student = json.loads((workdir / "summary.json").read_text())["generations"][1]
    truth = read_manifest(tiny_corpus / "unlabeled_reference.csv")
    assert (student["pseudo_label_wer"], student["selected_fraction"], student["selected_utterances"]) == (0.0, 1.0, len(truth))
    selected = read_manifest(workdir / "gen_001" / "select" / "selected.csv")
    assert [(u.id, u.reference) for u in selected] == [(u.id, u.reference) for u in truth]
    assert not list((workdir / "gen_001" / "decode").glob("*.jsonl"))
    status = CliRunner().invoke(main, ["status", "--workdir", str(workdir)])
    assert "labels: oracle (true transcripts)" in status.output and "gen_001: done" in status.output


def test_decoder_tuned_on_dev_for_every_generation(tiny_corpus, tmp_path):
    """With decode_tuning on, each generation's model gets the settings chosen on dev for its
    evaluation and for decoding the next generation's unlabeled audio. (The student also chooses its
    checkpoints on LM-decoded dev WER, with the experiment's LM and its teacher's tuned weights.)"""
    import yaml

    workdir = tmp_path / "tuned"
    tuning = ["--set", "decode_tuning.enabled=true", "--set", "decode_tuning.blank_penalty=0,1",
              "--set", "decode_tuning.beta=0,2", "--set", "decode_tuning.alpha=",
              "--set", "student_train.checkpoint_metric=lm_wer"]
    result = CliRunner().invoke(main, [*_args(tiny_corpus, workdir), *tuning], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    student = yaml.safe_load((workdir / "gen_001" / "train" / "hyperparams.yaml").read_text())
    teacher_tuned = json.loads((workdir / "gen_000" / "tune" / ".done").read_text())["best"]
    assert student["dev_lm"].endswith("lm.bin") and student["dev_decoder"]["beta"] == teacher_tuned["beta"]
    metas = [yaml.safe_load(p.read_text()) for p in (workdir / "gen_001" / "train").rglob("CKPT.yaml")]
    assert metas and all(m["score"] == m["LM_WER"] for m in metas)
    for generation in (0, 1):
        tune = json.loads((workdir / f"gen_{generation:03d}" / "tune" / ".done").read_text())
        assert set(tune["best"]) == {"blank_penalty", "beta", "alpha"} and tune["best"]["alpha"] == 0.5
        assert tune["best_wer"] <= tune["base_wer"] and len(tune["points"]) <= 5
        record = json.loads((workdir / f"gen_{generation:03d}" / "generation.json").read_text())
        assert record["decoder_tuning"]["best"] == tune["best"]
        # the evaluation decoded dev with the chosen settings: its WER is the search's best
        assert record["dev_wer"] == pytest.approx(tune["best_wer"], abs=1e-4)
    status = CliRunner().invoke(main, ["status", "--workdir", str(workdir)])
    assert "gen_001: done" in status.output


def test_given_labels_train_the_student_and_are_audited_against_the_true_transcripts(experiment, tiny_corpus, tmp_path):
    import dataclasses

    from selftrain.data.manifest import read_manifest, write_speechbrain_csv

    truth = read_manifest(tiny_corpus / "unlabeled_reference.csv")
    # half of the true transcripts, one of them with its last word wrong, as labels made elsewhere
    given = [*truth[: len(truth) // 2]]
    given[0] = dataclasses.replace(given[0], reference=" ".join([*given[0].reference.split()[:-1], "zebra"]))
    write_speechbrain_csv(given, tmp_path / "given.csv")
    workdir = tmp_path / "given"
    _from_teacher_of(experiment, workdir)
    result = CliRunner().invoke(main, [*_args(tiny_corpus, workdir), "--given-labels", str(tmp_path / "given.csv")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    student = json.loads((workdir / "summary.json").read_text())["generations"][1]
    words = sum(len(u.reference.split()) for u in given)
    assert student["selected_utterances"] == len(given) and student["pseudo_label_wer"] == round(1 / words, 4)
    assert [(u.id, u.reference) for u in read_manifest(workdir / "gen_001" / "select" / "selected.csv")] == [
        (u.id, u.reference) for u in given]
    assert not list((workdir / "gen_001" / "decode").glob("*.jsonl"))
    status = CliRunner().invoke(main, ["status", "--workdir", str(workdir)])
    assert "labels: given (labels from data.given_labels)" in status.output and "gen_001: done" in status.output
