"""Every relative Markdown link in the user and research documentation resolves to an existing file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Outputs of runs (ignored by git) may hold Markdown of their own; they are not documentation.
SKIP = {"work", "runs", "demo_work", "kill_suite", "stream_memory", ".venv", "__pycache__"}

INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
FENCE = re.compile(r"^\s*(```|~~~).*?^\s*\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1)[^\n]|\n(?!\s*\n))+?\1")  # within one paragraph


def documents() -> list[Path]:
    found = [ROOT / "README.md"]
    for folder in ("docs", "recipes", "benchmarks"):
        found += [p for p in sorted((ROOT / folder).rglob("*.md"))
                  if not SKIP.intersection(p.relative_to(ROOT).parts)]
    return found


def relative_links(markdown: str) -> list[str]:
    """The link targets of ``markdown`` that point into the repository (no URL, no pure #anchor)."""
    text = CODE_SPAN.sub("", FENCE.sub("", markdown))  # a link in code is an example, not a link
    targets = INLINE.findall(text) + REFERENCE.findall(text)
    return [t for t in targets if not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", t) and not t.startswith("#")]


def test_relative_links_are_found_outside_code_only() -> None:
    markdown = ("See [the index](results/INDEX.md#top), ![plot](a.png \"title\") and [web](https://x.org).\n"
                "[ref]: ../docs/x.md\n[here](#anchor) [mail](mailto:a@b.c)\n"
                "`[not](code.md)`\n```\n[nor](fenced.md)\n```\n"
                "A stray ` backtick.\n\n[still](found.md) `x`\n")
    assert relative_links(markdown) == ["results/INDEX.md#top", "a.png", "found.md", "../docs/x.md"]


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    broken = []
    for target in relative_links(document.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0].split("?", 1)[0]
        resolved = (ROOT / path.lstrip("/")) if path.startswith("/") else (document.parent / path)
        if not resolved.exists():
            broken.append(target)
    assert not broken, f"{document.relative_to(ROOT)}: links to missing files: {broken}"
