"""LM text from installed documentation: sentences of HTML and plain-text files (gzip'ed or not).

A corpus whose transcripts are few (the Dutch Fish Fillets dialogs) needs more LM text in its
language; Debian ships translated manuals, which are prose once code, URLs, numbers, acronyms and
untranslated paragraphs are left out. :func:`extract_doc_text` reads files or folders, splits
paragraphs into sentences, drops each unusable one with a counted reason, normalises the rest with
the caller's :class:`~selftrain.text.TextNormalizer` and keeps each sentence once, in the order
first seen (paths in the order given, a folder's files sorted), so the same files always give the
same text.

>>> report = extract_doc_text(["/usr/share/doc/debian/FAQ/nl"], "nl.txt", DocTextConfig(lang="nl"),
...                           normalizer=TextNormalizer())  # doctest: +SKIP
>>> report.sentences, report.dropped  # doctest: +SKIP
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from selftrain.errors import LMError
from selftrain.text import TextNormalizer

__all__ = ["DocTextConfig", "DocTextReport", "DebianDocs", "DEBIAN_DOCS", "HTML_SUFFIXES", "TEXT_SUFFIXES",
           "debian_docs", "read_lexicon", "read_paragraphs", "split_sentences", "sentence_drop_reason", "extract_doc_text"]

HTML_SUFFIXES = (".html", ".htm", ".xhtml")
TEXT_SUFFIXES = (".txt",)
# Text in these elements is code, commands or file names: a sentence holding any of it is dropped.
CODE_TAGS = frozenset({"pre", "code", "kbd", "samp", "tt", "var"})
HIDDEN_TAGS = frozenset({"script", "style"})  # never shown: skipped without a trace
# These end a paragraph: a sentence never runs from one into the next.
BLOCK_TAGS = frozenset({"p", "div", "li", "ul", "ol", "dl", "dt", "dd", "td", "th", "tr", "table", "caption",
                        "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "blockquote", "section", "title",
                        "pre", "figcaption", "head", "body"})
VOID_TAGS = frozenset({"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr"})
CODE_MARK = "\x00"  # stands for skipped code inside a paragraph
_INVISIBLE = dict.fromkeys(map(ord, "\xad\u200b\u200c\u200d\ufeff"))  # soft hyphen, zero widths: no word break

_SENTENCE_BREAK = re.compile(r"([.!?][\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(]*(\w))")
_URL = re.compile(r"[a-z]+://|\bwww\.|\S@\S+\.\w", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_CODE = re.compile(r"[/\\_=<>{}\[\]$#@~|*^%&+`\x00]|--|\w\(")
_TRAILER = re.compile(r"[.!?\"'\u201d\u2019)\]\s]+$")
_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*$")
_LETTERS = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class DocTextConfig:
    """Which sentences :func:`extract_doc_text` keeps."""

    lang: str = ""  # HTML elements marked (lang=, xml:lang=) as another language are skipped; "" = keep all
    chars: str = ""  # characters a normalised sentence may use besides the space; "" = any
    min_words: int = 2  # fewest words a sentence may have (shorter ones are mostly labels and menu items)
    max_words: int = 40  # most words a sentence may have (longer ones are mostly lists or unpunctuated text)
    require_end_punctuation: bool = True  # headings, table cells and captions lack it
    drop_acronyms: bool = True  # a word with two capitals (GNU, LTSP) is spelled out, not read as written
    lexicon_min_known: float = 0.8  # with a lexicon: the share of a sentence's words it must hold
    lexicon_words: bool = False  # also write every lexicon word as a one-word line (see the recipe README)

    def __post_init__(self) -> None:
        if not 1 <= self.min_words <= self.max_words:
            raise LMError(f"need 1 <= min_words <= max_words, got {self.min_words} and {self.max_words}")
        if not 0.0 <= self.lexicon_min_known <= 1.0:
            raise LMError(f"lexicon_min_known is a share from 0 to 1, got {self.lexicon_min_known}")


@dataclass
class DocTextReport:
    """What :func:`extract_doc_text` read, kept and dropped (written as JSON beside the text)."""

    out: str
    files: int  # files read
    skipped_files: dict[str, int]  # files not read, by reason
    sentences_seen: int
    sentences: int  # lines written from the documents
    words: int
    vocabulary: int
    dropped: dict[str, int]  # sentences dropped, by reason
    lexicon_lines: int = 0  # one-word lines added from the lexicon
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DebianDocs:
    """A language's documentation and word list in Debian: the package that installs each path."""

    docs: dict[str, str]  # folder -> package
    lexicon: tuple[str, str]  # (word list, package)


DEBIAN_DOCS = {
    "nl": DebianDocs(
        docs={"/usr/share/doc/debian/FAQ/nl": "debian-faq-nl",  # HTML; the FAQ's .txt.gz is the same text
              "/usr/share/doc/aptitude/html/nl": "aptitude-doc-nl",
              "/usr/share/doc/debian-edu-doc-nl": "debian-edu-doc-nl",
              "/usr/share/doc/debian-edu-doc-legacy-nl": "debian-edu-doc-legacy-nl"},
        lexicon=("/usr/share/dict/dutch", "wdutch"),
    ),
}


def debian_docs(lang: str, lexicon: bool = True) -> tuple[list[str], str]:
    """The installed documentation folders and word list of ``lang``; raises :class:`LMError` with the
    ``apt-get install`` line when a package is missing."""
    if lang not in DEBIAN_DOCS:
        raise LMError(f"no Debian documentation is listed for language {lang!r} (known: "
                      f"{', '.join(sorted(DEBIAN_DOCS))}): pass the files or folders to read")
    known = DEBIAN_DOCS[lang]
    wanted = dict(known.docs, **({known.lexicon[0]: known.lexicon[1]} if lexicon else {}))
    missing = sorted({package for path, package in wanted.items() if not Path(path).exists()})
    if missing:
        raise LMError(f"missing Debian packages for {lang!r} text: install them with "
                      f"`apt-get install {' '.join(missing)}` (as root)")
    return list(known.docs), known.lexicon[0] if lexicon else ""


class _ParagraphParser(HTMLParser):
    """Paragraphs of an HTML page: text outside code and other-language elements, split at blocks."""

    def __init__(self, lang: str) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = lang.lower()
        self.paragraphs: list[str] = []
        self._parts: list[str] = []
        self._code_depth = 0
        self._open: Counter[str] = Counter()
        self._langs: list[tuple[str, int, bool]] = []  # (tag, its nesting level, is our language)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK_TAGS:
            self._flush()
        if tag in VOID_TAGS:
            return
        self._open[tag] += 1
        lang = next((v for k, v in attrs if k in ("lang", "xml:lang") and v), None)
        if lang is not None:
            ours = not self.lang or lang.lower().replace("_", "-").split("-")[0] == self.lang
            self._langs.append((tag, self._open[tag], ours))
        if tag in CODE_TAGS or tag in HIDDEN_TAGS:
            self._code_depth += 1
            if tag in CODE_TAGS and self._in_language():
                self._parts.append(f" {CODE_MARK} ")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_TAGS or self._open[tag] == 0:
            return
        if self._langs and self._langs[-1][:2] == (tag, self._open[tag]):
            self._langs.pop()
        self._open[tag] -= 1
        if tag in CODE_TAGS or tag in HIDDEN_TAGS:
            self._code_depth -= 1
        if tag in BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._code_depth == 0 and self._in_language():
            self._parts.append(data)

    def close(self) -> None:
        super().close()
        self._flush()

    def _in_language(self) -> bool:
        return not self._langs or self._langs[-1][2]

    def _flush(self) -> None:
        text = " ".join("".join(self._parts).translate(_INVISIBLE).split())
        if text:
            self.paragraphs.append(text)
        self._parts = []


def _kind(path: Path) -> str | None:
    """``"html"``, ``"text"`` or None (not read) from the name, a ``.gz`` ending looked through."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(HTML_SUFFIXES):
        return "html"
    return "text" if name.endswith(TEXT_SUFFIXES) else None


def _text_paragraphs(text: str) -> list[str]:
    """Paragraphs of plain text: blank lines separate them, line breaks inside one are spaces."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text) if block.strip()]


def read_paragraphs(path: str | Path, lang: str = "") -> list[str]:
    """The paragraphs of one HTML or plain-text file (read through gzip when it ends in ``.gz``).

    Raises :class:`LMError` when the file cannot be read or is not UTF-8 text.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        text = raw.decode("utf-8").translate(_INVISIBLE)
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise LMError(f"cannot read {path}: {exc}") from exc
    if _kind(path) != "html":
        return _text_paragraphs(text)
    parser = _ParagraphParser(lang)
    parser.feed(text)
    parser.close()
    return parser.paragraphs


def split_sentences(paragraph: str) -> list[str]:
    """``paragraph`` cut after ``.``, ``!`` or ``?`` (and closing quotes) where a capital follows; a
    lower-case word after a period (``bijv. dit``) stays in the sentence.

    >>> split_sentences("Dat is 't. Ga nu, bijv. hier! \\"Ja.\\" Klaar")
    ["Dat is 't.", 'Ga nu, bijv. hier!', '"Ja."', 'Klaar']
    """
    def cut(match: re.Match) -> str:
        return match.group(1) + ("\n" if match.group(2).isupper() else " ")

    return [s.strip() for s in _SENTENCE_BREAK.sub(cut, paragraph).split("\n") if s.strip()]


def _has_acronym(sentence: str) -> bool:
    for word in _LETTERS.findall(sentence):
        word = re.sub(r"^IJ(?=[a-z])", "Ij", word)  # Dutch capitalises the digraph: IJsselmeer
        if sum(c.isupper() for c in word) >= 2:
            return True
    return False


def sentence_drop_reason(sentence: str, config: DocTextConfig) -> str | None:
    """Why a raw sentence is not LM text: ``url``, ``digits``, ``code``, ``abbreviation`` (a period
    before its end: o.a., bijv., file names), ``acronym``, ``no_end_punctuation``; None to keep it."""
    if _URL.search(sentence):
        return "url"
    if _DIGIT.search(sentence):
        return "digits"
    if _CODE.search(sentence):
        return "code"
    if "." in _TRAILER.sub("", sentence):
        return "abbreviation"
    if config.drop_acronyms and _has_acronym(sentence):
        return "acronym"
    if config.require_end_punctuation and not _END.search(sentence):
        return "no_end_punctuation"
    return None


def _normalised_reason(words: Sequence[str], config: DocTextConfig, lexicon: frozenset[str]) -> str | None:
    """Why a normalised sentence (its ``words``) is not LM text, or None."""
    if not words:
        return "empty"
    if len(words) < config.min_words:
        return "too_short"
    if len(words) > config.max_words:
        return "too_long"
    if config.chars and set("".join(words)) - set(config.chars):
        return "outside_alphabet"
    if lexicon and sum(w in lexicon for w in words) < config.lexicon_min_known * len(words):
        return "not_in_lexicon"
    return None


def _files(paths: Iterable[str | Path], skipped: Counter[str]) -> Iterator[Path]:
    """The files to read: each given file, and a folder's HTML and text files (sorted)."""
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise LMError(f"no such file or folder: {path}")
        if path.is_file():
            yield path
            continue
        for found in sorted(p for p in path.rglob("*") if p.is_file()):
            if _kind(found) is None:
                skipped["not_html_or_text"] += 1
            else:
                yield found


def read_lexicon(path: str | Path, normalizer: TextNormalizer) -> frozenset[str]:
    """The normalised one-word entries of a word list (one word a line, e.g. ``/usr/share/dict/dutch``)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise LMError(f"cannot read word list {path}: {exc}") from exc
    words = (normalizer(line) for line in lines if not _DIGIT.search(line) and "." not in line)
    return frozenset(w for w in words if w and " " not in w)


def _sentences(files: Iterable[Path], config: DocTextConfig, normalizer: TextNormalizer,
               lexicon: frozenset[str], counts: Counter[str]) -> Iterator[str]:
    """The kept normalised sentences of ``files`` (duplicates included); drops counted in ``counts``."""
    for path in files:
        try:
            paragraphs = read_paragraphs(path, config.lang)
        except LMError:
            counts["file:unreadable"] += 1
            continue
        counts["file:read"] += 1
        for paragraph in paragraphs:
            for raw in split_sentences(paragraph):
                counts["seen"] += 1
                reason = sentence_drop_reason(unicodedata.normalize("NFC", raw), config)
                words = normalizer(raw).split() if reason is None else []
                reason = reason or _normalised_reason(words, config, lexicon)
                if reason:
                    counts[f"drop:{reason}"] += 1
                else:
                    yield " ".join(words)


def _lexicon_lines(lexicon: Iterable[str], vocabulary: set[str], chars: str) -> list[str]:
    """The lexicon's words the sentences lack and ``chars`` can write, sorted: one-word lines."""
    return sorted(w for w in lexicon if w not in vocabulary and not (chars and set(w) - set(chars)))


def extract_doc_text(paths: Sequence[str | Path], out: str | Path, config: DocTextConfig,
                     normalizer: TextNormalizer, lexicon: str | Path = "") -> DocTextReport:
    """Write the usable sentences of ``paths`` (files, or folders searched for HTML and ``.txt``
    files, each maybe ``.gz``) to ``out``, one normalised sentence a line, each once.

    ``lexicon`` (a word list) drops sentences whose words it mostly lacks (untranslated text), and
    with ``config.lexicon_words`` adds its words as one-word lines. Raises :class:`LMError` for a
    missing path or when no sentence is left.
    """
    from selftrain.io import atomic_write_text

    counts: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    words = read_lexicon(lexicon, normalizer) if lexicon else frozenset()
    seen: dict[str, None] = {}
    for sentence in _sentences(_files(paths, skipped), config, normalizer, words, counts):
        if sentence in seen:
            counts["drop:duplicate"] += 1
        seen.setdefault(sentence)
    if not seen:
        raise LMError(f"no usable sentence in {', '.join(map(str, paths))} ({counts['file:read']} files read)")
    lines = list(seen)
    vocabulary = {w for line in lines for w in line.split()}
    extra = _lexicon_lines(words, vocabulary, config.chars) if config.lexicon_words else []
    atomic_write_text(out, "".join(f"{line}\n" for line in [*lines, *extra]))
    skipped["unreadable"] += counts["file:unreadable"]
    return DocTextReport(
        out=str(out), files=counts["file:read"], skipped_files={k: n for k, n in sorted(skipped.items()) if n},
        sentences_seen=counts["seen"], sentences=len(lines), words=sum(len(line.split()) for line in lines),
        vocabulary=len(vocabulary), lexicon_lines=len(extra),
        dropped={k.removeprefix("drop:"): n for k, n in sorted(counts.items()) if k.startswith("drop:")},
        config=asdict(config),
    )
