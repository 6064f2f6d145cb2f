"""A pretrained (Whisper) encoder through the whole pipeline on the tiny corpus: `selftrain run` with a
small random Whisper checkpoint written by the test, its frozen bottom cached once and reused by the
teacher, decoding and the student; the exported model decodes alone with the CLI; settings that
cannot go with cached states are refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from selftrain.cli import main
from selftrain.models import load_acoustic_model
from tests.unit.test_models_whisper import FFN, HEADS, LAYERS, WIDTH, reference_state, write_openai

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # slow: runs experiments on a synthesized corpus


def _args(corpus: Path, workdir: Path, checkpoint: Path) -> list[str]:
    model = {"d_model": WIDTH, "num_heads": HEADS, "num_layers": LAYERS, "d_ffn": FFN, "frozen_layers": 1,
             "pretrained": str(checkpoint)}
    sets = [f"{stage}.model.{k}={v}" for stage in ("teacher_train", "student_train") for k, v in model.items()]
    sets += ["teacher_train.epochs=2", "student_train.epochs=1", "decode.workers=0", "decode.beam_width=4",
             "decode.nbest=2"]
    return ["run", "--workdir", str(workdir), "--labeled", str(corpus / "labeled.csv"),
            "--unlabeled", str(corpus / "unlabeled.csv"), "--dev", str(corpus / "dev.csv"),
            "--test", str(corpus / "test.csv"), "--lm-text", str(corpus / "lm_text.txt"),
            "--generations", "1", "--preset", "cpu-whisper-tiny", *[a for s in sets for a in ("--set", s)]]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_openai(tmp_path_factory.mktemp("whisper") / "tiny.pt", reference_state())


@pytest.fixture(scope="module")
def experiment(tiny_corpus, checkpoint, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("pretrained") / "w"
    result = CliRunner().invoke(main, _args(tiny_corpus, workdir, checkpoint), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return workdir


def test_the_frozen_states_are_computed_once_and_reused(experiment: Path) -> None:
    teacher = json.loads((experiment / "gen_000" / "train" / "summary.json").read_text())
    student = json.loads((experiment / "gen_001" / "train" / "summary.json").read_text())
    # the teacher computed each training and dev utterance's states once, then read them back ...
    assert teacher["state_cache"]["misses"] == teacher["train_utterances"] + teacher["dev_utterances"]
    assert teacher["state_cache"]["hits"] >= teacher["train_utterances"]
    # ... and the student, trained after the teacher decoded the unlabeled audio, computed none again
    assert student["state_cache"]["misses"] == 0 and student["state_cache"]["hits"] > 0
    entries = list((experiment / "state_cache").rglob("*.pt"))
    assert entries and len({e.parent.parent for e in entries}) == 1  # one frozen encoder: one key
    summary = json.loads((experiment / "summary.json").read_text())
    assert [g["generation"] for g in summary["generations"]] == [0, 1]


def test_the_exported_model_is_whisper_and_decodes_with_the_cli(experiment: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    model_dir = experiment / "gen_000" / "train" / "model"
    meta = json.loads((model_dir / "model.json").read_text())
    assert meta["model"]["encoder"] == "whisper" and meta["frame_shift_seconds"] == pytest.approx(0.02)
    model = load_acoustic_model(model_dir)  # no checkpoint needed: the frozen weights are in model.pt
    wav = torch.zeros(1, 16000)
    log_probs, frames = model.log_probs(wav, torch.ones(1))
    assert log_probs.shape[1] == 50 and int(frames[0]) == 50
    out = tmp_path / "test.jsonl"
    result = CliRunner().invoke(main, ["eval", "--model", str(model_dir), "--manifest", str(tiny_corpus / "test.csv"),
                                       "--decoder", "greedy", "--workers", "0", "--state-cache",
                                       str(experiment / "state_cache"), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads(out.read_text())["wer"] <= 2.0


def test_audio_augmentation_with_cached_states_is_refused_before_any_work(tiny_corpus: Path, checkpoint: Path,
                                                                          tmp_path: Path) -> None:
    out = tmp_path / "train"
    result = CliRunner().invoke(main, ["train", "--preset", "cpu-whisper-tiny", "--labeled", str(tiny_corpus / "labeled.csv"),
                                       "--out", str(out), "--set", f"model.pretrained={checkpoint}",
                                       "--set", f"state_cache={tmp_path / 'cache'}", "--set", "augment.noise_prob=0.5"])
    assert result.exit_code != 0
    assert "change the audio" in result.output
    assert not (out / "save").exists()
