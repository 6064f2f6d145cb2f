"""Fault suite, bad input data: every kind of bad row, planted in every manifest format, through every
stage that reads a manifest (data check, decoding, evaluation, training data, selection).

Each stage must finish, skip each bad row with its reason and account for every row
(kept + skipped = total). Audio at another rate or with two channels is resampled / downmixed by the
stages and reported as converted; ``data check`` skips it unless ``--resample`` is given.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from selftrain.cli import main
from selftrain.data.manifest import read_manifest, write_manifest
from selftrain.decode import DecoderConfig, DecoderPool, Shard, decode_manifest, evaluate, merge_shards
from selftrain.io import read_jsonl
from selftrain.record import Utterance
from selftrain.select import run_selection
from selftrain.train.config import DataConfig
from selftrain.train.data import KIND_LABELED, KIND_PSEUDO, prepare_data
from tests.conftest import write_tone
from tests.decode_helpers import FakeModel, write_encoded_wav

FORMATS = {"csv": "bad.csv", "jsonl": "bad.jsonl", "kaldi": "bad_kaldi"}
LONG_SECONDS = 300.0  # above every stage's limit: data check and decoding 60 s, training 25 s
NOT_UTF8 = b"caf\xe9".decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Row:
    """One planted row and what each stage must do with it (``None``: use it)."""

    utt: Utterance
    check: str | None
    decode: str | None
    train: str | None
    converted: str | None = None  # what decoding / training do to fit the model's format


def _encoded(root: Path, name: str, text: str, labels: list[str], rate: int = 16000, channels: int = 1) -> str:
    """A WAV the fake model decodes to ``text`` (see ``tests.decode_helpers``), at any rate / channel count."""
    path = write_encoded_wav(root / name, text, labels)
    if rate != 16000 or channels != 1:
        data, _ = sf.read(str(path), dtype="float32")
        sf.write(str(path), np.stack([data] * channels, axis=1) if channels > 1 else data, rate, subtype="FLOAT")
    return str(path)


def _plant_audio(root: Path, labels: list[str]) -> dict[str, str]:
    """Every kind of bad audio file, plus good ones; name -> path."""
    root.mkdir(parents=True, exist_ok=True)
    paths = {name: _encoded(root, f"{name}.wav", text, labels)
             for name, text in [("good1", "the cat"), ("good2", "a dog"), ("dup", "the mat"), ("empty_text", "a cat"),
                                ("not_utf8", "my cat"), ("bad_speaker", "a log"), ("alphabet", "the cat")]}
    paths["rate"] = _encoded(root, "rate.wav", "the dog", labels, rate=8000)
    paths["stereo"] = _encoded(root, "stereo.wav", "a mat", labels, channels=2)
    paths["missing"] = str(root / "missing.wav")
    (root / "empty.wav").write_bytes(b"")
    paths["empty"] = str(root / "empty.wav")
    truncated = Path(_encoded(root, "truncated.wav", "the cat sat", labels))
    truncated.write_bytes(truncated.read_bytes()[:1000])
    paths["truncated"] = str(truncated)
    (root / "not_audio.wav").write_text("this is a text file with a .wav name\n")
    paths["not_audio"] = str(root / "not_audio.wav")
    nan = np.full(8000, 0.1, dtype=np.float32)
    nan[100] = np.nan
    sf.write(str(root / "nan.wav"), nan, 16000, subtype="FLOAT")
    paths["nan"] = str(root / "nan.wav")
    paths["long"] = str(write_tone(root / "long.wav", seconds=LONG_SECONDS))
    return paths


def _rows(paths: dict[str, str]) -> list[Row]:
    def utt(uid: str, wav: str, text: str | None = "the cat", speaker: str = "s1") -> Utterance:
        return Utterance(id=uid, wav=paths[wav], duration=0.0, spk_id=speaker, reference=text)

    return [
        Row(utt("good1", "good1"), None, None, None),
        Row(utt("good2", "good2", "a dog"), None, None, None),
        Row(utt("missing", "missing"), "missing", "missing", "missing"),
        Row(utt("empty", "empty"), "empty", "empty", "empty"),
        Row(utt("truncated", "truncated"), "truncated", "truncated", "truncated"),
        Row(utt("not_audio", "not_audio"), "unreadable", "unreadable", "unreadable"),
        Row(utt("nan", "nan"), "nonfinite", "nonfinite", "nonfinite"),
        Row(utt("rate", "rate", "the dog"), "wrong_rate", None, None, "resampled"),
        Row(utt("stereo", "stereo", "a mat"), "wrong_channels", None, None, "downmixed"),
        Row(utt("long", "long"), "too_long", "too_long", "too_long"),
        Row(utt("good1", "dup", "the mat"), "duplicate_id", "duplicate_id", "duplicate_id"),
        Row(utt("empty_text", "empty_text", None), "empty_transcript", None, "empty_target"),
        Row(utt("not_utf8", "not_utf8", f"my {NOT_UTF8}"), "encoding", "encoding", "encoding"),
        Row(utt("bad_speaker", "bad_speaker", "a log", speaker=f"spk_{NOT_UTF8}"), "encoding", "encoding", "encoding"),
        Row(utt("alphabet", "alphabet", "the cät 42"), "out_of_alphabet", None, "bad_text"),
    ]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """The planted audio, its rows, one manifest per format and a model tokenizer (a-z and ')."""
    root = tmp_path_factory.mktemp("bad_data")
    model = FakeModel()
    rows = _rows(_plant_audio(root / "wav", model.tokenizer.ctc_labels()))
    manifests = {}
    for fmt, name in FORMATS.items():
        manifests[fmt] = root / name
        write_manifest([r.utt for r in rows], manifests[fmt])
    model.tokenizer.save(root / "tokenizer.json")
    return {"root": root, "rows": rows, "manifests": manifests, "model": model, "tokenizer": root / "tokenizer.json"}


def _expected(rows: list[Row], stage: str) -> Counter:
    """``(id, reason)`` of every row the stage must skip."""
    return Counter((r.utt.id, getattr(r, stage)) for r in rows if getattr(r, stage) is not None)


def _converted(rows: list[Row], prefix: str = "") -> dict[str, int]:
    """What decoding or training reports converting (``prefix``: a training pool)."""
    return dict(Counter(prefix + r.converted for r in rows if r.converted))


def _decoder(**changes) -> DecoderPool:
    labels = FakeModel().tokenizer.ctc_labels()
    return DecoderPool(DecoderConfig(decoder="greedy", workers=0, batch_size=4, **changes), labels, None, "t0")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_plants_the_bad_rows_as_written(corpus, fmt) -> None:
    utterances = read_manifest(corpus["manifests"][fmt])
    assert Counter(u.id for u in utterances) == Counter(r.utt.id for r in corpus["rows"])
    assert sum(u.id == "good1" for u in utterances) == 2  # the repeated ID is kept for the checks to report
    assert next(u for u in utterances if u.id == "not_utf8").reference == f"my {NOT_UTF8}"
    raw = b"".join(p.read_bytes() for p in ([corpus["manifests"][fmt]] if fmt != "kaldi"
                                             else sorted(corpus["manifests"][fmt].iterdir())))
    assert b"my caf\xe9" in raw  # the file really holds bytes that are not UTF-8


@pytest.mark.parametrize("fmt", FORMATS)
def test_data_check_reports_each_bad_row_and_counts_add_up(corpus, fmt, tmp_path) -> None:
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["data", "check", str(corpus["manifests"][fmt]), "--report", str(report_path),
                                       "--alphabet", str(corpus["tokenizer"]), "--workers", "2",
                                       "--write-valid", str(tmp_path / "valid.csv")])
    assert result.exit_code == 1, result.output  # finished, and says rows would be skipped
    report = json.loads(report_path.read_text())
    first_codes = Counter((row["id"], row["problems"][0]["code"]) for row in report["rows"])
    assert first_codes == _expected(corpus["rows"], "check")
    assert report["total"] == len(corpus["rows"]) and report["kept"] + report["skipped"] == report["total"]
    assert report["kept"] == 2
    assert sorted(u.id for u in read_manifest(tmp_path / "valid.csv")) == ["good1", "good2"]


def test_data_check_can_accept_other_rates_and_channels_with_warnings(corpus, tmp_path) -> None:
    report_path = tmp_path / "report.json"
    CliRunner().invoke(main, ["data", "check", str(corpus["manifests"]["csv"]), "--resample", "--report", str(report_path)])
    report = json.loads(report_path.read_text())
    codes = {row["id"]: [p["code"] for p in row["problems"]] for row in report["rows"]}
    assert codes["rate"] == ["resampled"] and codes["stereo"] == ["downmixed"]
    assert "alphabet" not in codes  # no --alphabet given: any character is accepted
    assert report["kept"] == 5 and report["kept"] + report["skipped"] == report["total"] == len(corpus["rows"])


@pytest.mark.parametrize("fmt", FORMATS)
def test_decoding_skips_each_bad_row_with_its_reason(corpus, fmt, tmp_path) -> None:
    utterances = read_manifest(corpus["manifests"][fmt])
    out = tmp_path / "hyps.jsonl"
    with _decoder() as decoder:
        report = decode_manifest(corpus["model"], utterances, decoder, out, progress=False)
    assert Counter((r["id"], r["reason"]) for r in report.skipped_rows) == _expected(corpus["rows"], "decode")
    assert report.utterances == len(utterances) == report.decoded + report.skipped + report.already_done
    assert report.bad_audio == dict(Counter(r["reason"] for r in report.skipped_rows))
    assert report.converted == _converted(corpus["rows"]) == {"resampled": 1, "downmixed": 1}
    records = {r["id"]: r for r in read_jsonl(out)}
    assert set(records) == {r.utt.id for r in corpus["rows"] if r.decode is None and r.check != "duplicate_id"}
    assert records["good1"]["wav"].endswith("good1.wav")  # the first row of a repeated ID is the one decoded
    texts = {i: r["hypotheses"][0]["text"] for i, r in records.items()}
    assert texts["rate"] == "the dog" and texts["stereo"] == "a mat" and texts["good2"] == "a dog"


def test_a_resumed_decode_skips_the_bad_rows_again_and_still_adds_up(corpus, tmp_path) -> None:
    utterances = read_manifest(corpus["manifests"]["csv"])
    out = tmp_path / "hyps.jsonl"
    with _decoder() as decoder:
        first = decode_manifest(corpus["model"], utterances, decoder, out, progress=False)
        again = decode_manifest(corpus["model"], utterances, decoder, out, progress=False)
    assert again.decoded == 0 and again.already_done == first.decoded
    assert again.skipped_rows == first.skipped_rows
    assert again.utterances == again.already_done + again.skipped


def test_sharded_decoding_reports_every_bad_row_once(corpus, tmp_path) -> None:
    utterances = read_manifest(corpus["manifests"]["csv"])
    reports = []
    with _decoder() as decoder:
        for i in range(2):
            reports.append(decode_manifest(corpus["model"], utterances, decoder, tmp_path / f"s{i}.jsonl",
                                           Shard(i, 2), progress=False))
    skipped = Counter((r["id"], r["reason"]) for rep in reports for r in rep.skipped_rows)
    assert skipped == _expected(corpus["rows"], "decode")
    assert sum(r.utterances for r in reports) == len(utterances)
    merged = merge_shards([tmp_path / "s0.jsonl", tmp_path / "s1.jsonl"], utterances, tmp_path / "all.jsonl")
    assert merged.written == sum(r.decoded for r in reports) == 6
    assert [r["id"] for r in read_jsonl(tmp_path / "all.jsonl")] == ["good1", "good2", "rate", "stereo", "empty_text",
                                                                      "alphabet"]
    assert len(merged.missing) == len(set(merged.missing)) == 8


def test_decode_cli_finishes_and_reports_the_skipped_rows(corpus, tmp_path, monkeypatch) -> None:
    import selftrain.models.ensemble

    monkeypatch.setattr(selftrain.models.ensemble, "load_acoustic_model", lambda model_dir, device="cpu", state_cache=None: corpus["model"])
    (tmp_path / "model").mkdir()
    out = tmp_path / "hyps.jsonl"
    result = CliRunner().invoke(main, ["decode", "--model", str(tmp_path / "model"), "--manifest",
                                       str(corpus["manifests"]["jsonl"]), "--decoder", "greedy", "--workers", "0",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "6 decoded, 0 already in" in result.output and "9 skipped" in result.output
    assert "'too_long': 1" in result.output and "'encoding': 2" in result.output
    assert "{'resampled': 1, 'downmixed': 1}" in result.output
    assert len(list(read_jsonl(out))) == 6
    scored = CliRunner().invoke(main, ["eval", "--model", str(tmp_path / "model"), "--manifest",
                                       str(corpus["manifests"]["jsonl"]), "--decoder", "greedy", "--workers", "0"])
    assert scored.exit_code == 0, scored.output
    assert "(5 utterances" in scored.output and "9 labeled rows skipped" in scored.output


def test_decoding_limit_on_duration_is_configurable(corpus, tmp_path) -> None:
    long_row = [r.utt for r in corpus["rows"] if r.utt.id == "long"]
    with _decoder(max_duration=0) as decoder:  # 0: no limit (the fake model reads the tone as some text)
        report = decode_manifest(corpus["model"], long_row, decoder, tmp_path / "h.jsonl", progress=False)
    assert report.decoded == 1 and report.skipped == 0


def test_evaluation_skips_bad_rows_and_accounts_for_them(corpus) -> None:
    utterances = read_manifest(corpus["manifests"]["kaldi"])
    with _decoder(confidence=False) as decoder:
        result = evaluate(corpus["model"], utterances, decoder, progress=False)
    skipped = Counter((r["id"], r["reason"]) for r in result.skipped_rows)
    expected = _expected([r for r in corpus["rows"] if r.utt.reference is not None], "decode")
    assert skipped == expected
    assert result.utterances + len(result.skipped_rows) + result.unlabeled_skipped == len(utterances)
    assert result.unlabeled_skipped == 1  # the row with an empty transcript is unlabeled: not scored


@pytest.mark.parametrize("fmt", FORMATS)
def test_training_data_skips_each_bad_row_per_pool_and_counts_add_up(corpus, fmt, tmp_path) -> None:
    manifest = str(corpus["manifests"][fmt])
    pseudo = tmp_path / "pseudo.csv"  # one row repeats a labeled ID: IDs are unique across training pools
    good2 = next(r.utt for r in corpus["rows"] if r.utt.id == "good2")
    write_manifest([good2, Utterance("p1", good2.wav, 0.0, reference="a dog")], pseudo)
    config = DataConfig(labeled=[manifest], pseudo=[str(pseudo)], dev=manifest, tokenizer=str(corpus["tokenizer"]))
    data = prepare_data(config, 16000, 0.01)
    reasons = [reason for (_, reason), n in _expected(corpus["rows"], "train").items() for _ in range(n)]
    expected = Counter([f"labeled:{r}" for r in reasons] + [f"dev:{r}" for r in reasons] + ["pseudo:duplicate_id"])
    assert data.skipped == expected
    assert Counter((r["pool"], r["id"], r["reason"]) for r in data.skipped_rows if r["pool"] == "labeled") == Counter(
        ("labeled", i, reason) for (i, reason), n in _expected(corpus["rows"], "train").items() for _ in range(n))
    assert sorted(r.id for r in data.train if r.kind == KIND_LABELED) == ["good1", "good2", "rate", "stereo"]
    assert [r.id for r in data.train if r.kind == KIND_PSEUDO] == ["p1"]
    assert sorted(r.id for r in data.dev) == ["good1", "good2", "rate", "stereo"]
    assert data.totals == {"labeled": len(corpus["rows"]), "pseudo": 2, "unlabeled": 0, "dev": len(corpus["rows"])}
    kept = Counter({"labeled": 4, "pseudo": 1, "dev": 4})
    for pool, total in data.totals.items():
        assert kept[pool] + sum(n for key, n in data.skipped.items() if key.startswith(f"{pool}:")) == total
    assert data.converted == {**_converted(corpus["rows"], "labeled:"), **_converted(corpus["rows"], "dev:")}
    rate = next(r for r in data.train if r.id == "rate")
    assert rate.duration == pytest.approx(sf.info(rate.wav).duration)  # resampled, the length in seconds kept


@pytest.mark.parametrize("fmt", FORMATS)
def test_selection_with_a_bad_manifest_finishes_and_reports_every_row(corpus, fmt, tmp_path) -> None:
    manifest = corpus["manifests"][fmt]
    unique_ids = list(dict.fromkeys(r.utt.id for r in corpus["rows"]))
    hyps = tmp_path / "external.jsonl"  # an external teacher's output: a hypothesis for every ID
    hyps.write_text("".join(json.dumps({"id": i, "text": "the cat"}) + "\n" for i in unique_ids))
    result = run_selection([hyps], tmp_path / "select", manifest=manifest)
    decisions = {r["id"]: r["decision"]["reason"] for r in read_jsonl(result.paths["decisions"])}
    assert list(decisions) == unique_ids
    assert decisions["not_utf8"].startswith("encoding:") and decisions["bad_speaker"].startswith("encoding:")
    summary = json.loads(result.paths["summary"].read_text())
    assert summary["utterances"] == len(unique_ids) == sum(summary["reasons"].values())
    assert any("1 manifest row(s) repeat an earlier id" in w for w in summary["warnings"])
    by_id = {r["id"]: r for r in read_jsonl(result.paths["decisions"])}
    assert by_id["good1"]["wav"].endswith("good1.wav")  # the first row of a repeated ID is the one used


def test_selection_after_decoding_names_the_rows_without_hypotheses(corpus, tmp_path) -> None:
    manifest = corpus["manifests"]["csv"]
    hyps = tmp_path / "hyps.jsonl"
    with _decoder() as decoder:
        decode_manifest(corpus["model"], read_manifest(manifest), decoder, hyps, progress=False)
    result = CliRunner().invoke(main, ["select", "--hyps", str(hyps), "--manifest", str(manifest),
                                       "--out", str(tmp_path / "select"), "--keep-fraction", "0.5"])
    assert result.exit_code == 0, result.output
    assert "8 manifest row(s) have no hypothesis" in result.output  # the 9 skipped rows minus the repeated ID
    summary = json.loads((tmp_path / "select" / "summary.json").read_text())
    assert summary["utterances"] == 6 == sum(summary["reasons"].values())
