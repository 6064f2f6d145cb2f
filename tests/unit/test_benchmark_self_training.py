"""The self-training benchmark's analysis on constructed results: gap recovery, control, targets, report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _analysis import analyse  # noqa: E402
from _arms import ABLATIONS  # noqa: E402
from _report import to_markdown  # noqa: E402


def _rows(arm: str, test_wers: list[float], accepted: list[bool] | None = None) -> list[dict]:
    accepted = accepted or [True] * len(test_wers)
    return [{"arm": arm, "generation": g, "test_wer": w, "test_cer": w / 2, "dev_wer": w, "pseudo_label_wer": None,
             "kept_fraction": 0.5 if g else None, "selected_hours": 0.1, "accepted": ok, "wall_seconds": 10.0,
             "stage_seconds": {}}
            for g, (w, ok) in enumerate(zip(test_wers, accepted, strict=True))]


def _result(**arms: list[dict]) -> dict:
    curve = [{"fraction": 1.0, "labeled_hours": 0.8, "arm": "main"}]
    return {"arms": arms, "curve": curve, "curve_generations": 1, "skipped": [],
            "corpus": {"hours": {"labeled": 0.8, "unlabeled": 1.7, "dev": 0.2, "test": 0.3}}}


def _report(**arms: list[dict]) -> str:
    """The Markdown report of a result made of these arms' rows."""
    result = _result(**arms)
    result["analysis"] = analyse(result)
    result["meta"] = _meta()
    return to_markdown(result, "python benchmarks/self_training.py")


def _meta() -> dict:
    return {"scale": "test", "date": "today", "machine": "m", "cpus": 2, "stage_seconds_total": 60.0,
            "invocation_seconds": 60.0}


def test_gap_recovery_is_measured_against_the_labeled_only_control_after_as_many_generations():
    result = _result(main=_rows("main", [0.50, 0.48, 0.46, 0.44]),
                     labeled_only=[r for r in _rows("labeled_only", [0.50, 0.49, 0.48, 0.48])],
                     oracle=_rows("oracle", [0.50, 0.45, 0.42, 0.40]))
    analysis = analyse(result)
    # control 0.48, final 0.44, oracle 0.40: half the gap recovered; against the teacher (0.50): 0.6
    assert analysis["gap_recovery"] == pytest.approx(0.5)
    assert analysis["gap_recovery_vs_teacher"] == pytest.approx(0.6)
    assert analysis["labeled_only_test_wer"] == 0.48
    assert analysis["oracle_generation_1_test_wer"] == 0.45
    assert analysis["targets"]["final_model_better_than_labeled_only_control"] is True
    assert analysis["targets"]["gap_recovery_at_least_0.6"] is False
    assert analysis["targets"]["every_generation_at_least_as_good"] is True


def test_a_chain_that_loses_to_its_control_fails_the_control_target_even_when_it_beats_the_teacher():
    result = _result(main=_rows("main", [0.70, 0.68, 0.66]), labeled_only=_rows("labeled_only", [0.70, 0.66, 0.63]),
                     oracle=_rows("oracle", [0.70, 0.62, 0.60]))
    analysis = analyse(result)
    assert analysis["targets"]["final_model_not_worse_than_supervised"] is True
    assert analysis["targets"]["final_model_better_than_labeled_only_control"] is False
    assert analysis["gap_recovery"] < 0


def test_rejected_generations_do_not_count_as_the_final_model():
    result = _result(main=_rows("main", [0.50, 0.47, 0.49], accepted=[True, True, False]),
                     labeled_only=_rows("labeled_only", [0.50, 0.49, 0.48]), oracle=_rows("oracle", [0.50, 0.44, 0.43]))
    analysis = analyse(result)
    assert analysis["final_generation"] == 1
    assert analysis["final_test_wer"] == 0.47


def test_skipped_arms_drop_their_targets_and_the_report_names_them():
    result = _result(main=_rows("main", [0.50, 0.48]))
    result["skipped"] = ["labeled_only", "oracle", "ssl_teacher"]
    analysis = analyse(result)
    assert analysis["gap_recovery"] is None
    assert not any("control" in name or "gap" in name for name in analysis["targets"])
    result["analysis"], result["meta"] = analysis, _meta()
    report = to_markdown(result, "python benchmarks/self_training.py --skip oracle")
    assert "Arms left out of this run (`--skip`): labeled_only, oracle, ssl_teacher." in report
    assert "| self-training, generation 1 | 0.480 |" in report


def test_the_report_lists_the_control_and_oracle_chains_beside_self_training():
    result = _result(main=_rows("main", [0.50, 0.48]), labeled_only=_rows("labeled_only", [0.50, 0.49]),
                     oracle=_rows("oracle", [0.50, 0.45]))
    result["analysis"], result["meta"] = analyse(result), _meta()
    report = to_markdown(result, "cmd")
    assert "| control: labeled only, generation 1 | 0.490 |" in report
    assert "| oracle: true transcripts, generation 1 | 0.450 |" in report
    assert "**0.250**" in report  # (0.49 - 0.48) / (0.49 - 0.45)


def test_teacher_overrides_keep_only_what_generation_zero_depends_on():
    from _arms import teacher_overrides

    base = {"data": {"labeled": "l.csv"}, "preset": "cpu-small", "generations": 3, "teacher_train": {"epochs": 40},
            "student_train": {"epochs": 2}, "select": {"segments": {"enabled": True}}, "decode": {"alpha": 0.8}}
    assert teacher_overrides(base) == {"data": {"labeled": "l.csv"}, "preset": "cpu-small",
                                       "teacher_train": {"epochs": 40}, "decode": {"alpha": 0.8}, "generations": 0,
                                       "speaking_rate_quantile": None}
    # the speaking-rate bounds (a selection setting, on by default) stay out of the teacher's folder hash
    from selftrain.generation import load_experiment_config

    teacher = load_experiment_config(overrides=teacher_overrides(base)).to_dict()
    assert "speaking_rate_quantile" not in teacher


def test_report_lists_explored_arms_and_the_significance_table():
    result = _result(main=_rows("main", [0.50, 0.49]), labeled_only=_rows("labeled_only", [0.50, 0.50]),
                     oracle=_rows("oracle", [0.50, 0.46]), **{"explore:lowlr": _rows("explore:lowlr", [0.50, 0.495])})
    result["significance"] = {"labeled_only": {"difference": -0.01, "low": -0.02, "high": 0.001, "utterances": 300},
                              "explore:lowlr": {"difference": -0.005, "low": -0.015, "high": 0.004, "utterances": 300}}
    result["analysis"] = analyse(result)
    result["meta"] = _meta()
    report = to_markdown(result, "python benchmarks/self_training.py")
    assert "## Explored on the way" in report and "| explore:lowlr | 0.495 |" in report
    assert "| the labeled-only control | -0.0100 | [-0.0200, +0.0010] |" in report
    assert "| explore:lowlr | -0.0050 | [-0.0150, +0.0040] |" in report


@pytest.mark.parametrize("scale_name", ["default", "followup", "quick", "strong_lm", "strong_lm_1500", "strong_lm_1500_chain",
                                        "noisy_teacher", "ensemble_teacher", "tuned_decoding", "pretrained_10min_fresh"])
def test_every_arm_of_each_scale_is_a_valid_experiment_config(scale_name):
    from _arms import load_scale, teacher_overrides
    from _explored import continuous_variant, missing_recognizer, split_variant

    from selftrain.generation import load_experiment_config
    from selftrain.overrides import deep_merge

    scale = load_scale(Path(__file__).resolve().parents[2] / "benchmarks" / "self_training.yaml", scale_name)
    base = scale["experiment"]
    configs = {"main": load_experiment_config(overrides=base),
               "teacher": load_experiment_config(overrides=teacher_overrides(base))}
    # the run gives every arm the corpus' manifests (an oracle needs the unlabeled audio's transcripts)
    corpus = {"data": {name: f"{name}.csv" for name in ("labeled", "unlabeled", "dev", "test", "unlabeled_reference")}}
    for arm, labels in (("labeled_only", "none"), ("oracle", "oracle")):
        configs[arm] = load_experiment_config(overrides=deep_merge(base, {**corpus, "labels": labels}))
    one = deep_merge(base, {"generations": 1, **corpus})
    for name, variant in (scale.get("explore") or {}).items():
        overrides = split_variant(one, continuous_variant(variant, base["generations"]))[0]
        if missing_recognizer(overrides) is None:  # else a recognizer's extra is not installed: the run leaves it out
            configs[name] = load_experiment_config(overrides=overrides)
    assert configs["teacher"].generations == 0
    # scales recorded before the speaking-rate bounds became the default keep them off (their folders and
    # figures stay valid; their `rate_guard*` variants measure them); the others follow the default
    recorded_without_bounds = scale_name not in ("default", "quick", "noisy_teacher", "ensemble_teacher", "tuned_decoding",
                                                 "pretrained_10min_fresh")
    assert configs["main"].speaking_rate_quantile == (None if recorded_without_bounds else 0.01)
    assert configs["main"].teacher_train["epochs"] == base["teacher_train"]["epochs"]
    if scale_name == "followup":  # the default scale's corpus and teacher, one generation
        default = load_scale(Path(__file__).resolve().parents[2] / "benchmarks" / "self_training.yaml", "default")
        assert scale["corpus"] == default["corpus"]
        assert teacher_overrides(base) == teacher_overrides(default["experiment"])
        assert configs["main"].generations == 1
        assert configs["lowlr_strict"].threshold.target_wer == 0.15
        assert configs["lowlr_seg_all_06"].select["segments"] == {"enabled": True, "apply_to": "all", "threshold": 0.6, "min_words": 2, "context": "cut"}
    if "teacher_from" in scale:  # it runs from that scale's corpus and teacher: they must be the same
        other = load_scale(Path(__file__).resolve().parents[2] / "benchmarks" / "self_training.yaml", scale["teacher_from"])
        assert scale["corpus"] == other["corpus"]
        assert teacher_overrides(base) == teacher_overrides(other["experiment"])
    if "corpus_from" in scale:  # the same audio as that scale, a teacher of its own
        other = load_scale(Path(__file__).resolve().parents[2] / "benchmarks" / "self_training.yaml", scale["corpus_from"])
        assert scale["corpus"] == other["corpus"]
    for name in (n for n in configs if n.startswith("continuous")):  # on the budget of the scale's generations
        assert configs[name].schedule == "continuous" and configs[name].generations == configs["main"].generations
    for name in scale.get("ensemble_from") or []:  # members train on this scale's audio
        other = load_scale(Path(__file__).resolve().parents[2] / "benchmarks" / "self_training.yaml", name)
        assert other["corpus"] == scale["corpus"]


def test_a_scale_runs_from_its_own_teacher_or_from_the_one_of_the_scale_it_names(tmp_path):
    from _arms import corpus_home, teacher_home

    work = tmp_path / "chain"
    assert teacher_home({}, work) == work == corpus_home({}, work)
    assert teacher_home({"teacher_from": "base"}, work) == tmp_path / "base" == corpus_home({"teacher_from": "base"}, work)
    for wrong in ("chain", ["base"]):
        with pytest.raises(SystemExit, match="teacher_from must name another scale"):
            teacher_home({"teacher_from": wrong}, work)
        with pytest.raises(SystemExit, match="corpus_from must name another scale"):
            corpus_home({"corpus_from": wrong}, work)


def test_a_scale_can_share_another_scales_corpus_and_train_its_own_teacher(tmp_path):
    from _arms import corpus_home, teacher_home

    work = tmp_path / "noisy"
    assert corpus_home({"corpus_from": "base"}, work) == tmp_path / "base"
    assert teacher_home({"corpus_from": "base"}, work) == work
    # a scale sharing the teacher of a scale that shares a third one's corpus names both
    both = {"teacher_from": "noisy", "corpus_from": "base"}
    assert corpus_home(both, tmp_path / "ensemble") == tmp_path / "base"
    assert teacher_home(both, tmp_path / "ensemble") == tmp_path / "noisy"


def test_teacher_overrides_leave_the_ensemble_to_the_later_generations():
    from _arms import teacher_overrides

    base = {"data": {"labeled": "l.csv"}, "teachers": {"lm": True, "greedy": True, "ensemble": ["other/model"]}}
    assert teacher_overrides(base)["teachers"] == {"lm": True, "greedy": True}
    assert base["teachers"]["ensemble"] == ["other/model"]  # the scale's own settings are left alone


def test_ensemble_members_are_the_teachers_of_scales_on_the_same_corpus(tmp_path, monkeypatch):
    import _arms

    config = tmp_path / "scales.yaml"
    config.write_text(yaml.safe_dump({
        "base": {"corpus": {"sizes": {"labeled": 4}}, "experiment": {"generations": 1}},
        "elsewhere": {"corpus": {"sizes": {"labeled": 8}}, "experiment": {"generations": 1}},
    }))
    arms: list[Path] = []

    def fake_run_arm(work, name, overrides, *args, **kwargs):
        arms.append(work / name)
        return work / name

    monkeypatch.setattr(_arms, "make_corpus", lambda scale, folder: {"paths": {"labeled": str(folder / "l.csv")}})
    monkeypatch.setattr(_arms, "run_arm", fake_run_arm)
    work = tmp_path / "work" / "ens"
    scale = {"corpus_from": "base", "ensemble_from": ["base"]}
    assert _arms.ensemble_members(scale, work, config) == [str(tmp_path / "work" / "base" / "teacher" / "gen_000" / "train" / "model")]
    assert arms == [tmp_path / "work" / "base" / "teacher"]
    assert _arms.ensemble_members({"corpus_from": "base"}, work, config) == []
    with pytest.raises(SystemExit, match="trains on another corpus"):
        _arms.ensemble_members({"corpus_from": "base", "ensemble_from": ["elsewhere"]}, work, config)
    with pytest.raises(SystemExit, match="must name other scales"):
        _arms.ensemble_members({"ensemble_from": ["ens"]}, work, config)


def test_plot_shows_the_curve_only_when_the_run_measured_more_than_one_labeled_amount(tmp_path):
    from _plots import plot

    result = _result(main=_rows("main", [0.50, 0.49]), labeled_only=_rows("labeled_only", [0.50, 0.50]),
                     oracle=_rows("oracle", [0.50, 0.46]), no_filter=_rows("no_filter", [0.50, 0.53], [True, False]))
    result["analysis"] = analyse(result)
    titles = plot(result, tmp_path / "one.png")
    assert titles == ["Generations (hollow: rejected on dev)", "Generation 1 (hatched: rejected on dev)"]
    assert (tmp_path / "one.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    result["arms"]["labeled_050"] = _rows("labeled_050", [0.70, 0.69])
    result["curve"].insert(0, {"fraction": 0.5, "labeled_hours": 0.4, "arm": "labeled_050"})
    result["analysis"] = analyse(result)
    assert plot(result, tmp_path / "curve.png")[-1] == "Sample efficiency"


def test_an_explored_variant_with_several_generations_reports_each_against_the_teacher():
    result = _result(main=_rows("main", [0.50, 0.49]),
                     **{"explore:chain": _rows("explore:chain", [0.50, 0.495, 0.48, 0.47], [True, True, True, False])})
    result["significance"] = {"explore:chain": {"difference": -0.005, "low": -0.015, "high": 0.004, "utterances": 300},
                              "explore:chain, generation 3": {"difference": -0.03, "low": -0.04, "high": -0.02,
                                                              "utterances": 300}}
    result["analysis"], result["meta"] = analyse(result), _meta()
    report = to_markdown(result, "cmd")
    assert "| explore:chain | 0.495 |" in report and "| explore:chain, generation 3 | 0.470 |" in report
    assert "| explore:chain, generation 3 | -0.0300 | [-0.0400, -0.0200] |" in report
    assert "| explore:chain, generation 2 | 0.480 |" in report


def test_a_run_of_main_and_explored_variants_only_reports_no_empty_sections():
    result = _result(main=_rows("main", [0.49, 0.49], [True, False]),
                     **{"explore:lowlr": _rows("explore:lowlr", [0.49, 0.486], [True, False])})
    result["skipped"] = ["labeled_only", "oracle", *ABLATIONS, "curve", "ssl_teacher"]
    result["unavailable"] = {"lowlr_whisper": "the whisper extra is missing"}
    result["significance"] = {"teacher": {"difference": 0.0, "low": 0.0, "high": 0.0, "utterances": 300}}
    result["analysis"], result["meta"] = analyse(result), _meta()
    report = to_markdown(result, "cmd", "self_training_followup")
    assert "Explored variant `lowlr_whisper` not run: the whisper extra is missing." in report
    assert "Gap recovery" not in report and "Ablations" not in report and "Sample efficiency" not in report
    assert "the supervised teacher" not in report  # no student accepted: the final model is the teacher itself
    assert "| explore:lowlr | 0.486 |" in report and "Plots: `self_training_followup.png`" in report


def test_report_only_rewrites_the_report_of_a_recorded_run_keeping_its_command_and_date(tmp_path):
    import json

    from self_training import main

    result = _result(main=_rows("main", [0.50, 0.49]), labeled_only=_rows("labeled_only", [0.50, 0.495]),
                     oracle=_rows("oracle", [0.50, 0.46]))
    result["analysis"] = {"stale": True}
    result["meta"] = {**_meta(), "date": "2026-01-01 00:00 UTC"}
    result["command"] = "python benchmarks/self_training.py --scale test --skip curve"
    (tmp_path / "recorded.json").write_text(json.dumps(result), encoding="utf-8")

    assert main(["--report-only", "--out", str(tmp_path), "--name", "recorded"]) == 0
    rewritten = json.loads((tmp_path / "recorded.json").read_text(encoding="utf-8"))
    assert rewritten["analysis"]["gap_recovery"] == pytest.approx(0.142857, abs=1e-3)  # (0.495-0.49)/(0.495-0.46)
    assert rewritten["command"] == result["command"] and rewritten["meta"]["date"] == "2026-01-01 00:00 UTC"
    report = (tmp_path / "recorded.md").read_text(encoding="utf-8")
    assert "`python benchmarks/self_training.py --scale test --skip curve`" in report
    assert (tmp_path / "recorded.png").exists()


def test_report_only_without_a_recorded_run_says_what_is_missing(tmp_path):
    from self_training import main

    with pytest.raises(SystemExit, match="recorded.json does not exist"):
        main(["--report-only", "--out", str(tmp_path), "--name", "recorded"])


def _manifest(path: Path, rows: list[tuple[str, float, str]]) -> Path:
    from selftrain.data.manifest import write_speechbrain_csv
    from selftrain.record import Utterance

    write_speechbrain_csv([Utterance(id=i, wav=f"{i}.wav", duration=d, reference=t) for i, d, t in rows], path)
    return path


def test_oracle_labels_of_a_selection_keep_its_whole_utterances_with_their_true_text(tmp_path):
    from _labels import random_like, whole_utterances_selected

    from selftrain.data.manifest import read_manifest

    truth = read_manifest(_manifest(tmp_path / "truth.csv", [(f"u{i}", 1.0 + i % 3, f"true {i}") for i in range(30)]))
    selected = _manifest(tmp_path / "selected.csv", [("u1", 2.0, "pseudo one"), ("u4", 2.0, "pseudo four"),
                                                      ("u4__seg0", 0.5, "four")])
    kept = whole_utterances_selected(selected, truth)
    assert [(u.id, u.reference) for u in kept] == [("u1", "true 1"), ("u4", "true 4")]  # the segment is left out

    drawn = random_like(selected, truth)
    hours = sum(u.duration for u in drawn)
    assert 4.0 <= hours < 4.0 + 3.0  # as much audio as the whole utterances kept, within one utterance
    assert drawn == random_like(selected, truth)  # seeded
    assert all(u.reference.startswith("true") for u in drawn)


def test_an_explored_variant_with_unknown_labels_is_refused():
    from _explored import split_variant

    overrides, planted = split_variant({"generations": 1}, {"labels": "oracle_random", "seed": 1})
    assert (overrides, planted) == ({"generations": 1, "seed": 1}, "oracle_random")
    with pytest.raises(SystemExit, match="unknown explored labels 'truth'"):
        split_variant({"generations": 1}, {"labels": "truth"})


def test_explored_controls_and_oracles_are_the_experiments_labels_setting_not_planted_selections(tmp_path):
    from _explored import split_variant
    from _labels import explored_labels

    one = {"generations": 1, "student_train": {"epochs": 2}}
    # the experiment makes its own control (as many steps as a student) and oracle: nothing is planted
    assert split_variant(one, {"labels": "none", "seed": 1}) == ({**one, "seed": 1, "labels": "none"}, None)
    assert split_variant(one, {"labels": "oracle"}) == ({**one, "labels": "oracle"}, None)
    assert split_variant(one, {"seed": 1}) == ({**one, "seed": 1}, None)  # the policy's labels
    assert explored_labels(None, {}, Path("main"), tmp_path / "labels.csv") == {}
    assert not (tmp_path / "labels.csv").exists()
    with pytest.raises(SystemExit, match="match_steps is a setting of labeled-only controls"):
        split_variant(one, {"match_steps": False})


def test_a_control_at_its_configs_epochs_is_an_empty_file_of_given_labels(tmp_path):
    from _explored import split_variant
    from _labels import explored_labels

    from selftrain.data.manifest import read_manifest
    from selftrain.generation import load_experiment_config

    one = {"generations": 1, "student_train": {"epochs": 2}}
    overrides, kind = split_variant(one, {"labels": "none", "match_steps": False, "generations": 3})
    assert (overrides, kind) == ({**one, "generations": 3}, "none")  # the policy's config: its own epochs
    given = explored_labels(kind, {}, tmp_path / "main", tmp_path / "given" / "control.csv")
    assert given == {"labels": "given", "data": {"given_labels": str(tmp_path / "given" / "control.csv")}}
    assert read_manifest(tmp_path / "given" / "control.csv") == []
    config = load_experiment_config(overrides={**overrides, **given})
    assert config.labels == "given" and config.train_config("student_train").epochs == 2


def test_oracle_runs_keep_the_words_the_teacher_got_right_in_context(tmp_path):
    import json

    from _labels import oracle_runs

    from selftrain.data.manifest import read_manifest
    from selftrain.record import Hypothesis, Utterance, Word
    from selftrain.select.segments import parse_runs

    def hyp(words: list[str]) -> Hypothesis:  # 10 frames a word after 2 blank frames; 0.04 s a frame
        spans = [Word(w, 2 + 12 * i, 12 + 12 * i, {}) for i, w in enumerate(words)]
        return Hypothesis("lm", " ".join(words), spans, num_frames=2 + 12 * len(words))

    decoded = {"u1": hyp(["the", "cat", "sat", "on", "mat"]), "u2": hyp(["a", "dog"]), "u3": hyp(["one", "two", "three"])}
    truth = {"u1": "the cat sat in the mat", "u2": "my cat", "u3": "one two three"}
    (tmp_path / "lm.jsonl").write_text("".join(
        json.dumps(Utterance(i, f"{i}.wav", h.num_frames * 0.04, hypotheses=[h]).to_dict()) + "\n" for i, h in decoded.items()))
    _manifest(tmp_path / "truth.csv", [(i, decoded[i].num_frames * 0.04, t) for i, t in truth.items()])

    from selftrain.data.manifest import write_speechbrain_csv

    chosen = oracle_runs(tmp_path / "lm.jsonl", str(tmp_path / "truth.csv"), {"min_words": 2, "min_seconds": 0.5})
    write_speechbrain_csv(chosen, tmp_path / "given.csv", use_pseudo_labels=True)
    rows = {u.id: parse_runs(u) for u in read_manifest(tmp_path / "given.csv")}
    assert set(rows) == {"u1", "u3"}  # u2 has no run of two right words
    assert [words for _, _, words in rows["u1"]] == ["the cat sat"]  # "on" is wrong, "mat" alone is too short
    assert [words for _, _, words in rows["u3"]] == ["one two three"]
    assert [u.reference for u in read_manifest(tmp_path / "given.csv")] == ["the cat sat", "one two three"]


def test_a_variant_whose_recognizer_is_not_installed_is_left_out_with_the_reason(monkeypatch):
    from _explored import missing_recognizer

    from selftrain.errors import ConfigError
    from selftrain.teachers import errors

    monkeypatch.setattr(errors.importlib.util, "find_spec", lambda module: None)
    why = missing_recognizer({"teachers": {"external": ["whisper"]}})
    assert why is not None and "pip install 'selftrain[whisper]'" in why
    assert missing_recognizer({"generations": 1}) is None
    with pytest.raises(ConfigError, match="unknown"):  # other config errors still stop the run
        missing_recognizer({"teachers": {"external": ["wav2letter"]}})


def test_an_explored_variant_decodes_anew_when_it_changes_decoding_and_may_not_change_the_teacher():
    from _arms import DECODED, TEACHER
    from _explored import explored_adoption

    assert explored_adoption("v", {"student_train": {"optim": {"lr": 3e-4}}}) == DECODED
    assert explored_adoption("v", {"labels": "policy", "seed": 1}) == DECODED
    for labels in ("none", "oracle", "oracle_selected"):  # their students train on no pseudo-label of main's decoding
        assert explored_adoption("v", {"labels": labels}) == TEACHER
    assert explored_adoption("v", {"decode": {"beam_width": 128}}) == TEACHER
    assert explored_adoption("v", {"teachers": {"external": ["whisper"]}}) == TEACHER
    with pytest.raises(SystemExit, match="lm_order"):
        explored_adoption("v", {"lm_order": 3})


def test_rows_split_the_test_wer_by_kind_even_for_generations_finished_before_it_was_recorded(tmp_path):
    import json

    from _arms import generation_rows

    test = tmp_path / "test.csv"
    test.write_text("ID,duration,wav,spk_id,wrd\nu1,1.0,a.wav,s,one two three four\nu2,1.0,b.wav,s,five six\n")
    root = tmp_path / "arm"
    (root / "gen_001" / "eval").mkdir(parents=True)
    (root / "experiment.json").write_text(json.dumps({"config_hash": "x", "config": {"data": {"test": str(test)}}}))
    hyps = [{"id": "u1", "wav": "a.wav", "duration": 1.0, "hypotheses": [{"teacher": "lm", "text": "one too three"}]},
            {"id": "u2", "wav": "b.wav", "duration": 1.0, "hypotheses": [{"teacher": "lm", "text": "five six seven"}]}]
    (root / "gen_001" / "eval" / "test_lm.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hyps))
    record = {"generation": 1, "test_wer": 0.5, "test_cer": 0.2, "dev_wer": 0.5, "stage_seconds": {"train": 1.0}}
    (root / "gen_001" / "generation.json").write_text(json.dumps(record))
    (row,) = generation_rows(root, "main")
    assert row["test_errors"] == pytest.approx({"substitutions": 1 / 6, "deletions": 1 / 6, "insertions": 1 / 6}, abs=1e-4)
    recorded = {"substitutions": 0.1, "deletions": 0.2, "insertions": 0.0}  # a newer generation.json carries its own
    (root / "gen_001" / "generation.json").write_text(json.dumps({**record, "test_errors": recorded}))
    assert generation_rows(root, "main")[0]["test_errors"] == recorded


def test_the_tables_show_the_error_kinds_where_known():
    main = _rows("main", [0.50, 0.49])
    main[1]["test_errors"] = {"substitutions": 0.3, "deletions": 0.15, "insertions": 0.04}
    report = _report(main=main)
    assert "| test sub / del / ins |" in report
    assert "| self-training, generation 1 | 0.490 | 0.245 | 0.300 / 0.150 / 0.040 |" in report
    assert "| supervised, CTC only (teacher) | 0.500 | 0.250 | - |" in report  # older results: no split


def test_with_decoder_tuning_main_tunes_and_evaluates_the_shared_teacher_itself():
    from _arms import TEACHER, teacher_overrides, teacher_stages

    base = {"data": {"labeled": "l.csv"}, "decode": {"alpha": 0.8}, "decode_tuning": {"enabled": True}}
    assert teacher_stages({"decode": {"alpha": 0.8}}) == TEACHER
    assert teacher_stages(base) == ["lm", "gen_000/train"]  # generation 0's tune and eval stages run in main
    assert "decode_tuning" not in teacher_overrides(base)  # so the teacher folder is the untuned scale's
    # ... and comparisons with the teacher read main's evaluation of it, at the tuned settings
    from _arms import teacher_evaluation

    assert teacher_evaluation(Path("teacher"), Path("main"), teacher_stages(base)) == Path("main")
    assert teacher_evaluation(Path("teacher"), Path("main"), TEACHER) == Path("teacher")


def test_rows_and_report_show_the_decoder_settings_tuned_for_each_model(tmp_path):
    import json

    from _arms import generation_rows

    root = tmp_path / "arm"
    (root / "gen_000").mkdir(parents=True)
    tuning = {"best": {"blank_penalty": 1.0, "beta": 2.0, "alpha": 0.8}, "base_wer": 0.43, "best_wer": 0.41}
    record = {"generation": 0, "test_wer": 0.4, "test_cer": 0.2, "dev_wer": 0.41, "stage_seconds": {"tune": 60.0},
              "test_errors": {"substitutions": 0.3, "deletions": 0.07, "insertions": 0.03}, "decoder_tuning": tuning}
    (root / "gen_000" / "generation.json").write_text(json.dumps(record))
    (row,) = generation_rows(root, "main")
    assert row["decoder_tuning"] == tuning and row["wall_seconds"] == 60.0
    report = _report(main=[row, *_rows("main", [0.40, 0.39])[1:]])
    assert "## Decoder settings tuned on dev" in report
    assert "| supervised, CTC only (teacher) | 1 | 2 | 0.8 | 0.430 | 0.410 |" in report
    assert "self-training, generation 1 | 1 |" not in report  # rows without tuning are not listed there
    assert "Decoder settings tuned" not in _report(main=_rows("main", [0.40, 0.39]))


def test_filtering_beats_no_filtering_only_when_the_default_policy_wins_by_more_than_the_noise():
    arms = dict(main=_rows("main", [0.50, 0.48]), no_filter=_rows("no_filter", [0.50, 0.49]),
                confidence_only=_rows("confidence_only", [0.50, 0.485]))
    recorded_before_intervals = _result(**arms)
    assert analyse(recorded_before_intervals)["targets"]["filtering_beats_no_filtering"] is True

    noisy = _result(**arms)
    noisy["significance"] = {"no_filter:main": {"difference": -0.01, "low": -0.025, "high": 0.004},
                             "no_filter:confidence_only": {"difference": -0.005, "low": -0.02, "high": 0.01}}
    analysis = analyse(noisy)
    assert analysis["targets"]["filtering_beats_no_filtering"] is False
    assert analysis["vs_no_filter"]["confidence + agreement (default)"]["interval"] == [-0.025, 0.004]

    clear = _result(**arms)
    clear["significance"] = {"no_filter:main": {"difference": -0.01, "low": -0.018, "high": -0.002}}
    assert analyse(clear)["targets"]["filtering_beats_no_filtering"] is True
    report = _report(**arms)
    assert "| confidence + agreement (default) | 0.480 | 0.0100 | - (not measured in this run) |" in report
    clear["analysis"], clear["meta"] = analyse(clear), _meta()
    assert "| confidence + agreement (default) | 0.480 | 0.0100 | [-0.0180, -0.0020] |" in to_markdown(clear, "cmd")


def test_each_filtered_policy_is_compared_with_no_filtering_on_the_same_test_utterances(tmp_path):
    import json

    from _analysis import significance

    test = tmp_path / "test.csv"
    test.write_text("ID,duration,wav,spk_id,wrd\n" + "".join(f"u{i},1.0,u{i}.wav,s,a b c d\n" for i in range(20)))

    def decoded(folder: Path, wrong: int) -> None:
        folder.mkdir(parents=True)
        hyps = [{"id": f"u{i}", "wav": f"u{i}.wav", "duration": 1.0,
                 "hypotheses": [{"teacher": "lm", "text": "x b c d" if i < wrong else "a b c d"}]} for i in range(20)]
        (folder / "test_lm.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hyps))

    for arm, wrong in [("main", 2), ("no_filter", 12)]:
        decoded(tmp_path / arm / "gen_001" / "eval", wrong)
    decoded(tmp_path / "teacher" / "gen_000" / "eval", 0)
    arms = {"main": _rows("main", [0.0, 0.025]), "no_filter": _rows("no_filter", [0.0, 0.15])}
    compared = significance(tmp_path, tmp_path / "teacher", arms, str(test))
    assert compared["no_filter:main"]["difference"] == pytest.approx(-0.125)
    assert compared["no_filter:main"]["high"] < 0


def test_a_continuous_variant_runs_on_the_generations_budget_and_decodes_nothing_first():
    from _arms import TEACHER
    from _explored import continuous_variant, explored_adoption

    variant = continuous_variant({"schedule": "continuous", "seed": 1}, generations=3)
    assert variant == {"generations": 3, "schedule": "continuous", "seed": 1}
    assert continuous_variant({"schedule": "continuous", "generations": 2}, 3)["generations"] == 2
    assert continuous_variant({"seed": 1}, 3) == {"seed": 1}  # other variants: one generation unless they say
    assert explored_adoption("c", variant) == TEACHER
    with pytest.raises(SystemExit, match="makes its own labels"):
        continuous_variant({"schedule": "continuous", "labels": "oracle"}, 3)


@pytest.mark.integration
@pytest.mark.slow
def test_a_continuous_arm_runs_end_to_end_and_is_reported_against_generations_and_control(tmp_path):
    from self_training import OPTIONAL_ARMS, run_benchmark

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
    from conftest import tts_available

    if not tts_available():
        pytest.skip("needs the speech synthesis tools (scripts/setup.sh installs them)")
    scale = {"corpus": {"scale": 0.01, "seed": 3}, "labeled_fractions": [1.0], "curve_generations": 1,
             "ssl": {"objectives": ["best_rq"]},
             "explore": {"continuous": {"schedule": "continuous", "student_train": {"continuous": {"calibrate_every": 2}}}},
             "experiment": {"generations": 2, "preset": "tiny", "lm_order": 3, "teacher_train": {"epochs": 2},
                            "student_train": {"epochs": 1}, "decode": {"workers": 0, "beam_width": 4, "nbest": 2}}}
    skip = tuple(arm for arm in OPTIONAL_ARMS if arm not in ("generations", "explore", "labeled_only", "oracle"))
    result = run_benchmark(scale, tmp_path / "work", skip)
    row = result["arms"]["explore:continuous"][-1]
    assert (row["generation"], row["schedule"], row["guard_trips"]) == (1, "continuous", 0)
    assert not (tmp_path / "work" / "exp" / "continuous" / "gen_001" / "decode").exists()  # nothing decoded before training
    record = json.loads((tmp_path / "work" / "exp" / "continuous" / "gen_001" / "generation.json").read_text())
    main = [json.loads((tmp_path / "work" / "main" / f"gen_{g:03d}" / "train" / "summary.json").read_text()) for g in (1, 2)]
    # the offline generations' budget: as many epochs as the two students together, each as many steps
    assert record["budget"]["epochs"] == 2 and record["optimizer_steps"] == sum(s["optimizer_steps"] for s in main)
    result["analysis"] = analyse(result)
    result["meta"] = _meta()
    continuous = result["analysis"]["continuous"]
    assert continuous["arms"][0]["vs_labeled_only"] is not None and continuous["arms"][0]["vs_generations"] is not None
    assert continuous["generations"]["wall_seconds"] > 0 and continuous["labeled_only"]["wall_seconds"] > 0
    report = to_markdown(result, "python benchmarks/self_training.py")
    assert "## Continuous schedule" in report and "| explore:continuous |" in report


def test_skipping_the_generations_keeps_main_at_its_teacher_and_refuses_arms_that_need_its_decoding():
    from _arms import check_skips

    check_skips(("generations", *ABLATIONS))
    check_skips(("no_filter",))  # the generations run: every ablation may stay
    with pytest.raises(SystemExit, match="no_lm"):
        check_skips(("generations", *[a for a in ABLATIONS if a != "no_lm"]))


def test_explore_names_the_variants_to_run_and_refuses_ones_the_scale_lacks():
    from _explored import explored_variants

    scale = {"explore": {"a": {"seed": 1}, "b": {"seed": 2}, "c": {"seed": 3}}}
    assert [name for name, _ in explored_variants(scale, ())] == ["a", "b", "c"]
    assert explored_variants(scale, ("c", "a")) == [("a", {"seed": 1}), ("c", {"seed": 3})]  # the scale's order
    with pytest.raises(SystemExit, match="unknown explored variants d"):
        explored_variants(scale, ("a", "d"))


def test_a_seeded_settings_own_control_is_its_labeled_only_variant_of_the_same_seed():
    from _seeds import own_control_arm

    assert own_control_arm("explore:c") == "explore:c_labeled_only"
    assert own_control_arm("explore:c_seed2") == "explore:c_labeled_only_seed2"  # the family that "Seeds pooled" pairs


def test_continuous_arms_without_offline_generations_are_reported_against_the_teacher_and_their_controls():
    continuous = [{**r, "schedule": "continuous", "guard_trips": 0, "optimizer_steps": 1400}
                  for r in _rows("explore:c", [0.42, 0.39])]
    own = [{**r, "schedule": "continuous", "guard_trips": 0, "optimizer_steps": 1400}
           for r in _rows("explore:c_labeled_only", [0.42, 0.40])]
    result = _result(main=_rows("main", [0.42]), oracle=_rows("oracle", [0.42, 0.36, 0.35]),
                     **{"explore:c": continuous, "explore:c_labeled_only": own})
    result["skipped"] = ["generations", "labeled_only", *ABLATIONS, "curve", "ssl_teacher"]
    result["explored_only"] = ["c"]
    result["significance"] = {"explore:c": {"difference": -0.03, "low": -0.045, "high": -0.015, "utterances": 300},
                              "explore:c:vs_own_labeled_only": {"difference": -0.01, "low": -0.02, "high": -0.001,
                                                                "utterances": 300}}
    result["analysis"], result["meta"] = analyse(result), _meta()
    analysis = result["analysis"]
    assert analysis["continuous"]["generations"] is None and analysis["gap_recovery"] is None
    arm = analysis["continuous"]["arms"][0]
    assert arm["gap_recovery"] is None and arm["own_gap_recovery"] == pytest.approx(0.2)  # (0.40 - 0.39) / (0.40 - 0.35)
    # the targets about the offline chain are left out, not met by a chain of one teacher
    assert "every_generation_at_least_as_good" not in analysis["targets"]
    assert "final_model_not_worse_than_supervised" not in analysis["targets"]
    report = to_markdown(result, "cmd")
    assert "offline generations (final" not in report
    assert "Explored variants run (`--explore`): c; the scale's others are left out." in report
    assert "| - (not measured in this run) | - (not measured in this run) | [-0.0200, -0.0010] |" in report  # vs its own variant
    assert "- none: every arm a target is judged on was left out of this run" in report
    assert "| explore:c | 0.390 |" in report and "[-0.0450, -0.0150]" in report


def test_settings_run_with_several_seeds_are_pooled_against_the_control_of_the_same_seeds(tmp_path):
    from _seeds import pooled_seeds, seed_families, seeds_lines

    test = tmp_path / "test.csv"
    references = {f"u{i}": "one two three four" for i in range(8)}
    test.write_text("ID,duration,wav,spk_id,wrd\n" + "".join(f"{u},1.0,{u}.wav,s,{t}\n" for u, t in references.items()))
    wrong_words = {"main": 1, "explore:seed1": 1, "labeled_only": 2, "explore:control_seed1": 2,
                   "explore:cont": 0, "explore:cont_seed1": 1, "explore:cont_seed2": 0,
                   "explore:pair": 0, "explore:pair_seed1": 0,
                   "explore:cont_labeled_only": 1, "explore:cont_labeled_only_seed1": 1, "explore:cont_labeled_only_seed2": 2}

    def test_hyps(arm: str, generation: int) -> Path:  # each model gets `wrong_words` words of every utterance wrong
        path = tmp_path / arm.replace(":", "_") / f"gen_{generation:03d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = " ".join(["x"] * wrong_words[arm] + ["one", "two", "three", "four"][wrong_words[arm]:])
        path.write_text("".join(json.dumps({"id": u, "wav": f"{u}.wav", "duration": 1.0,
                                            "hypotheses": [{"teacher": "lm", "text": text}]}) + "\n" for u in references))
        return path

    arms = {name: _rows(name, [0.5, wrong / 4], accepted=[True, name != "labeled_only"]) for name, wrong in wrong_words.items()}
    arms["explore:control_seed1"] = _rows("explore:control_seed1", [0.5, 0.5])
    families = seed_families(arms, "explore:")
    assert families == {"generations": {0: "main", 1: "explore:seed1"}, "control": {0: "labeled_only", 1: "explore:control_seed1"},
                        "cont": {0: "explore:cont", 1: "explore:cont_seed1", 2: "explore:cont_seed2"},
                        "pair": {0: "explore:pair", 1: "explore:pair_seed1"},
                        "cont_labeled_only": {0: "explore:cont_labeled_only", 1: "explore:cont_labeled_only_seed1",
                                              2: "explore:cont_labeled_only_seed2"}}
    pooled = {p["setting"]: p for p in pooled_seeds(arms, "explore:", 0.0, test_hyps, str(test))}
    generations = pooled["generations"]
    # seed 0's control was rejected: its final model is generation 0 (WER 0.5), as is seed 1's
    assert generations["test_wer_by_seed"] == [0.25, 0.25] and generations["control_mean_test_wer"] == 0.5
    assert generations["gap_recovery"] == 0.5 and generations["vs_control"]["high"] < 0
    # seed 2 has no labeled-only control chain: the control is measured on seeds 0 and 1, named as such
    assert pooled["cont"]["shared_seeds"] == [0, 1] and pooled["cont"]["shared_mean_test_wer"] == 0.125
    assert pooled["cont"]["control_mean_test_wer"] == 0.5 and pooled["cont"]["gap_recovery"] == 0.75
    assert pooled["cont"]["mean_test_wer"] == pytest.approx(1 / 12, abs=1e-4)
    # ... but the setting's own control ran with all three seeds: wrong words 1, 1, 2 of 4
    assert pooled["cont"]["own_control_mean_test_wer"] == pytest.approx(1 / 3, abs=1e-4)
    assert pooled["cont"]["own_gap_recovery"] == pytest.approx(0.75, abs=1e-3) and pooled["cont"]["vs_own_control"]["high"] < 0
    text = "\n".join(seeds_lines(list(pooled.values()), 0.0))
    assert pooled["cont"]["offline_shared_seeds"] == [0, 1]  # nor an offline chain of seed 2
    assert pooled["cont"]["offline_control_mean_test_wer"] == 0.25
    assert "| generations | 0: 0.250, 1: 0.250 | 0.250 | 0.250-0.250 | 0.500 | 0.500 | -0.2500 [" in text
    assert "| cont | 0: 0.000, 1: 0.250, 2: 0.000 | 0.083 | 0.000-0.250 | 0.500 | 0.750 | -0.3750 [" in text
    assert "(seeds 0, 1; setting mean there 0.125) | 0.333 | 0.750 | -0.2500 [" in text
    # a comparison needs two seeds at least: a setting whose other side ran one of them is not compared
    one_control = {name: rows for name, rows in arms.items() if name != "explore:control_seed1"}
    single = {p["setting"]: p for p in pooled_seeds(one_control, "explore:", 0.0, test_hyps, str(test))}
    assert "vs_control" not in single["cont"] and "vs_control" not in single["generations"]
    # a setting with the offline chains' seeds (0 and 1) is measured against them: no wrong word against one in four
    pair = pooled["pair"]
    assert pair["offline_control_mean_test_wer"] == 0.25 and pair["vs_offline_control"]["difference"] == -0.25
    assert "| pair | 0: 0.000, 1: 0.000 | 0.000 | 0.000-0.000 | 0.500 | 1.000 | -0.5000 [" in text
    assert "| - | - | - | 0.250 | -0.2500 [" in text


def _plant_selections(workdir, generations: int, rows: list, method: str) -> None:
    """What this benchmark wrote into a control or analysis folder before the experiment made such
    labels itself: every generation's decode, select and audit stage done, ``rows`` as the selection."""
    from selftrain.data.manifest import write_speechbrain_csv
    from selftrain.generation.registry import stage_named
    from selftrain.generation.results import AuditStageResult, DecodeResult, SelectResult

    def select(out):
        write_speechbrain_csv(rows, out / "selected.csv")
        return SelectResult(threshold=None, method=method, selected_utterances=len(rows), selected_hours=0.0,
                            selected_fraction=0.0)

    for generation in range(1, generations + 1):
        stage_named("decode").record(workdir, generation, lambda out: DecodeResult(teacher_generation=0, planted="planted"))
        stage_named("select").record(workdir, generation, select)
        stage_named("audit").record(workdir, generation, lambda out: AuditStageResult(pseudo_label_wer=None))


def test_control_oracle_and_analysis_folders_planted_before_the_labels_setting_open_under_it(tmp_path):
    from _labels import reopen_planted

    from selftrain.data.manifest import read_manifest, write_speechbrain_csv
    from selftrain.errors import ConfigError
    from selftrain.generation import Workdir, load_experiment_config
    from selftrain.generation.registry import stage_named
    from selftrain.generation.results import SelectResult
    from selftrain.overrides import deep_merge

    truth_file = _manifest(tmp_path / "truth.csv", [("u1", 1.0, "one"), ("u2", 2.0, "two")])
    truth = read_manifest(truth_file)
    base = {"generations": 2, "student_train": {"epochs": 2},
            "data": {"unlabeled": str(truth_file), "unlabeled_reference": str(truth_file)}}
    write_speechbrain_csv(truth[:1], tmp_path / "given.csv")
    given = {"labels": "given", "data": {"given_labels": str(tmp_path / "given.csv")}}
    # what this benchmark wrote before: the control at a student's steps (2 x 0.8 / 0.6 epochs), the
    # oracle and an analysis oracle (one utterance's true transcript) as main
    older = {"labeled_only": (deep_merge(base, {"student_train": {"epochs": 3}}), [], "control: nothing selected", {"labels": "none"}),
             "oracle": (base, truth, "oracle (true transcripts)", {"labels": "oracle"}),
             "oracle_selected": (base, truth[:1], "oracle: the main run's generation-1 whole utterances", given)}
    for name, (settings, rows, method, labels) in older.items():
        workdir = Workdir(tmp_path / name, load_experiment_config(overrides=settings).to_dict())
        _plant_selections(workdir, 2, rows, method)
        config = load_experiment_config(overrides=deep_merge(base, labels))
        with pytest.raises(ConfigError, match="another experiment"):
            Workdir(workdir.root, config.to_dict())
        reopen_planted(workdir.root, config)
        assert Workdir(workdir.root, config.to_dict()).config()["labels"] == labels["labels"]
        assert workdir.is_done(workdir.stage_dir(2, "select"))  # its finished generations are kept
    # a folder of the policy's labels, a control at its config's epochs opened as step-matched, or
    # given labels other than those it trained on, is another experiment still
    policy = Workdir(tmp_path / "policy", load_experiment_config(overrides=base).to_dict())
    stage_named("select").record(policy, 1, lambda out: SelectResult(
        threshold=0.5, method="combined", selected_utterances=1, selected_hours=0.0003, selected_fraction=0.5))
    unmatched = Workdir(tmp_path / "unmatched", load_experiment_config(overrides=base).to_dict())
    _plant_selections(unmatched, 2, [], "control: nothing selected")
    other = Workdir(tmp_path / "other", load_experiment_config(overrides=base).to_dict())
    _plant_selections(other, 2, truth[1:], "oracle: random utterances")
    for workdir, labels in ((policy, {"labels": "oracle"}), (unmatched, {"labels": "none"}), (other, given)):
        config = load_experiment_config(overrides=deep_merge(base, labels))
        reopen_planted(workdir.root, config)
        with pytest.raises(ConfigError, match="another experiment"):
            Workdir(workdir.root, config.to_dict())
