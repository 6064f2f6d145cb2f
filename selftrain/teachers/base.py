"""The teacher interface and what every external recognizer's adapter shares.

A teacher turns utterances into :class:`~selftrain.record.Hypothesis` records (text, words with
frame spans and confidences when the system gives them, decoder name). External systems give words
with times in seconds and their own spelling; :class:`OutputSpace` maps both into the CTC teacher's
world: its text normalisation and alphabet, and its model frames.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator, Set, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from tqdm import tqdm

from selftrain.agreement.teachers import EXTERNAL_SCORE
from selftrain.data.audio import SkipLog
from selftrain.errors import CheckpointError
from selftrain.record import Hypothesis, Utterance, Word
from selftrain.text import Alphabet, TextNormalizer

__all__ = ["Teacher", "TimedWord", "OutputSpace", "EXTERNAL_SCORE", "SEQUENCE_SCORE", "build_hypothesis",
           "iter_audio"]

log = logging.getLogger(__name__)

SEQUENCE_SCORE = "external_sequence"  # an utterance-level probability the system gives for its whole output


@runtime_checkable
class Teacher(Protocol):
    """Anything that labels audio: the CTC teacher (one model or an ensemble, with its decoder),
    Whisper, PocketSphinx, ... One resumable writer serves them all
    (:func:`~selftrain.teachers.transcribe_manifest`), so every teacher's output file is made,
    resumed and reported the same way.

    ``transcribe`` yields ``(utterance, hypothesis)`` in input order from a list or a stream of
    utterances; unusable audio is skipped and recorded in ``skipped`` (reason, row, conversions);
    ids in ``skip`` (already written) are not yielded. ``name``: the teacher name stored with each
    hypothesis. ``decoder_name``: how it decodes (``beam``, ``greedy``, ``faster-whisper``, ...), for
    reports. ``batch_size``: utterances processed together; a sharded run keeps whole batches, so an
    utterance's padding neighbours are those of an unsharded run. ``frame_shift_seconds``: the
    seconds per frame of its hypotheses' word spans (None: spans are empty).
    """

    @property
    def name(self) -> str: ...

    @property
    def decoder_name(self) -> str: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def frame_shift_seconds(self) -> float | None: ...

    def transcribe(self, utterances: Iterable[Utterance], skipped: SkipLog | None = None,
                   skip: Set[str] = frozenset(), progress: bool = True) -> Iterator[tuple[Utterance, Hypothesis]]: ...

    def close(self) -> None: ...


@dataclass
class TimedWord:
    """One word as an external system gives it: its own spelling, times in seconds, a probability."""

    text: str
    start: float
    end: float
    confidence: float | None = None


@dataclass
class OutputSpace:
    """Where external output is mapped: the CTC teacher's normalisation, alphabet and frame shift.

    Without ``alphabet`` every normalised character is kept; without ``frame_shift`` words get the
    empty span ``[0, 0)`` (the convention of imported hypotheses) and ``num_frames`` stays 0.
    """

    normalizer: TextNormalizer = field(default_factory=lambda: TextNormalizer().for_external())
    alphabet: Alphabet | None = None
    frame_shift: float | None = None

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> OutputSpace:
        """The output space of a CTC model folder (``tokenizer.json`` and ``model.json``), without loading it."""
        model_dir = Path(model_dir)
        try:
            tokenizer = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
            meta = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
            shift = float(meta["frame_shift_seconds"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{model_dir}: not a selftrain model folder ({exc})") from exc
        normalizer = TextNormalizer.from_dict(tokenizer.get("normalizer", {})).for_external()
        alphabet = Alphabet(tokenizer["chars"]) if tokenizer.get("kind") == "char" else None
        return cls(normalizer, alphabet, shift)

    def words(self, text: str) -> list[str]:
        """``text`` normalised into the teacher's words (possibly several, possibly none)."""
        normalised = self.normalizer(text)
        if self.alphabet is not None:
            normalised = self.alphabet.fold(normalised)
        return normalised.split()

    def frames(self, start: float, end: float, num_frames: int) -> tuple[int, int]:
        """Seconds -> a frame span ``[start, end)`` of at least one frame inside ``[0, num_frames)``."""
        if not self.frame_shift or num_frames <= 0:
            return 0, 0
        first = min(max(0, int(start / self.frame_shift)), num_frames - 1)
        last = min(num_frames, max(first + 1, math.ceil(end / self.frame_shift)))
        return first, last


def _split_span(start: float, end: float, parts: int) -> list[tuple[float, float]]:
    """A word that normalises into several (``42`` -> ``forty two``) shares its time equally."""
    step = max(0.0, end - start) / parts
    return [(start + k * step, start + (k + 1) * step) for k in range(parts)]


def build_hypothesis(teacher: str, decoder: str, timed: list[TimedWord], duration: float, space: OutputSpace,
                     fallback_text: str = "", sequence_score: float | None = None) -> Hypothesis:
    """A :class:`Hypothesis` from an external system's words, in the CTC teacher's words and frames.

    Word confidences go under ``external`` (utterance score: their mean); ``sequence_score`` (a
    probability of the whole output) under ``external_sequence``. ``fallback_text`` is used when the
    system gave text but no words.
    """
    num_frames = int(duration / space.frame_shift) if space.frame_shift else 0
    words: list[Word] = []
    for item in timed:
        tokens = space.words(item.text)
        scores = {} if item.confidence is None else {EXTERNAL_SCORE: min(1.0, max(0.0, item.confidence))}
        for token, (start, end) in zip(tokens, _split_span(item.start, item.end, max(1, len(tokens))), strict=False):
            words.append(Word(token, *space.frames(start, end, num_frames), dict(scores)))
    text = " ".join(w.word for w in words) if timed else " ".join(space.words(fallback_text))
    hyp = Hypothesis(teacher=teacher, text=text, words=words, num_frames=num_frames, decoder=decoder)
    confident = [w.scores[EXTERNAL_SCORE] for w in words if EXTERNAL_SCORE in w.scores]
    if words and len(confident) == len(words):
        hyp.scores[EXTERNAL_SCORE] = float(np.mean(confident))
    if sequence_score is not None:
        hyp.scores[SEQUENCE_SCORE] = min(1.0, max(0.0, float(sequence_score)))
    return hyp


def iter_audio(utterances: Iterable[Utterance], sample_rate: int, skipped: SkipLog, skip: Set[str],
               progress: bool, desc: str) -> Iterator[tuple[Utterance, np.ndarray]]:
    """Each utterance not in ``skip`` with its mono float32 audio at ``sample_rate``, under a tqdm bar;
    unusable files are logged and recorded in ``skipped`` (with their reason) and left out."""
    total = max(len(utterances) - len(skip), 0) if isinstance(utterances, Sized) else None
    with tqdm(total=total, desc=desc, unit="utt", disable=not progress) as bar:
        for utt in utterances:
            if utt.id in skip:
                continue
            bar.update()
            wav = skipped.load(utt.id, utt.wav, sample_rate)
            if wav is not None:
                yield utt, wav.numpy()


class AudioTeacher:
    """Shared plumbing of the external recognizers that read audio (Whisper, PocketSphinx).

    A subclass sets ``decoder`` (its name in hypotheses), ``sample_rate``, ``name`` and ``space``,
    implements :meth:`transcribe_audio` and :meth:`_release`; reading the audio, skipping bad files
    and the context-manager protocol live here once.
    """

    decoder = ""
    sample_rate = 16000
    name = ""
    space: OutputSpace
    batch_size = 1  # one utterance at a time

    @property
    def decoder_name(self) -> str:
        return self.decoder

    @property
    def frame_shift_seconds(self) -> float | None:
        return self.space.frame_shift

    def transcribe_audio(self, audio: np.ndarray, duration: float) -> Hypothesis:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    def transcribe(self, utterances: Iterable[Utterance], skipped: SkipLog | None = None,
                   skip: Set[str] = frozenset(), progress: bool = True) -> Iterator[tuple[Utterance, Hypothesis]]:
        """Yield ``(utterance, hypothesis)`` for each usable utterance not in ``skip``."""
        for utt, audio in iter_audio(utterances, self.sample_rate, SkipLog() if skipped is None else skipped, skip,
                                     progress, f"{self.decoder} {self.name}"):
            yield utt, self.transcribe_audio(audio, len(audio) / self.sample_rate)

    def close(self) -> None:
        """Release the model."""
        self._release()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
