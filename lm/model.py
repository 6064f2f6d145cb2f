"""Loading, checking and querying a KenLM model (ARPA or binary) and its unigram list.

Beam-search decoders need the LM's vocabulary as a plain word list (pyctcdecode's ``unigrams``,
flashlight's lexicon). :func:`build_lm` writes it beside the model as ``<stem>.unigrams.txt``;
:func:`read_unigrams` finds it (or reads an ARPA's 1-gram section when the list is missing).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from selftrain.errors import LMError
from selftrain.io import atomic_write_text

__all__ = [
    "SPECIAL_WORDS",
    "load_kenlm",
    "unigrams_path",
    "read_unigrams",
    "arpa_unigrams",
    "write_unigrams",
    "Perplexity",
    "perplexity",
    "is_arpa",
]

SPECIAL_WORDS = frozenset({"<s>", "</s>", "<unk>"})
_BINARY_MAGIC = b"mmap lm "  # KenLM binary files start with this


def is_arpa(path: str | Path) -> bool:
    """True when ``path`` looks like an ARPA text file (by content, not by name)."""
    with open(path, "rb") as handle:
        head = handle.read(64)
    return not head.startswith(_BINARY_MAGIC) and b"\\data\\" in head


def load_kenlm(path: str | Path):  # -> kenlm.Model
    """Load an ARPA or KenLM binary model; raise :class:`LMError` when missing or corrupt.

    The last two models loaded are kept: a process that builds several decoders over one LM (an
    experiment's teachers and evaluations, a decoder tuning's settings) reads it once. A file
    rewritten since (another size or modification time) is loaded anew.
    """
    path = Path(path)
    if not path.is_file():
        raise LMError(f"language model not found: {path}")
    stat = path.stat()
    if stat.st_size == 0:
        raise LMError(f"language model {path} is empty")
    return _load_kenlm_file(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _load_kenlm_file(path: str, mtime_ns: int, size: int):  # the file's identity is part of the key
    import kenlm

    try:
        return kenlm.Model(path)
    except Exception as exc:  # kenlm raises OSError or RuntimeError with KenLM's message inside
        detail = " ".join(str(exc).split())[:300]
        raise LMError(f"cannot load language model {path}: not a valid ARPA or KenLM binary file ({detail})") from exc


def unigrams_path(lm_path: str | Path) -> Path:
    """Where the unigram list of ``lm_path`` lives: ``LM.arpa`` -> ``LM.unigrams.txt``."""
    lm_path = Path(lm_path)
    return lm_path.with_name(f"{lm_path.stem}.unigrams.txt")


def arpa_unigrams(arpa_path: str | Path) -> list[str]:
    """The words of an ARPA file's 1-gram section (without ``<s>``, ``</s>``, ``<unk>``), in file order."""
    words: list[str] = []
    in_unigrams = False
    with open(arpa_path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line == "\\1-grams:":
                in_unigrams = True
                continue
            if in_unigrams:
                if not line or line.startswith("\\"):
                    break
                parts = line.split("\t")
                if len(parts) >= 2 and parts[1] not in SPECIAL_WORDS:
                    words.append(parts[1])
    if not words:
        raise LMError(f"{arpa_path}: no 1-grams found; not an ARPA file or an empty model")
    return words


def write_unigrams(words: Iterable[str], path: str | Path) -> Path:
    """Write a sorted, de-duplicated word list (one per line) atomically; returns ``path``."""
    unique = sorted(set(words) - SPECIAL_WORDS)
    atomic_write_text(path, "".join(f"{w}\n" for w in unique))
    return Path(path)


def read_unigrams(lm_path: str | Path) -> list[str]:
    """The LM's vocabulary: ``<stem>.unigrams.txt`` beside it, else the ARPA's 1-grams.

    Raises :class:`LMError` for a binary model without its unigram list.
    """
    listed = unigrams_path(lm_path)
    if listed.is_file():
        return [w for w in listed.read_text(encoding="utf-8").splitlines() if w]
    if Path(lm_path).is_file() and is_arpa(lm_path):
        return arpa_unigrams(lm_path)
    raise LMError(
        f"no unigram list for {lm_path}: expected {listed} (written by 'selftrain lm build'); "
        "beam search with a binary LM needs it"
    )


@dataclass
class Perplexity:
    """Perplexity of a text under an LM (``</s>`` counted as a token, OOV words included)."""

    perplexity: float
    sentences: int
    words: int
    oov: int

    @property
    def oov_rate(self) -> float:
        return self.oov / self.words if self.words else 0.0


def perplexity(model, sentences: Iterable[str]) -> Perplexity:
    """Perplexity of already-normalised ``sentences`` under a loaded kenlm ``model``."""
    log10_total = 0.0
    n_sentences = n_words = n_oov = 0
    for sentence in sentences:
        words = sentence.split()
        if not words:
            continue
        n_sentences += 1
        n_words += len(words)
        n_oov += sum(1 for w in words if w not in model)
        log10_total += model.score(sentence, bos=True, eos=True)
    tokens = n_words + n_sentences  # each sentence also predicts </s>
    value = 10.0 ** (-log10_total / tokens) if tokens else math.nan
    return Perplexity(value, n_sentences, n_words, n_oov)
