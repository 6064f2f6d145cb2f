"""Decoding manifests: sharding + merge, resuming after interruptions, bad audio, evaluation, CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from selftrain.data.manifest import write_manifest
from selftrain.decode import DecoderConfig, DecoderPool, Shard, decode_manifest, evaluate, merge_shards
from selftrain.errors import ConfigError, DecodeError
from selftrain.io import read_jsonl
from selftrain.lm import LMBuildConfig, build_lm
from selftrain.record import Utterance
from tests.decode_helpers import LM_SENTENCES, FakeModel, make_corpus, write_lm_text

pytestmark = pytest.mark.skipif(
    not (Path(sys.prefix) / "bin" / "lmplz").exists(), reason="KenLM's lmplz is not built (scripts/setup.sh)"
)
TEXTS = [*LM_SENTENCES, "the cat", "a dog sat", "the log is on the mat", "my dog likes the cat"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("decrun")
    model = FakeModel()
    utterances = make_corpus(root / "wav", TEXTS, model.tokenizer.ctc_labels())
    lm = build_lm(write_lm_text(root / "lm.txt"), root / "lm.bin", LMBuildConfig(order=3)).path
    decoder = DecoderPool(DecoderConfig(batch_size=3, workers=2), model.tokenizer.ctc_labels(), lm, "t0")
    with decoder:
        full = root / "full.jsonl"
        report = decode_manifest(model, utterances, decoder, full, progress=False)
        yield {"root": root, "model": model, "utts": utterances, "lm": lm, "decoder": decoder, "full": full,
               "report": report}


def test_full_decode_writes_records_with_hypotheses(setup) -> None:
    report = setup["report"]
    assert report.decoded == len(TEXTS) and report.already_done == 0 and report.bad_audio == {}
    assert report.audio_seconds > 0 and report.real_time_factor > 0
    records = [Utterance.from_dict(r) for r in read_jsonl(setup["full"])]
    assert [r.id for r in records] == [u.id for u in setup["utts"]]
    for record, text in zip(records, TEXTS, strict=True):
        hyp = record.hypothesis("t0")
        assert hyp is not None and hyp.text == text and hyp.decoder == "pyctcdecode"
        assert [w.word for w in hyp.words] == text.split()
        assert all(w.start < w.end <= hyp.num_frames for w in hyp.words)
        assert hyp.nbest and hyp.nbest[0].text == text and hyp.nbest[0].lm_score != 0.0
        assert hyp.scores and all(w.scores for w in hyp.words)
        # the decoding LM's view of each word (confidence/lm_scores.py)
        assert all(0.0 < w.scores["lm_word_prob"] <= 1.0 and 0.0 < w.scores["lm_context"] <= 1.0 for w in hyp.words)


def test_sharded_then_merged_equals_unsharded(setup) -> None:
    root, shards = setup["root"], []
    for i in range(2):
        out = root / f"shard{i}.jsonl"
        decode_manifest(setup["model"], setup["utts"], setup["decoder"], out, Shard(i, 2), progress=False)
        shards.append(out)
    ids = [{r["id"] for r in read_jsonl(p)} for p in shards]
    assert sum(len(s) for s in ids) == len(TEXTS) and set.union(*ids) == {u.id for u in setup["utts"]}
    assert all(ids)  # every shard got work (whole batches of 3)
    assert all(len(s) % 3 == 0 for s in ids)
    report = merge_shards(reversed(shards), setup["utts"], root / "merged.jsonl")
    assert report.written == len(TEXTS) and report.missing == []
    assert (root / "merged.jsonl").read_bytes() == setup["full"].read_bytes()
    with pytest.raises(DecodeError, match="more than one shard"):
        merge_shards([shards[0], shards[0]], setup["utts"], root / "bad.jsonl")


def test_shard_spec() -> None:
    assert Shard.parse("1/4") == Shard(1, 4) and str(Shard(1, 4)) == "1/4"
    for bad in ("4/4", "1-4", "x/2", "0/0"):
        with pytest.raises(ConfigError):
            Shard.parse(bad)
    assert sum(Shard(i, 5).contains("utt-17") for i in range(5)) == 1


def test_interrupted_decode_resumes_without_duplicates_or_losses(setup) -> None:
    root, full = setup["root"], setup["full"].read_bytes()
    out = root / "resume.jsonl"
    first = decode_manifest(setup["model"], setup["utts"], setup["decoder"], out, limit=5, progress=False)
    assert first.decoded == 5
    with open(out, "ab") as handle:  # a kill in the middle of writing the next record
        handle.write(full.splitlines(keepends=True)[5][:40])
    second = decode_manifest(setup["model"], setup["utts"], setup["decoder"], out, progress=False)
    assert second.already_done == 5 and second.decoded == len(TEXTS) - 5
    assert out.read_bytes() == full
    third = decode_manifest(setup["model"], setup["utts"], setup["decoder"], out, progress=False)
    assert third.decoded == 0 and out.read_bytes() == full


def test_a_repeated_id_is_decoded_once_and_reported(setup, tmp_path: Path) -> None:
    out = tmp_path / "h.jsonl"
    report = decode_manifest(setup["model"], [setup["utts"][0]] * 2, setup["decoder"], out, progress=False)
    assert report.decoded == 1 and report.bad_audio == {"duplicate_id": 1}
    assert [r["id"] for r in read_jsonl(out)] == [setup["utts"][0].id]


def test_bad_audio_is_skipped_and_counted(setup, tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"RIFF0000WAVEjunkjunk" * 4)
    bad = [Utterance("missing", str(tmp_path / "nope.wav"), 1.0), Utterance("empty", str(tmp_path / "empty.wav"), 1.0),
           Utterance("junk", str(tmp_path / "junk.wav"), 1.0)]
    utts = [setup["utts"][0], *bad, setup["utts"][1]]
    out = tmp_path / "h.jsonl"
    report = decode_manifest(setup["model"], utts, setup["decoder"], out, progress=False)
    assert report.decoded == 2 and sum(report.bad_audio.values()) == 3
    assert set(report.bad_audio) >= {"missing", "empty"}
    assert [r["id"] for r in read_jsonl(out)] == [setup["utts"][0].id, setup["utts"][1].id]


@pytest.mark.parametrize("decoder_name", ["greedy", "flashlight"])
def test_other_backends_decode_the_manifest(setup, tmp_path: Path, decoder_name: str) -> None:
    labels = setup["model"].tokenizer.ctc_labels()
    with DecoderPool(DecoderConfig(decoder=decoder_name, workers=1), labels, setup["lm"], "t1") as decoder:
        decode_manifest(setup["model"], setup["utts"], decoder, tmp_path / "h.jsonl", progress=False)
    records = [Utterance.from_dict(r) for r in read_jsonl(tmp_path / "h.jsonl")]
    assert [r.hypothesis("t1").text for r in records] == TEXTS
    assert {r.hypothesis("t1").decoder for r in records} == {decoder_name}
    assert all("lm_word_prob" in w.scores for r in records for w in r.hypothesis("t1").words)


def test_evaluate_reports_wer_and_cer(setup) -> None:
    utts = list(setup["utts"])
    utts[0] = Utterance(utts[0].id, utts[0].wav, utts[0].duration, reference="The CAT sat on a mat!")
    utts.append(Utterance("unlabeled", utts[1].wav, utts[1].duration))
    result = evaluate(setup["model"], utts, setup["decoder"], progress=False)
    assert result.utterances == len(TEXTS) and result.unlabeled_skipped == 1
    assert result.wer == pytest.approx(1 / result.words)  # "a" vs "the"; case and punctuation normalised
    assert 0.0 < result.cer < result.wer
    assert result.settings["beam_width"] == 32 and result.decoder == "pyctcdecode"


def test_cli_decode_merge_and_eval(setup, tmp_path: Path, monkeypatch) -> None:
    import selftrain.models.ensemble
    from selftrain.cli import main

    monkeypatch.setattr(selftrain.models.ensemble, "load_acoustic_model", lambda model_dir, device="cpu", state_cache=None: setup["model"])
    manifest = tmp_path / "m.csv"
    write_manifest(setup["utts"], manifest)
    (tmp_path / "model").mkdir()
    common = ["--model", str(tmp_path / "model"), "--manifest", str(manifest), "--lm", setup["lm"], "--workers", "1"]
    runner = CliRunner()
    for i in range(2):
        result = runner.invoke(main, ["decode", *common, "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}.jsonl"),
                                      "--teacher-name", "t0", "--batch-size", "3"])
        assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["decode", "merge", str(tmp_path / "s0.jsonl"), str(tmp_path / "s1.jsonl"),
                                  "--manifest", str(manifest), "--out", str(tmp_path / "all.jsonl")])
    assert result.exit_code == 0, result.output
    merged = [r["hypotheses"][0]["text"] for r in read_jsonl(tmp_path / "all.jsonl")]
    assert merged == TEXTS
    result = runner.invoke(main, ["eval", *common, "--out", str(tmp_path / "eval.json")])
    assert result.exit_code == 0, result.output
    assert "WER 0.0000" in result.output and json.loads((tmp_path / "eval.json").read_text())["wer"] == 0.0
    # Two members giving the same posteriors average to them: the ensemble decodes as the model alone.
    result = runner.invoke(main, ["decode", *common, "--ensemble", str(tmp_path / "model"), "--teacher-name", "t0",
                                  "--out", str(tmp_path / "ensemble.jsonl")])
    assert result.exit_code == 0, result.output
    assert [r["hypotheses"][0]["text"] for r in read_jsonl(tmp_path / "ensemble.jsonl")] == TEXTS
    missing = runner.invoke(main, ["decode", *common[:4], "--lm", str(tmp_path / "none.bin"), "--out", str(tmp_path / "x.jsonl")])
    assert missing.exit_code == 2 and "language model not found" in missing.output
    no_out = runner.invoke(main, ["decode", *common])
    assert no_out.exit_code == 2 and "--out" in no_out.output


def test_error_kinds_split_the_wer_into_substitutions_deletions_and_insertions():
    import jiwer

    from selftrain.decode.scoring import error_kinds

    references, hypotheses = ["a b c d", "e f"], ["a x c", "e f g"]
    kinds = error_kinds(references, hypotheses)
    assert kinds == pytest.approx({"substitutions": 1 / 6, "deletions": 1 / 6, "insertions": 1 / 6})
    assert sum(kinds.values()) == pytest.approx(jiwer.wer(references, hypotheses))
    assert error_kinds(["a b"], [""])["deletions"] == 1.0  # an empty hypothesis deletes every word
    with pytest.raises(DecodeError, match="no labeled utterances"):
        error_kinds([], [])
