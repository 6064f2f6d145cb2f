"""A Dutch alphabet (é ë ï and the apostrophe) end to end: tokenizer, KenLM, both beam decoders,
confidence scores, data checks and the audit, with the fake model of tests/decode_helpers.py."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest

from selftrain.audit import run_audit, sweep, write_audit
from selftrain.data.check import filter_valid
from selftrain.data.fillets import normalize_line
from selftrain.data.tokenizer import CharTokenizer, load_tokenizer
from selftrain.decode import DecoderConfig, DecoderPool, build_backend, decode_manifest
from selftrain.io import read_jsonl
from selftrain.lm import LMBuildConfig, build_lm, load_kenlm, read_unigrams
from selftrain.record import Utterance
from tests.decode_helpers import FakeModel, make_corpus, path_ids, peaky_from_ids, write_lm_text

pytestmark = pytest.mark.skipif(
    not (Path(sys.prefix) / "bin" / "lmplz").exists(), reason="KenLM's lmplz is not built (scripts/setup.sh)"
)

RAW = [
    "Een ongeïdentificeerd ding, zei de vis.",
    "“Zo’n café aan zee?”",
    "Ideeën voor de vis en de zee.",
    "Één vis en twee vissen in het café.",
    "De zee is geen café.",
    "Twee ideeën en één ding.",
    "Het ding zwemt naar het café van de vis.",
    "Zo'n vis heeft ideeën over de zee.",
]
DUTCH = [normalize_line(line) for line in RAW]  # as `data prepare fillets` writes transcripts and LM text
SPOKEN = ["twee ideeën voor de vis", "zo'n ongeïdentificeerd café", "één vis in de zee"]


@pytest.fixture(scope="module")
def dutch(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("dutch")
    tok = CharTokenizer.from_texts(DUTCH)
    report = build_lm(write_lm_text(root / "lm.txt", DUTCH), root / "lm.bin", LMBuildConfig(order=3),
                      normalizer=tok.normalizer, alphabet=tok.alphabet)
    return {"root": root, "tok": tok, "labels": tok.ctc_labels(), "lm": report.path, "report": report}


def test_tokenizer_and_lm_keep_the_accented_letters(dutch, tmp_path) -> None:
    tok = dutch["tok"]
    assert {"é", "ë", "ï", "'"} <= set(tok.alphabet.chars)
    assert all(c.isalpha() or c in " '" for c in tok.alphabet.chars)  # quotes and punctuation are gone
    tok.save(tmp_path / "tokenizer.json")
    again = load_tokenizer(tmp_path / "tokenizer.json")
    assert again.alphabet.chars == tok.alphabet.chars
    assert again.decode(again.encode("ongeïdentificeerd café")) == "ongeïdentificeerd café"
    report = dutch["report"]
    assert report.text.lines_used == len(RAW) and report.text.dropped_unknown_chars == 0
    words = read_unigrams(dutch["lm"])
    assert {"ideeën", "één", "café", "ongeïdentificeerd", "zo'n"} <= set(words)
    model = load_kenlm(dutch["lm"])
    assert model.score("twee ideeën en één ding") > model.score("twee ideeen en een ding")


def _ambiguous(text: str, labels: list[str], right: str, wrong: str) -> np.ndarray:
    """Frames of ``text`` in which every ``right`` letter gives ``wrong`` a little more mass."""
    ids = path_ids(text, labels)
    log_probs = peaky_from_ids(ids, len(labels), seed=None).astype(np.float64)
    a, b = labels.index(right), labels.index(wrong)
    for t in np.flatnonzero(np.array(ids) == a):
        log_probs[t, a], log_probs[t, b] = math.log(0.45), math.log(0.54)
    return log_probs.astype(np.float32)


@pytest.mark.parametrize(("text", "right", "wrong", "greedy"), [
    ("twee ideeën en één ding", "ë", "e", "twee ideeen en één ding"),
    ("een ongeïdentificeerd ding", "ï", "i", "een ongeidentificeerd ding"),
])
def test_both_beam_decoders_spell_the_lm_words(dutch, text, right, wrong, greedy) -> None:
    log_probs = _ambiguous(text, dutch["labels"], right, wrong)
    assert build_backend(DecoderConfig(decoder="greedy"), dutch["labels"]).decode(log_probs).text == greedy
    for decoder in ("pyctcdecode", "flashlight"):
        hyp = build_backend(DecoderConfig(decoder=decoder, alpha=1.0), dutch["labels"], dutch["lm"]).decode(log_probs)
        assert hyp.text == text, decoder
        assert [w.word for w in hyp.words] == text.split(), decoder


@pytest.mark.parametrize("decoder_name", ["pyctcdecode", "flashlight"])
def test_manifest_decoding_confidence_and_audit(dutch, tmp_path, decoder_name) -> None:
    model = FakeModel(dutch["tok"])
    utterances = make_corpus(tmp_path / "wav", SPOKEN, dutch["labels"])
    with DecoderPool(DecoderConfig(decoder=decoder_name, workers=1), dutch["labels"], dutch["lm"], "t0") as decoder:
        decode_manifest(model, utterances, decoder, tmp_path / "h.jsonl", progress=False)
    records = [Utterance.from_dict(r) for r in read_jsonl(tmp_path / "h.jsonl")]
    assert [r.hypothesis("t0").text for r in records] == SPOKEN
    for record in records:
        hyp = record.hypothesis("t0")
        assert hyp.scores and all(0.0 <= v <= 1.0 for v in hyp.scores.values())
        assert all(0.0 < w.scores["lm_word_prob"] <= 1.0 for w in hyp.words)
    # References that disagree with the audio in one accented letter: the audit counts that word wrong.
    references = ["twee ideeen voor de vis", "zo'n ongeïdentificeerd café", "een vis in de zee"]
    for record, reference in zip(records, references, strict=True):
        record.reference = reference
    (point,) = sweep(records, next(iter(records[0].hypothesis("t0").scores)), fractions=(1.0,))
    assert point.wer == pytest.approx(jiwer.wer(references, SPOKEN)) and point.wer == pytest.approx(2 / 13)
    result = run_audit(records, target_wer=0.5, label="dutch")
    written = {p.name for p in write_audit(result, tmp_path / "audit", records)}
    assert {"audit.json", "audit.md"} <= written


def test_data_check_accepts_the_alphabet_and_flags_other_letters(dutch, tmp_path) -> None:
    utterances = make_corpus(tmp_path / "wav", SPOKEN[:2], dutch["labels"])
    utterances.append(Utterance("umlaut", utterances[0].wav, utterances[0].duration, reference="een müts"))
    kept, report = filter_valid(utterances, normalizer=dutch["tok"].normalizer, alphabet=dutch["tok"].alphabet)
    assert [u.id for u in kept] == [u.id for u in utterances[:2]]
    (skipped,) = report.skipped
    assert skipped.id == "umlaut" and [(p.code, p.message) for p in skipped.problems if p.is_error] == [
        ("out_of_alphabet", "characters 'ü' not in the alphabet")]
