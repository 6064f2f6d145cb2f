"""Decoding backends on constructed peaky log-probs with a real KenLM model built by lm/."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from selftrain.decode import DecoderConfig, DecoderPool, build_backend, collapse_path, words_from_path
from selftrain.errors import ConfigError, DecodeError, LMError
from selftrain.lm import LMBuildConfig, build_lm, load_kenlm
from tests.decode_helpers import LM_SENTENCES, path_ids, peaky, peaky_from_ids, tokenizer, write_lm_text

pytestmark = pytest.mark.skipif(
    not (Path(sys.prefix) / "bin" / "lmplz").exists(), reason="KenLM's lmplz is not built (scripts/setup.sh)"
)
LABELS = tokenizer().ctc_labels()


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("declm")
    return Path(build_lm(write_lm_text(root / "text.txt"), root / "lm.bin", LMBuildConfig(order=3)).path)


def test_collapse_and_words_from_path() -> None:
    ids = path_ids("ab ba", LABELS, repeat=2, gap=1)
    assert [LABELS[t] for t, _, _ in collapse_path(np.array(ids))] == list("ab ba")
    words = words_from_path(np.array(ids), LABELS)
    assert [(w.word, w.start, w.end) for w in words] == [("ab", 1, 6), ("ba", 10, 15)]
    assert words_from_path(np.array([0, 0, 0]), LABELS) == []


def test_words_from_sentencepiece_path() -> None:
    pieces = ["", "▁the", "▁c", "at", "s", "▁sat"]
    words = words_from_path(np.array([0, 1, 1, 0, 2, 3, 3, 0, 4, 5, 0]), pieces)
    assert [(w.word, w.start, w.end) for w in words] == [("the", 1, 3), ("cats", 4, 9), ("sat", 9, 10)]


def test_greedy_text_spans_and_score() -> None:
    log_probs = peaky("the cat sat", LABELS)
    hyp = build_backend(DecoderConfig(decoder="greedy"), LABELS).decode(log_probs)
    assert hyp.text == "the cat sat" and hyp.decoder == "greedy" and hyp.num_frames == len(log_probs)
    assert [w.word for w in hyp.words] == ["the", "cat", "sat"]
    assert hyp.words[0].start == 2 and hyp.words[0].end == 2 + 3 * 4 - 2  # 3 chars x (2 frames + 2 blanks)
    best = log_probs.max(axis=1).sum()
    assert hyp.nbest[0].acoustic_score == pytest.approx(best, rel=1e-5) and hyp.nbest[0].lm_score == 0.0


def _ambiguous_cat_cot() -> np.ndarray:
    """Frames that say "the cot sat" but give "a" almost as much mass as "o"."""
    ids = path_ids("the cot sat", LABELS)
    log_probs = peaky_from_ids(ids, len(LABELS), seed=None).astype(np.float64)
    a, o = LABELS.index("a"), LABELS.index("o")
    for t in np.flatnonzero(np.array(ids) == o):
        log_probs[t, o], log_probs[t, a] = math.log(0.52), math.log(0.47)
    return log_probs.astype(np.float32)


def test_pyctcdecode_separates_acoustic_and_lm_scores(lm_path: Path) -> None:
    config = DecoderConfig(alpha=0.7, beta=0.4, nbest=5, beam_prune_logp=-40.0)
    log_probs = _ambiguous_cat_cot()
    hyp = build_backend(config, LABELS, lm_path).decode(log_probs)
    assert hyp.text == "the cat sat"
    assert [n.text for n in hyp.nbest[:2]] == ["the cat sat", "the cot sat"]
    top = hyp.nbest[0]
    kenlm_log10 = load_kenlm(lm_path).score(top.text, bos=True, eos=True)
    assert top.lm_score == pytest.approx(config.alpha * kenlm_log10 * math.log(10) + config.beta * 3, abs=1e-3)
    cat_path = path_ids("the cat sat", LABELS)
    best_path = float(log_probs[np.arange(len(cat_path)), cat_path].sum())
    # pyctcdecode's acoustic part sums the alignments it merged: at least the best path's, barely more here
    assert best_path - 0.001 <= top.acoustic_score <= best_path + 0.05
    assert hyp.nbest[1].acoustic_score > top.acoustic_score  # "cot" is acoustically better ...
    assert hyp.nbest[1].lm_score < top.lm_score  # ... but the LM does not know it
    for entry in hyp.nbest:
        assert entry.score == pytest.approx(entry.acoustic_score + entry.lm_score, abs=1e-6)
    assert all(a.score >= b.score for a, b in zip(hyp.nbest, hyp.nbest[1:], strict=False))
    assert [w.word for w in hyp.words] == hyp.text.split()


def test_lm_corrects_an_acoustically_ambiguous_word(lm_path: Path) -> None:
    log_probs = _ambiguous_cat_cot()
    assert build_backend(DecoderConfig(decoder="greedy"), LABELS).decode(log_probs).text == "the cot sat"
    for decoder in ("pyctcdecode", "flashlight"):
        assert build_backend(DecoderConfig(decoder=decoder), LABELS, lm_path).decode(log_probs).text == "the cat sat"


def test_pyctcdecode_and_flashlight_agree_on_peaky_inputs(lm_path: Path) -> None:
    config = DecoderConfig(beam_width=16, nbest=3)
    py = build_backend(config, LABELS, lm_path)
    fl = build_backend(DecoderConfig(decoder="flashlight", beam_width=16, nbest=3), LABELS, lm_path)
    for i, sentence in enumerate(LM_SENTENCES[:5]):
        log_probs = peaky(sentence, LABELS, seed=i)
        a, b = py.decode(log_probs), fl.decode(log_probs)
        assert a.text == b.text == sentence
        assert [(w.word, w.start, w.end) for w in a.words] == [(w.word, w.start, w.end) for w in b.words]
        assert a.nbest[0].lm_score == pytest.approx(b.nbest[0].lm_score, abs=1e-3)
        assert b.nbest[0].score == pytest.approx(b.nbest[0].acoustic_score + b.nbest[0].lm_score, abs=1e-4)


def test_blank_frame_skipping_is_exact(lm_path: Path) -> None:
    log_probs = peaky_from_ids(path_ids("a cat and a dog", LABELS, gap=6), len(LABELS), seed=3)
    fast = build_backend(DecoderConfig(skip_blank_frames=True, nbest=4), LABELS, lm_path).decode(log_probs)
    slow = build_backend(DecoderConfig(skip_blank_frames=False, nbest=4), LABELS, lm_path).decode(log_probs)
    assert fast.text == slow.text and fast.words == slow.words
    assert len(fast.nbest) == len(slow.nbest)
    for x, y in zip(fast.nbest, slow.nbest, strict=True):
        assert x.text == y.text
        assert x.acoustic_score == pytest.approx(y.acoustic_score, abs=1e-3)
        assert x.lm_score == pytest.approx(y.lm_score, abs=1e-6)


def test_pool_reuse_and_confidence(lm_path: Path) -> None:
    inputs = [peaky(s, LABELS, seed=i) for i, s in enumerate(LM_SENTENCES)]
    with DecoderPool(DecoderConfig(workers=2), LABELS, lm_path, teacher="t1") as decoder:
        pool = decoder._pool
        first = decoder.decode(inputs[:4])
        second = decoder.decode(inputs[4:])
        assert decoder._pool is pool  # one pool for every batch
    in_process = DecoderPool(DecoderConfig(workers=0), LABELS, lm_path, teacher="t1").decode(inputs)
    assert first + second == in_process
    assert [h.text for h in in_process] == LM_SENTENCES
    hyp = in_process[0]
    assert hyp.teacher == "t1" and hyp.scores and all(w.scores for w in hyp.words)
    assert all(0.0 <= v <= 1.0 for v in hyp.scores.values())


def test_bad_inputs_and_lm_errors(tmp_path: Path, lm_path: Path) -> None:
    with pytest.raises(ConfigError):
        DecoderConfig(decoder="viterbi")
    with pytest.raises(LMError, match="not found"):
        build_backend(DecoderConfig(), LABELS, tmp_path / "missing.bin")
    (tmp_path / "corrupt.bin").write_bytes(b"mmap lm http://kheafield.com/code format version 5\x00" + b"\x07" * 40)
    for decoder in ("pyctcdecode", "flashlight"):
        with pytest.raises(LMError, match="cannot load language model"):
            build_backend(DecoderConfig(decoder=decoder), LABELS, tmp_path / "corrupt.bin")
    with pytest.raises(DecodeError, match="needs an LM"):
        build_backend(DecoderConfig(decoder="flashlight"), LABELS)
    decoder = DecoderPool(DecoderConfig(workers=0, confidence=False), LABELS, lm_path)
    with pytest.raises(DecodeError, match="do not match"):
        decoder.submit([np.zeros((5, len(LABELS) + 1), dtype=np.float32)])
    empty = decoder.decode([np.zeros((0, len(LABELS)), dtype=np.float32)])[0]
    assert empty.text == "" and empty.num_frames == 0


def test_the_old_name_of_the_decoder_pool_still_imports_with_a_warning():
    import selftrain.decode

    with pytest.warns(DeprecationWarning, match="DecoderPool"):
        assert selftrain.decode.TeacherDecoder is DecoderPool
