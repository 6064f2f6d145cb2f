"""Teacher decoding: CTC log-posteriors -> hypotheses with word spans, separated n-best scores and
confidences (greedy, pyctcdecode + KenLM, or torchaudio's flashlight decoder).

>>> from selftrain.decode import DecoderConfig, DecoderPool, decode_manifest  # doctest: +SKIP
>>> with DecoderPool(DecoderConfig(beam_width=32), model.tokenizer.ctc_labels(), "lm.bin") as dec:  # doctest: +SKIP
...     report = decode_manifest(model, read_manifest("unlabeled.csv"), dec, "hyps.jsonl")
"""

from selftrain.decode.backends import (
    FlashlightBackend,
    GreedyBackend,
    PyctcdecodeBackend,
    build_backend,
    collapse_path,
    compress_blank_frames,
    words_from_path,
)
from selftrain.decode.config import DECODERS, DecoderConfig
from selftrain.decode.evaluate import EvalResult, error_rates, evaluate
from selftrain.decode.pool import DecoderPool
from selftrain.decode.run import DecodeReport, MergeReport, Shard, decode_manifest, iter_decoded, merge_shards
from selftrain.renames import renamed_attributes

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


# The 0.1.0 name, kept for code that imports it.
__getattr__ = renamed_attributes(__name__, {"TeacherDecoder": ("DecoderPool", DecoderPool)})
