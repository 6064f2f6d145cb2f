"""The CTC teacher (a selftrain model + beam search + LM) behind the :class:`Teacher` interface.

It is the decode path itself (:func:`~selftrain.decode.iter_decoded` with a
:class:`~selftrain.decode.DecoderPool`), so its hypotheses equal those of ``selftrain decode``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set
from pathlib import Path

import torch

from selftrain.data.audio import SkipLog
from selftrain.decode.config import DecoderConfig
from selftrain.decode.pool import DecoderPool
from selftrain.decode.run import iter_decoded
from selftrain.models.api import AcousticModel
from selftrain.record import Hypothesis, Utterance

__all__ = ["CTCTeacher"]


class CTCTeacher:
    """A CTC acoustic model and its decoder as a teacher; the decoder's workers start on first use.

    >>> with CTCTeacher.load("run/model", DecoderConfig(), "lm.bin", name="lm") as teacher:  # doctest: +SKIP
    ...     hyps = [hyp for _, hyp in teacher.transcribe(utterances)]
    """

    def __init__(self, model: AcousticModel, decoder: DecoderPool):
        self.model = model
        self.decoder = decoder

    @classmethod
    def load(cls, model_dir: str | Path, config: DecoderConfig | None = None, lm_path: str | Path | None = None,
             name: str = "teacher", device: str = "cpu") -> CTCTeacher:
        """Load a model folder and build its decoder (``lm_path`` None: no LM)."""
        from selftrain.models import load_acoustic_model

        model = load_acoustic_model(model_dir, device)
        return cls(model, DecoderPool(config or DecoderConfig(), model.tokenizer.ctc_labels(), lm_path, name))

    @property
    def name(self) -> str:
        return self.decoder.teacher

    @property
    def decoder_name(self) -> str:
        return self.decoder.name

    @property
    def batch_size(self) -> int:
        return self.decoder.config.batch_size

    @property
    def frame_shift_seconds(self) -> float:
        return self.model.frame_shift_seconds

    def transcribe(self, utterances: Iterable[Utterance], skipped: SkipLog | None = None,
                   skip: Set[str] = frozenset(), progress: bool = True) -> Iterator[tuple[Utterance, Hypothesis]]:
        """Yield ``(utterance, hypothesis)`` in input order (see :func:`~selftrain.decode.iter_decoded`):
        dropout on or off as the decoder's config says, its seed set first."""
        config = self.decoder.config
        if config.dropout:
            torch.manual_seed(config.seed)
        self.model.train(config.dropout)
        self.decoder.start()
        yield from iter_decoded(self.model, utterances, self.decoder, progress=progress, skip=frozenset(skip),
                                log=skipped)

    def close(self) -> None:
        """Stop the decoder's workers."""
        self.decoder.close()

    def __enter__(self) -> CTCTeacher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.decoder.__exit__(*exc)
