"""Named errors of the teacher adapters (both are :class:`~selftrain.errors.ConfigError`)."""

from __future__ import annotations

from selftrain.errors import ConfigError

__all__ = ["MissingExtraError", "ModelFolderError"]


class MissingExtraError(ConfigError):
    """An optional recognizer package is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str):
        super().__init__(f"the {package!r} package is not installed: pip install 'selftrain[{extra}]'")
        self.package = package
        self.extra = extra


class ModelFolderError(ConfigError):
    """A recognizer's local model folder is missing or incomplete (nothing is ever downloaded)."""
