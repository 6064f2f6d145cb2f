"""Teacher decoding: CTC log-posteriors -> hypotheses with word spans, separated n-best scores and
confidences (greedy, pyctcdecode + KenLM, or torchaudio's flashlight decoder).

>>> from selftrain.decode import DecoderConfig, DecoderPool, decode_manifest  # doctest: +SKIP
>>> with DecoderPool(DecoderConfig(beam_width=32), model.tokenizer.ctc_labels(), "lm.bin") as dec:  # doctest: +SKIP
...     report = decode_manifest(model, read_manifest("unlabeled.csv"), dec, "hyps.jsonl")

The configs are imported with the package; the rest on first use, since it brings torch along and
``selftrain decode --help`` reads the configs' defaults only.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import TYPE_CHECKING, Any

from selftrain.decode.config import DECODERS, DecoderConfig

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
    from selftrain.decode.evaluate import EvalResult, error_rates, evaluate
    from selftrain.decode.pool import DecoderPool
    from selftrain.decode.run import (
        DecodeReport,
        MergeReport,
        Shard,
        decode_manifest,
        iter_decoded,
        merge_shards,
    )

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
    **dict.fromkeys(("EvalResult", "error_rates", "evaluate"), "evaluate"),
    "DecoderPool": "pool",
    **dict.fromkeys(("DecodeReport", "MergeReport", "Shard", "decode_manifest", "iter_decoded", "merge_shards"),
                    "run"),
}
# The 0.1.0 names, kept for code that imports them: old name -> new name.
_RENAMED = {"TeacherDecoder": "DecoderPool"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"selftrain.decode.{_LAZY[name]}"), name)
    if name in _RENAMED:
        warnings.warn(f"{__name__}.{name} is deprecated; use {_RENAMED[name]}", DeprecationWarning, stacklevel=2)
        return __getattr__(_RENAMED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _DecodePackage(types.ModuleType):
    """This package's module. Importing a submodule sets it as the package's attribute; the
    submodule ``evaluate`` would then hide the function ``evaluate``, so the function is kept."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _DecodePackage
