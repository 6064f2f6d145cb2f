"""Decoding the outputs of a real (tiny, briefly trained) model with a real KenLM LM built by lm/.

A model trained for a few steps is far from accurate, so this checks the pipeline's behaviour on
real, non-peaky posteriors (structure, spans, separated scores, sharding, CLI), not its accuracy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from selftrain.cli import main
from selftrain.data.manifest import write_manifest
from selftrain.io import read_jsonl
from selftrain.lm import LMBuildConfig, build_lm, read_unigrams
from selftrain.record import Utterance
from tests.decode_helpers import LM_SENTENCES, write_lm_text

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # slow: trains a model to decode with
if shutil.which("espeak-ng") is None or not (Path(sys.prefix) / "bin" / "lmplz").exists():
    pytest.skip("needs espeak-ng and KenLM's lmplz (scripts/setup.sh)", allow_module_level=True)

VOICES = ("en-us+m3", "en-us+f2")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    from selftrain.train import load_train_config, train

    root = tmp_path_factory.mktemp("dectrain")
    utterances = []
    for i, text in enumerate(LM_SENTENCES * 2):
        wav = root / "wav" / f"s{i:02d}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["espeak-ng", "-v", VOICES[i % 2], "-s", "170", "-w", str(wav), text], check=True)
        utterances.append(Utterance(f"s{i:02d}", str(wav), 2.0, spk_id=VOICES[i % 2], reference=text))
    import soundfile as sf

    for utt in utterances:
        utt.duration = round(sf.info(utt.wav).duration, 3)
    manifest = root / "all.csv"
    write_manifest(utterances, manifest)
    write_manifest(utterances[:4], root / "dev.csv")
    config = load_train_config("tiny", overrides={"out": str(root / "run"), "epochs": 2, "max_steps": 6,
                                                  "data": {"labeled": [str(manifest)], "dev": str(root / "dev.csv")}})
    model_dir = train(config)
    lm = build_lm(write_lm_text(root / "lm.txt"), root / "lm.bin", LMBuildConfig(order=3))
    return {"root": root, "model": str(model_dir), "manifest": str(manifest), "lm": lm.path, "n": len(utterances)}


def _decode(trained: dict, out: Path, *extra: str):
    args = ["decode", "--model", trained["model"], "--manifest", trained["manifest"], "--lm", trained["lm"],
            "--out", str(out), "--workers", "2", "--batch-size", "4", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return [Utterance.from_dict(r) for r in read_jsonl(out)]


@pytest.mark.parametrize("decoder", ["pyctcdecode", "flashlight", "greedy"])
def test_decode_real_model_outputs(trained: dict, tmp_path: Path, decoder: str) -> None:
    records = _decode(trained, tmp_path / "h.jsonl", "--decoder", decoder, "--teacher-name", decoder)
    assert len(records) == trained["n"]
    vocabulary = set(read_unigrams(trained["lm"]))
    for record in records:
        hyp = record.hypothesis(decoder)
        assert hyp is not None and hyp.decoder == decoder and hyp.num_frames > 0
        assert " ".join(w.word for w in hyp.words) == hyp.text
        assert all(0 <= w.start < w.end <= hyp.num_frames for w in hyp.words)
        assert hyp.nbest and hyp.nbest[0].text == hyp.text
        for entry in hyp.nbest:
            assert entry.score == pytest.approx(entry.acoustic_score + entry.lm_score, abs=1e-4)
            assert entry.acoustic_score <= 0.0
        if decoder == "greedy":
            assert hyp.nbest[0].lm_score == 0.0
        if decoder == "flashlight":
            assert set(hyp.text.split()) <= vocabulary  # lexicon decoding: LM words only
        if hyp.text:
            assert all(0.0 <= v <= 1.0 for v in hyp.scores.values()) and hyp.scores


def test_sharded_decode_matches_unsharded(trained: dict, tmp_path: Path) -> None:
    full = _decode(trained, tmp_path / "full.jsonl")
    for i in range(2):
        _decode(trained, tmp_path / f"s{i}.jsonl", "--shard", f"{i}/2")
    merged = CliRunner().invoke(main, ["decode", "merge", str(tmp_path / "s0.jsonl"), str(tmp_path / "s1.jsonl"),
                                       "--manifest", trained["manifest"], "--out", str(tmp_path / "m.jsonl")])
    assert merged.exit_code == 0, merged.output
    assert len(full) == trained["n"] and all(list(read_jsonl(tmp_path / f"s{i}.jsonl")) for i in range(2))
    # Shards take whole batches, so every utterance has the same padding as unsharded: same bytes.
    assert (tmp_path / "m.jsonl").read_bytes() == (tmp_path / "full.jsonl").read_bytes()


def test_interrupted_decode_resumes(trained: dict, tmp_path: Path) -> None:
    out = tmp_path / "h.jsonl"
    _decode(trained, out, "--limit", "3")
    assert len(list(read_jsonl(out))) == 3
    with open(out, "a", encoding="utf-8") as handle:
        handle.write('{"id": "s03", "wav": "torn')
    records = _decode(trained, out)
    assert [r.id for r in records] == [f"s{i:02d}" for i in range(trained["n"])]
    _decode(trained, tmp_path / "full.jsonl")
    assert out.read_bytes() == (tmp_path / "full.jsonl").read_bytes()


def test_eval_writes_error_rates(trained: dict, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "--model", trained["model"], "--manifest", trained["manifest"],
                                       "--lm", trained["lm"], "--out", str(tmp_path / "e.json"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "e.json").read_text())
    assert data["utterances"] == trained["n"] and data["wer"] >= 0.0 and data["cer"] >= 0.0
    assert data["settings"]["beam_width"] == 32 and data["lm"] == trained["lm"]
