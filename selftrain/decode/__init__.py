"""Teacher decoding: CTC log-posteriors -> hypotheses with word spans, separated n-best scores and
confidences (greedy, pyctcdecode + KenLM, or torchaudio's flashlight decoder).

>>> from selftrain.decode import DecoderConfig, DecoderPool, decode_manifest  # doctest: +SKIP
>>> with DecoderPool(DecoderConfig(beam_width=32), model.tokenizer.ctc_labels(), "lm.bin") as dec:  # doctest: +SKIP
...     report = decode_manifest(model, read_manifest("unlabeled.csv"), dec, "hyps.jsonl")

The configs are imported with the package; the rest on first use, since it brings torch along and
``selftrain decode --help`` reads the configs' defaults only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from selftrain.decode.config import DECODERS, DecoderConfig
from selftrain.renames import lazy_attributes

if TYPE_CHECKING:
    from selftrain.decode.backends import (
        FlashlightBackend,
        GreedyBackend,
        PyctcdecodeBackend,
        build_backend,
        collapse_path,
        compress_blank_frames,
        words_from_path,
    )
    from selftrain.decode.pool import DecoderPool
    from selftrain.decode.run import (
        DecodeReport,
        MergeReport,
        Shard,
        decode_manifest,
        iter_decoded,
        merge_shards,
    )
    from selftrain.decode.scoring import EvalResult, error_rates, evaluate

__all__ = [
    "DECODERS",
    "DecoderConfig",
    "DecoderPool",
    "build_backend",
    "GreedyBackend",
    "PyctcdecodeBackend",
    "FlashlightBackend",
    "collapse_path",
    "words_from_path",
    "compress_blank_frames",
    "Shard",
    "DecodeReport",
    "MergeReport",
    "decode_manifest",
    "iter_decoded",
    "merge_shards",
    "EvalResult",
    "evaluate",
    "error_rates",
]

# name -> module of the names imported on first use
_LAZY = {
    **dict.fromkeys(("FlashlightBackend", "GreedyBackend", "PyctcdecodeBackend", "build_backend", "collapse_path",
                     "compress_blank_frames", "words_from_path"), "backends"),
    **dict.fromkeys(("EvalResult", "error_rates", "evaluate"), "scoring"),
    "DecoderPool": "pool",
    **dict.fromkeys(("DecodeReport", "MergeReport", "Shard", "decode_manifest", "iter_decoded", "merge_shards"),
                    "run"),
}
# The 0.1.0 name, kept for code that imports it: old name -> new name.
_RENAMED = {"TeacherDecoder": "DecoderPool"}


__getattr__ = lazy_attributes(__name__, _LAZY, _RENAMED)
