"""Test helpers for LM building and decoding: peaky CTC log-probs and a fake acoustic model.

The fake model reads token ids that :func:`write_encoded_wav` stores in the audio samples (one
block of samples per output frame), so a manifest of real WAV files decodes to known text through
the whole pipeline (audio loading, batching, padding) without training anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from selftrain.data.tokenizer import CharTokenizer
from selftrain.record import Utterance
from selftrain.text import Alphabet

SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = 160
LM_SENTENCES = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog sat on a mat",
    "the dog ate the cat's food",
    "my cat likes the mat",
    "a dog likes a log",
    "the cat and the dog are friends",
    "the mat is on the log",
]


def tokenizer() -> CharTokenizer:
    return CharTokenizer(Alphabet.from_texts(["abcdefghijklmnopqrstuvwxyz'"]))


def path_ids(text: str, labels: list[str], repeat: int = 2, gap: int = 2) -> list[int]:
    """A frame-level CTC path for ``text``: each character ``repeat`` frames, then ``gap`` blanks."""
    ids = [0] * gap
    for char in text:
        ids += [labels.index(char)] * repeat + [0] * gap
    return ids


def peaky_from_ids(ids: list[int], vocab: int, floor: float = -9.0, seed: int | None = 0) -> np.ndarray:
    """Log-softmax rows that put almost all mass on ``ids`` (with small deterministic noise)."""
    rows = np.full((len(ids), vocab), floor, dtype=np.float64)
    if seed is not None:
        rows += np.random.default_rng(seed).uniform(-1.0, 1.0, rows.shape)
    rows[np.arange(len(ids)), ids] = 0.0
    rows -= np.log(np.exp(rows).sum(axis=1, keepdims=True))
    return rows.astype(np.float32)


def peaky(text: str, labels: list[str], **kwargs) -> np.ndarray:
    return peaky_from_ids(path_ids(text, labels), len(labels), **kwargs)


def write_encoded_wav(path: Path, text: str, labels: list[str]) -> Path:
    """A WAV whose samples encode ``text``'s CTC path (token id / 100 per frame block)."""
    ids = np.array(path_ids(text, labels), dtype=np.float32)
    samples = np.repeat(ids / 100.0, SAMPLES_PER_FRAME)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, SAMPLE_RATE, subtype="FLOAT")
    return path


class FakeModel:
    """Implements :class:`~selftrain.models.api.AcousticModel` by reading ids out of the audio."""

    sample_rate = SAMPLE_RATE
    frame_shift_seconds = SAMPLES_PER_FRAME / SAMPLE_RATE

    def __init__(self, tok: CharTokenizer | None = None):
        self.tokenizer = tok or tokenizer()
        self.calls = 0

    def log_probs(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls += 1
        vocab = self.tokenizer.vocab_size
        lengths = (wav_lens * wavs.shape[1]).round().long()
        frames = lengths // SAMPLES_PER_FRAME
        out = torch.full((wavs.shape[0], int(frames.max()), vocab), -30.0)
        for b in range(wavs.shape[0]):
            blocks = wavs[b, : int(frames[b]) * SAMPLES_PER_FRAME].reshape(-1, SAMPLES_PER_FRAME)
            ids = (blocks.mean(dim=1) * 100).round().long().tolist()
            # The noise depends on the padded batch length, as real models' outputs can.
            out[b, : len(ids)] = torch.from_numpy(peaky_from_ids(ids, vocab, seed=len(ids) + wavs.shape[1]))
        return out, frames

    def train(self, mode: bool = True) -> FakeModel:
        return self


def make_corpus(root: Path, texts: list[str], labels: list[str]) -> list[Utterance]:
    """Encoded WAVs under ``root`` and their utterance records (reference = text)."""
    utterances = []
    for i, text in enumerate(texts):
        wav = write_encoded_wav(root / f"u{i:03d}.wav", text, labels)
        utterances.append(Utterance(id=f"u{i:03d}", wav=str(wav), duration=sf.info(str(wav)).duration, reference=text))
    return utterances


def write_lm_text(path: Path, sentences: list[str] | None = None) -> Path:
    path.write_text("\n".join(sentences or LM_SENTENCES) + "\n", encoding="utf-8")
    return path
