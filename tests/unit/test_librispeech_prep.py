"""The LibriSpeech recipe's data preparation: parsing, roles, bad files, Libri-Light layout, resuming."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from selftrain.errors import ManifestError
from tests.librispeech_tree import load_recipe_module, tone, write_chapter

prep = load_recipe_module("prepare_librispeech")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "LibriSpeech"
    write_chapter(root / "train-clean-100", 19, 198, [(tone(0.5, 0), "hello world"), (tone(0.6, 1), "a b")])
    write_chapter(root / "train-clean-360", 20, 300, [(tone(0.4, 2), "unlabeled one"), (tone(0.4, 3), "two")])
    bad = root / "train-clean-360" / "20" / "300" / "20-300-0001.flac"
    bad.write_bytes(b"not audio at all")
    chapter = root / "train-clean-360" / "20" / "300" / "20-300.trans.txt"
    chapter.write_text(chapter.read_text() + "20-300-0009 NO AUDIO FOR THIS LINE\n")
    write_chapter(root / "dev-clean", 30, 400, [(tone(0.5, 4), "dev clean")])
    write_chapter(root / "dev-other", 31, 401, [(tone(0.5, 5), "dev other")])
    write_chapter(root / "test-clean", 40, 500, [(tone(0.5, 6), "test clean")])
    # Libri-Light's limited-resource layout: the chapters sit two or three folders deeper.
    finetuning = root / "librispeech_finetuning"
    write_chapter(finetuning / "1h" / "0" / "clean", 19, 198, [(tone(0.5, 0), "hello world")])
    write_chapter(finetuning / "9h" / "other", 50, 600, [(tone(0.5, 7), "nine hours")])
    return root


def test_read_transcripts_parses_and_rejects_bad_lines(tmp_path):
    good = tmp_path / "1-2.trans.txt"
    good.write_text("1-2-0000 HELLO  WORLD\n\n1-2-0001 IT'S ME\n")
    assert prep.read_transcripts(good) == {"1-2-0000": "HELLO WORLD", "1-2-0001": "IT'S ME"}
    for text in ("1-2-0000\n", "1-2-0000 A\n1-2-0000 B\n"):
        good.write_text(text)
        with pytest.raises(ManifestError):
            prep.read_transcripts(good)


def test_roles_bad_files_and_per_split_csvs(tree, tmp_path):
    out = tmp_path / "csv"
    options = prep.PrepOptions(labeled=("train-clean-100",), unlabeled=("train-clean-360",),
                               dev=("dev-clean", "dev-other"), test=("test-clean",))
    report = prep.prepare_librispeech(tree, out, options)
    labeled = _rows(out / "labeled.csv")
    assert [r["ID"] for r in labeled] == ["19-198-0000", "19-198-0001"]
    assert labeled[0]["wrd"] == "HELLO WORLD" and labeled[0]["spk_id"] == "19"
    assert abs(float(labeled[1]["duration"]) - 0.6) < 1e-3
    assert (out / labeled[0]["wav"]).is_file() or Path(labeled[0]["wav"]).is_file()
    unlabeled, reference = _rows(out / "unlabeled.csv"), _rows(out / "unlabeled_reference.csv")
    assert [r["ID"] for r in unlabeled] == ["20-300-0000"] and unlabeled[0]["wrd"] == ""
    assert reference[0]["wrd"] == "UNLABELED ONE"
    assert [r["ID"] for r in _rows(out / "dev.csv")] == ["30-400-0000", "31-401-0000"]
    assert [r["ID"] for r in _rows(out / "dev-other.csv")] == ["31-401-0000"]
    assert [r["ID"] for r in _rows(out / "test.csv")] == ["40-500-0000"]
    reasons = {Path(s["file"]).name: s["reason"] for s in report.skipped}
    assert reasons["20-300-0001.flac"].startswith("unreadable audio")
    assert reasons["20-300-0009.flac"] == "missing audio"
    saved = json.loads((out / "prepare.json").read_text())
    assert saved["utterances"]["labeled"] == 2 and saved["hours"]["dev"] > 0 and len(saved["skipped"]) == 2


def test_librilight_labeled_split_is_left_out_of_the_unlabeled_set(tree, tmp_path):
    options = prep.PrepOptions(labeled=("librispeech_finetuning",), unlabeled=("train-clean-100", "train-clean-360"),
                               dev=("dev-clean",), test=())
    report = prep.prepare_librispeech(tree, tmp_path / "csv", options)
    assert sorted(r["ID"] for r in _rows(tmp_path / "csv" / "labeled.csv")) == ["19-198-0000", "50-600-0000"]
    assert [r["ID"] for r in _rows(tmp_path / "csv" / "unlabeled.csv")] == ["19-198-0001", "20-300-0000"]
    assert report.labeled_left_out_of_unlabeled == 1
    assert not (tmp_path / "csv" / "test.csv").exists()


def test_prepared_folder_is_kept_unless_forced_or_options_change(tree, tmp_path):
    out = tmp_path / "csv"
    options = prep.PrepOptions(labeled=("train-clean-100",), unlabeled=("train-clean-360",), dev=("dev-clean",), test=())
    prep.prepare_librispeech(tree, out, options)
    (out / "labeled.csv").write_text("edited\n")
    assert prep.is_prepared(out, options)
    assert prep.prepare_librispeech(tree, out, options).utterances["labeled"] == 2
    assert (out / "labeled.csv").read_text() == "edited\n"  # nothing was redone
    prep.prepare_librispeech(tree, out, options, force=True)
    assert len(_rows(out / "labeled.csv")) == 2
    changed = prep.PrepOptions(labeled=("train-clean-100",), unlabeled=(), dev=("dev-other",), test=())
    assert not prep.is_prepared(out, changed)
    prep.prepare_librispeech(tree, out, changed)
    assert [r["ID"] for r in _rows(out / "dev.csv")] == ["31-401-0000"]


def test_missing_split_and_missing_roles_are_named_errors(tree, tmp_path):
    with pytest.raises(ManifestError, match="split folder not found"):
        prep.prepare_librispeech(tree, tmp_path / "a", prep.PrepOptions(unlabeled=("train-other-500",), test=()))
    with pytest.raises(ManifestError, match="labeled split"):
        prep.prepare_librispeech(tree, tmp_path / "b", prep.PrepOptions(labeled=()))


def test_command_line(tree, tmp_path, capsys):
    code = prep.main([str(tree), str(tmp_path / "csv"), "--labeled", "train-clean-100", "--unlabeled", "train-clean-360",
                      "--dev", "dev-clean", "--test", "test-clean"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["utterances"]["labeled"] == 2 and printed["skipped"] == 2
