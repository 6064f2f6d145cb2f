"""Word n-gram language models for decoding: built with KenLM's ``lmplz``, queried with ``kenlm``.

>>> from selftrain.lm import LMBuildConfig, build_lm  # doctest: +SKIP
>>> report = build_lm("text.txt", "out/3gram.bin", LMBuildConfig(order=3), heldout="dev.txt")  # doctest: +SKIP
"""

from selftrain.lm.build import (
    LMBuildConfig,
    LMBuildReport,
    TextStats,
    build_lm,
    normalise_lines,
    prepare_text,
)
from selftrain.lm.doc_text import DocTextConfig, DocTextReport, extract_doc_text
from selftrain.lm.model import (
    Perplexity,
    arpa_unigrams,
    is_arpa,
    load_kenlm,
    perplexity,
    read_unigrams,
    unigrams_path,
    write_unigrams,
)
from selftrain.lm.tools import find_kenlm_tool

__all__ = [
    "LMBuildConfig",
    "LMBuildReport",
    "TextStats",
    "build_lm",
    "normalise_lines",
    "DocTextConfig",
    "DocTextReport",
    "extract_doc_text",
    "prepare_text",
    "Perplexity",
    "arpa_unigrams",
    "is_arpa",
    "load_kenlm",
    "perplexity",
    "read_unigrams",
    "unigrams_path",
    "write_unigrams",
    "find_kenlm_tool",
]
