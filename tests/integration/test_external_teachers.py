"""Whisper and PocketSphinx teachers on a few synthesized utterances (skipped without their extras)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jiwer
import pytest
from click.testing import CliRunner

from selftrain.agreement import load_teacher_file
from selftrain.cli import main
from selftrain.data.manifest import write_manifest
from selftrain.io import read_jsonl
from selftrain.record import Utterance
from selftrain.teachers import EXTERNAL_SCORE, OutputSpace, transcribe_manifest

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # slow: synthesizes the speech the teachers transcribe

# Spoken as words by the synthesizer; Whisper writes "42" and "3rd", which must normalise back.
SENTENCES = [
    "there are forty two apples on the kitchen table",
    "the weather today is cold and very windy",
    "she finished third in the race last summer",
]
FRAME_SHIFT = 0.04


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> list[Utterance]:
    """Three clean espeak-ng utterances at 22.05 kHz (the teachers resample them to 16 kHz)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng (scripts/setup.sh installs it)")
    import soundfile as sf

    root = tmp_path_factory.mktemp("external")
    utts = []
    for i, text in enumerate(SENTENCES):
        wav = root / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
        utts.append(Utterance(id=f"s{i}", wav=str(wav), duration=sf.info(str(wav)).duration, reference=text))
    return utts


def _check(records: list[Utterance], teacher: str, max_wer: float) -> None:
    hyps = [r.hypothesis(teacher) for r in records]
    assert all(h is not None and h.words for h in hyps)
    wer = jiwer.wer([r.reference for r in records], [h.text for h in hyps])
    assert wer <= max_wer, [h.text for h in hyps]
    for record, hyp in zip(records, hyps, strict=True):
        assert hyp.num_frames == int(record.duration / FRAME_SHIFT)
        assert all(0 <= w.start < w.end <= hyp.num_frames for w in hyp.words)
        assert [w.start for w in hyp.words] == sorted(w.start for w in hyp.words)
        assert all(0.0 <= w.scores[EXTERNAL_SCORE] <= 1.0 for w in hyp.words)
        assert 0.0 <= hyp.scores[EXTERNAL_SCORE] <= 1.0


def test_whisper_transcribes_synthesized_speech(speech, tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper")
    from selftrain.teachers import MissingExtraError
    from selftrain.teachers.whisper import WhisperTeacher

    try:
        teacher = WhisperTeacher(space=OutputSpace(frame_shift=FRAME_SHIFT))
    except MissingExtraError as exc:
        pytest.skip(str(exc))
    out = tmp_path / "whisper.jsonl"
    with teacher:
        report = transcribe_manifest(teacher, speech, out, progress=False)
    assert report.decoded == len(SENTENCES)
    records = [Utterance.from_dict(r) for r in read_jsonl(out)]
    _check(records, "whisper", max_wer=0.1)
    assert set(load_teacher_file(out)) == {u.id for u in speech}  # readable as a teacher file


def test_pocketsphinx_cli_transcribes_and_resumes(speech, tmp_path: Path) -> None:
    pytest.importorskip("pocketsphinx")
    manifest = tmp_path / "m.csv"
    write_manifest([*speech, Utterance(id="bad", wav=str(tmp_path / "nothing.wav"), duration=1.0)], manifest)
    model = tmp_path / "ctc"
    model.mkdir()
    (model / "tokenizer.json").write_text(json.dumps({"kind": "char", "chars": list(" 'abcdefghijklmnopqrstuvwxyz")}))
    (model / "model.json").write_text(json.dumps({"format": 1, "frame_shift_seconds": FRAME_SHIFT}))
    out = tmp_path / "ps.jsonl"
    args = ["transcribe", "--teacher", "pocketsphinx", "--manifest", str(manifest), "--out", str(out),
            "--ctc-model", str(model), "--teacher-name", "ps"]
    first = CliRunner().invoke(main, [*args, "--limit", "1"])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    assert "2 transcribed, 1 already" in second.output and "'missing': 1" in second.output
    records = [Utterance.from_dict(r) for r in read_jsonl(out)]
    assert [r.id for r in records] == [u.id for u in speech]
    for record, utt in zip(records, speech, strict=True):
        record.duration = utt.duration
    _check(records, "ps", max_wer=0.6)  # its general-domain LM is weak on these sentences (about 0.5 measured)


def test_an_experiment_transcribes_with_whisper_once(speech, tmp_path: Path) -> None:
    """The experiment's external stage with the real Whisper: unlabeled and dev, in the CTC teacher's frames."""
    pytest.importorskip("faster_whisper")
    from selftrain.errors import ConfigError
    from selftrain.generation import Workdir, load_experiment_config
    from selftrain.generation.registry import external_hypotheses
    from selftrain.generation.stages import model_dir

    paths = {"unlabeled": str(tmp_path / "unlabeled.csv"), "dev": str(tmp_path / "dev.csv")}
    write_manifest(speech, paths["unlabeled"])
    write_manifest(speech[:1], paths["dev"])
    try:
        config = load_experiment_config(overrides={"data": paths, "teachers": {"external": ["whisper"]}})
    except ConfigError as exc:  # the model bundle is not installed
        pytest.skip(str(exc))
    workdir = Workdir(tmp_path / "w", config.to_dict())
    model = model_dir(workdir, 0)
    model.mkdir(parents=True)
    (model / "tokenizer.json").write_text(json.dumps({"kind": "char", "chars": list(" 'abcdefghijklmnopqrstuvwxyz")}))
    (model / "model.json").write_text(json.dumps({"format": 1, "frame_shift_seconds": FRAME_SHIFT}))
    first = external_hypotheses(config, workdir)
    assert first is not None and not first.reused
    stage = workdir.root / first.dir
    _check([Utterance.from_dict(r) for r in read_jsonl(stage / "unlabeled_whisper.jsonl")], "whisper", max_wer=0.1)
    assert [r["id"] for r in read_jsonl(stage / "dev_whisper.jsonl")] == [speech[0].id]
    assert external_hypotheses(config, workdir).reused
