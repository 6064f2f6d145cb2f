"""Writing a quality benchmark's results: JSON (NaN as null) and Markdown, with the exact command."""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable
from pathlib import Path

from selftrain.io import atomic_write_json, atomic_write_text


def finite(data):
    """NaN (undefined, e.g. WER of nothing kept) becomes null so the JSON is standard."""
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    if isinstance(data, float) and math.isnan(data):
        return None
    return data


def save_results(result: dict, script: str, argv: list[str], out_dir: str | Path, name: str,
                 to_markdown: Callable[[dict, str], str]) -> str:
    """Record the command in ``result``, write ``out_dir/name.{json,md}`` and return the Markdown."""
    command = f"python benchmarks/{script} " + " ".join(shlex.quote(a) for a in argv)
    result["command"] = command
    markdown = to_markdown(result, command)
    atomic_write_json(Path(out_dir) / f"{name}.json", finite(result))
    atomic_write_text(Path(out_dir) / f"{name}.md", markdown)
    return markdown
