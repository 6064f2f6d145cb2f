"""Named exceptions of selftrain.

Library code raises these (never bare ``assert`` or ``ValueError`` for user input). The CLI
(:func:`selftrain.cli.common.user_errors`) reports a :class:`ConfigError` as ``click.UsageError``
(exit code 2, with the usage line) and every other one as a one-line ``click.ClickException``
(exit code 1); its own checks of option values raise ``click.BadParameter``/``UsageError``.
"""

__all__ = [
    "SelftrainError",
    "ManifestError",
    "AudioError",
    "TextError",
    "LMError",
    "ConfigError",
    "CheckpointError",
    "DecodeError",
    "WorkdirBusyError",
    "StorageError",
    "CorpusError",
    "WaitTimeoutError",
]


class SelftrainError(Exception):
    """Base class of every error selftrain raises on bad input or configuration."""


class ManifestError(SelftrainError):
    """A manifest file is missing, malformed or inconsistent."""


class AudioError(SelftrainError):
    """An audio file cannot be used. ``reason`` is a short machine-readable code (e.g. ``missing``)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class TextError(SelftrainError):
    """A transcript cannot be tokenized (empty, or characters outside the alphabet)."""


class LMError(SelftrainError):
    """An n-gram LM is missing or corrupt, or KenLM's tools are not installed."""


class ConfigError(SelftrainError):
    """A configuration key or value is unknown or invalid."""


class CheckpointError(SelftrainError):
    """A checkpoint is missing, incomplete or unsafe to load."""


class DecodeError(SelftrainError):
    """Decoding cannot proceed (bad model output, incompatible vocabulary, ...)."""


class WorkdirBusyError(SelftrainError):
    """A work folder is in use by another process (its pid and host are in the message)."""


class StorageError(SelftrainError):
    """A file cannot be written: the disk is full or the folder is read-only. Finished work is kept,
    so running the same command again once there is space (or write access) resumes."""

    def __init__(self, message: str, path: str, free_bytes: int | None = None, needed_bytes: int | None = None):
        super().__init__(message)
        self.path = path
        self.free_bytes = free_bytes
        self.needed_bytes = needed_bytes


class CorpusError(SelftrainError):
    """A corpus to prepare is not installed or not in its expected layout; the message says what to install."""


class WaitTimeoutError(SelftrainError):
    """A process of a distributed run waited longer than ``distributed.timeout_seconds`` for another
    process' work; the message names that work and the marker file that did not appear."""
