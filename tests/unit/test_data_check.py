"""Every bad-input class of `data check` is detected, reported and skipped; counts add up."""

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from selftrain.cli import main
from selftrain.data.audio import load_audio
from selftrain.data.check import ERROR_CODES, CheckConfig, check_utterances, filter_valid
from selftrain.data.manifest import read_manifest, write_manifest
from selftrain.errors import AudioError
from selftrain.record import Utterance
from selftrain.text import Alphabet


def _utt(uid, wav, duration=1.0, text="hello world"):
    return Utterance(id=uid, wav=str(wav), duration=duration, reference=text)


@pytest.fixture
def bad_manifest(tmp_path, tone):
    """One good row and one row per problem class, with the expected code."""
    good = tone("good.wav")
    truncated = tone("truncated.wav", seconds=2.0)
    truncated.write_bytes(truncated.read_bytes()[: 20000])
    nan = tmp_path / "nan.wav"
    data = np.zeros(16000, dtype=np.float32)
    data[100] = np.nan
    sf.write(str(nan), data, 16000, subtype="FLOAT")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("this is not audio at all, just text pretending to be a wav file")
    header_only = tmp_path / "header_only.wav"
    sf.write(str(header_only), np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    cases = [
        (_utt("good", good), None),
        (_utt("missing", tmp_path / "missing.wav"), "missing"),
        (_utt("empty", tmp_path / "empty.wav"), "empty"),
        (_utt("unreadable", tmp_path / "text.wav"), "unreadable"),
        (_utt("truncated", truncated, duration=2.0), "truncated"),
        (_utt("no_samples", header_only, duration=0.0), "no_samples"),
        (_utt("nan", nan), "nonfinite"),
        (_utt("silent", tone("silent.wav", amplitude=0.0)), "silent"),
        (_utt("rate", tone("rate.wav", rate=8000)), "wrong_rate"),
        (_utt("stereo", tone("stereo.wav", channels=2)), "wrong_channels"),
        (_utt("short", tone("short.wav", seconds=0.05), duration=0.05), "too_short"),
        (_utt("long", tone("long.wav", seconds=3.0), duration=3.0), "too_long"),
        (_utt("mismatch", tone("mismatch.wav"), duration=5.0), "duration_mismatch"),
        (_utt("empty_text", tone("et.wav"), text="?!"), "empty_transcript"),
        (_utt("alphabet", tone("oa.wav"), text="hello wörld"), "out_of_alphabet"),
        (_utt("encoding", tone("enc.wav"), text="caf\udce9"), "encoding"),
        (_utt("good", tone("dup.wav")), "duplicate_id"),
    ]
    return cases


def test_every_problem_class_is_detected(bad_manifest):
    utts = [u for u, _ in bad_manifest]
    config = CheckConfig(max_duration=2.5, workers=2)
    report = check_utterances(utts, config, alphabet=Alphabet.from_texts(["helo wrd"]), progress=False)
    for (utt, expected), row in zip(bad_manifest, report.rows, strict=True):
        codes = [p.code for p in row.problems]
        if expected is None:
            assert codes == [], f"{utt.id}: {codes}"
        else:
            assert codes and codes[0] == expected, f"{utt.id}: {codes}"
            assert not row.ok
    assert report.kept == 1 and len(report.skipped) == len(bad_manifest) - 1
    assert report.kept + len(report.skipped) == report.total
    assert set(report.counts()) <= set(ERROR_CODES)
    assert "16 skipped" in report.summary()


def test_lenient_format_resamples_and_downmixes_with_warnings(tone):
    utts = [_utt("rate", tone("rate.wav", rate=8000)), _utt("stereo", tone("stereo.wav", channels=2))]
    report = check_utterances(utts, CheckConfig(strict_format=False), progress=False)
    assert report.kept == 2
    assert [p.code for r in report.rows for p in r.problems] == ["resampled", "downmixed"]


def test_unlabeled_manifests_may_have_empty_transcripts(tone):
    utts = [_utt("a", tone("a.wav"), text=None), _utt("b", tone("b.wav"), text=None)]
    kept, report = filter_valid(utts, progress=False)
    assert len(kept) == 2 and report.counts() == {}


def test_load_audio_resamples_downmixes_and_raises_named_errors(tmp_path, tone):
    wav = load_audio(tone("a.wav", rate=8000, channels=2, seconds=0.5), sample_rate=16000)
    assert wav.dtype == torch.float32 and wav.ndim == 1 and abs(wav.numel() - 8000) <= 2
    with pytest.raises(AudioError) as info:
        load_audio(tmp_path / "none.wav")
    assert info.value.reason == "missing"
    truncated = tone("t.wav", seconds=2.0)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(AudioError) as info:
        load_audio(truncated)
    assert info.value.reason == "truncated"


def test_cli_check_reports_and_writes_valid_rows(tmp_path, bad_manifest):
    write_manifest([u for u, _ in bad_manifest], tmp_path / "m.csv")
    runner = CliRunner()
    result = runner.invoke(main, ["data", "check", str(tmp_path / "m.csv"), "--report", str(tmp_path / "r.json"),
                                  "--write-valid", str(tmp_path / "ok.csv"), "--max-duration", "2.5"])
    assert result.exit_code == 1, result.output
    assert "usable" in result.output and "[missing]" in result.output
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["total"] == len(bad_manifest) and report["kept"] + report["skipped"] == report["total"]
    assert [u.id for u in read_manifest(tmp_path / "ok.csv")][0] == "good"


def test_cli_check_clean_manifest_exits_zero(tmp_path, tone):
    write_manifest([_utt("a", tone("a.wav"))], tmp_path / "m.csv")
    result = CliRunner().invoke(main, ["data", "check", str(tmp_path / "m.csv")])
    assert result.exit_code == 0, result.output
    assert "1 rows: 1 usable, 0 skipped" in result.output


def test_cli_convert_and_bad_input(tmp_path, tone):
    write_manifest([_utt("a", tone("a.wav"))], tmp_path / "m.csv")
    runner = CliRunner()
    result = runner.invoke(main, ["data", "convert", str(tmp_path / "m.csv"), str(tmp_path / "kaldi")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "kaldi" / "wav.scp").exists()
    (tmp_path / "bad.csv").write_text("nothing,useful\n1,2\n")
    result = runner.invoke(main, ["data", "check", str(tmp_path / "bad.csv")])
    assert result.exit_code == 1 and "missing column" in result.output
