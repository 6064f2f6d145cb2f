"""Text normalisation and the alphabet: the one place that decides which characters a model sees.

The same :class:`TextNormalizer` prepares transcripts for the tokenizer, LM text for ``lm build`` and
hypotheses of external systems for comparison, so they can never disagree. Nothing here is specific
to English: a "letter" is any Unicode letter or combining mark, so accented and non-Latin scripts
work as long as words are separated by spaces.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from selftrain.errors import TextError

__all__ = ["TextNormalizer", "Alphabet", "WORD_SEPARATOR"]

WORD_SEPARATOR = " "


@dataclass
class TextNormalizer:
    """Configurable transcript normalisation.

    Steps, in order: Unicode normalisation (``unicode_form``), user ``replacements`` (applied to the
    raw string, e.g. ``{"&": " and "}``), lower-casing, then every character that is not a letter, a
    combining mark, a digit (when ``keep_digits``) or one of ``keep_chars`` becomes a space; runs of
    spaces collapse to one.

    >>> TextNormalizer()("Don't PANIC -- it's 42!")
    "don't panic it's"
    >>> TextNormalizer(keep_digits=True)("Ça coûte 42 €.")
    'ça coûte 42'
    """

    lowercase: bool = True
    unicode_form: str = "NFC"
    keep_chars: str = "'"
    keep_digits: bool = False
    replacements: dict[str, str] = field(default_factory=dict)

    def __call__(self, text: str) -> str:
        text = unicodedata.normalize(self.unicode_form, text)  # type: ignore[arg-type]
        for old, new in self.replacements.items():
            text = text.replace(old, new)
        if self.lowercase:
            text = text.lower()
        chars = [c if self._is_kept(c) else " " for c in text]
        words = "".join(chars).split()
        # Kept symbols such as apostrophes mean something inside a word only, not as quotes around it.
        words = [w for w in (w.strip(self.keep_chars) for w in words) if w]
        return WORD_SEPARATOR.join(words)

    def _is_kept(self, char: str) -> bool:
        category = unicodedata.category(char)
        if category[0] in ("L", "M"):
            return True
        if category[0] == "N":
            return self.keep_digits
        return char in self.keep_chars

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TextNormalizer:
        return cls(**data)


@dataclass
class Alphabet:
    """The characters a model can emit, in a fixed order (the word separator is always included).

    Built from the normalised training transcripts (:meth:`from_texts`) or given in config; saved
    beside every model so that decoding, LM building and checking use the very same set.
    """

    chars: list[str]

    def __post_init__(self) -> None:
        if WORD_SEPARATOR not in self.chars:
            self.chars = [WORD_SEPARATOR, *self.chars]
        if len(set(self.chars)) != len(self.chars):
            raise TextError("alphabet has duplicate characters")

    @classmethod
    def from_texts(cls, texts: Iterable[str], min_count: int = 1) -> Alphabet:
        """Collect the characters of already-normalised ``texts`` seen at least ``min_count`` times."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(text)
        chars = sorted(c for c, n in counts.items() if n >= min_count and c != WORD_SEPARATOR)
        if not chars:
            raise TextError("cannot build an alphabet from empty text")
        return cls([WORD_SEPARATOR, *chars])

    def unknown_chars(self, text: str) -> set[str]:
        """Characters of ``text`` that are not in the alphabet."""
        known = set(self.chars)
        return {c for c in text if c not in known}

    def save(self, path: str | Path) -> None:
        from selftrain.io import atomic_write_text

        atomic_write_text(path, json.dumps({"chars": self.chars}, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Alphabet:
        try:
            return cls(json.loads(Path(path).read_text(encoding="utf-8"))["chars"])
        except (OSError, ValueError, KeyError) as exc:
            raise TextError(f"cannot read alphabet {path}: {exc}") from exc

    def __len__(self) -> int:
        return len(self.chars)
