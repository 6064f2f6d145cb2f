"""External teachers in `selftrain run`: config checks at load, one transcription per experiment, and
the selection reading their hypotheses beside the CTC teacher's (a fake teacher: no extras needed)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import selftrain.teachers as teachers_module
from selftrain.cli import main
from selftrain.data.manifest import write_manifest
from selftrain.errors import ConfigError
from selftrain.generation import Workdir, load_experiment_config, run_generation, stages_decode
from selftrain.generation import run as run_module
from selftrain.generation import stages as stages_module
from selftrain.generation.config import DataPaths, ExperimentConfig, TeachersConfig
from selftrain.generation.registry import external_hypotheses
from selftrain.generation.results import DecodedSplit, EvalResult, Scores, TeacherFile
from selftrain.generation.stages import EXTERNAL_STAGE, selection_inputs
from selftrain.generation.workdir import DONE_MARKER, experiment_hash
from selftrain.io import read_jsonl
from selftrain.record import Hypothesis, Utterance


def _pretend_installed(monkeypatch, installed: dict[str, bool]) -> None:
    """``importlib.util.find_spec`` answers for the named modules as told, for the others as usual."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name in installed:
            return object() if installed[name] else None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.parametrize("teachers, message", [
    ({"external": ["wisper"]}, "teachers.external: unknown teacher 'wisper'; choose one of whisper, pocketsphinx"),
    ({"external": "whisper,whisper"}, "teachers.external: whisper listed more than once"),
    ({"external": [{"whisper": {}}]}, "teachers.external: teacher names expected (e.g. whisper), got {'whisper': {}}"),
    ({"external_settings": {"whisper": {}}}, "teachers.external_settings.whisper: not a teacher of teachers.external"),
    ({"external": ["whisper"], "external_settings": {"whisper": {"beam": 3}}},
     "unknown config key teachers.external_settings.whisper.beam"),
    ({"external": ["whisper"], "external_settings": {"whisper": {"beam_size": 0}}}, "whisper beam_size must be >= 1"),
    ({"external": ["pocketsphinx"], "external_settings": {"pocketsphinx": {"beam": 2.0}}},
     "pocketsphinx beam must be in (0, 1)"),
])
def test_bad_external_teachers_fail_when_the_config_loads(teachers, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_experiment_config(overrides={"teachers": teachers})


@pytest.mark.parametrize("kind, module, extra", [("whisper", "faster_whisper", "whisper"),
                                                 ("pocketsphinx", "pocketsphinx", "pocketsphinx")])
def test_a_missing_extra_fails_when_the_config_loads(monkeypatch, kind, module, extra) -> None:
    _pretend_installed(monkeypatch, {module: False})
    with pytest.raises(ConfigError, match=rf"teachers\.external: .*pip install 'selftrain\[{extra}\]'"):
        load_experiment_config(overrides={"teachers": {"external": [kind]}})


def test_a_missing_model_folder_fails_when_the_config_loads(monkeypatch, tmp_path) -> None:
    _pretend_installed(monkeypatch, {"faster_whisper": True})
    folder = tmp_path / "no-model"
    settings = {"whisper": {"model_dir": str(folder)}}
    with pytest.raises(ConfigError, match=f"{folder} is not a CTranslate2 Whisper model folder"):
        load_experiment_config(overrides={"teachers": {"external": ["whisper"], "external_settings": settings}})


def test_run_cli_refuses_an_unknown_external_teacher_before_creating_the_workdir(tmp_path) -> None:
    inputs = []
    for name in ("labeled", "unlabeled", "dev", "lm-text"):
        (tmp_path / f"{name}.txt").write_text("x\n")
        inputs += [f"--{name}", str(tmp_path / f"{name}.txt")]
    workdir = tmp_path / "work"
    result = CliRunner().invoke(main, ["run", "--workdir", str(workdir), "--set", "teachers.external=wisper", *inputs])
    assert result.exit_code == 2 and "unknown teacher 'wisper'" in result.output
    assert not workdir.exists()


def test_without_external_teachers_the_config_hashes_as_before() -> None:
    plain = ExperimentConfig()
    assert "external" not in plain.to_dict()["teachers"] and "external_settings" not in plain.to_dict()["teachers"]
    with_whisper = ExperimentConfig(teachers=TeachersConfig(external=["whisper"]))
    assert with_whisper.to_dict()["teachers"]["external"] == ["whisper"]
    assert experiment_hash(plain.to_dict()) != experiment_hash(with_whisper.to_dict())


class FakeExternal:
    """Transcribes every utterance as "hello <id>", recording what it was asked to do."""

    decoder_name = "fake"
    batch_size = 1
    frame_shift_seconds = None

    def __init__(self, kind: str, space) -> None:
        self.name = kind
        self.space = space
        self.seen: list[str] = []
        self.closed = False

    def transcribe(self, utterances, skipped=None, skip=frozenset(), progress=True):
        for utt in utterances:
            if utt.id not in skip:
                self.seen.append(utt.id)
                yield utt, Hypothesis(self.name, f"hello {utt.id}", decoder="fake")

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def built(monkeypatch) -> list[FakeExternal]:
    """Every external teacher the stages build, as a fake."""
    made: list[FakeExternal] = []

    def load(kind, settings, space=None, name=None):
        made.append(FakeExternal(kind, space))
        return made[-1]

    monkeypatch.setattr(teachers_module, "load_external_teacher", load)
    return made


def _experiment(tmp_path: Path) -> tuple[ExperimentConfig, Workdir]:
    """A config with one external teacher (built without the load-time checks) and its work folder
    holding generation 0's model files (the output space) and evaluation marker."""
    rows = {split: [Utterance(id=f"{split}{i}", wav=f"{split}{i}.wav", duration=1.0, reference="a b")
                    for i in range(3)] for split in ("unlabeled", "dev")}
    paths = {}
    for split, utts in rows.items():
        paths[split] = str(tmp_path / f"{split}.csv")
        write_manifest(utts, paths[split])
    config = ExperimentConfig(data=DataPaths(**paths), teachers=TeachersConfig(external=["whisper"]))
    workdir = Workdir(tmp_path / "w", config.to_dict())
    model = workdir.stage_dir(0, "train") / "model"
    model.mkdir(parents=True)
    (model / "tokenizer.json").write_text(json.dumps({"kind": "char", "chars": list(" abcdefghijklmnopqrstuvwxyz0123")}))
    (model / "model.json").write_text(json.dumps({"frame_shift_seconds": 0.04}))
    _finish(workdir, 0)
    return config, workdir


def _decoded(prefix: str, *teachers: str) -> DecodedSplit:
    """What decoding a split with ``teachers`` returns (three utterances each)."""
    return DecodedSplit(teachers={name: TeacherFile(file=f"{prefix}_{name}.jsonl", decoded=3, bad_audio={})
                                  for name in teachers})


def _finish(workdir: Workdir, generation: int) -> None:
    """Mark a generation's evaluation done, as its eval stage would (dev decoded by the LM teacher)."""
    evaluation = workdir.stage_dir(generation, "eval")
    evaluation.mkdir(parents=True, exist_ok=True)
    result = EvalResult(dev=_decoded("dev", "lm"), dev_scores=Scores(wer=0.5, cer=0.25, utterances=3))
    (evaluation / DONE_MARKER).write_text(json.dumps(result.to_dict()))
    (workdir.generation_dir(generation) / "generation.json").write_text(json.dumps({"accepted": True}))


def test_external_hypotheses_are_made_once_per_experiment(tmp_path, built) -> None:
    config, workdir = _experiment(tmp_path)
    first = external_hypotheses(config, workdir)
    assert first is not None and first.reused is False and first.dir == EXTERNAL_STAGE
    assert [t.seen for t in built] == [["unlabeled0", "unlabeled1", "unlabeled2", "dev0", "dev1", "dev2"]]
    assert built[0].closed and built[0].space.frame_shift == 0.04  # in the supervised teacher's frames
    stage = workdir.stage_dir(None, EXTERNAL_STAGE)
    records = [Utterance.from_dict(r) for r in read_jsonl(stage / "dev_whisper.jsonl")]
    assert [r.hypothesis("whisper").text for r in records] == ["hello dev0", "hello dev1", "hello dev2"]
    again = external_hypotheses(config, workdir)
    assert again is not None and again.reused is True and len(built) == 1  # not even loaded again
    assert again.unlabeled == first.unlabeled and again.dev == first.dev


def test_without_external_teachers_nothing_is_made(tmp_path, built) -> None:
    config, workdir = _experiment(tmp_path)
    config.teachers.external = []
    assert external_hypotheses(config, workdir) is None
    assert not built and not workdir.stage_dir(None, EXTERNAL_STAGE).exists()


class _Stop(Exception):
    """Raised by the fake selection stage once it has seen its inputs."""


def _stop_at_selection(seen: list[dict[str, list[str]]]):
    """A selection stage that records the hypothesis files it would read (by split) and stops."""

    def fake_select(config, workdir, generation, out):
        inputs = selection_inputs(workdir, generation)
        seen.append({split: [str(Path(p).relative_to(workdir.root)) for p in files] for split, files in inputs.items()})
        raise _Stop

    return fake_select


def test_every_generation_selects_with_the_same_external_hypotheses(tmp_path, built, monkeypatch) -> None:
    config, workdir = _experiment(tmp_path)
    seen: list[dict[str, list[str]]] = []

    def fake_decode(config, workdir, teacher, manifest, out, prefix, ensemble=False):
        return _decoded(prefix, "lm", "greedy")

    monkeypatch.setattr(stages_decode, "decode_teachers", fake_decode)  # the decode stage's own call
    monkeypatch.setattr(stages_module, "select_pseudo_labels", _stop_at_selection(seen))
    for generation in (1, 2):
        with pytest.raises(_Stop):
            run_generation(config, workdir, generation)
        _finish(workdir, generation)
    assert len(built) == 1 and len(built[0].seen) == 6  # transcribed once, for generation 1
    for generation, inputs in enumerate(seen, start=1):
        assert inputs["unlabeled"] == [f"gen_{generation:03d}/decode/unlabeled_lm.jsonl",
                                       f"gen_{generation:03d}/decode/unlabeled_greedy.jsonl",
                                       "external/unlabeled_whisper.jsonl"]
        # dev: the teacher's own evaluation (generation - 1), then the external teacher's
        assert inputs["dev"] == [f"gen_{generation - 1:03d}/eval/dev_lm.jsonl", "external/dev_whisper.jsonl"]
    decode_info = workdir.done_info(workdir.stage_dir(2, "decode"))
    assert decode_info["external"]["reused"] is True
    assert any("external teachers (whisper): done" in line for line in run_module.experiment_status(workdir.root))


def test_an_ensemble_teacher_labels_and_calibrates_with_the_same_members(tmp_path, monkeypatch) -> None:
    """With ``teachers.ensemble`` the decode stage also decodes dev (the selection calibrates on the
    labels of the teacher that labels), while the generation's own evaluation stays its model's."""
    config, workdir = _experiment(tmp_path)
    config.teachers.external = []
    config.teachers.ensemble = ["other/model"]
    calls: list[tuple[str, bool]] = []
    seen: list[dict[str, list[str]]] = []

    def fake_decode(config, workdir, teacher, manifest, out, prefix, ensemble=False):
        calls.append((prefix, ensemble))
        return _decoded(prefix, "lm")

    monkeypatch.setattr(stages_decode, "decode_teachers", fake_decode)  # the decode stage's own call
    monkeypatch.setattr(stages_module, "select_pseudo_labels", _stop_at_selection(seen))
    with pytest.raises(_Stop):
        run_generation(config, workdir, 1)
    assert calls == [("unlabeled", True), ("dev", True)]
    assert seen == [{"unlabeled": ["gen_001/decode/unlabeled_lm.jsonl"], "dev": ["gen_001/decode/dev_lm.jsonl"]}]


def test_decode_teachers_averages_the_generations_model_with_the_members(tmp_path, monkeypatch) -> None:
    import selftrain.decode
    import selftrain.models
    from selftrain.decode.run import DecodeReport
    from selftrain.generation.stages import decode_teachers, model_dir

    config, workdir = _experiment(tmp_path)
    config.teachers = TeachersConfig(lm=False, greedy=True, dropout_samples=1, ensemble=["m1", "m2"])
    loaded: list[list[str]] = []

    class Model:
        class tokenizer:  # noqa: N801 - stands in for the model's tokenizer attribute
            @staticmethod
            def ctc_labels():
                return ["", "a"]

    def fake_load(dirs, device="cpu", state_cache=None):
        loaded.append([str(d) for d in dirs])
        return Model()

    def fake_transcribe_manifest(teacher, utterances, path, *args, **kwargs):
        rows = list(utterances)
        return DecodeReport(out=str(path), teacher=teacher.name, decoder="greedy", shard=None,
                            utterances=len(rows), already_done=0, decoded=len(rows))

    monkeypatch.setattr(selftrain.models, "load_ensemble", fake_load)
    monkeypatch.setattr(teachers_module, "transcribe_manifest", fake_transcribe_manifest)
    out = tmp_path / "out"
    out.mkdir()
    result = decode_teachers(config, workdir, 0, config.data.unlabeled, out, "unlabeled", ensemble=True)
    assert loaded == [[str(model_dir(workdir, 0)), "m1", "m2"]] * 2  # greedy and the dropout sample
    assert result.ensemble == ("m1", "m2") and set(result.teachers) == {"greedy", "dropout0"}
    loaded.clear()
    result = decode_teachers(config, workdir, 0, config.data.dev, out, "dev")
    assert loaded == [[str(model_dir(workdir, 0))]] * 2 and result.ensemble is None and "ensemble" not in result.to_dict()
