"""Decoding one utterance's CTC log-posteriors into a :class:`~selftrain.record.Hypothesis`.

Three backends with one interface (``decode(log_probs[T, V]) -> Hypothesis``): greedy best path,
pyctcdecode's beam search with a KenLM model (default) and torchaudio's flashlight lexicon decoder.
Every n-best entry keeps the acoustic and the LM part of its score apart.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from selftrain.data.tokenizer import BLANK_INDEX
from selftrain.decode.config import DecoderConfig
from selftrain.errors import DecodeError
from selftrain.record import Hypothesis, NBestEntry, Word
from selftrain.text import WORD_SEPARATOR

__all__ = [
    "Backend",
    "GreedyBackend",
    "PyctcdecodeBackend",
    "FlashlightBackend",
    "build_backend",
    "collapse_path",
    "words_from_path",
    "compress_blank_frames",
]

BPE_WORD_START = "▁"
_PYCTC_MIN_LOGP = math.log(1e-15)  # pyctcdecode clips log-probs at this floor
_CLOSING_FRAME_FLOOR = -1e4


class Backend(Protocol):
    """Decodes one utterance; must survive a fork into a worker process."""

    name: str

    def decode(self, log_probs: np.ndarray) -> Hypothesis: ...


def collapse_path(path: np.ndarray, blank: int = BLANK_INDEX) -> list[tuple[int, int, int]]:
    """CTC best-path collapse: ``(token, start, end)`` for each emitted token, frames ``[start, end)``.

    >>> collapse_path(np.array([0, 3, 3, 0, 3, 4, 0]))
    [(3, 1, 3), (3, 4, 5), (4, 5, 6)]
    """
    segments: list[tuple[int, int, int]] = []
    previous = blank
    for t, token in enumerate(path.tolist()):
        if token != blank:
            if token == previous:
                segments[-1] = (token, segments[-1][1], t + 1)
            else:
                segments.append((token, t, t + 1))
        previous = token
    return segments


def words_from_path(path: np.ndarray, labels: list[str], blank: int = BLANK_INDEX) -> list[Word]:
    """Words with frame spans from a frame-level token path (characters or SentencePiece pieces)."""
    words: list[Word] = []
    current, start, end = "", -1, -1
    for token, seg_start, seg_end in collapse_path(path, blank):
        label = labels[token]
        boundary = label == WORD_SEPARATOR or label.startswith(BPE_WORD_START)
        if boundary and current:
            words.append(Word(current, start, end))
            current = ""
        piece = label.replace(BPE_WORD_START, "").strip()
        if piece:
            if not current:
                start = seg_start
            current += piece
            end = seg_end
    if current:
        words.append(Word(current, start, end))
    return words


def compress_blank_frames(log_probs: np.ndarray, token_min_logp: float, blank: int = BLANK_INDEX
                          ) -> tuple[np.ndarray, np.ndarray, float]:
    """Collapse runs of blank-only frames (see :class:`DecoderConfig`) into their first frame.

    Returns the kept rows, their original frame indices and the summed blank log-probability of
    the dropped frames (every beam gets it, so beam search is unchanged apart from this offset).
    """
    best = log_probs.argmax(axis=1)
    others = np.delete(log_probs, blank, axis=1)
    blank_only = (best == blank) & (others.max(axis=1) < token_min_logp)
    dropped = blank_only.copy()
    dropped[0] = False
    dropped[1:] &= blank_only[:-1]  # keep the first frame of every run
    kept = np.flatnonzero(~dropped)
    offset = float(np.maximum(log_probs[dropped, blank], _PYCTC_MIN_LOGP).sum())
    return log_probs[kept], kept, offset


@dataclass
class GreedyBackend:
    """Best path: the most likely token of every frame, collapsed. No LM."""

    labels: list[str]
    name: str = "greedy"

    def decode(self, log_probs: np.ndarray) -> Hypothesis:
        if log_probs.shape[0] == 0:
            return Hypothesis(teacher="", text="", num_frames=0, decoder=self.name)
        path = log_probs.argmax(axis=1)
        words = words_from_path(path, self.labels)
        text = " ".join(w.word for w in words)
        acoustic = float(log_probs[np.arange(len(path)), path].sum())
        return Hypothesis(teacher="", text=text, words=words, nbest=[NBestEntry(text, acoustic, 0.0, acoustic)],
                          num_frames=int(log_probs.shape[0]), decoder=self.name)


class PyctcdecodeBackend:
    """pyctcdecode's CTC prefix beam search with shallow fusion of a KenLM model (or none)."""

    name = "pyctcdecode"

    def __init__(self, labels: list[str], config: DecoderConfig, kenlm_model=None, unigrams: list[str] | None = None):
        from pyctcdecode import Alphabet, BeamSearchDecoderCTC, LanguageModel

        self.labels = labels
        self.config = config
        self.kenlm_model = kenlm_model
        language_model = None
        if kenlm_model is not None:
            language_model = LanguageModel(kenlm_model, unigrams, alpha=config.alpha, beta=config.beta,
                                           unk_score_offset=config.unk_score_offset)
        self._decoder = BeamSearchDecoderCTC(Alphabet.build_alphabet(labels), language_model)

    def decode(self, log_probs: np.ndarray) -> Hypothesis:
        num_frames = int(log_probs.shape[0])
        if num_frames == 0:
            return Hypothesis(teacher="", text="", num_frames=0, decoder=self.name)
        kept, offset = np.arange(num_frames), 0.0
        if self.config.skip_blank_frames:
            log_probs, kept, offset = compress_blank_frames(log_probs, self.config.token_min_logp)
        beams = self._decoder.decode_beams(log_probs, beam_width=self.config.beam_width,
                                           beam_prune_logp=self.config.beam_prune_logp,
                                           token_min_logp=self.config.token_min_logp)
        # A beam is (text, lm_state, word_frames, acoustic_score, acoustic_score + lm_score).
        nbest = [NBestEntry(text, acoustic + offset, combined - acoustic, combined + offset)
                 for text, _, _, acoustic, combined in beams[: self.config.nbest]]
        words = [Word(word, int(kept[start]), int(kept[end - 1]) + 1) for word, (start, end) in beams[0][2]]
        return Hypothesis(teacher="", text=beams[0][0], words=words, nbest=nbest, num_frames=num_frames,
                          decoder=self.name)


class FlashlightBackend:
    """torchaudio's flashlight CTC lexicon decoder with a KenLM model (C++ beam search).

    The lexicon is the LM's unigram list spelled in the model's characters; the acoustic score of
    each n-best entry is the sum of log-probabilities along its frame path, the rest of its score is
    the LM part.
    """

    name = "flashlight"
    BLANK, SILENCE = "<blank>", "<sil>"

    def __init__(self, labels: list[str], config: DecoderConfig, lm_path: str | Path, unigrams: list[str]):
        from torchaudio.models.decoder import ctc_decoder

        if any(label.startswith(BPE_WORD_START) for label in labels):
            raise DecodeError("the flashlight backend supports character models only; use --decoder pyctcdecode")
        self.labels = labels
        self.config = config
        tokens = [self.BLANK if i == BLANK_INDEX else self.SILENCE if c == WORD_SEPARATOR else c
                  for i, c in enumerate(labels)]
        self._silence = labels.index(WORD_SEPARATOR)
        self._workdir = tempfile.TemporaryDirectory(prefix="selftrain-lexicon-")
        lexicon = Path(self._workdir.name) / "lexicon.txt"
        known = set(labels)
        entries = [f"{w}\t{' '.join(w)} {self.SILENCE}\n" for w in unigrams if w and set(w) <= known]
        if not entries:
            raise DecodeError("no LM word can be spelled with the model's characters: LM and model do not match")
        lexicon.write_text("".join(entries), encoding="utf-8")
        self._decoder = ctc_decoder(
            lexicon=str(lexicon), tokens=tokens, lm=str(lm_path), nbest=config.nbest, beam_size=config.beam_width,
            beam_threshold=config.flashlight_beam_threshold, lm_weight=config.alpha * math.log(10),
            word_score=config.beta, blank_token=self.BLANK, sil_token=self.SILENCE,
        )

    def decode(self, log_probs: np.ndarray) -> Hypothesis:
        num_frames = int(log_probs.shape[0])
        if num_frames == 0:
            return Hypothesis(teacher="", text="", num_frames=0, decoder=self.name)
        # One extra frame that is surely a word boundary ends the last word without charging a
        # real frame for it (our models emit no trailing separator; the lexicon spells one).
        closing = np.full((1, log_probs.shape[1]), _CLOSING_FRAME_FLOOR, dtype=np.float32)
        closing[0, self._silence] = 0.0
        emissions = np.ascontiguousarray(np.vstack([log_probs, closing]), dtype=np.float32)
        results = self._decoder.decoder.decode(emissions.ctypes.data, num_frames + 1, emissions.shape[1])
        word_dict = self._decoder.word_dict
        nbest: list[NBestEntry] = []
        best_path = None
        for result in results:
            text = " ".join(word_dict.get_entry(i) for i in result.words if i >= 0)
            if any(entry.text == text for entry in nbest):
                continue  # the same words through another alignment
            path = np.asarray(result.tokens[1 : num_frames + 1])  # flashlight pads one frame on each side
            acoustic = float(emissions[np.arange(num_frames), path].sum())
            nbest.append(NBestEntry(text, acoustic, float(result.score) - acoustic, float(result.score)))
            best_path = path if best_path is None else best_path
            if len(nbest) == self.config.nbest:
                break
        if best_path is None:
            return Hypothesis(teacher="", text="", num_frames=num_frames, decoder=self.name)
        words = words_from_path(best_path, self.labels)
        return Hypothesis(teacher="", text=nbest[0].text, words=words, nbest=nbest, num_frames=num_frames,
                          decoder=self.name)


def build_backend(config: DecoderConfig, labels: list[str], lm_path: str | Path | None = None) -> Backend:
    """The backend ``config.decoder`` names, with the LM at ``lm_path`` loaded (errors: :class:`LMError`)."""
    from selftrain.lm import load_kenlm, read_unigrams

    if config.decoder == "greedy":
        return GreedyBackend(labels)
    if config.decoder == "flashlight":
        if lm_path is None:
            raise DecodeError("the flashlight backend needs an LM (--lm); use pyctcdecode or greedy without one")
        load_kenlm(lm_path)  # a clear LMError before flashlight's own, terse one
        return FlashlightBackend(labels, config, lm_path, read_unigrams(lm_path))
    if lm_path is None:
        return PyctcdecodeBackend(labels, config)
    return PyctcdecodeBackend(labels, config, load_kenlm(lm_path), read_unigrams(lm_path))
