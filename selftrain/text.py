"""Text normalisation and the alphabet: the one place that decides which characters a model sees.

The same :class:`TextNormalizer` prepares transcripts for the tokenizer, LM text for ``lm build`` and
hypotheses of external systems for comparison, so they can never disagree. Nothing here is specific
to English: a "letter" is any Unicode letter or combining mark, so accented and non-Latin scripts
work as long as words are separated by spaces.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from selftrain.errors import TextError

__all__ = ["TextNormalizer", "Alphabet", "WORD_SEPARATOR", "SYMBOL_WORDS", "spell_numbers", "has_undecodable_bytes"]

WORD_SEPARATOR = " "

# Typographic apostrophes (right and left single quotation marks, modifier letter apostrophe): the
# same symbol as "'" inside a word ("zo\u2019n" is "zo'n"), so a kept "'" keeps them too.
APOSTROPHES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'"}

# Symbols that external recognizers write where a speaker says a word (see TextNormalizer.for_external).
SYMBOL_WORDS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at ", "=": " equals ", **APOSTROPHES}

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
             "nine": "ninth", "twelve": "twelfth"}
_NUMBER = re.compile(r"(?<!\d)(?<!\d\.)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\d)(?:(st|nd|rd|th|s)(?![^\W\d_]))?",
                     re.IGNORECASE)
_YEARS = (range(1100, 2000), range(2010, 2100))  # read in pairs: 1984 -> nineteen eighty four


def has_undecodable_bytes(*texts: str | None) -> bool:
    """True when any of ``texts`` holds bytes that were not UTF-8.

    Manifests are read with ``errors="surrogateescape"``, so such bytes arrive as lone surrogates
    (U+DC80..U+DCFF) instead of making the whole file unreadable; rows holding them are skipped.

    >>> has_undecodable_bytes("café", None), has_undecodable_bytes(b"caf\\xe9".decode("utf-8", "surrogateescape"))
    (False, True)
    """
    return any(text and any("\udc80" <= c <= "\udcff" for c in text) for text in texts)


def _below_thousand(n: int) -> list[str]:
    words = []
    if n >= 100:
        words += [_ONES[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
        if n:
            words.append(_ONES[n])
    elif n or not words:
        words.append(_ONES[n])
    return words


def _cardinal(n: int) -> list[str]:
    if n >= 1000 * _SCALES[0][0]:
        return [_ONES[int(d)] for d in str(n)]  # too large to read as a number: digit by digit
    words = []
    for value, name in _SCALES:
        if n >= value:
            words += [*_below_thousand(n // value), name]
            n %= value
    return words + _below_thousand(n) if n or not words else words


def _year(n: int) -> list[str]:
    high, low = divmod(n, 100)
    tail = ["hundred"] if low == 0 else ["oh", _ONES[low]] if low < 10 else _below_thousand(low)
    return _below_thousand(high) + tail


def _with_suffix(words: list[str], suffix: str) -> list[str]:
    """The last word made ordinal (``st``, ``nd``, ``rd``, ``th``) or plural (``s``, as in 1990s)."""
    last = words[-1]
    if suffix == "s":
        last = last[:-1] + "ies" if last.endswith("y") else last + ("es" if last.endswith("x") else "s")
    elif last in _ORDINALS:
        last = _ORDINALS[last]
    else:
        last = last[:-1] + "ieth" if last.endswith("y") else last + "th"
    return [*words[:-1], last]


def _spell_match(match: re.Match) -> str:
    digits, decimals, suffix = match.group(1), match.group(2), match.group(3)
    n = int(digits.replace(",", ""))
    plain_year = "," not in digits and not decimals and suffix in (None, "s") and len(digits) == 4
    words = _year(n) if plain_year and any(n in r for r in _YEARS) else _cardinal(n)
    if decimals:
        words += ["point", *(_ONES[int(d)] for d in decimals[1:])]
    elif suffix:
        words = _with_suffix(words, suffix.lower())
    return f" {' '.join(words)} "


def spell_numbers(text: str) -> str:
    """Write the numbers of ``text`` in English words (cardinals, decimals, ordinals, plurals, years).

    Four-digit numbers from 1100 to 1999 and 2010 to 2099 are read as years (in pairs); a number
    glued to letters is still read (``3D`` -> ``three D``).

    >>> spell_numbers("42 cats, 3.5 dogs, the 21st of 1,000 in 1984")
    ' forty two  cats,  three point five  dogs, the  twenty first  of  one thousand  in  nineteen eighty four '
    """
    return _NUMBER.sub(_spell_match, text)


@dataclass
class TextNormalizer:
    """Configurable transcript normalisation.

    Steps, in order: Unicode normalisation (``unicode_form``), user ``replacements`` (applied to the
    raw string, e.g. ``{"&": " and "}``), numbers written out in English words (when
    ``spell_numbers``: see :func:`spell_numbers`), lower-casing, then every character that is not a
    letter, a combining mark, a digit (when ``keep_digits``) or one of ``keep_chars`` becomes a space;
    runs of spaces collapse to one.

    >>> TextNormalizer()("Don't PANIC -- it's 42!")
    "don't panic it's"
    >>> TextNormalizer()("Zo\u2019n auto\u2019s")
    "zo'n auto's"
    >>> TextNormalizer(keep_digits=True)("Ça coûte 42 €.")
    'ça coûte 42'
    >>> TextNormalizer().for_external()("It’s 42% off & the 3rd time!")
    "it's forty two percent off and the third time"
    """

    lowercase: bool = True
    unicode_form: str = "NFC"
    keep_chars: str = "'"
    keep_digits: bool = False
    replacements: dict[str, str] = field(default_factory=dict)
    spell_numbers: bool = False

    def __call__(self, text: str) -> str:
        text = unicodedata.normalize(self.unicode_form, text)  # type: ignore[arg-type]
        if "'" in self.keep_chars:
            for old, new in APOSTROPHES.items():
                text = text.replace(old, new)
        for old, new in self.replacements.items():
            text = text.replace(old, new)
        if self.spell_numbers:
            text = spell_numbers(text)
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

    def for_external(self) -> TextNormalizer:
        """This normaliser, extended for other recognizers' output: numbers spelled out and the
        symbols of :data:`SYMBOL_WORDS` read as words (this normaliser's own replacements win)."""
        return replace(self, spell_numbers=True, replacements={**SYMBOL_WORDS, **self.replacements})

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

    def fold(self, text: str) -> str:
        """``text`` written with this alphabet only: an unknown character becomes its base letter when
        that is known (``é`` -> ``e``), else it is dropped; words left empty disappear.

        >>> Alphabet(list(" abcdefr")).fold("café à bar")
        'cafe a bar'
        """
        known = set(self.chars)
        out = []
        for char in text:
            if char in known:
                out.append(char)
            else:
                out.extend(c for c in unicodedata.normalize("NFKD", char) if c in known)
        return WORD_SEPARATOR.join(word for word in "".join(out).split(WORD_SEPARATOR) if word)

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
