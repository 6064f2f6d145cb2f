"""Named errors of the teacher adapters (both are :class:`~selftrain.errors.ConfigError`)."""

from __future__ import annotations

import importlib.util

from selftrain.errors import ConfigError

__all__ = ["MissingExtraError", "ModelFolderError", "require_module"]


class MissingExtraError(ConfigError):
    """An optional recognizer package is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str):
        super().__init__(f"the {package!r} package is not installed: pip install 'selftrain[{extra}]'")
        self.package = package
        self.extra = extra


class ModelFolderError(ConfigError):
    """A recognizer's local model folder is missing or incomplete (nothing is ever downloaded)."""


def require_module(module: str, package: str, extra: str) -> None:
    """Raise :class:`MissingExtraError` when ``module`` is not installed (found without importing it)."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(package, extra)
