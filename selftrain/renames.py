"""Config keys and public names renamed since 0.1.0, declared once; and package attributes imported on first use.

A config that still uses an old name loads (the key is moved to its new place, with one warning);
a work folder's identity hashes the old names (:func:`selftrain.generation.workdir.experiment_hash`),
so folders written before a rename open with configs that use the new names.
"""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Callable
from typing import Any

from selftrain.errors import ConfigError

__all__ = ["SELECT_RENAMES", "TRAIN_RENAMES", "SECTION_RENAMES", "KeyPath", "move_keys", "with_new_names", "renamed_attributes",
           "lazy_attributes"]

log = logging.getLogger(__name__)

KeyPath = tuple[str, ...]  # a key's place in nested mappings: ("distill", "weight") is distill.weight

# SelectConfig: old place -> new place
SELECT_RENAMES: dict[KeyPath, KeyPath] = {("teacher",): ("label_source",)}
# TrainConfig: the former ``teacher`` section held three unrelated things (an exported EMA copy of the
# student, distillation from a teacher model, where the weights start), now named as such.
TRAIN_RENAMES: dict[KeyPath, KeyPath] = {
    ("teacher", "ema_decay"): ("ema_decay",),
    ("teacher", "distill_weight"): ("distill", "weight"),
    ("teacher", "teacher_model"): ("distill", "teacher_model"),
    ("teacher", "init_encoder"): ("init", "encoder"),
    ("teacher", "init_head"): ("init", "head"),
}
# The experiment config's stage sections and the renames of the config each one overrides.
SECTION_RENAMES: dict[str, dict[KeyPath, KeyPath]] = {"select": SELECT_RENAMES, "teacher_train": TRAIN_RENAMES,
                                                "student_train": TRAIN_RENAMES}


def _pop(values: dict[str, Any], path: KeyPath) -> tuple[bool, Any]:
    """Remove ``path`` from ``values`` (in place; a parent mapping left empty goes too)."""
    head, *rest = path
    if head not in values:
        return False, None
    if not rest:
        return True, values.pop(head)
    child = values[head]
    if not isinstance(child, dict):
        return False, None
    child = values[head] = dict(child)  # a copy: the caller's nested mappings stay as they were
    found, value = _pop(child, tuple(rest))
    if not child:
        del values[head]
    return found, value


def _has(values: dict[str, Any], path: KeyPath) -> bool:
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return False
        values = values[key]
    return True


def _put(values: dict[str, Any], path: KeyPath, value: Any) -> None:
    for key in path[:-1]:
        values[key] = dict(values.get(key) or {})
        values = values[key]
    values[path[-1]] = value


def move_keys(values: dict[str, Any], moves: dict[KeyPath, KeyPath], where: str = "", warn: bool = False) -> dict[str, Any]:
    """A copy of ``values`` with the value at each ``moves`` key moved to its ``moves`` value; with
    ``warn``, one warning per key moved. A key given at both places is a :class:`ConfigError`.

    >>> move_keys({"teacher": {"distill_weight": 1.0}, "epochs": 2}, TRAIN_RENAMES)
    {'epochs': 2, 'distill': {'weight': 1.0}}
    """
    if not isinstance(values, dict):
        return values
    moved = dict(values)
    for old, new in moves.items():
        found, value = _pop(moved, old)
        if not found:
            continue
        old_name, new_name = where + ".".join(old), where + ".".join(new)
        if _has(moved, new):
            raise ConfigError(f"{old_name} is the old name of {new_name}: give one of them")
        if warn:
            log.warning("%s is deprecated: use %s", old_name, new_name)
        _put(moved, new, value)
    return moved


def with_new_names(values: dict[str, Any], moves: dict[KeyPath, KeyPath], where: str = "") -> dict[str, Any]:
    """``values`` with the old names of ``moves`` replaced by the new ones, a warning for each."""
    return move_keys(values, moves, where, warn=True)


def renamed_attributes(module: str, renamed: dict[str, tuple[str, Any]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that still answers each old public name (``renamed``: old name -> its
    new name and the object) with a DeprecationWarning, for code that imports the 0.1.0 names."""

    def attribute(name: str) -> Any:
        if name not in renamed:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        new_name, value = renamed[name]
        warnings.warn(f"{module}.{name} is deprecated; use {new_name}", DeprecationWarning, stacklevel=2)
        return value

    return attribute


def lazy_attributes(package: str, lazy: dict[str, str], renamed: dict[str, str] | None = None) -> Callable[[str], Any]:
    """A package ``__getattr__`` that imports each name of ``lazy`` (name -> submodule) on first use,
    so importing the package (and its configs) needs none of the submodules' heavy imports; the old
    names of ``renamed`` (old -> new name) still answer, with a DeprecationWarning."""
    renamed = renamed or {}

    def attribute(name: str) -> Any:
        if name in lazy:
            return getattr(importlib.import_module(f"{package}.{lazy[name]}"), name)
        if name in renamed:
            return renamed_attributes(package, {name: (renamed[name], attribute(renamed[name]))})(name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return attribute
