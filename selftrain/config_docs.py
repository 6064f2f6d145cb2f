"""What a config dataclass says about its fields, read from its source: the ``name: text`` entries of
its docstring and each field's comment. The reference pages (:mod:`selftrain.reference`) and the
help of command-line options that set a field (:func:`option_help`) both come from here, so a
field is described once, beside its default.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize

__all__ = ["class_docs", "option_help"]


def _field_comments(cls: type) -> dict[str, str]:
    """Each field's comment in the class source: the comment lines just above it and its inline one."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    result: dict[str, str] = {}
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    for node in body.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line >= 1 and line in comments and lines[line - 1].lstrip().startswith("#"):
            above.insert(0, comments[line])
            line -= 1
        inline = [comments[n] for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)
                  if n in comments and not lines[n - 1].lstrip().startswith("#")]
        text = " ".join(above + inline).strip()
        if text:
            result[node.target.id] = text
    return result


_ENTRY = re.compile(r"^([A-Za-z_]\w*(?: / [A-Za-z_]\w*)*): (.*)$")


def _split_docstring(doc: str, names: set[str]) -> tuple[str, dict[str, str]]:
    """Separate ``name: text`` entries (continued on indented lines) from the docstring's prose.

    Several configs document their fields that way (``a / b: text`` documents both); the entries
    go into the table's description column and the rest stays above the table.
    """
    prose: list[str] = []
    groups: list[tuple[list[str], list[str]]] = []
    current: list[str] | None = None
    for line in doc.splitlines():
        match = _ENTRY.match(line)
        keys = match.group(1).split(" / ") if match else []
        if match and all(key in names for key in keys):
            current = [match.group(2)]
            groups.append((keys, current))
        elif current is not None and line.startswith((" ", "\t")) and line.strip():
            current.append(line.strip())
        else:
            current = None
            prose.append(line)
    entries: dict[str, str] = {}
    for keys, lines in groups:
        text = " ".join(lines)
        # "alpha: LM weight; beta: word bonus." documents two fields on one line
        parts = re.split(r";\s+([A-Za-z_]\w*): ", text)
        inline = {name: part for name, part in zip(parts[1::2], parts[2::2], strict=True) if name in names}
        if inline and len(inline) == len(parts) // 2:
            text = parts[0]
            entries.update(inline)
        entries.update({key: text for key in keys})
    return re.sub(r"\n{3,}", "\n\n", "\n".join(prose)).strip(), entries


_PARSED: dict[type, tuple[str, dict[str, str]]] = {}  # each class's source is read once per process


def class_docs(cls: type) -> tuple[str, dict[str, str]]:
    """``cls``'s docstring prose (its field entries taken out) and each field's description: its
    docstring entry, then its comment."""
    if cls not in _PARSED:
        _PARSED[cls] = _read_class_docs(cls)
    return _PARSED[cls]


def _read_class_docs(cls: type) -> tuple[str, dict[str, str]]:
    doc = inspect.getdoc(cls) or ""
    if doc.startswith(f"{cls.__name__}("):  # dataclass' generated signature, not a docstring
        doc = ""
    names = {f.name for f in dataclasses.fields(cls)}
    prose, entries = _split_docstring(doc, names)
    comments = _field_comments(cls)
    descriptions = {name: " ".join(t for t in (entries.get(name, ""), comments.get(name, "")) if t) for name in names}
    return prose, {name: text for name, text in descriptions.items() if text}


def _plain(text: str) -> str:
    """Docstring markup as terminal text: ``x`` -> 'x', :class:`~a.B` -> B."""
    text = re.sub(r":\w+:`~?([^`]+)`", lambda m: m.group(1).split(".")[-1], text)
    return re.sub(r"``([^`]+)``", r"'\1'", text)


def option_help(cls: type, field: str, extra: str = "") -> str:
    """Help text of a command-line option that sets ``cls.field``: the field's description without
    its bracketed default (click shows the option's own), as a sentence, then ``extra``."""
    description = class_docs(cls)[1].get(field)
    if description is None:
        raise KeyError(f"{cls.__name__}.{field} has no description in its docstring or comment")
    text = " ".join(re.sub(r"\s+\[[^\]]*\]", "", _plain(description)).split()).rstrip(".")
    return f"{text[:1].upper()}{text[1:]}." + (f" {extra}" if extra else "")
