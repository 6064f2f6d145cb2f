"""Reading Fish Fillets NG's dialogs: the ``dialogId``/``dialogStr`` calls of each level's
``script/<level>/dialogs_<lang>.lua``, the transcript rules (:data:`DIALOG_NORMALIZER`, which lines
are dropped and why) and the recordings that go with the lines (``sound/<level>/<lang>/<id>.ogg``).
:mod:`selftrain.data.fillets` splits and writes the corpus made of them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from selftrain.errors import CorpusError
from selftrain.text import TextNormalizer

__all__ = ["DIALOG_NORMALIZER", "DialogLine", "DroppedLine", "read_dialogs", "drop_reason", "normalize_line",
           "usable_lines"]

# Lower case, punctuation and typographic quotes dropped. Apostrophes (typographic ones too, which
# TextNormalizer maps to "'"; the dialogs also write a backtick) are kept inside a word ("zo'n",
# "auto's") and dropped at a word's ends ("'s" -> "s"), as the tokenizer's own normaliser does, so a
# transcript is left unchanged by it.
DIALOG_NORMALIZER = TextNormalizer(replacements={"`": "'"})

_FORMAT_STRING = re.compile(r"%\d+|%[-+ #0.]*\d*[a-zA-Z]|\{\d*\}")  # printf (%s, %5.2f), positional (%1), {}
_DIGIT = re.compile(r"\d")
_CALL = re.compile(r"\b(dialogId|dialogStr)\s*\(")
_ARGUMENT = re.compile(r"""\s*("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')\s*([,)])""")
_ESCAPE = re.compile(r"\\(\d{1,3}|.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True)
class DialogLine:
    """One ``dialogId``/``dialogStr`` pair of a level's dialog file."""

    level: str
    dialog_id: str
    font: str
    text: str
    english: str = ""

    @property
    def id(self) -> str:
        return f"{self.level}-{self.dialog_id}"


@dataclass(frozen=True)
class DroppedLine:
    """A dialog line (or clip) left out of every manifest, and why."""

    id: str
    reason: str
    detail: str = ""


def _unescape(literal: str) -> str:
    """The value of a Lua string literal (quotes included in ``literal``)."""
    def one(match: re.Match) -> str:
        code = match.group(1)
        return chr(int(code)) if code.isdigit() else _ESCAPES.get(code, code)

    return _ESCAPE.sub(one, literal[1:-1])


def _calls(text: str) -> Iterator[tuple[str, list[str] | None]]:
    """``(function, string arguments)`` of each dialog call outside ``--`` comment lines; None
    arguments when one is not a string literal. Hand-written: the files use two calls with
    literal arguments, and no Lua parser is in our stack."""
    for line in text.splitlines():
        if line.lstrip().startswith("--"):
            continue
        for match in _CALL.finditer(line):
            args, position = [], match.end()
            while (arg := _ARGUMENT.match(line, position)) is not None:
                args.append(_unescape(arg.group(1)))
                position = arg.end()
                if arg.group(2) == ")":
                    break
            closed = arg is not None or line[position:].lstrip().startswith(")")
            yield match.group(1), args if closed else None


def read_dialogs(path: str | Path, level: str, dropped: list[DroppedLine]) -> list[DialogLine]:
    """The dialog lines of one ``dialogs_<lang>.lua``; a ``dialogId`` without its ``dialogStr`` (or
    with arguments that are not strings) goes to ``dropped``."""
    lines: list[DialogLine] = []
    pending: list[str] | None = None
    for function, args in _calls(Path(path).read_text(encoding="utf-8", errors="replace")):
        if function == "dialogId":
            if pending:
                dropped.append(DroppedLine(f"{level}-{pending[0]}", "no_text", "dialogId without dialogStr"))
            pending = args or None
            if not args:
                dropped.append(DroppedLine(f"{level}-?", "unparsed", "dialogId without string arguments"))
        elif pending and args:
            lines.append(DialogLine(level, pending[0], pending[1] if len(pending) > 1 else "",
                                    args[0], pending[2] if len(pending) > 2 else ""))
            pending = None
    if pending:
        dropped.append(DroppedLine(f"{level}-{pending[0]}", "no_text", "dialogId without dialogStr"))
    return lines


def drop_reason(text: str) -> str | None:
    """Why a raw transcript cannot be used: ``format_string``, ``digits``, ``empty``; None when it can."""
    if _FORMAT_STRING.search(text):
        return "format_string"
    if _DIGIT.search(text):
        return "digits"
    if not normalize_line(text):
        return "empty"
    return None


def normalize_line(text: str) -> str:
    """A dialog line as a transcript (:data:`DIALOG_NORMALIZER`).

    >>> normalize_line("“Zo’n schip?” Dat is ’s morgens Één ideeën-ding.")
    "zo'n schip dat is s morgens één ideeën ding"
    """
    return DIALOG_NORMALIZER(text)


def _check_installed(root: Path, lang: str) -> list[tuple[str, Path]]:
    """``(level, dialog file)`` of every level with dialogs and recordings in ``lang``; raises
    :class:`CorpusError` naming the Debian package when there are none."""
    dialogs = sorted(root.glob(f"script/*/dialogs_{lang}.lua"))
    if not dialogs or not any(root.glob(f"sound/*/{lang}/*.ogg")):
        what = "dialog files" if not dialogs else "recordings"
        raise CorpusError(f"no Fish Fillets {what} for language '{lang}' under {root}: "
                          f"install them with `apt-get install fillets-ng-data-{lang}` (as root), or pass --root")
    return [(path.parent.name, path) for path in dialogs]


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def usable_lines(root: Path, lang: str, dropped: list[DroppedLine]) -> tuple[list[tuple[DialogLine, Path]], int, int, list[str]]:
    """Lines with a usable transcript and a first-of-its-bytes recording; the line count, the
    duplicate-clip count and the recordings no line names."""
    lines = [line for level, path in _check_installed(root, lang) for line in read_dialogs(path, level, dropped)]
    kept: list[tuple[DialogLine, Path]] = []
    seen_hashes: dict[str, str] = {}  # sha256 of a clip's bytes -> the line that kept it
    named: set[Path] = set()
    duplicates = 0
    for line in lines:
        audio = root / "sound" / line.level / lang / f"{line.dialog_id}.ogg"
        named.add(audio)
        reason = "no_audio" if not audio.is_file() else drop_reason(line.text)
        if reason:
            dropped.append(DroppedLine(line.id, reason, line.text))
            continue
        digest = _file_hash(audio)
        if digest in seen_hashes:
            duplicates += 1
            dropped.append(DroppedLine(line.id, "duplicate_audio", f"same bytes as {seen_hashes[digest]}"))
            continue
        seen_hashes[digest] = line.id
        kept.append((line, audio))
    orphans = sorted(str(p.relative_to(root)) for p in root.glob(f"sound/*/{lang}/*.ogg") if p not in named)
    return kept, len(lines), duplicates, orphans
