"""The stage registry and typed stage results: one list of stages for running and for status, and
done markers written before the results were typed still read (and resume) the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selftrain.errors import ConfigError
from selftrain.generation import Workdir, experiment_status, run_generation, write_summary
from selftrain.generation.config import DataPaths, ExperimentConfig
from selftrain.generation.registry import Plan, generation_stages, stage_named
from selftrain.generation.results import (
    AuditStageResult,
    DecodeResult,
    EvalResult,
    ExternalResult,
    LMResult,
    SelectResult,
    TrainResult,
    TuneStageResult,
)
from selftrain.generation.stages import selection_inputs, tuned_settings
from selftrain.generation.workdir import DONE_MARKER


def _split(prefix: str, *teachers: str, **extra) -> dict:
    return {"teachers": {name: {"file": f"{prefix}_{name}.jsonl", "decoded": 4, "bad_audio": {"missing": 1}} for name in teachers},
            **extra}


def _scores(wer: float, errors: bool = True) -> dict:
    kinds = {"errors": {"substitutions": wer / 2, "deletions": wer / 4, "insertions": wer / 4}} if errors else {}
    return {"wer": wer, "cer": round(wer / 2, 4), "utterances": 4, **kinds}


WHISPER = {"teachers": {"whisper": {"file": "unlabeled_whisper.jsonl", "decoded": 4, "bad_audio": {}, "real_time_factor": 0.0512}}}
# Done markers as the stages wrote them before their results were typed (key order included).
MARKERS = {
    "decode": (DecodeResult, {
        "teacher_generation": 0, "unlabeled": _split("unlabeled", "lm", "greedy", ensemble=["other/model"]),
        "dev": _split("dev", "lm", "greedy", ensemble=["other/model"]), "dev_dir": "gen_001/decode",
        "external": {"dir": "external", "unlabeled": WHISPER, "dev": WHISPER, "reused": False}, "seconds": 12.5}),
    "decode_planted": (DecodeResult, {"teacher_generation": 1, "planted": "control: no decoding", "seconds": 0.0}),
    "select": (SelectResult, {
        "threshold": 0.7132, "method": "combined", "selected_utterances": 3, "selected_hours": 0.0021,
        "segmented_utterances": 1, "selected_fraction": 0.75,
        "threshold_choice": {"mode": "auto", "target_wer": 0.25, "dev_points": [{"threshold": 0.7, "wer": 0.2}],
                             "dev_choice": {"threshold": 0.7132, "kept_fraction": 0.5}},
        "speaking_rate_bounds": [9.21, 17.5], "warnings": ["3 rows without audio"], "seconds": 3.1}),
    "select_planted": (SelectResult, {"threshold": None, "method": "control: nothing selected", "selected_utterances": 0,
                                      "selected_hours": 0.0, "selected_fraction": 0.0, "seconds": 0.0}),
    "audit": (AuditStageResult, {"pseudo_label_wer": 0.1875, "with_reference": 4, "seconds": 1.2}),
    "audit_planted": (AuditStageResult, {"pseudo_label_wer": None, "seconds": 0.0}),
    "train": (TrainResult, {"model": "model", "seconds": 30.4}),
    "train_continuous": (TrainResult, {
        "model": "model", "budget": {"epochs": 2, "max_steps": 0, "mix_unlabeled": 0.5},
        "continuous": {"guard_trips": 1, "labels": {"made": 12, "kept": 5}}, "optimizer_steps": 40,
        "pseudo_label_wer": None, "seconds": 61.0}),
    "lm": (LMResult, {"lm": "lm.bin", "report": {"order": 3, "vocab_size": 120, "heldout": None}, "seconds": 2.0}),
    "tune": (TuneStageResult, {
        "best": {"alpha": 0.5, "beta": 2.0, "blank_penalty": 1.0}, "base_wer": 0.52, "best_wer": 0.48, "utterances": 4,
        "points": [{"alpha": 0.5, "beta": 0.0, "blank_penalty": 0.0, "wer": 0.52}], "seconds": 9.5, "bad_audio": {}}),
    "eval": (EvalResult, {"dev": _split("dev", "lm", "greedy"), "dev_scores": _scores(0.5),
                          "test": _split("test", "lm"), "test_scores": _scores(0.45), "seconds": 20.0}),
    # evaluated before the error kinds were recorded, without a test set
    "eval_older": (EvalResult, {"dev": _split("dev", "lm"), "dev_scores": _scores(0.5, errors=False), "seconds": 20.0}),
    "external": (ExternalResult, {"unlabeled": WHISPER, "dev": WHISPER, "seconds": 5.0}),
}


@pytest.mark.parametrize("name", sorted(MARKERS))
def test_a_done_marker_of_todays_format_reads_into_its_result_and_writes_the_same_keys(name):
    kind, marker = MARKERS[name]
    result = kind.from_dict(json.loads(json.dumps(marker)))
    assert result.to_dict() == marker
    if name != "tune":  # the stage time now closes every marker; the tuner's own time came earlier
        assert list(result.to_dict()) == list(marker)


def test_typed_fields_of_older_markers():
    decode = DecodeResult.from_dict(MARKERS["decode"][1])
    assert decode.unlabeled.ensemble == ("other/model",) and decode.external.unlabeled.teachers["whisper"].real_time_factor == 0.0512
    assert decode.dev.files(Path("gen_001/decode")) == [Path("gen_001/decode/dev_lm.jsonl"), Path("gen_001/decode/dev_greedy.jsonl")]
    assert DecodeResult.from_dict(MARKERS["decode_planted"][1]).unlabeled is None
    older = EvalResult.from_dict(MARKERS["eval_older"][1])
    assert older.dev_scores.errors is None and older.test_scores is None
    run = TrainResult.from_dict(MARKERS["train_continuous"][1]).continuous_run
    assert (run.guard_trips, run.kept_share, run.pseudo_label_wer) == (1, round(5 / 12, 4), None)
    assert TrainResult.from_dict(MARKERS["train"][1]).continuous_run is None


def test_a_marker_missing_a_key_is_refused_naming_it_and_the_file(tmp_path):
    stage = tmp_path / "eval"
    stage.mkdir()
    (stage / DONE_MARKER).write_text(json.dumps({"dev": _split("dev", "lm")}))
    with pytest.raises(ConfigError, match=r"eval/\.done: EvalResult without its 'dev_scores' key"):
        EvalResult.read(stage)
    with pytest.raises(ConfigError, match="is not finished"):
        EvalResult.read(tmp_path / "train")


def _plant(workdir: Workdir, generation: int | None, stage: str, name: str | None = None) -> None:
    folder = workdir.stage_dir(generation, stage)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DONE_MARKER).write_text(json.dumps(MARKERS[name or stage][1]))


def _finished_teacher(workdir: Workdir) -> None:
    for stage in ("train", "eval"):
        _plant(workdir, 0, stage)
    _plant(workdir, None, "lm")
    (workdir.generation_dir(0) / "generation.json").write_text(json.dumps({"generation": 0, "dev_wer": 0.55, "accepted": True}))


def _never_run(monkeypatch):
    """Every stage function fails: a finished generation must be read from its markers alone."""
    import selftrain.generation.stages as stages_module

    def refuse(*args, **kwargs):
        raise AssertionError("a finished stage ran again")

    for name in ("decode_generation", "select_pseudo_labels", "audit_generation", "train_model", "build_language_model",
                 "tune_generation", "evaluate_generation"):
        monkeypatch.setattr(stages_module, name, refuse)


def test_a_generation_finished_with_todays_markers_resumes_to_its_record(tmp_path, monkeypatch):
    _never_run(monkeypatch)
    config = ExperimentConfig(data=DataPaths(dev="dev.csv"), generations=1)
    workdir = Workdir(tmp_path, config.to_dict())
    _finished_teacher(workdir)
    for stage in ("decode", "select", "audit", "train", "eval"):
        _plant(workdir, 1, stage)
    record = run_generation(config, workdir, 1)
    assert record["stage_seconds"] == {"decode": 12.5, "select": 3.1, "audit": 1.2, "train": 30.4, "eval": 20.0}
    expected = {"schedule": "generations", "generation": 1, "dev_wer": 0.5, "dev_cer": 0.25, "test_wer": 0.45,
                "test_cer": 0.225, "test_errors": {"substitutions": 0.225, "deletions": 0.1125, "insertions": 0.1125},
                "pseudo_label_wer": 0.1875, "selected_utterances": 3, "selected_hours": 0.0021, "selected_fraction": 0.75,
                "threshold": 0.7132, "accepted": True, "teacher_generation": 0}
    assert {key: record[key] for key in expected} == expected
    assert list(record)[:12] == list(expected)[:12]  # generation.json's keys in their order
    # generation 0 from its markers: no selection, no audit, no decoder tuning
    teacher = run_generation(config, workdir, 0)
    assert (teacher["selected_utterances"], teacher["threshold"], teacher["pseudo_label_wer"]) == (0, None, None)
    assert list(teacher["stage_seconds"]) == ["train", "lm", "eval"] and "decoder_tuning" not in teacher
    summary = write_summary(workdir)
    assert summary["final_generation"] == 1 and summary["final_test_wer"] == 0.45


def test_a_continuous_generation_and_a_tuned_one_resume_to_their_records(tmp_path, monkeypatch):
    _never_run(monkeypatch)
    config = ExperimentConfig(data=DataPaths(dev="dev.csv"), generations=2, schedule="continuous")
    config.decode_tuning.enabled = True
    workdir = Workdir(tmp_path, config.to_dict())
    _finished_teacher(workdir)
    _plant(workdir, 0, "tune")
    _plant(workdir, 1, "train", "train_continuous")
    _plant(workdir, 1, "tune")
    _plant(workdir, 1, "eval", "eval_older")
    record = run_generation(config, workdir, 1)
    assert (record["schedule"], record["guard_trips"], record["optimizer_steps"]) == ("continuous", 1, 40)
    assert record["selected_fraction"] == round(5 / 12, 4) and record["selected_utterances"] == 0
    assert record["pseudo_label_wer"] is None and record["test_wer"] is None and record["test_errors"] is None
    assert record["decoder_tuning"] == {"best": {"alpha": 0.5, "beta": 2.0, "blank_penalty": 1.0}, "base_wer": 0.52,
                                        "best_wer": 0.48}
    assert list(record["stage_seconds"]) == ["train", "tune", "eval"]
    assert tuned_settings(workdir, 1) == {"alpha": 0.5, "beta": 2.0, "blank_penalty": 1.0}


@pytest.mark.parametrize(("plan", "generation", "names"), [
    (Plan(generations=3), 0, ["train", "lm", "eval"]),
    (Plan(generations=3), 2, ["decode", "select", "audit", "train", "eval"]),
    (Plan(generations=3, decode_tuning=True), 1, ["decode", "select", "audit", "train", "tune", "eval"]),
    (Plan(generations=3, continuous=True), 1, ["train", "eval"]),
    (Plan(generations=3, continuous=True, decode_tuning=True), 0, ["train", "lm", "tune", "eval"]),
])
def test_the_stages_of_a_generation_come_from_the_registry(plan, generation, names):
    assert [stage.name for stage in generation_stages(plan, generation)] == names


def test_the_plan_reads_a_stored_config_with_its_defaults_left_out():
    assert Plan.of(ExperimentConfig(generations=2).to_dict()) == Plan(generations=2)
    continuous = ExperimentConfig(generations=3, schedule="continuous")
    continuous.decode_tuning.enabled = True
    continuous.teachers.external = ["whisper"]
    plan = Plan.of(continuous.to_dict())
    assert plan == Plan(generations=3, continuous=True, decode_tuning=True, external_teachers=("whisper",))
    assert plan.last_generation == 1 and Plan(generations=3).last_generation == 3


def test_status_lists_the_stages_the_registry_gives(tmp_path):
    config = ExperimentConfig(generations=2)
    config.decode_tuning.enabled = True
    config.teachers.external = ["whisper"]
    workdir = Workdir(tmp_path, config.to_dict())
    _finished_teacher(workdir)
    _plant(workdir, 0, "tune")
    _plant(workdir, 1, "decode")
    _plant(workdir, 1, "select")
    _plant(workdir, None, "external")
    assert experiment_status(tmp_path) == [
        f"experiment {tmp_path}: 2 generations planned, preset cpu-small",
        "  gen_000: done",
        "  gen_001: in progress (decode, select done)",
        "  gen_002: not started",
        "  external teachers (whisper): done",
    ]


def test_a_stage_planted_from_outside_must_return_its_stages_result_type(tmp_path):
    workdir = Workdir(tmp_path, {"x": 1})
    select = stage_named("select")
    with pytest.raises(TypeError, match="not a SelectResult"):
        select.record(workdir, 1, lambda out: AuditStageResult(pseudo_label_wer=None))
    assert not workdir.is_done(workdir.stage_dir(1, "select"))
    stage_named("decode").record(workdir, 1, lambda out: DecodeResult(teacher_generation=0, planted="control: no decoding"))
    with pytest.raises(ConfigError, match=r"holds no hypotheses \(control: no decoding\)"):
        selection_inputs(workdir, 1)


def test_a_new_stage_is_one_registry_entry_and_one_function(tmp_path, monkeypatch):
    """A second audit (of every decision, not only the kept ones) added after ``audit``: it runs in
    its own folder between the audit and the training, is timed, resumes from its marker, and
    ``status`` counts it, with nothing else changed."""
    import selftrain.generation.registry as registry
    from selftrain.generation.registry import STAGES, Stage

    ran = []

    def audit_all(call, out):
        ran.append(call.generation)
        (out / "all.json").write_text("{}")
        return AuditStageResult(pseudo_label_wer=0.3, with_reference=4)

    index = [stage.name for stage in STAGES].index("audit") + 1
    monkeypatch.setattr(registry, "STAGES", (*STAGES[:index], Stage("audit_all", AuditStageResult, Plan.offline_student,
                                                                     audit_all), *STAGES[index:]))
    _never_run(monkeypatch)
    config = ExperimentConfig(data=DataPaths(dev="dev.csv"), generations=1)
    workdir = Workdir(tmp_path, config.to_dict())
    _finished_teacher(workdir)
    for stage in ("decode", "select", "audit"):
        _plant(workdir, 1, stage)
    assert experiment_status(tmp_path)[2] == "  gen_001: in progress (decode, select, audit done)"
    for stage in ("train", "eval"):
        _plant(workdir, 1, stage)
    record = run_generation(config, workdir, 1)
    assert ran == [1] and (workdir.stage_dir(1, "audit_all") / "all.json").exists()
    assert list(record["stage_seconds"]) == ["decode", "select", "audit", "audit_all", "train", "eval"]
    assert run_generation(config, workdir, 1)["stage_seconds"] == record["stage_seconds"] and ran == [1]  # resumed
    assert experiment_status(tmp_path)[2] == "  gen_001: done"
    assert [stage.name for stage in generation_stages(Plan(generations=1, continuous=True), 1)] == ["train", "eval"]
