"""Fault suite, bad configuration and files: each is refused with a clear, named error before any work.

Library calls raise a :mod:`selftrain.errors` exception naming the bad file or key; the CLI turns it
into a usage error (exit code 2) and leaves no output behind. Checkpoints are only ever unpickled as
weights: one holding a pickled object with a malicious ``__reduce__`` is refused, never executed.
"""

from __future__ import annotations

import ast
import json
import pickle
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from selftrain.cli import main
from selftrain.data.manifest import write_manifest
from selftrain.decode import DecoderConfig, DecoderPool
from selftrain.errors import CheckpointError, ConfigError, LMError
from selftrain.generation import Workdir, load_experiment_config
from selftrain.generation.lock import LOCK_FILE
from selftrain.generation.run import open_workdir
from selftrain.lm import LMBuildConfig, build_lm
from selftrain.lm.model import unigrams_path
from selftrain.models import export_model, load_acoustic_model
from selftrain.models.acoustic import build_model
from selftrain.models.config import model_preset
from selftrain.models.pretrained import read_state_dict
from selftrain.train.config import load_train_config
from tests.conftest import write_tone
from tests.decode_helpers import LM_SENTENCES, make_corpus, tokenizer, write_lm_text

PACKAGE = Path(__file__).resolve().parents[2] / "selftrain"


class Payload:
    """Unpickling this runs ``exec``: it writes ``marker``. A safe loader must refuse it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('code ran')",)


def _malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A torch checkpoint that looks like a state dict but holds the payload beside a real tensor."""
    torch.save({"encoder.weight": torch.zeros(2), "head.bias": Payload(marker)}, path)
    return path


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A real (tiny, untrained) exported model folder."""
    tok = tokenizer()
    return export_model(build_model(model_preset("tiny"), tok.vocab_size), tok, tmp_path / "model")


@pytest.fixture
def manifest(tmp_path) -> Path:
    path = tmp_path / "m.csv"
    write_manifest(make_corpus(tmp_path / "wav", ["the cat", "a dog"], tokenizer().ctc_labels()), path)
    return path


def _decode(model: Path, manifest: Path, out: Path, *extra: str):
    return CliRunner().invoke(main, ["decode", "--model", str(model), "--manifest", str(manifest), "--out", str(out),
                                     "--workers", "0", *extra])


# --- language models -------------------------------------------------------------------------------

def _corrupt_lms(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "garbage.bin").write_bytes(b"\x00\x01 not a KenLM model " * 40)
    (root / "kenlm_header.bin").write_bytes(b"mmap lm http://kheafield.com/code format version 5\x00" + b"\x07" * 40)
    (root / "torn.arpa").write_text("\\data\\\nngram 1=5\n\n\\1-grams:\n-1.0\t<s>\n")
    (root / "empty.arpa").write_bytes(b"")
    return {p.name: p for p in root.iterdir()}


@pytest.mark.parametrize("name", ["garbage.bin", "kenlm_header.bin", "torn.arpa", "empty.arpa", "missing.bin"])
def test_a_missing_or_corrupt_lm_is_an_lm_error_naming_the_file(tmp_path, name) -> None:
    path = _corrupt_lms(tmp_path / "lms").get(name, tmp_path / "lms" / name)
    labels = tokenizer().ctc_labels()
    for decoder in ("pyctcdecode", "flashlight"):
        with pytest.raises(LMError, match=name.replace(".", r"\.")):
            DecoderPool(DecoderConfig(decoder=decoder, workers=0), labels, path)


def test_a_binary_lm_without_its_unigram_list_is_refused(tmp_path) -> None:
    built = build_lm(write_lm_text(tmp_path / "lm.txt", LM_SENTENCES), tmp_path / "lm.bin", LMBuildConfig(order=2)).path
    unigrams_path(built).unlink()
    with pytest.raises(LMError, match=r"no unigram list for .*lm\.bin"):
        DecoderPool(DecoderConfig(workers=0), tokenizer().ctc_labels(), built)


def test_decode_cli_refuses_a_corrupt_lm_before_decoding(model_dir, manifest, tmp_path) -> None:
    lm = _corrupt_lms(tmp_path / "lms")["garbage.bin"]
    out = tmp_path / "hyps.jsonl"
    result = _decode(model_dir, manifest, out, "--lm", str(lm))
    assert result.exit_code == 1 and "garbage.bin" in result.output and "cannot load language model" in result.output
    assert not out.exists()


# --- model checkpoints -------------------------------------------------------------------------------

def _break(model: Path, how: str, marker: Path) -> str:
    """Damage the model folder ``how``; returns the file name the error must give."""
    if how == "no model.json":
        (model / "model.json").unlink()
        return "model.json"
    if how == "model.json not JSON":
        (model / "model.json").write_text("{ this is not json")
        return "model.json"
    if how == "model.json without architecture":
        (model / "model.json").write_text(json.dumps({"format": 1, "vocab_size": 29}))
        return "model.json"
    if how == "model.json from the future":
        (model / "model.json").write_text(json.dumps({"format": 99}))
        return "model.json"
    if how == "no tokenizer":
        (model / "tokenizer.json").unlink()
        return "tokenizer.json"
    if how == "tokenizer without characters":
        (model / "tokenizer.json").write_text(json.dumps({"kind": "char"}))
        return "tokenizer.json"
    if how == "no weights":
        (model / "model.pt").unlink()
        return "model.pt"
    if how == "truncated weights":
        data = (model / "model.pt").read_bytes()
        (model / "model.pt").write_bytes(data[: len(data) // 2])
        return "model.pt"
    if how == "empty weights":
        (model / "model.pt").write_bytes(b"")
        return "model.pt"
    if how == "weights not a state dict":
        torch.save([torch.zeros(3)], model / "model.pt")
        return "model.pt"
    if how == "weights of another model":
        torch.save({"x": torch.zeros(3)}, model / "model.pt")
        return "model"
    assert how == "malicious weights"
    _malicious_checkpoint(model / "model.pt", marker)
    return "model.pt"


BREAKAGES = ["no model.json", "model.json not JSON", "model.json without architecture", "model.json from the future",
             "no tokenizer", "tokenizer without characters", "no weights", "truncated weights", "empty weights",
             "weights not a state dict", "weights of another model", "malicious weights"]


@pytest.mark.parametrize("how", BREAKAGES)
def test_a_corrupt_model_folder_is_a_checkpoint_error_naming_the_file(model_dir, tmp_path, how) -> None:
    marker = tmp_path / "pwned"
    name = _break(model_dir, how, marker)
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        load_acoustic_model(model_dir)
    assert not marker.exists()


def test_a_missing_model_folder_is_a_checkpoint_error(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="model folder not found"):
        load_acoustic_model(tmp_path / "nowhere")


@pytest.mark.parametrize("how", ["model.json not JSON", "truncated weights", "malicious weights"])
def test_decode_cli_refuses_a_corrupt_model_before_decoding(model_dir, manifest, tmp_path, how) -> None:
    marker = tmp_path / "pwned"
    name = _break(model_dir, how, marker)
    out = tmp_path / "hyps.jsonl"
    result = _decode(model_dir, manifest, out)
    assert result.exit_code == 1 and name in result.output, result.output
    assert not out.exists() and not marker.exists()


# --- safe loading ------------------------------------------------------------------------------------

def _torch_load_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "load" and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"]


def test_every_torch_load_in_the_package_is_weights_only() -> None:
    calls = {path: _torch_load_calls(path) for path in PACKAGE.rglob("*.py")}
    found = [(path, call) for path, path_calls in calls.items() for call in path_calls]
    assert found, "the scan found no torch.load call at all: it is looking in the wrong place"
    for path, call in found:
        weights_only = [k.value for k in call.keywords if k.arg == "weights_only"]
        assert weights_only and isinstance(weights_only[0], ast.Constant) and weights_only[0].value is True, (
            f"{path}:{call.lineno}: torch.load without weights_only=True")


def test_the_payload_really_runs_when_unpickled_unsafely(tmp_path) -> None:
    """Control: the payload is live, so the refusals below mean something."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))  # noqa: S301 - on purpose, with our own harmless payload
    assert marker.read_text() == "code ran"


def test_a_malicious_checkpoint_is_refused_by_every_loading_path(model_dir, tmp_path) -> None:
    marker = tmp_path / "pwned"
    evil = _malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(CheckpointError, match="refusing .*evil.pt"):
        read_state_dict(evil)  # pretrained encoder initialisation
    _malicious_checkpoint(model_dir / "model.pt", marker)
    with pytest.raises(CheckpointError, match="refusing .*model.pt"):
        load_acoustic_model(model_dir)  # decoding, evaluation, distillation teachers
    from speechbrain.utils.checkpoints import torch_recovery

    with pytest.raises(pickle.UnpicklingError):  # how SpeechBrain's Checkpointer restores training state
        torch_recovery(torch.nn.Linear(2, 2), evil, end_of_epoch=True)
    assert not marker.exists()


@pytest.mark.slow
def test_training_refuses_to_resume_from_a_malicious_checkpoint(tmp_path) -> None:
    from selftrain.record import Utterance
    from selftrain.train import train

    rows = [Utterance(f"u{i}", str(write_tone(tmp_path / f"u{i}.wav", freq=200.0 + 50 * i)), 1.0, reference=text)
            for i, text in enumerate(["ab", "ba", "ab ba", "aa"])]
    write_manifest(rows, tmp_path / "labeled.csv")
    overrides = {"out": str(tmp_path / "run"), "epochs": 1, "data": {"labeled": [str(tmp_path / "labeled.csv")]}}
    train(load_train_config("tiny", overrides=overrides))
    marker = tmp_path / "pwned"
    (checkpoint,) = (tmp_path / "run" / "save").glob("CKPT*/trainer.ckpt")
    _malicious_checkpoint(checkpoint, marker)
    with pytest.raises(CheckpointError, match="refusing to resume from .*save"):
        train(load_train_config("tiny", overrides={**overrides, "epochs": 2}))
    assert not marker.exists()


# --- configuration keys ------------------------------------------------------------------------------

def test_an_unknown_key_in_a_train_config_file_names_the_file_and_the_key(tmp_path) -> None:
    path = tmp_path / "hparams.yaml"
    path.write_text("preset: tiny\noptim:\n  learning_rate: 0.01\n")
    with pytest.raises(ConfigError, match=r"hparams\.yaml: unknown config key config\.optim\.learning_rate"):
        load_train_config(config_file=path)


def test_train_cli_refuses_unknown_keys_before_creating_the_run_folder(manifest, tmp_path) -> None:
    path = tmp_path / "hparams.yaml"
    path.write_text("epochs: 1\nmodle:\n  d_model: 8\n")
    out = tmp_path / "run"
    runner = CliRunner()
    from_file = runner.invoke(main, ["train", "--labeled", str(manifest), "--out", str(out), "--config", str(path)])
    assert from_file.exit_code == 2 and "hparams.yaml" in from_file.output and "config.modle" in from_file.output
    from_set = runner.invoke(main, ["train", "--labeled", str(manifest), "--out", str(out), "--set", "optim.lrr=1"])
    assert from_set.exit_code == 2 and "config.optim.lrr" in from_set.output
    assert not out.exists()


@pytest.mark.parametrize("overrides, message", [
    ({"generation": 2}, "unknown config key config.generation"),
    ({"decode": {"beam": 8}}, "unknown config key decode.beam"),
    ({"decode": {"beam_width": "wide"}}, "decode.beam_width: cannot use 'wide'"),
    ({"student_train": {"optim": {"lrr": 1e-3}}}, "student_train: unknown config key config.optim.lrr"),
    ({"teacher_train": {"preset": "huge"}}, "teacher_train: unknown preset 'huge'"),
    ({"teacher_train": {"checkpoint_metric": "lm_wer"}}, "teacher_train.checkpoint_metric lm_wer"),
    ({"select": {"threshhold": 0.9}}, "unknown config key select.threshhold"),
    ({"select": {"sanity": {"max_cps": 20}}}, "unknown config key select.sanity.max_cps"),
    ({"agreement": {"pivt": "first"}}, "unknown config key agreement.pivt"),
])
def test_an_unknown_experiment_key_fails_when_the_config_loads(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_experiment_config(overrides=overrides)


def test_a_bad_experiment_file_names_the_file(tmp_path) -> None:
    unknown = tmp_path / "exp.yaml"
    unknown.write_text("generations: 2\nthreshold:\n  target: 0.2\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: unknown config key config\.threshold\.target"):
        load_experiment_config(unknown)
    broken = tmp_path / "broken.yaml"
    broken.write_text("generations: [2\n")
    with pytest.raises(ConfigError, match=r"cannot read config .*broken\.yaml"):
        load_experiment_config(broken)


def _inputs(tmp_path: Path) -> list[str]:
    """The run command's required inputs (they only need to exist for these checks)."""
    names = ["labeled", "unlabeled", "dev", "lm-text"]
    for name in names:
        (tmp_path / f"{name}.txt").write_text("x\n")
    return [arg for name in names for arg in (f"--{name}", str(tmp_path / f"{name}.txt"))]


def test_run_cli_refuses_an_unknown_stage_key_before_creating_the_workdir(tmp_path) -> None:
    config = tmp_path / "exp.yaml"
    config.write_text("generations: 1\nstudent_train:\n  epoch: 3\n")
    workdir = tmp_path / "work"
    result = CliRunner().invoke(main, ["run", "--workdir", str(workdir), "--config", str(config), *_inputs(tmp_path)])
    assert result.exit_code == 2 and "student_train: unknown config key config.epoch" in result.output
    assert not workdir.exists()


# --- work folders ------------------------------------------------------------------------------------

def test_a_workdir_of_another_experiment_is_refused_with_the_differing_keys(tmp_path) -> None:
    data = {"labeled": "l", "unlabeled": "u", "dev": "d", "lm_text": "t"}
    for path in data.values():
        (tmp_path / path).write_text("x\n")
    data = {k: str(tmp_path / v) for k, v in data.items()}
    first = load_experiment_config(overrides={"data": data, "seed": 1})
    open_workdir(first, tmp_path / "work")
    other = load_experiment_config(overrides={"data": data, "seed": 2, "select": {"threshold": 0.5}})
    with pytest.raises(ConfigError, match=r"work belongs to another experiment .*differing keys: seed, select"):
        open_workdir(other, tmp_path / "work")
    assert sorted(p.name for p in (tmp_path / "work").iterdir() if p.name != LOCK_FILE) == ["experiment.json"]


def test_run_cli_refuses_a_workdir_of_another_experiment_before_any_stage(tmp_path) -> None:
    workdir = tmp_path / "work"
    Workdir(workdir, {"generations": 1, "seed": 123})
    result = CliRunner().invoke(main, ["run", "--workdir", str(workdir), *_inputs(tmp_path)])
    assert result.exit_code == 2 and "belongs to another experiment" in result.output and "seed" in result.output
    assert sorted(p.name for p in workdir.iterdir() if p.name != LOCK_FILE) == ["experiment.json"]


@pytest.mark.parametrize("content", ["{ torn", "[1, 2]", '{"config_hash": "abc"}'])
def test_an_unreadable_experiment_file_is_a_config_error_naming_it(tmp_path, content) -> None:
    (tmp_path / "experiment.json").write_text(content)
    with pytest.raises(ConfigError, match=r"experiment\.json"):
        Workdir(tmp_path, {"generations": 1})
    with pytest.raises(ConfigError, match=r"experiment\.json"):
        Workdir(tmp_path).config()
