"""Teachers: anything that transcribes utterances into hypotheses (the CTC teacher, Whisper,
PocketSphinx), the mapping of external output into the CTC teacher's words and frames, and
and the one resumable writer of any teacher's output (:func:`transcribe_manifest`).

Whisper and PocketSphinx are optional extras (``pip install 'selftrain[whisper]'``,
``'selftrain[pocketsphinx]'``); their packages are imported only when such a teacher is built.
"""

from selftrain.decode.run import DecodeReport
from selftrain.renames import renamed_attributes
from selftrain.teachers.base import (
    EXTERNAL_SCORE,
    SEQUENCE_SCORE,
    OutputSpace,
    Teacher,
    TimedWord,
    build_hypothesis,
    iter_audio,
)
from selftrain.teachers.config import PocketSphinxConfig, WhisperConfig
from selftrain.teachers.ctc import CTCTeacher
from selftrain.teachers.errors import MissingExtraError, ModelFolderError
from selftrain.teachers.run import (
    EXTERNAL_TEACHERS,
    build_external_teacher,
    check_external_teacher,
    external_teacher_config,
    load_external_teacher,
    transcribe_manifest,
)

__all__ = [
    "EXTERNAL_SCORE",
    "SEQUENCE_SCORE",
    "OutputSpace",
    "Teacher",
    "TimedWord",
    "build_hypothesis",
    "iter_audio",
    "PocketSphinxConfig",
    "WhisperConfig",
    "MissingExtraError",
    "ModelFolderError",
    "EXTERNAL_TEACHERS",
    "build_external_teacher",
    "check_external_teacher",
    "external_teacher_config",
    "load_external_teacher",
    "transcribe_manifest",
    "CTCTeacher",
]

# The 0.1.0 report of external transcription is the one report of every teacher's output now.
__getattr__ = renamed_attributes(__name__, {"TranscribeReport": ("selftrain.decode.DecodeReport", DecodeReport)})

