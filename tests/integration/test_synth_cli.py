"""A tiny real corpus through ``selftrain synth`` (needs espeak-ng, flite, festival, sox and fortunes)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from click.testing import CliRunner

from selftrain.cli import main
from selftrain.data.manifest import read_manifest

pytestmark = pytest.mark.integration  # tests of the synthesized `corpus` are also marked slow

FORTUNES = Path("/usr/share/games/fortunes")
TOOLS = ("espeak-ng", "flite", "festival", "sox")
if not FORTUNES.is_dir() or any(shutil.which(t) is None for t in TOOLS):
    pytest.skip("needs the Debian packages espeak-ng flite festival sox fortunes", allow_module_level=True)

CSVS = ("labeled.csv", "unlabeled.csv", "unlabeled_reference.csv", "dev.csv", "test.csv", "dev_source.csv")
ARGS = ["--scale", "0.01", "--seed", "7", "--workers", "2", "--quiet"]


def _run(out: Path, *extra: str):
    return CliRunner().invoke(main, ["synth", "--out", str(out), *ARGS, *extra], catch_exceptions=False)


def _digest(folder: Path) -> dict[str, str]:
    files = [*(folder / c for c in CSVS), folder / "lm_text.txt", *sorted((folder / "wav").rglob("*.wav"))]
    return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "corpus"
    result = _run(out)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_every_output_exists_and_reads_back(corpus):
    summary = json.loads((corpus / "corpus.json").read_text())
    assert summary["failed"] == []
    for name in CSVS:
        rows = read_manifest(corpus / name)
        assert len(rows) >= 2, name
        for utt in rows[:5]:
            info = sf.info(utt.wav)
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
            assert abs(info.frames / info.samplerate - utt.duration) < 1e-3
            assert utt.spk_id.split(":")[0] in ("espeak", "flite", "festival")
            assert utt.extra["condition"] in ("known-clean", "known-noisy", "unseen-clean", "unseen-noisy")
    for split, count in summary["counts"].items():
        assert len(read_manifest(corpus / f"{split}.csv")) == count
        assert summary["hours"][split] > 0
    assert summary["config"]["scale"] == 0.01 and summary["seed"] == 7
    assert summary["last_run"]["wavs_rendered"]["synth"] == sum(summary["counts"].values())


@pytest.mark.slow
def test_unlabeled_has_no_transcripts_but_the_reference_file_does(corpus):
    unlabeled = read_manifest(corpus / "unlabeled.csv")
    reference = read_manifest(corpus / "unlabeled_reference.csv")
    assert all(u.reference is None for u in unlabeled)
    assert [u.id for u in unlabeled] == [u.id for u in reference]
    assert all(u.reference for u in reference)


@pytest.mark.slow
def test_splits_share_no_sentence_and_lm_text_holds_none_of_them(corpus):
    lm_text = set((corpus / "lm_text.txt").read_text().splitlines())
    assert len(lm_text) > 1000
    texts = {
        name: {u.reference for u in read_manifest(corpus / name)} for name in CSVS if name != "unlabeled.csv"
    }
    names = list(texts)
    for i, a in enumerate(names):
        assert not texts[a] & lm_text, a
        for b in names[i + 1 :]:
            if {a, b} != {"unlabeled_reference.csv"}:
                assert not texts[a] & texts[b], (a, b)
    labeled_voices = {u.spk_id for u in read_manifest(corpus / "labeled.csv")}
    assert {u.spk_id for u in read_manifest(corpus / "dev_source.csv")} <= set(
        json.loads((corpus / "corpus.json").read_text())["config"]["known_voices"]
    )
    assert len(labeled_voices) >= 3


@pytest.mark.slow
def test_same_seed_gives_identical_files_and_resume_restores_them(corpus, tmp_path):
    expected = _digest(corpus)
    again = tmp_path / "again"
    assert _run(again).exit_code == 0
    assert _digest(again) == expected
    # resume: delete some wavs and the manifests, re-run, get the very same corpus
    deleted = sorted((again / "wav").rglob("*.wav"))[::7]
    for wav in deleted:
        wav.unlink()
    (again / "labeled.csv").unlink()
    stale = again / "wav" / "labeled" / ".labeled-00000.wav.x1y2.tmp"  # what a killed run leaves behind
    stale.write_bytes(b"RIFF")
    result = _run(again)
    assert result.exit_code == 0, result.output
    assert _digest(again) == expected
    assert not stale.exists()
    assert json.loads((again / "corpus.json").read_text())["last_run"]["wavs_rendered"]["synth"] == len(deleted)


@pytest.mark.slow
def test_another_config_in_the_same_folder_is_refused(corpus):
    result = CliRunner().invoke(main, ["synth", "--out", str(corpus), "--scale", "0.02", "--quiet"])
    assert result.exit_code == 1
    assert "another config" in result.output and "scale" in result.output


def test_missing_fortunes_is_one_error_naming_the_package(tmp_path):
    result = CliRunner().invoke(
        main, ["synth", "--out", str(tmp_path / "x"), "--fortunes", str(tmp_path / "none"), "--quiet"]
    )
    assert result.exit_code == 1 and "Usage:" not in result.output
    assert "fortunes" in result.output and "apt-get install" in result.output


@pytest.mark.slow
def test_a_corpus_made_before_a_new_option_resumes_at_its_default(corpus, tmp_path):
    older = tmp_path / "older"
    shutil.copytree(corpus, older)
    state = older / ".synth_config.json"
    saved = json.loads(state.read_text())
    del saved["lm_text_unspoken"]  # as written before the option existed
    state.write_text(json.dumps(saved))
    result = _run(older)
    assert result.exit_code == 0, result.output
    assert _digest(older) == _digest(corpus)


@pytest.mark.slow
def test_lm_text_unspoken_adds_every_unspoken_sentence_and_keeps_the_audio(corpus, tmp_path):
    larger = tmp_path / "larger"
    shutil.copytree(corpus, larger)
    (larger / ".synth_config.json").unlink()  # the same plan under another config: nothing is re-rendered
    config = tmp_path / "synth.yaml"
    config.write_text("lm_text_unspoken: true\n")
    result = _run(larger, "--config", str(config))
    assert result.exit_code == 0, result.output
    summary = json.loads((larger / "corpus.json").read_text())
    assert summary["last_run"]["wavs_rendered"]["synth"] == 0
    before, after = _digest(corpus), _digest(larger)
    assert {k: v for k, v in after.items() if k != "lm_text.txt"} == {k: v for k, v in before.items() if k != "lm_text.txt"}
    small = set((corpus / "lm_text.txt").read_text().splitlines())
    large = set((larger / "lm_text.txt").read_text().splitlines())
    assert small < large and len(large) > 3 * len(small)
    assert summary["sentences"]["lm_text"] == len(large)
    assert any(len(line.split()) > 20 or len(line.split()) < 4 for line in large)  # beyond the spoken lengths
    spoken = {u.reference for name in CSVS if name != "unlabeled.csv" for u in read_manifest(larger / name)}
    assert not spoken & large
