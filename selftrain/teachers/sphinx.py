"""PocketSphinx as a teacher, with the en-us model its wheel ships (nothing is downloaded).

Word segments come with frame times (PocketSphinx frames, ``frate`` per second) and a posterior
probability, used as the word confidence; filler entries (``<s>``, ``</s>``, ``<sil>``, ``[NOISE]``)
are dropped and alternative pronunciations (``the(2)``) keep their word.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from selftrain.record import Hypothesis
from selftrain.teachers.base import AudioTeacher, OutputSpace, TimedWord, build_hypothesis
from selftrain.teachers.config import SPHINX_SAMPLE_RATE, PocketSphinxConfig
from selftrain.teachers.errors import MissingExtraError, ModelFolderError, require_module

__all__ = ["PocketSphinxTeacher", "check_pocketsphinx"]

_FILLER = re.compile(r"^(<.*>|\[.*\]|\+\+.*\+\+)$")
_VARIANT = re.compile(r"\(\d+\)$")
_INT16_MAX = 32767


def _decoder_options(config: PocketSphinxConfig) -> dict:
    options: dict = {"samprate": SPHINX_SAMPLE_RATE, "beam": config.beam, "loglevel": "ERROR"}
    if config.lm_weight is not None:
        options["lw"] = config.lm_weight
    if config.model_dir is not None:
        folder = Path(config.model_dir)
        paths = {"hmm": folder / "en-us", "lm": folder / "en-us.lm.bin", "dict": folder / "cmudict-en-us.dict"}
        missing = [str(p) for p in paths.values() if not p.exists()]
        if missing:
            raise ModelFolderError(f"{folder} is not a PocketSphinx model folder (missing {', '.join(missing)})")
        options.update({k: str(v) for k, v in paths.items()})
    return options


def check_pocketsphinx(config: PocketSphinxConfig) -> None:
    """Raise :class:`MissingExtraError` or :class:`ModelFolderError` when ``config`` could not load; loads nothing."""
    require_module("pocketsphinx", "pocketsphinx", "pocketsphinx")
    _decoder_options(config)


def _load_decoder(config: PocketSphinxConfig):
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise MissingExtraError("pocketsphinx", "pocketsphinx") from exc
    return Decoder(**_decoder_options(config))


class PocketSphinxTeacher(AudioTeacher):
    """PocketSphinx transcripts with word times and word posteriors as confidences.

    ``external_sequence`` holds PocketSphinx's posterior probability of the whole hypothesis.
    """

    decoder = "pocketsphinx"
    sample_rate = SPHINX_SAMPLE_RATE

    def __init__(self, config: PocketSphinxConfig | None = None, space: OutputSpace | None = None,
                 name: str = "pocketsphinx"):
        self.config = config or PocketSphinxConfig()
        self.space = space or OutputSpace()
        self.name = name
        self._decoder = _load_decoder(self.config)
        self._frame_rate = float(self._decoder.config["frate"])

    def transcribe_audio(self, audio: np.ndarray, duration: float) -> Hypothesis:
        """One utterance's 16 kHz float32 audio -> its hypothesis."""
        pcm = (np.clip(audio, -1.0, 1.0) * _INT16_MAX).astype(np.int16)
        self._decoder.start_utt()
        self._decoder.process_raw(pcm.tobytes(), full_utt=True)
        self._decoder.end_utt()
        best = self._decoder.hyp()
        timed = [TimedWord(_VARIANT.sub("", seg.word), seg.start_frame / self._frame_rate,
                           (seg.end_frame + 1) / self._frame_rate, seg.prob)
                 for seg in self._decoder.seg() if not _FILLER.match(seg.word)]
        return build_hypothesis(self.name, self.decoder, timed, duration, self.space,
                                best.hypstr if best else "", best.prob if best else None)

    def _release(self) -> None:
        self._decoder = None
