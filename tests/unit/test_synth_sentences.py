"""Sentence extraction and the disjoint hash split of the synthetic corpus text."""

from __future__ import annotations

import random

import pytest

from selftrain.synth.errors import MissingToolError
from selftrain.synth.sentences import (
    Sentence,
    assign_splits,
    clean_sentences,
    load_sentences,
    read_fortune_entries,
    split_into_sentences,
)

SHARES = {"lm": 0.5, "labeled": 0.1, "unlabeled": 0.2, "dev": 0.1, "test": 0.1}


def _sentences(n: int) -> list[Sentence]:
    rng = random.Random(0)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
    texts = {" ".join(rng.choice(words) for _ in range(rng.randint(4, 9))) for _ in range(n)}
    return [Sentence(spoken=t.capitalize() + ".", text=t) for t in sorted(texts)]


def test_split_into_sentences_drops_attribution_and_riddle_labels():
    entry = "Q: Why did it work?\nA: Nobody knows.  It just did!\n\t\t-- Some Author"
    assert split_into_sentences(entry) == ["Why did it work?", "Nobody knows.", "It just did!"]


@pytest.mark.parametrize(
    "bad",
    [
        "There were 42 cats in the house.",  # digits are spoken but normalised away
        "The IBM machine was very slow today.",  # acronyms are spelled letter by letter
        "Mr Smith went to the market again.",  # abbreviation
        "Send it to me at home & work please.",  # symbol
        "She said hellllo to everybody in the room.",  # odd spelling
    ],
)
def test_clean_sentences_rejects_unspeakable_text(bad):
    assert clean_sentences([bad]) == []


def test_clean_sentences_normalises_filters_length_and_deduplicates():
    raw = [
        "Don't panic, it's fine.",
        "DON'T panic -- it's fine!",
        "Too short.",
        "one two three four five six seven eight nine ten eleven twelve",
    ]
    kept = clean_sentences(raw, min_words=3, max_words=10)
    assert [s.text for s in kept] == ["don't panic it's fine"]
    assert kept[0].spoken == "Don't panic, it's fine."


def test_assign_splits_is_disjoint_complete_and_order_independent():
    sentences = _sentences(3000)
    parts = assign_splits(sentences, SHARES)
    seen = [s.text for part in parts.values() for s in part]
    assert len(seen) == len(set(seen)) == len(sentences)
    shuffled = list(sentences)
    random.Random(1).shuffle(shuffled)
    assert assign_splits(shuffled, SHARES) == parts
    # shares are respected roughly and the LM text gets the largest part
    assert max(parts, key=lambda k: len(parts[k])) == "lm"
    assert abs(len(parts["unlabeled"]) / len(sentences) - 0.2) < 0.03


def test_assign_splits_keeps_a_sentence_in_its_split_when_others_are_added():
    sentences = _sentences(1000)
    small = assign_splits(sentences[:500], SHARES)
    large = assign_splits(sentences, SHARES)
    where = {s.text: name for name, part in large.items() for s in part}
    assert all(where[s.text] == name for name, part in small.items() for s in part)


def test_salt_changes_the_partition():
    sentences = _sentences(500)
    assert assign_splits(sentences, SHARES, salt="a") != assign_splits(sentences, SHARES, salt="b")


def test_load_sentences_reads_u8_files_and_skips_dat(tmp_path):
    (tmp_path / "jokes").write_text("ignored plain copy with overstrike\n%\n", encoding="utf-8")
    (tmp_path / "jokes.u8").write_text(
        "The cat sat on the mat today.\n%\nA dog barked at the moon all night.\n%\n", encoding="utf-8"
    )
    (tmp_path / "jokes.dat").write_bytes(b"\x00\x01binary")
    assert len(read_fortune_entries(tmp_path)) == 2
    texts = [s.text for s in load_sentences(tmp_path, 4, 20)]
    assert texts == ["a dog barked at the moon all night", "the cat sat on the mat today"]


def test_missing_fortunes_names_the_debian_package(tmp_path):
    with pytest.raises(MissingToolError, match="fortunes") as info:
        read_fortune_entries(tmp_path / "nowhere")
    assert info.value.package == "fortunes"


def test_limit_vocabulary_keeps_sentences_of_frequent_words_only():
    from selftrain.synth.sentences import Sentence, limit_vocabulary

    texts = ["the cat sat", "the dog sat", "the cat ran", "a zebra yawned"]
    sentences = [Sentence(spoken=t, text=t) for t in texts]
    # Counts: the 3, cat 2, sat 2, then singletons in alphabetical order ("a" first).
    assert [s.text for s in limit_vocabulary(sentences, 4)] == ["the cat sat"]
    assert [s.text for s in limit_vocabulary(sentences, 100)] == texts


def test_unspoken_sentences_keep_any_length_and_leave_out_the_spoken(tmp_path):
    from selftrain.synth.sentences import unspoken_sentences

    (tmp_path / "quotes").write_text(
        "The cat sat on the mat today.\n%\nGo!\n%\nA dog barked at the moon all night.\n%\n"
        "Call 555 now.\n%\n", encoding="utf-8"
    )
    texts = unspoken_sentences(tmp_path, {"the cat sat on the mat today"})
    assert texts == ["a dog barked at the moon all night", "go"]  # digits are not speakable text
    assert unspoken_sentences(tmp_path, set(), max_words=1) == ["go"]
