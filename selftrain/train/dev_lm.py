"""Dev WER with the LM beam search, for choosing checkpoints on the figure users will get.

Greedy dev WER and LM-decoded dev WER can move in opposite directions while a pretrained encoder
is fine-tuned on little audio: longer training teaches the acoustic model words the LM already
supplies at decoding, so greedy WER falls while LM-decoded WER rises
(docs/experiments/2026-12-06-pretrained-encoder.md). ``checkpoint_metric: lm_wer`` picks
checkpoints (and stops early) on the latter.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from selftrain.decode.config import DecoderConfig
from selftrain.decode.pool import in_process_decoder

__all__ = ["LMDevScorer"]


class LMDevScorer:
    """Decodes dev log-posteriors with a KenLM beam search in the training process and returns their
    texts (the LM file is checked when the run's configuration is validated)."""

    def __init__(self, labels: list[str], lm_path: str | Path, config: DecoderConfig):
        self._decoder = in_process_decoder(replace(config, nbest=1), labels, lm_path, "dev_lm", confidence=False)

    def decode(self, log_probs: list[np.ndarray]) -> list[str]:
        return [hyp.text for hyp in self._decoder.decode(log_probs)]
