"""Errors of the corpus synthesizer: each names the Debian package that fixes it."""

from __future__ import annotations

from selftrain.errors import SelftrainError

__all__ = ["SynthError", "MissingToolError"]


class SynthError(SelftrainError):
    """The synthetic corpus cannot be built (bad output folder, failed synthesis setup, ...)."""


class MissingToolError(SynthError):
    """A synthesizer, sox or the fortunes text is not installed; ``package`` is the Debian package to install."""

    def __init__(self, message: str, package: str):
        super().__init__(f"{message}: install the Debian package '{package}' (apt-get install {package})")
        self.package = package
