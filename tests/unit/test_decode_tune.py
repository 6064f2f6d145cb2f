"""The blank penalty and the decoder tuning on a transcribed dev set (selftrain.decode.tune, `decode tune`)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from selftrain.data.manifest import write_manifest
from selftrain.decode import DecoderConfig, DecoderPool
from selftrain.decode.config import TuneConfig
from selftrain.decode.pool import penalize_blank
from selftrain.decode.tune import dev_log_probs, tune_decoder
from selftrain.errors import ConfigError
from selftrain.lm import LMBuildConfig, build_lm
from selftrain.record import Utterance
from tests.decode_helpers import LM_SENTENCES, FakeModel, make_corpus, peaky, tokenizer, write_lm_text

LABELS = tokenizer().ctc_labels()
TEXTS = LM_SENTENCES[:4]
needs_lmplz = pytest.mark.skipif(not (Path(sys.prefix) / "bin" / "lmplz").exists(),
                                 reason="KenLM's lmplz is not built (scripts/setup.sh)")


def hesitant(log_probs: np.ndarray, blank_share: float = 0.6) -> np.ndarray:
    """Every frame that emits a token now prefers the blank (``blank_share`` of the mass, the token
    the rest): a model that deletes every word though it still 'hears' each character."""
    out = log_probs.copy()
    tokens = out.argmax(axis=1)
    emitting = np.flatnonzero(tokens != 0)
    out[emitting] = -30.0
    out[emitting, 0] = math.log(blank_share)
    out[emitting, tokens[emitting]] = math.log(1.0 - blank_share)
    return out


def greedy_text(log_probs: np.ndarray, penalty: float) -> str:
    decoder = DecoderPool(DecoderConfig(decoder="greedy", workers=0, blank_penalty=penalty, confidence=False), LABELS)
    return decoder.decode([log_probs])[0].text


def test_penalize_blank_lowers_the_blank_column_of_a_copy() -> None:
    log_probs = peaky("the cat", LABELS)
    penalized = penalize_blank(log_probs, 1.5)
    assert np.allclose(penalized[:, 0], log_probs[:, 0] - 1.5) and np.array_equal(penalized[:, 1:], log_probs[:, 1:])
    assert penalize_blank(log_probs, 0.0) is log_probs
    assert penalized is not log_probs and not np.shares_memory(penalized, log_probs)


def test_a_blank_penalty_turns_the_deleted_words_back_into_words() -> None:
    log_probs = hesitant(peaky("the cat sat", LABELS))
    assert greedy_text(log_probs, 0.0) == ""
    assert greedy_text(log_probs, 0.5) == "the cat sat"  # log 0.6 - 0.5 < log 0.4


def test_confidence_reads_the_models_own_posteriors(tmp_path: Path) -> None:
    """The penalty changes what is searched, not the scores: a word's confidence stays the model's."""
    log_probs = hesitant(peaky("the cat", LABELS), blank_share=0.55)
    plain = DecoderPool(DecoderConfig(decoder="greedy", workers=0), LABELS).decode([peaky("the cat", LABELS)])[0]
    penalized = DecoderPool(DecoderConfig(decoder="greedy", workers=0, blank_penalty=1.0), LABELS).decode([log_probs])[0]
    assert penalized.text == plain.text == "the cat"
    assert penalized.scores and all(w.scores for w in penalized.words)
    assert penalized.words[0].scores != plain.words[0].scores  # the hesitant model is less sure, and says so


def test_tuning_without_an_lm_finds_the_penalty_that_restores_the_words() -> None:
    log_probs = [hesitant(peaky(text, LABELS, seed=i)) for i, text in enumerate(TEXTS)]
    result = tune_decoder(log_probs, TEXTS, LABELS, None, DecoderConfig(decoder="greedy", workers=0), progress=False)
    assert result.base_wer == 1.0 and result.best_wer == 0.0
    assert result.best == {"blank_penalty": 0.5, "beta": 1.0, "alpha": 0.5}  # alpha, beta: the configured ones
    assert {p["beta"] for p in result.points} == {1.0} and {p["alpha"] for p in result.points} == {0.5}
    assert result.points[0]["blank_penalty"] == 0.0 and result.points[0]["errors"]["deletions"] == 1.0
    assert result.utterances == len(TEXTS) and json.dumps(result.to_dict())


@needs_lmplz
def test_tuning_with_an_lm_keeps_the_configured_settings_on_a_tie(tmp_path: Path) -> None:
    lm = build_lm(write_lm_text(tmp_path / "lm.txt"), tmp_path / "lm.bin", LMBuildConfig(order=3)).path
    log_probs = [peaky(text, LABELS, seed=i) for i, text in enumerate(TEXTS)]
    base = DecoderConfig(alpha=0.8, beta=1.0, workers=0, beam_width=8)
    tune = TuneConfig(enabled=True, blank_penalty=[0.0, 1.0], beta=[0.0, 2.0], alpha=[0.5, 1.1], rounds=2)
    result = tune_decoder(log_probs, TEXTS, LABELS, lm, base, tune, progress=False)
    assert result.best_wer == result.base_wer == 0.0
    assert result.best == {"blank_penalty": 0.0, "beta": 1.0, "alpha": 0.8}
    # base, then each setting's candidates one at a time; the second round is not needed
    assert len(result.points) == 1 + 1 + 2 + 2


def test_tuning_refuses_bad_inputs_and_settings() -> None:
    with pytest.raises(ConfigError, match="one reference per utterance"):
        tune_decoder([peaky("the cat", LABELS)], [], LABELS, None, DecoderConfig(decoder="greedy"))
    with pytest.raises(ConfigError, match="rounds"):
        TuneConfig(rounds=0)
    with pytest.raises(ConfigError, match="decode_tuning.beta"):
        TuneConfig(beta=["high"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="alpha"):
        TuneConfig(alpha=[-1.0])
    with pytest.raises(ConfigError, match="blank_penalty"):
        DecoderConfig(blank_penalty=float("nan"))


def test_dev_log_probs_leave_out_unreadable_and_untranscribed_rows(tmp_path: Path) -> None:
    model = FakeModel()
    utterances = make_corpus(tmp_path / "wav", TEXTS, LABELS)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    rows = [*utterances, Utterance(id="bad", wav=str(broken), duration=1.0, reference="the cat"),
            Utterance(id="silent", wav=utterances[0].wav, duration=1.0)]
    kept, log_probs, skipped = dev_log_probs(model, rows, batch_size=2, progress=False)
    assert [u.id for u in kept] == [u.id for u in utterances] and len(log_probs) == len(kept)
    assert skipped.rows and skipped.rows[0]["id"] == "bad"
    assert all(lp.shape[1] == len(LABELS) for lp in log_probs)


@needs_lmplz
def test_cli_decode_tune(tmp_path: Path, monkeypatch) -> None:
    import selftrain.models.ensemble
    from selftrain.cli import main

    model = FakeModel()
    monkeypatch.setattr(selftrain.models.ensemble, "load_acoustic_model", lambda model_dir, device="cpu", state_cache=None: model)
    manifest = tmp_path / "dev.csv"
    write_manifest(make_corpus(tmp_path / "wav", TEXTS, LABELS), manifest)
    lm = build_lm(write_lm_text(tmp_path / "lm.txt"), tmp_path / "lm.bin", LMBuildConfig(order=3)).path
    (tmp_path / "model").mkdir()
    common = ["decode", "tune", "--model", str(tmp_path / "model"), "--manifest", str(manifest), "--lm", str(lm),
              "--workers", "0", "--beam", "8"]
    runner = CliRunner()
    result = runner.invoke(main, [*common, "--try-beta", "0,2", "--try-alpha", "", "--out", str(tmp_path / "t.json")])
    assert result.exit_code == 0, result.output
    assert "best: --blank-penalty 0  --beta 1  --alpha 0.5  WER 0.0000" in result.output
    saved = json.loads((tmp_path / "t.json").read_text())
    assert saved["best_wer"] == 0.0 and {p["alpha"] for p in saved["points"]} == {0.5}
    bad = runner.invoke(main, [*common, "--try-beta", "0,high"])
    assert bad.exit_code == 2 and "comma-separated numbers" in bad.output
    calls = model.calls
    no_lm = runner.invoke(main, [*common[:6], "--lm", str(tmp_path / "none.bin")])
    assert no_lm.exit_code == 2 and "language model not found" in no_lm.output
    assert model.calls == calls  # refused before any audio was read
    no_manifest = runner.invoke(main, ["decode", "tune", "--model", str(tmp_path / "model")])
    assert no_manifest.exit_code == 2 and "--manifest" in no_manifest.output
