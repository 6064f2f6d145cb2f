"""Sentences for the synthetic corpus: read Debian ``fortunes``, clean, normalise and split disjointly.

Each fortune entry is split into sentences; a sentence is kept only when a synthesizer will say
exactly the words of its normalised transcript (no digits, symbols, acronyms or abbreviations) and
it has ``min_words`` to ``max_words`` words. Sentences are deduplicated on their normalised form and
assigned to a split by a hash of that form, so no two splits ever share a sentence and the
assignment does not depend on file order.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from selftrain.synth.errors import MissingToolError
from selftrain.text import TextNormalizer

__all__ = [
    "Sentence",
    "read_fortune_entries",
    "split_into_sentences",
    "clean_sentences",
    "assign_splits",
    "load_sentences",
    "limit_vocabulary",
    "unspoken_sentences",
]

LM_MAX_WORDS = 60  # longest sentence :func:`unspoken_sentences` gives the LM text (longer ones are run-ons)

# Characters a sentence may contain: anything else (digits, $, %, &, @, /, ...) would be spoken as a
# word that the normalised transcript does not have.
_ALLOWED = re.compile(r"^[A-Za-z .,;:!?'\"()\-]+$")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')]*\s+(?=[\"'(]*[A-Z])")
_ACRONYM = re.compile(r"\b[A-Z]{2,4}\b")  # espeak-ng spells short all-caps words letter by letter
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "jr",
    "sr",
    "vs",
    "etc",
    "eg",
    "ie",
    "prof",
    "gen",
    "col",
    "lt",
    "mt",
    "no",
}
_OVERSTRIKE = re.compile(r".\x08")
_QA_LABEL = re.compile(r"^[QA]:\s*")  # riddle labels "Q: ... A: ..." are not part of the sentence
_ODD_SPELLING = re.compile(r"([A-Za-z])\1\1|\b[A-Za-z]\.[A-Za-z]")  # "Hellllo", initials like "A.M."


@dataclass(frozen=True)
class Sentence:
    """A sentence as spoken (``spoken``: cleaned original casing and punctuation) and its transcript."""

    spoken: str
    text: str

    @property
    def key(self) -> float:
        """A stable pseudo-random number in [0, 1) derived from the transcript alone."""
        return sentence_hash(self.text)


def sentence_hash(text: str, salt: str = "") -> float:
    """Map a normalised sentence to [0, 1) with SHA-1 (stable across runs and Python versions)."""
    digest = hashlib.sha1(f"{salt}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def read_fortune_entries(directory: str | Path) -> list[str]:
    """Read every fortune entry (text between ``%`` lines) of the UTF-8 files in ``directory``.

    Debian ships each file twice: plain (with overstrike sequences) and ``.u8``; the ``.u8`` copy is
    read when present. Raises :class:`MissingToolError` naming the ``fortunes`` package when there is none.
    """
    directory = Path(directory)
    files = (
        sorted(p for p in directory.glob("*") if p.is_file() and p.suffix not in (".dat", ".u8"))
        if directory.is_dir()
        else []
    )
    if not files:
        raise MissingToolError(f"no fortune files in {directory}", package="fortunes")
    entries: list[str] = []
    for path in files:
        u8 = path.with_name(path.name + ".u8")
        raw = (u8 if u8.exists() else path).read_text(encoding="utf-8", errors="replace")
        raw = _OVERSTRIKE.sub("", raw)
        entries.extend(e.strip() for e in re.split(r"^%\s*$", raw, flags=re.MULTILINE) if e.strip())
    return entries


def split_into_sentences(entry: str) -> list[str]:
    """Split one fortune entry into sentences, dropping attribution lines (``-- Author``)."""
    lines = [line.strip() for line in entry.splitlines()]
    body = " ".join(line for line in lines if line and not line.startswith("--"))
    body = re.sub(r"\s+", " ", body)
    sentences = (_QA_LABEL.sub("", s.strip()) for s in _SENTENCE_END.split(body))
    return [s for s in sentences if s]


def _speakable(sentence: str) -> bool:
    if not _ALLOWED.match(sentence) or _ACRONYM.search(sentence):
        return False
    if "--" in sentence or _ODD_SPELLING.search(sentence):
        return False
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", sentence)}
    return not (words & _ABBREVIATIONS)


def clean_sentences(
    raw_sentences: Iterable[str],
    normalizer: TextNormalizer | None = None,
    min_words: int = 4,
    max_words: int = 20,
) -> list[Sentence]:
    """Keep speakable sentences of ``min_words``..``max_words`` words, deduplicated on the transcript.

    The first spelling of a duplicated transcript wins; the result is sorted by transcript so it does
    not depend on the order of the input files.
    """
    normalizer = normalizer or TextNormalizer()
    kept: dict[str, str] = {}
    for sentence in raw_sentences:
        if not _speakable(sentence):
            continue
        text = normalizer(sentence)
        if min_words <= len(text.split()) <= max_words and text not in kept:
            kept[text] = sentence
    return [Sentence(spoken=kept[t], text=t) for t in sorted(kept)]


def assign_splits(
    sentences: Iterable[Sentence], shares: Mapping[str, float], salt: str = ""
) -> dict[str, list[Sentence]]:
    """Assign each sentence to one split by its hash; shares are relative weights (normalised here).

    Within a split sentences are ordered by a second, split-specific hash, so taking the first ``n``
    gives a random-looking but stable subset.

    >>> parts = assign_splits([Sentence("Hi there you all.", "hi there you all")], {"lm": 0.9, "test": 0.1})
    >>> sum(len(v) for v in parts.values())
    1
    """
    names = list(shares)
    total = float(sum(shares.values()))
    bounds, acc = [], 0.0
    for name in names:
        acc += shares[name] / total
        bounds.append(acc)
    parts: dict[str, list[Sentence]] = {name: [] for name in names}
    for sentence in sentences:
        position = sentence_hash(sentence.text, salt)
        index = next((i for i, b in enumerate(bounds) if position < b), len(names) - 1)
        parts[names[index]].append(sentence)
    for name, items in parts.items():
        order = f"{salt}/{name}"
        items.sort(key=lambda s: (sentence_hash(s.text, order), s.text))
    return parts


def limit_vocabulary(sentences: list[Sentence], max_vocabulary: int) -> list[Sentence]:
    """Keep the sentences whose words are all among the ``max_vocabulary`` most frequent ones.

    Frequencies are counted over ``sentences`` themselves (ties broken alphabetically, so the
    result is deterministic); a smaller vocabulary gives a medium-vocabulary task with fewer
    out-of-vocabulary words for the LM and more repetitions of each word for the acoustic model.
    """
    counts = Counter(word for sentence in sentences for word in sentence.text.split())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    vocabulary = {word for word, _ in ranked[:max_vocabulary]}
    return [s for s in sentences if all(word in vocabulary for word in s.text.split())]


def load_sentences(
    directory: str | Path, min_words: int, max_words: int, normalizer: TextNormalizer | None = None,
    max_vocabulary: int | None = None,
) -> list[Sentence]:
    """Read, split and clean all fortunes in ``directory`` (see :func:`clean_sentences`), optionally
    keeping only sentences within the ``max_vocabulary`` most frequent words."""
    raw = (s for entry in read_fortune_entries(directory) for s in split_into_sentences(entry))
    sentences = clean_sentences(raw, normalizer, min_words, max_words)
    return limit_vocabulary(sentences, max_vocabulary) if max_vocabulary else sentences


def unspoken_sentences(
    directory: str | Path, spoken: Iterable[str], normalizer: TextNormalizer | None = None,
    max_words: int = LM_MAX_WORDS,
) -> list[str]:
    """Transcripts of every speakable fortunes sentence (1..``max_words`` words, any vocabulary) that
    is not in ``spoken``, sorted: LM text that no utterance of the corpus says."""
    raw = (s for entry in read_fortune_entries(directory) for s in split_into_sentences(entry))
    spoken = set(spoken)
    return [s.text for s in clean_sentences(raw, normalizer, 1, max_words) if s.text not in spoken]
