"""Manifest formats: round trips between SpeechBrain CSV, NeMo JSON-lines and Kaldi data dirs."""

from pathlib import Path

import pytest

from selftrain.data.manifest import (
    read_kaldi_dir,
    read_manifest,
    read_nemo_jsonl,
    read_speechbrain_csv,
    write_manifest,
    write_speechbrain_csv,
)
from selftrain.errors import ManifestError
from selftrain.record import Utterance


@pytest.fixture
def utterances(tmp_path: Path) -> list[Utterance]:
    wav_dir = tmp_path / "wav"
    wav_dir.mkdir()
    rows = []
    for i, text in enumerate(["hello world", "ça va", None]):
        wav = wav_dir / f"u{i}.wav"
        wav.write_bytes(b"")  # manifests do not read audio
        rows.append(Utterance(id=f"u{i}", wav=str(wav), duration=1.0 + i, spk_id=f"spk{i % 2}", reference=text))
    return rows


def _core(utts):
    return [(u.id, u.wav, round(u.duration, 3), u.spk_id, u.reference) for u in sorted(utts, key=lambda u: u.id)]


@pytest.mark.parametrize("target", ["m.csv", "m.jsonl", "kaldi_dir"])
def test_round_trip_each_format(tmp_path, utterances, target):
    path = tmp_path / "out" / target
    write_manifest(utterances, path)
    assert _core(read_manifest(path)) == _core(utterances)


def test_csv_to_nemo_to_kaldi_to_csv(tmp_path, utterances):
    write_manifest(utterances, tmp_path / "a.csv")
    write_manifest(read_manifest(tmp_path / "a.csv"), tmp_path / "b.jsonl")
    write_manifest(read_manifest(tmp_path / "b.jsonl"), tmp_path / "kaldi")
    write_manifest(read_manifest(tmp_path / "kaldi"), tmp_path / "c.csv")
    assert _core(read_manifest(tmp_path / "c.csv")) == _core(utterances)


def test_csv_paths_are_relative_to_the_manifest_and_extras_survive(tmp_path, utterances):
    utterances[0].extra = {"condition": "noisy", "confidence": "0.9"}
    write_speechbrain_csv(utterances, tmp_path / "m.csv")
    text = (tmp_path / "m.csv").read_text()
    assert text.splitlines()[0] == "ID,duration,wav,spk_id,wrd,condition,confidence"
    assert "wav/u0.wav" in text and str(tmp_path) not in text
    again = read_speechbrain_csv(tmp_path / "m.csv")
    assert again[0].extra == {"condition": "noisy", "confidence": "0.9"}
    assert again[1].extra == {"condition": "", "confidence": ""}


def test_unlabeled_rows_have_no_reference(tmp_path, utterances):
    write_manifest(utterances, tmp_path / "m.csv")
    assert read_manifest(tmp_path / "m.csv")[2].reference is None


def test_pseudo_labels_are_written_instead_of_references(tmp_path, utterances):
    utterances[2].pseudo_label = "guessed words"
    write_manifest(utterances, tmp_path / "p.csv", use_pseudo_labels=True)
    assert read_manifest(tmp_path / "p.csv")[2].reference == "guessed words"


def test_kaldi_text_only_has_labeled_rows_and_is_sorted(tmp_path, utterances):
    write_manifest(list(reversed(utterances)), tmp_path / "kaldi")
    assert (tmp_path / "kaldi" / "text").read_text().splitlines() == ["u0 hello world", "u1 ça va"]
    assert [u.id for u in read_kaldi_dir(tmp_path / "kaldi")] == ["u0", "u1", "u2"]


def test_nemo_ids_from_file_stems_stay_unique(tmp_path):
    (tmp_path / "m.json").write_text(
        '{"audio_filepath": "a/x.wav", "duration": 1, "text": "a"}\n\n{"audio_filepath": "b/x.wav", "duration": 2, "text": ""}\n'
    )
    rows = read_nemo_jsonl(tmp_path / "m.json")
    assert [r.id for r in rows] == ["x", "x-1"]
    assert rows[0].wav == str((tmp_path / "a/x.wav").resolve()) and rows[1].reference is None


@pytest.mark.parametrize(
    "content, message",
    [
        ("ID,duration\nu1,1.0\n", "missing column"),
        ("ID,duration,wav,spk_id,wrd\nu1,abc,a.wav,s,hi\n", "not a number"),
        ("ID,duration,wav,spk_id,wrd\nu1,-1,a.wav,s,hi\n", "non-negative"),
        ("ID,duration,wav,spk_id,wrd\nu1,1,a.wav,s,hi,extra\n", "more fields"),
    ],
)
def test_bad_csv_gives_a_manifest_error_with_the_line(tmp_path, content, message):
    (tmp_path / "m.csv").write_text(content)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / "m.csv")


def test_bad_paths_and_formats(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "nope.csv")
    (tmp_path / "m.txt").write_text("x")
    with pytest.raises(ManifestError, match="unknown manifest format"):
        read_manifest(tmp_path / "m.txt")
    (tmp_path / "bad.jsonl").write_text('{"text": "no audio"}\n')
    with pytest.raises(ManifestError, match="bad.jsonl:1"):
        read_manifest(tmp_path / "bad.jsonl")
    (tmp_path / "kaldi").mkdir()
    with pytest.raises(ManifestError, match="wav.scp"):
        read_manifest(tmp_path / "kaldi")
    (tmp_path / "kaldi" / "wav.scp").write_text("u1 sox a.wav -t wav - |\n")
    with pytest.raises(ManifestError, match="piped"):
        read_manifest(tmp_path / "kaldi")


def test_non_utf8_transcript_is_read_and_left_for_the_checker(tmp_path):
    (tmp_path / "m.csv").write_bytes(b"ID,duration,wav,spk_id,wrd\nu1,1.0,a.wav,s,caf\xe9\n")
    rows = read_manifest(tmp_path / "m.csv")
    assert rows[0].reference is not None and "\udce9" in rows[0].reference
