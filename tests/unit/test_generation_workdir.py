"""The experiment folder: done markers, resume, and refusing a folder of another experiment."""

import re

import pytest

from selftrain.errors import ConfigError
from selftrain.generation import Workdir, config_hash, load_experiment_config


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": {"c": 2}}) == config_hash({"b": {"c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_stage_runs_once_and_records_its_result(tmp_path):
    workdir = Workdir(tmp_path, {"x": 1})
    calls = []

    def work(out):
        calls.append(out)
        (out / "result.txt").write_text("ok")
        return {"file": "result.txt"}

    stage = workdir.stage_dir(0, "train")
    first = workdir.run_stage(stage, work)
    second = workdir.run_stage(stage, work)
    assert len(calls) == 1 and first == second and first["file"] == "result.txt" and "seconds" in first
    workdir.run_stage(stage, work, force=True)
    assert len(calls) == 2


def test_interrupted_stage_is_redone(tmp_path):
    workdir = Workdir(tmp_path, {"x": 1})
    stage = workdir.stage_dir(1, "decode")

    def dies(out):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        workdir.run_stage(stage, dies)
    assert not workdir.is_done(stage)
    assert workdir.run_stage(stage, lambda out: {"ok": True})["ok"] is True


def test_other_experiment_is_refused_before_any_work(tmp_path):
    Workdir(tmp_path, {"generations": 3, "seed": 0})
    with pytest.raises(ConfigError, match="another experiment.*seed"):
        Workdir(tmp_path, {"generations": 3, "seed": 1})
    assert Workdir(tmp_path, {"seed": 0, "generations": 3}).config()["seed"] == 0


def test_more_generations_extend_the_same_experiment(tmp_path):
    Workdir(tmp_path, {"generations": 1, "seed": 0})
    assert Workdir(tmp_path, {"generations": 3, "seed": 0}).config()["generations"] == 3
    with pytest.raises(ConfigError, match="another experiment.*seed") as error:
        Workdir(tmp_path, {"generations": 5, "seed": 1})
    assert "generations" not in str(error.value).split("differing keys:")[1]


def test_folders_hashed_with_the_generation_count_still_open(tmp_path):
    import json

    old = {"generations": 2, "seed": 0}
    (tmp_path / "experiment.json").write_text(json.dumps({"config_hash": config_hash(old), "config": old}))
    assert Workdir(tmp_path, {"generations": 2, "seed": 0}).config() == old


def test_a_folder_rebound_to_another_config_keeps_its_stages_and_opens_only_under_it(tmp_path):
    import json

    workdir = Workdir(tmp_path, {"generations": 2, "seed": 0})
    workdir.run_stage(workdir.stage_dir(1, "select"), lambda out: {"kept": 3})
    workdir.rebind({"generations": 2, "seed": 0, "labels": "none"})
    assert Workdir(tmp_path, {"generations": 3, "seed": 0, "labels": "none"}).done_info(workdir.stage_dir(1, "select"))["kept"] == 3
    with pytest.raises(ConfigError, match="another experiment.*labels"):
        Workdir(tmp_path, {"generations": 2, "seed": 0})
    stored = json.loads((tmp_path / "experiment.json").read_text())
    (tmp_path / "experiment.json").write_text(json.dumps({**stored, "version": 99}))
    with pytest.raises(ConfigError, match="version 99"):  # a newer folder is not rewritten
        Workdir(tmp_path).rebind({"seed": 0})


def test_a_new_folder_records_its_version_and_one_without_a_version_opens_as_version_1(tmp_path):
    import json

    from selftrain.generation import experiment_status
    from selftrain.generation.workdir import WORKDIR_VERSION

    Workdir(tmp_path / "new", {"generations": 1, "seed": 0, "preset": "tiny"})
    assert json.loads((tmp_path / "new" / "experiment.json").read_text())["version"] == WORKDIR_VERSION == 2
    old = {"generations": 1, "seed": 0, "preset": "tiny"}  # written before versions were recorded
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "experiment.json").write_text(json.dumps({"config_hash": config_hash(old), "config": old}))
    assert Workdir(tmp_path / "old", dict(old)).config() == old
    assert experiment_status(tmp_path / "old")[1] == "  gen_000: not started"


@pytest.mark.parametrize("version", [3, "2", 0])
def test_a_folder_of_an_unknown_version_is_refused_naming_both_versions(tmp_path, version):
    import json

    from selftrain.generation import experiment_status

    config = {"generations": 1, "seed": 0, "preset": "tiny"}
    stored = {"config_hash": config_hash(config), "config": config, "version": version}
    (tmp_path / "experiment.json").write_text(json.dumps(stored))
    found = repr(version)
    for open_folder in (lambda: Workdir(tmp_path, dict(config)), lambda: experiment_status(tmp_path)):
        with pytest.raises(ConfigError) as error:
            open_folder()
        assert f"work folder of version {found}; this selftrain reads work folders up to version 2" in str(error.value)
        assert "\n" not in str(error.value)
    assert json.loads((tmp_path / "experiment.json").read_text()) == stored  # left as it was


def test_experiment_config_layers_and_errors(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("generations: 2\nthreshold:\n  target_wer: 0.2\nstudent_train:\n  epochs: 5\n")
    config = load_experiment_config(path, {"threshold": {"mode": "fixed"}, "select": {"threshold": 0.9}})
    assert config.generations == 2 and config.threshold.target_wer == 0.2 and config.threshold.mode == "fixed"
    assert config.student_train == {"epochs": 5} and config.select == {"threshold": 0.9}
    with pytest.raises(ConfigError, match="unknown config key"):
        load_experiment_config(overrides={"generation": 2})
    with pytest.raises(ConfigError, match="threshold.mode"):
        load_experiment_config(overrides={"threshold": {"mode": "sometimes"}})
    with pytest.raises(ConfigError, match="data.labeled is required"):
        load_experiment_config().validate_paths()


def test_an_override_changes_one_stage_key_and_keeps_the_files_others(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("teacher_train:\n  epochs: 20\n  max_minutes: 8\n  augment: {noise_prob: 0.5}\n")
    config = load_experiment_config(path, {"teacher_train": {"max_minutes": "0", "augment": {"noise_color": "pink"}}})
    assert config.teacher_train == {"epochs": 20, "max_minutes": "0", "augment": {"noise_prob": 0.5, "noise_color": "pink"}}


def test_a_rejected_student_leaves_its_teacher_in_charge(tmp_path):
    import json

    from selftrain.generation.stages import teacher_generation

    workdir = Workdir(tmp_path, {"x": 1})

    def finished(generation, accepted, teacher):
        folder = workdir.generation_dir(generation)
        folder.mkdir(parents=True, exist_ok=True)
        record = {"generation": generation, "accepted": accepted, "teacher_generation": teacher}
        (folder / "generation.json").write_text(json.dumps(record))

    assert teacher_generation(workdir, 1) == 0
    finished(0, True, None)
    finished(1, True, 0)
    assert teacher_generation(workdir, 2) == 1
    finished(2, False, 1)  # worse than generation 1 on dev
    assert teacher_generation(workdir, 3) == 1
    finished(3, False, 1)
    assert teacher_generation(workdir, 4) == 1
    finished(4, True, 1)
    assert teacher_generation(workdir, 5) == 4


def _write_stage_file(out):
    (out / f"{out.name}.txt").write_text(out.name)
    return {}


def _finished_teacher(root):
    source = Workdir(root, {"x": 1})
    for stage in ("train", "eval"):
        source.run_stage(source.stage_dir(0, stage), _write_stage_file)
    source.run_stage(source.stage_dir(None, "lm"), lambda out: {"lm": "lm.bin"})
    return source


def test_adopted_stages_are_skipped_and_keep_their_files(tmp_path):
    source = _finished_teacher(tmp_path / "main")
    ablation = Workdir(tmp_path / "ablation", {"x": 2})
    assert ablation.adopt(source.root, ["lm", "gen_000"]) == ["lm", "gen_000"]
    assert (ablation.stage_dir(0, "train") / "train.txt").read_text() == "train"
    calls = []
    ablation.run_stage(ablation.stage_dir(0, "train"), lambda out: calls.append(out) or {})
    assert calls == [] and ablation.is_done(ablation.stage_dir(None, "lm"))
    assert ablation.adopt(source.root, ["gen_000"]) == []  # already there: left alone
    assert not list(tmp_path.glob("ablation/*.adopting"))


def test_adopting_unfinished_work_is_refused(tmp_path):
    source = Workdir(tmp_path / "main", {"x": 1})
    source.stage_dir(1, "decode").mkdir(parents=True)  # interrupted: no done marker
    ablation = Workdir(tmp_path / "ablation", {"x": 2})
    with pytest.raises(ConfigError, match="not finished"):
        ablation.adopt(source.root, ["gen_001/decode"])
    with pytest.raises(ConfigError, match="not finished"):
        ablation.adopt(source.root, ["gen_007"])
    assert not ablation.stage_dir(1, "decode").exists()


def _dev_generation(workdir, generation, wrong_words, dev_wer):
    """A finished generation whose LM teacher gets ``wrong_words[i]`` of dev utterance i's two words wrong."""
    import json

    eval_dir = workdir.stage_dir(generation, "eval")
    eval_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"u{i}", "wav": "a.wav", "duration": 1.0,
             "hypotheses": [{"teacher": "lm", "text": " ".join(["good", "day"][: 2 - wrong] + ["bad"] * wrong)}]}
            for i, wrong in enumerate(wrong_words)]
    (eval_dir / "dev_lm.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (workdir.generation_dir(generation) / "generation.json").write_text(json.dumps({"dev_wer": dev_wer}))


@pytest.mark.parametrize(("student", "by_dev_wer", "by_bootstrap", "by_improved"), [
    ([1, 1] + [0] * 98, False, True, False),  # one more wrong word in 200: worse on dev, but not beyond chance
    ([2] * 50 + [0] * 50, False, False, False),  # 99 more wrong words: really worse
    ([0] * 100, True, True, False),  # one fewer wrong word: better on dev, not beyond chance
])
def test_a_student_is_rejected_by_the_acceptance_test_the_config_names(tmp_path, student, by_dev_wer, by_bootstrap, by_improved):
    from selftrain.generation.config import AcceptanceConfig, DataPaths, ExperimentConfig
    from selftrain.generation.run import _acceptance

    dev = tmp_path / "dev.csv"
    dev.write_text("ID,duration,wav,spk_id,wrd\n" + "".join(f"u{i},1.0,a.wav,s,good day\n" for i in range(100)))
    workdir = Workdir(tmp_path / "exp", {"x": 1})
    teacher = [1] + [0] * 99
    _dev_generation(workdir, 0, teacher, sum(teacher) / 200)
    _dev_generation(workdir, 1, student, sum(student) / 200)
    for test, expected in (("dev_wer", by_dev_wer), ("bootstrap", by_bootstrap), ("improved", by_improved)):
        config = ExperimentConfig(data=DataPaths(dev=str(dev)), acceptance=AcceptanceConfig(test=test))
        verdict = _acceptance(config, workdir, 1, 0, sum(student) / 200)
        assert verdict["accepted"] is expected and verdict["teacher_generation"] == 0
        assert ("dev_comparison" in verdict) is (test != "dev_wer")
    lenient = ExperimentConfig(data=DataPaths(dev=str(dev)), keep_better_only=False)
    assert _acceptance(lenient, workdir, 1, 0, 1.0)["accepted"]


def test_only_a_student_that_dev_shows_better_passes_the_improved_test(tmp_path):
    from selftrain.generation.config import AcceptanceConfig, DataPaths, ExperimentConfig
    from selftrain.generation.run import _acceptance

    dev = tmp_path / "dev.csv"
    dev.write_text("ID,duration,wav,spk_id,wrd\n" + "".join(f"u{i},1.0,a.wav,s,good day\n" for i in range(100)))
    workdir = Workdir(tmp_path / "exp", {"x": 1})
    _dev_generation(workdir, 0, [1] * 60 + [0] * 40, 0.3)
    _dev_generation(workdir, 1, [0] * 100, 0.0)  # 60 fewer wrong words in 200: better beyond chance
    config = ExperimentConfig(data=DataPaths(dev=str(dev)), acceptance=AcceptanceConfig(test="improved"))
    verdict = _acceptance(config, workdir, 1, 0, 0.0)
    assert verdict["accepted"] and verdict["dev_comparison"]["high"] < 0


def test_the_acceptance_settings_are_checked_and_leave_older_folders_hash_alone():
    from selftrain.generation.workdir import experiment_hash

    with pytest.raises(ConfigError, match="acceptance.test"):
        load_experiment_config(overrides={"acceptance": {"test": "vibes"}})
    default = load_experiment_config()
    assert "acceptance" not in default.to_dict()  # folders made before the setting existed still open
    bootstrap = load_experiment_config(overrides={"acceptance": {"test": "bootstrap"}})
    assert bootstrap.to_dict()["acceptance"]["test"] == "bootstrap"
    assert experiment_hash(bootstrap.to_dict()) != experiment_hash(default.to_dict())


def test_speaking_rate_bounds_are_on_by_default_and_off_keeps_older_folders_hash(tmp_path, caplog):
    from selftrain.data.manifest import write_speechbrain_csv
    from selftrain.generation.workdir import experiment_hash
    from selftrain.record import Utterance

    with pytest.raises(ConfigError, match="speaking_rate_quantile"):
        load_experiment_config(overrides={"speaking_rate_quantile": 0.6})
    default = load_experiment_config()
    assert default.speaking_rate_quantile == 0.01 and default.to_dict()["speaking_rate_quantile"] == 0.01
    off = load_experiment_config(overrides={"speaking_rate_quantile": None})
    assert "speaking_rate_quantile" not in off.to_dict()  # folders made before the setting existed still open
    assert experiment_hash(off.to_dict()) != experiment_hash(default.to_dict())
    paths = {name: tmp_path / f"{name}.csv" for name in ("labeled", "unlabeled", "dev")}
    for path in paths.values():
        write_speechbrain_csv([Utterance(f"u{i}", "u.wav", 1.0, reference="a b") for i in range(5)], path)
    (tmp_path / "lm.txt").write_text("a b\n")
    data = {**{name: str(path) for name, path in paths.items()}, "lm_text": str(tmp_path / "lm.txt")}
    # five labeled utterances cannot give a 1st percentile: the run goes on with the fixed bounds,
    # and says so before any work starts, naming the file
    with caplog.at_level("WARNING"):
        load_experiment_config(overrides={"data": data}).validate_paths()
    assert re.search(r"speaking-rate bounds off \(.*labeled.csv: .* got 5\)", caplog.text)

    # a folder made before the bounds became the default: refused with the way to resume it
    Workdir(tmp_path / "older", off.to_dict())
    with pytest.raises(ConfigError, match=r"differing keys: speaking_rate_quantile\).*--set speaking_rate_quantile=null"):
        Workdir(tmp_path / "older", default.to_dict())
    Workdir(tmp_path / "older", load_experiment_config(overrides={"speaking_rate_quantile": None}).to_dict())


def test_set_strings_convert_for_settings_that_default_to_none():
    from selftrain.models.config import update_dataclass
    from selftrain.overrides import parse_overrides
    from selftrain.select import SelectConfig

    # `--set` gives text; an `X | None` field converts to the scalar type X of its annotation
    guarded = load_experiment_config(overrides=parse_overrides(["speaking_rate_quantile=0.01"]))
    assert guarded.speaking_rate_quantile == 0.01
    assert load_experiment_config(overrides=parse_overrides(["speaking_rate_quantile=null"])).speaking_rate_quantile is None
    with pytest.raises(ConfigError, match="speaking_rate_quantile: cannot use 'often' as float"):
        load_experiment_config(overrides={"speaking_rate_quantile": "often"})
    select = SelectConfig()
    update_dataclass(select, {"threshold": "0.5", "sanity": {"min_chars_per_second": "none", "max_repeat": "5"}}, "select")
    assert select.threshold == 0.5 and select.sanity.min_chars_per_second is None and select.sanity.max_repeat == 5


def test_decoder_tuning_is_off_by_default_checked_and_leaves_older_folders_hash_alone():
    from selftrain.generation.workdir import experiment_hash

    default = load_experiment_config()
    assert not default.decode_tuning.enabled
    assert "decode_tuning" not in default.to_dict()  # folders made before the setting existed still open
    tuned = load_experiment_config(overrides={"decode_tuning": {"enabled": True, "beta": [0.0, 2.0]}})
    assert tuned.to_dict()["decode_tuning"]["beta"] == [0.0, 2.0]
    assert experiment_hash(tuned.to_dict()) != experiment_hash(default.to_dict())
    with pytest.raises(ConfigError, match="decode_tuning.rounds"):
        load_experiment_config(overrides={"decode_tuning": {"rounds": 0}})
    with pytest.raises(ConfigError, match="decode_tuning"):
        load_experiment_config(overrides={"decode_tuning": {"grid": [1]}})
    with pytest.raises(ConfigError, match="blank_penalty"):
        load_experiment_config(overrides={"decode": {"blank_penalty": "lots"}})


def test_the_old_name_of_the_label_source_loads_with_a_warning_and_opens_its_folders(tmp_path, caplog):
    import json

    from selftrain.generation.workdir import experiment_hash

    path = tmp_path / "exp.yaml"
    path.write_text("select:\n  teacher: greedy\n  threshold: 0.5\n")
    with caplog.at_level("WARNING"):
        old = load_experiment_config(path)
    assert old.select == {"label_source": "greedy", "threshold": 0.5}
    assert caplog.text.count("select.teacher is deprecated: use select.label_source") == 1
    # an override under the new name replaces the file's value under the old one
    assert load_experiment_config(path, {"select": {"label_source": "rover"}}).select["label_source"] == "rover"
    with pytest.raises(ConfigError, match="select.teacher is the old name of select.label_source"):
        load_experiment_config(overrides={"select": {"teacher": "greedy", "label_source": "rover"}})

    # a folder whose experiment.json holds the old name: same hash (the one stored), and it opens
    stored = {**old.to_dict(), "select": {"teacher": "greedy", "threshold": 0.5}}
    assert experiment_hash(stored) == experiment_hash(old.to_dict())
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "experiment.json").write_text(json.dumps({"config_hash": config_hash(stored), "config": stored}))
    Workdir(tmp_path / "w", old.to_dict())
    other = load_experiment_config(overrides={"select": {"label_source": "lm", "threshold": 0.5}})
    with pytest.raises(ConfigError, match="another experiment"):
        Workdir(tmp_path / "w", other.to_dict())


def test_the_old_train_teacher_section_loads_under_its_new_names_and_hashes_as_before(caplog):
    from selftrain.generation.workdir import experiment_hash
    from selftrain.train.config import load_train_config

    old = {"teacher": {"ema_decay": 0.9, "distill_weight": 0.5, "init_head": True}, "epochs": 2}
    new = {"ema_decay": 0.9, "distill": {"weight": 0.5}, "init": {"head": True}, "epochs": 2}
    with caplog.at_level("WARNING"):
        trained = load_train_config(overrides=old)
    assert (trained.ema_decay, trained.distill.weight, trained.init.head) == (0.9, 0.5, True)
    assert "teacher.distill_weight is deprecated: use distill.weight" in caplog.text
    assert load_experiment_config(overrides={"student_train": old}).student_train == new
    # a folder whose experiment.json holds the old names hashes as the config with the new ones
    written = load_experiment_config(overrides={"student_train": new, "teacher_train": old}).to_dict()
    assert experiment_hash({**written, "student_train": old, "teacher_train": old}) == experiment_hash(written)
    with pytest.raises(ConfigError, match="student_train.teacher.ema_decay is the old name of student_train.ema_decay"):
        load_experiment_config(overrides={"student_train": {"teacher": {"ema_decay": 0.9}, "ema_decay": 0.5}})


def test_a_folder_keeps_its_version_when_its_generations_are_extended_or_it_is_rebound(tmp_path):
    import json

    old = {"generations": 1, "seed": 1, "preset": "tiny"}  # written by version 1
    (tmp_path / "experiment.json").write_text(json.dumps({"config_hash": config_hash(old), "config": old, "version": 1}))
    Workdir(tmp_path, {**old, "generations": 3})
    assert json.loads((tmp_path / "experiment.json").read_text())["version"] == 1
    Workdir(tmp_path).rebind({**old, "labels": "none"})
    assert Workdir(tmp_path).version == 1


def test_runs_are_seeded_by_the_folders_version_and_seed_0_is_seeded_as_before(tmp_path):
    import json

    from selftrain.generation.workdir import SEED_STRIDE

    old = {"generations": 1, "seed": 1, "preset": "tiny"}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "experiment.json").write_text(json.dumps({"config_hash": config_hash(old), "config": old}))
    version_1, version_2 = Workdir(tmp_path / "old"), Workdir(tmp_path / "new", {**old, "seed": 2})
    assert (version_1.version, version_2.version) == (1, 2)
    assert [version_1.run_seed(1, g) for g in range(3)] == [1, 2, 3]  # seed 2's generations 0-1 were these
    assert [version_2.run_seed(s, g) for s in (1, 2) for g in range(3)] == [
        SEED_STRIDE, SEED_STRIDE + 1, SEED_STRIDE + 2, 2 * SEED_STRIDE, 2 * SEED_STRIDE + 1, 2 * SEED_STRIDE + 2]
    assert [version_2.run_seed(0, g) for g in range(3)] == [version_1.run_seed(0, g) for g in range(3)] == [0, 1, 2]
