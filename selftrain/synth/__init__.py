"""Synthetic speech corpus for self-training experiments (espeak-ng, flite, festival, sox, fortunes).

See :func:`build_corpus` and :class:`SynthConfig`; the command line is ``selftrain synth``. The
configs are imported with the package; the rest on first use (``selftrain synth --help`` reads the
configs' defaults only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from selftrain.renames import lazy_attributes
from selftrain.synth.config import DomainConfig, EffectsConfig, SynthConfig

if TYPE_CHECKING:
    from selftrain.synth.corpus import build_corpus
    from selftrain.synth.errors import MissingToolError, SynthError

__all__ = ["SynthConfig", "DomainConfig", "EffectsConfig", "build_corpus", "SynthError", "MissingToolError"]

# name -> module of the names imported on first use
_LAZY = {"build_corpus": "corpus", **dict.fromkeys(("SynthError", "MissingToolError"), "errors")}

__getattr__ = lazy_attributes(__name__, _LAZY)
