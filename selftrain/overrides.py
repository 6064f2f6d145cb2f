"""Layering configuration overrides: the one reader of config files, the one ``--set`` parser and
the one deep merge, shared by every config that takes a file and nested overrides.

Nothing heavy is imported at module level (YAML only when a file is read), so the CLI can use
this module without slowing ``--help``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from selftrain.errors import ConfigError
from selftrain.messages import one_line

__all__ = ["deep_merge", "parse_overrides", "read_config_file"]


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping stored in the config file ``path``: JSON when its suffix is ``.json``, YAML
    otherwise; an empty file is ``{}``.

    Raises :class:`ConfigError` on one line naming the file when the file cannot be read or parsed,
    or when its top level is not a mapping (the CLI shows it as a usage error).
    """
    import json

    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" and text.strip() else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {one_line(str(exc))}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``--set`` values as nested overrides: ``["a.b=1", "c=x"]`` -> ``{"a": {"b": "1"}, "c": "x"}``.

    Values stay strings; the config they are applied to types them. An item without ``=`` or a key,
    or a key that is both a value and a section (``a=1`` with ``a.b=2``), is a :class:`ConfigError`.

    >>> parse_overrides(["a.b=1", "c=x"])
    {'a': {'b': '1'}, 'c': 'x'}
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r} conflicts with another override")
        node[parts[-1]] = value
    return result


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``changes`` merged in: nested mappings merge key by key, anything else
    replaces. Neither input is modified.

    >>> deep_merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}})
    {'a': {'b': 5, 'c': 2}, 'd': 3}
    """
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = deep_merge(merged[key], value)
        merged[key] = value
    return merged
