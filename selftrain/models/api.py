"""The contract between training and everything that uses a trained acoustic model.

A trained model lives in a *model folder* (``selftrain train --out DIR`` writes ``DIR/model``):
``model.pt`` (a plain state dict, loaded with ``torch.load(weights_only=True)``), ``model.json``
(architecture and preset, enough to rebuild the module) and ``tokenizer.json``.
:func:`selftrain.models.load_acoustic_model` turns such a folder into an :class:`AcousticModel`.
"""

from __future__ import annotations

from typing import Protocol

import torch

from selftrain.data.tokenizer import Tokenizer

__all__ = ["AcousticModel"]


class AcousticModel(Protocol):
    """A CTC acoustic model ready for inference."""

    tokenizer: Tokenizer
    sample_rate: int
    frame_shift_seconds: float  # seconds per output frame (after subsampling)

    def log_probs(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC log-posteriors for a padded batch.

        ``wavs`` is ``[B, S]`` float audio at :attr:`sample_rate`; ``wav_lens`` is ``[B]`` relative
        lengths in (0, 1] (SpeechBrain's convention). Returns ``[B, T, V]`` log-softmax outputs
        (index 0 = blank) and ``[B]`` integer numbers of valid output frames.
        """
        ...

    def train(self, mode: bool = True) -> AcousticModel:
        """Switch dropout on (``True``, used for dropout-sampled teachers) or off."""
        ...
