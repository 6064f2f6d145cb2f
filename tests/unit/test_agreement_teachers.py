"""Importing external hypotheses and merging teachers' files by utterance id."""

from __future__ import annotations

import json

import pytest

from selftrain.agreement import (
    AgreementConfig,
    compute_agreement,
    external_hypothesis,
    load_teacher_file,
    merge_teachers,
)
from selftrain.errors import ManifestError
from selftrain.record import Hypothesis, Utterance, Word


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_external_rows_are_normalised_and_keep_confidences():
    hyp = external_hypothesis({"id": "u", "text": "Hello, World!",
                               "words": [{"word": "Hello,", "confidence": 0.9}, {"word": "World!", "confidence": 0.5}]},
                              "ext")
    assert hyp.text == "hello world" and hyp.decoder == "external"
    assert [w.scores["external"] for w in hyp.words] == [0.9, 0.5]
    assert hyp.scores["external"] == pytest.approx(0.7)
    plain = external_hypothesis({"id": "u", "text": "It's OK.", "confidence": 0.8}, "ext")
    assert plain.text == "it's ok" and plain.words == [] and plain.scores == {"external": 0.8}
    with pytest.raises(ManifestError):
        external_hypothesis({"id": "u", "text": "x", "confidence": 1.5}, "ext")
    with pytest.raises(ManifestError):
        external_hypothesis({"id": "u"}, "ext")


def test_merge_teachers_by_id_and_reports_missing(tmp_path):
    record = Utterance("u1", "/a/u1.wav", 1.5, reference="a b",
                       hypotheses=[Hypothesis("beam", "a b", [Word("a", 0, 2), Word("b", 3, 5)])])
    own = _write(tmp_path / "teacher.jsonl", [record.to_dict()])
    ext = _write(tmp_path / "other.jsonl", [{"id": "u1", "text": "a c"}, {"id": "u2", "text": "d"}])
    utts, report = merge_teachers([own, ext])
    assert [u.id for u in utts] == ["u1", "u2"]
    assert [h.teacher for h in utts[0].hypotheses] == ["beam", "other"]
    assert utts[0].reference == "a b" and utts[0].wav == "/a/u1.wav"
    assert report.missing == {str(own): ["u2"]}
    assert "1 utterance(s) missing (u2)" in report.lines()[0]
    # the same teacher name in two files is disambiguated
    utts, _ = merge_teachers([own, own])
    assert [h.teacher for h in utts[0].hypotheses] == ["beam", "beam@teacher"]
    utts, _ = merge_teachers([own, ext], teachers=["big", None])
    assert utts[0].hypotheses[0].teacher == "big"


def test_load_teacher_file_rejects_bad_files(tmp_path):
    with pytest.raises(ManifestError):
        load_teacher_file(tmp_path / "nope.jsonl")
    with pytest.raises(ManifestError):
        load_teacher_file(_write(tmp_path / "dup.jsonl", [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]))
    with pytest.raises(ManifestError):
        load_teacher_file(_write(tmp_path / "noid.jsonl", [{"text": "x"}]))


def test_rover_over_merged_teachers_averages_their_word_scores(tmp_path):
    rows = [[{"id": "u", "text": t, "words": [{"word": w, "confidence": c} for w, c in zip(t.split(), cs, strict=True)]}]
            for t, cs in [("a b c", [0.9, 0.8, 0.7]), ("a b d", [0.7, 0.6, 0.1]), ("a b c", [0.5, 0.4, 0.3])]]
    paths = [_write(tmp_path / f"t{i}.jsonl", r) for i, r in enumerate(rows)]
    utts, _ = merge_teachers(paths)
    combined = compute_agreement(utts[0], AgreementConfig(confidence_method="external"))
    assert combined.text == "a b c"
    assert combined.words[0].scores["external"] == pytest.approx(0.7)
    assert combined.words[2].scores["external"] == pytest.approx(0.5)  # mean of the two voters for "c"
    assert combined.words[2].scores["agreement"] == pytest.approx(2 / 3)
    assert combined.scores["external"] == pytest.approx((0.7 + 0.6 + 0.5) / 3)
