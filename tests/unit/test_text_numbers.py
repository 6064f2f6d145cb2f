"""Number spelling and the external-output normaliser: what other recognizers write, in our alphabet."""

from __future__ import annotations

import pytest

from selftrain.text import Alphabet, TextNormalizer, spell_numbers

EXTERNAL = TextNormalizer().for_external()


@pytest.mark.parametrize(("text", "expected"), [
    ("0", "zero"),
    ("13", "thirteen"),
    ("42", "forty two"),
    ("100", "one hundred"),
    ("101", "one hundred one"),
    ("1,000", "one thousand"),
    ("1,234,567", "one million two hundred thirty four thousand five hundred sixty seven"),
    ("3.05", "three point zero five"),
    ("1st 2nd 3rd 4th 12th 20th 21st", "first second third fourth twelfth twentieth twenty first"),
    ("1984", "nineteen eighty four"),
    ("1905", "nineteen oh five"),
    ("1900", "nineteen hundred"),
    ("2005", "two thousand five"),
    ("2024", "twenty twenty four"),
    ("1990s", "nineteen nineties"),
    ("3D", "three d"),
])
def test_numbers_are_spelled_in_words(text: str, expected: str) -> None:
    assert EXTERNAL(text) == expected


def test_spell_numbers_leaves_other_text_alone() -> None:
    assert spell_numbers("no digits here") == "no digits here"
    assert spell_numbers("1,2,3").split(",") == [" one ", " two ", " three "]


def test_external_output_maps_case_punctuation_and_symbols() -> None:
    assert EXTERNAL("It\u2019s 42% off & the 3rd time!") == "it's forty two percent off and the third time"
    assert EXTERNAL("A well-known \"quote\", isn't it?") == "a well known quote isn't it"
    assert EXTERNAL("5 + 5 = 10") == "five plus five equals ten"


def test_plain_normaliser_is_unchanged_and_round_trips() -> None:
    assert TextNormalizer()("Don't PANIC -- it's 42!") == "don't panic it's"
    assert TextNormalizer.from_dict(EXTERNAL.to_dict()) == EXTERNAL
    # Settings saved before the option existed still load, with numbers left alone.
    old = {k: v for k, v in TextNormalizer().to_dict().items() if k != "spell_numbers"}
    assert TextNormalizer.from_dict(old).spell_numbers is False


def test_own_replacements_win_over_symbol_words() -> None:
    norm = TextNormalizer(replacements={"&": " n "}).for_external()
    assert norm("rock & roll") == "rock n roll"


def test_alphabet_fold_keeps_only_known_characters() -> None:
    alphabet = Alphabet(list(" abcdefghijklmnopqrstuvwxyz'"))
    assert alphabet.fold("café naïve") == "cafe naive"
    assert alphabet.fold("x 中 y") == "x y"
    assert alphabet.fold("中文") == ""
