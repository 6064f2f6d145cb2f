"""Synthetic speech corpus for self-training experiments (espeak-ng, flite, festival, sox, fortunes).

See :func:`build_corpus` and :class:`SynthConfig`; the command line is ``selftrain synth``.
"""

from selftrain.synth.config import DomainConfig, EffectsConfig, SynthConfig
from selftrain.synth.corpus import build_corpus
from selftrain.synth.errors import MissingToolError, SynthError

__all__ = ["SynthConfig", "DomainConfig", "EffectsConfig", "build_corpus", "SynthError", "MissingToolError"]
