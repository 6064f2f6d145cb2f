"""Tokenizers: characters by default (alphabet from the data), SentencePiece as an option.

Index 0 is always the CTC blank. :meth:`Tokenizer.ctc_labels` gives the label list pyctcdecode and
flashlight expect (blank as ``""``, the word separator as ``" "``; SentencePiece pieces keep ``▁``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from selftrain.errors import TextError
from selftrain.io import atomic_write, atomic_write_text
from selftrain.text import Alphabet, TextNormalizer

__all__ = ["Tokenizer", "CharTokenizer", "SentencePieceTokenizer", "load_tokenizer", "BLANK_INDEX"]

BLANK_INDEX = 0


class Tokenizer(Protocol):
    normalizer: TextNormalizer

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def ctc_labels(self) -> list[str]: ...

    def save(self, path: str | Path) -> None: ...


class CharTokenizer:
    """Character tokenizer: blank, the word separator, then the alphabet's characters.

    >>> tok = CharTokenizer(Alphabet.from_texts(["ab ba"]))
    >>> tok.encode("ab"), tok.decode(tok.encode("ab ba"))
    ([2, 3], 'ab ba')
    """

    kind = "char"

    def __init__(self, alphabet: Alphabet, normalizer: TextNormalizer | None = None):
        self.alphabet = alphabet
        self.normalizer = normalizer or TextNormalizer()
        self._index = {c: i + 1 for i, c in enumerate(alphabet.chars)}

    @classmethod
    def from_texts(cls, texts: Iterable[str], normalizer: TextNormalizer | None = None, min_count: int = 1) -> CharTokenizer:
        """Build from raw transcripts: normalise them, then take their characters as the alphabet."""
        normalizer = normalizer or TextNormalizer()
        return cls(Alphabet.from_texts((normalizer(t) for t in texts), min_count=min_count), normalizer)

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + 1

    def encode(self, text: str) -> list[int]:
        """Token ids of an already-normalised ``text``; raises :class:`TextError` on unknown characters."""
        unknown = self.alphabet.unknown_chars(text)
        if unknown:
            raise TextError(f"characters outside the alphabet: {''.join(sorted(unknown))!r}")
        return [self._index[c] for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        chars = [self.alphabet.chars[i - 1] for i in ids if i != BLANK_INDEX]
        return " ".join("".join(chars).split())

    def ctc_labels(self) -> list[str]:
        return ["", *self.alphabet.chars]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": self.alphabet.chars, "normalizer": self.normalizer.to_dict()}

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1))


class SentencePieceTokenizer:
    """SentencePiece (unigram or BPE) tokenizer trained on normalised text; id 0 is the CTC blank."""

    kind = "sentencepiece"

    def __init__(self, model_path: str | Path, normalizer: TextNormalizer | None = None):
        import sentencepiece as spm

        self.model_path = Path(model_path)
        self.normalizer = normalizer or TextNormalizer()
        self._sp = spm.SentencePieceProcessor(model_file=str(self.model_path))

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        out_prefix: str | Path,
        vocab_size: int = 256,
        model_type: str = "unigram",
        normalizer: TextNormalizer | None = None,
    ) -> SentencePieceTokenizer:
        """Train a SentencePiece model on normalised ``texts``; writes ``out_prefix.model``."""
        import io

        import sentencepiece as spm

        normalizer = normalizer or TextNormalizer()
        lines = [normalizer(t) for t in texts]
        lines = [line for line in lines if line]
        if not lines:
            raise TextError("cannot train SentencePiece on empty text")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=1.0,
            normalization_rule_name="identity",
            # id 0 is reserved for the CTC blank, so the unknown piece moves to 1 and BOS/EOS go away.
            unk_id=1, bos_id=-1, eos_id=-1, pad_id=0, pad_piece="<blank>",
            hard_vocab_limit=False,
        )
        path = Path(f"{out_prefix}.model")
        with atomic_write(path, "wb") as handle:
            handle.write(model.getvalue())
        return cls(path, normalizer)

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    def encode(self, text: str) -> list[int]:
        ids = list(self._sp.encode(text))
        if not ids:
            raise TextError("empty transcript")
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._sp.decode([i for i in ids if i != BLANK_INDEX]))

    def ctc_labels(self) -> list[str]:
        return ["", *(self._sp.id_to_piece(i) for i in range(1, self.vocab_size))]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "model": self.model_path.name, "normalizer": self.normalizer.to_dict()}

    def save(self, path: str | Path) -> None:
        path = Path(path)
        target = path.parent / self.model_path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.resolve() != self.model_path.resolve():
            with atomic_write(target, "wb") as handle:
                handle.write(self.model_path.read_bytes())
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1))


def load_tokenizer(path: str | Path) -> CharTokenizer | SentencePieceTokenizer:
    """Load a tokenizer saved with ``save`` (a ``tokenizer.json``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TextError(f"cannot read tokenizer {path}: {exc}") from exc
    try:
        normalizer = TextNormalizer.from_dict(data.get("normalizer", {}))
        if data.get("kind") == "char":
            return CharTokenizer(Alphabet(data["chars"]), normalizer)
        if data.get("kind") == "sentencepiece":
            return SentencePieceTokenizer(path.parent / data["model"], normalizer)
    except (AttributeError, KeyError, TypeError, OSError, RuntimeError) as exc:
        raise TextError(f"{path}: not a valid tokenizer ({exc!r})") from exc
    raise TextError(f"{path}: unknown tokenizer kind {data.get('kind')!r}")


