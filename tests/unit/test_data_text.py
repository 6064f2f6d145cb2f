import pytest

from selftrain.data.tokenizer import CharTokenizer, SentencePieceTokenizer, load_tokenizer
from selftrain.errors import TextError
from selftrain.text import Alphabet, TextNormalizer


def test_normalizer_english_defaults():
    assert TextNormalizer()("Don't PANIC -- it's 42!") == "don't panic it's"
    assert TextNormalizer()("  'Quoted'  words,\tand\nlines ") == "quoted words and lines"


def test_typographic_apostrophes_are_the_apostrophe():
    assert TextNormalizer()("Zo\u2019n auto\u2019s, \u2018t is \u02bcs morgens") == "zo'n auto's t is s morgens"
    assert TextNormalizer(keep_chars="")("zo\u2019n") == "zo n"  # no kept apostrophe: a separator like "'"


def test_normalizer_keeps_accented_and_non_latin_letters():
    assert TextNormalizer()("Ça coûte CHER, n'est-ce pas ?") == "ça coûte cher n'est ce pas"
    assert TextNormalizer()("Привет, МИР!") == "привет мир"
    assert TextNormalizer()("Ἐν ἀρχῇ ἦν ὁ λόγος.") == "ἐν ἀρχῇ ἦν ὁ λόγος"


def test_normalizer_rules_are_configurable():
    norm = TextNormalizer(lowercase=False, keep_digits=True, keep_chars="'-", replacements={"&": " and "})
    assert norm("R&D in 2024 - well-known") == "R and D in 2024 well-known"
    assert TextNormalizer.from_dict(norm.to_dict()) == norm


def test_normalizer_unicode_forms_agree():
    decomposed = "cafe\u0301"  # e + combining acute
    assert TextNormalizer()(decomposed) == TextNormalizer()("café")


def test_alphabet_from_texts_and_save(tmp_path):
    alphabet = Alphabet.from_texts(["über straße", "öl"])
    assert alphabet.chars[0] == " "
    assert set("überstaßöl") <= set(alphabet.chars)
    assert alphabet.unknown_chars("xyz über") == {"x", "y", "z"}
    alphabet.save(tmp_path / "a.json")
    assert Alphabet.load(tmp_path / "a.json") == alphabet


def test_alphabet_errors(tmp_path):
    with pytest.raises(TextError):
        Alphabet.from_texts(["", "   "])
    with pytest.raises(TextError):
        Alphabet.load(tmp_path / "missing.json")


def test_char_tokenizer_round_trip_non_english(tmp_path):
    texts = ["Привет мир", "мир труд май"]
    tok = CharTokenizer.from_texts(texts)
    ids = tok.encode("привет май")
    assert 0 not in ids and tok.decode(ids) == "привет май"
    assert tok.ctc_labels()[0] == "" and tok.ctc_labels()[1] == " "
    assert tok.vocab_size == len(tok.ctc_labels())
    with pytest.raises(TextError):
        tok.encode("hello")
    tok.save(tmp_path / "tokenizer.json")
    again = load_tokenizer(tmp_path / "tokenizer.json")
    assert again.ctc_labels() == tok.ctc_labels() and again.normalizer == tok.normalizer


def test_char_tokenizer_decode_drops_blanks_and_extra_spaces():
    tok = CharTokenizer(Alphabet.from_texts(["ab"]))
    a, b, space = tok.encode("a")[0], tok.encode("b")[0], tok.encode(" ")[0]
    assert tok.decode([0, a, 0, space, space, b, space]) == "a b"


def test_sentencepiece_tokenizer(tmp_path):
    texts = [f"the quick brown fox number {w} jumps over the lazy dog" for w in "abcdefghij"] * 20
    tok = SentencePieceTokenizer.train(texts, tmp_path / "sp", vocab_size=40)
    ids = tok.encode("the lazy fox")
    assert 0 not in ids
    assert tok.decode(ids) == "the lazy fox"
    assert tok.ctc_labels()[0] == "" and len(tok.ctc_labels()) == tok.vocab_size
    tok.save(tmp_path / "model" / "tokenizer.json")
    again = load_tokenizer(tmp_path / "model" / "tokenizer.json")
    assert again.encode("the lazy fox") == ids
