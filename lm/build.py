"""Building a word n-gram LM with KenLM's ``lmplz`` (modified Kneser-Ney) and ``build_binary``.

Text goes through :class:`~selftrain.text.TextNormalizer` first (the same normaliser the acoustic
model's tokenizer uses), so LM words and decoder output can never disagree on spelling. The result
is checked before it replaces anything: KenLM loads it, its perplexity is finite, a binary model
scores like its ARPA source, and the unigram list that decoders need is written beside it.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from selftrain.errors import LMError
from selftrain.lm.model import (
    Perplexity,
    arpa_unigrams,
    load_kenlm,
    perplexity,
    unigrams_path,
    write_unigrams,
)
from selftrain.lm.tools import find_kenlm_tool, run_tool
from selftrain.text import Alphabet, TextNormalizer

__all__ = ["LMBuildConfig", "TextStats", "LMBuildReport", "normalise_lines", "prepare_text", "build_lm"]

log = logging.getLogger(__name__)

DISCOUNT_FALLBACK_MODES = ("auto", "always", "never")
BINARY_SCORE_TOLERANCE = 1e-4  # log10 units; build_binary's default (probing, unquantised) is lossless
BINARY_CHECK_SENTENCES = 200


@dataclass
class LMBuildConfig:
    """Settings of ``lm build``.

    ``discount_fallback``: ``"auto"`` reruns ``lmplz --discount_fallback`` only when modified
    Kneser-Ney discounts cannot be estimated (tiny or artificial text), ``"always"`` passes it from
    the start, ``"never"`` turns the failure into an error.
    """

    order: int = 3  # n-gram order
    # count thresholds per order (lmplz --prune): (0, 0, 1) drops singleton 3-grams; () = none
    prune: tuple[int, ...] = ()
    discount_fallback: str = "auto"
    memory: str = "1G"  # sorting memory of lmplz (its -S), e.g. "1G" or "10%"
    drop_unknown_chars: bool = True  # with an alphabet: drop lines with other characters (else error)

    def __post_init__(self) -> None:
        if self.order < 1:
            raise LMError(f"n-gram order must be >= 1, got {self.order}")
        if self.discount_fallback not in DISCOUNT_FALLBACK_MODES:
            raise LMError(f"discount_fallback must be one of {DISCOUNT_FALLBACK_MODES}, got {self.discount_fallback!r}")
        if len(self.prune) > self.order or any(p < 0 for p in self.prune):
            raise LMError(f"prune needs at most {self.order} non-negative thresholds, got {self.prune}")
        if any(b < a for a, b in zip(self.prune, self.prune[1:], strict=False)):
            raise LMError(f"lmplz needs non-decreasing prune thresholds, got {self.prune}")


@dataclass
class TextStats:
    """What happened to the input lines during normalisation."""

    lines_read: int = 0
    lines_used: int = 0
    dropped_empty: int = 0
    dropped_unknown_chars: int = 0
    words: int = 0
    unknown_chars: list[str] = field(default_factory=list)


@dataclass
class LMBuildReport:
    """The result of :func:`build_lm`, written as JSON beside the model by the CLI."""

    path: str
    unigrams_path: str
    order: int
    binary: bool
    text: TextStats
    vocab_size: int
    discount_fallback_used: bool
    heldout: Perplexity | None
    seconds: float

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.heldout is not None:
            data["heldout"]["oov_rate"] = self.heldout.oov_rate
        return data


def normalise_lines(
    lines: Iterable[str], normalizer: TextNormalizer, alphabet: Alphabet | None, stats: TextStats, drop_unknown: bool = True
) -> Iterator[str]:
    """Normalise ``lines``, dropping empty ones and (with ``alphabet``) ones with unknown characters."""
    unknown_seen: set[str] = set()
    for raw in lines:
        stats.lines_read += 1
        line = normalizer(raw)
        if not line:
            stats.dropped_empty += 1
            continue
        if alphabet is not None:
            unknown = alphabet.unknown_chars(line)
            if unknown:
                if not drop_unknown:
                    raise LMError(f"line {stats.lines_read}: characters outside the alphabet: {''.join(sorted(unknown))!r}")
                stats.dropped_unknown_chars += 1
                unknown_seen |= unknown
                continue
        stats.lines_used += 1
        stats.words += len(line.split())
        yield line
    stats.unknown_chars = sorted(unknown_seen)


def prepare_text(
    sources: Iterable[str | Path], dest: Path, normalizer: TextNormalizer, alphabet: Alphabet | None, drop_unknown: bool = True
) -> TextStats:
    """Write the normalised lines of every file in ``sources`` to ``dest`` (one sentence per line)."""
    stats = TextStats()
    with open(dest, "w", encoding="utf-8") as out:
        for source in sources:
            try:
                with open(source, encoding="utf-8") as handle:
                    for line in normalise_lines(handle, normalizer, alphabet, stats, drop_unknown):
                        out.write(line + "\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise LMError(f"cannot read LM text {source}: {exc}") from exc
    if stats.lines_used == 0:
        raise LMError(f"no usable text lines in {', '.join(map(str, sources))} after normalisation")
    return stats


def _run_lmplz(text: Path, arpa: Path, config: LMBuildConfig, workdir: Path) -> bool:
    """Run lmplz; returns whether ``--discount_fallback`` was needed."""
    base = [str(find_kenlm_tool("lmplz")), "-o", str(config.order), "-S", config.memory, "-T", str(workdir)]
    if config.prune:
        base += ["--prune", *map(str, config.prune)]
    if config.discount_fallback == "always":
        run_tool([*base, "--discount_fallback"], text, arpa)
        return True
    try:
        run_tool(base, text, arpa)
        return False
    except LMError as exc:
        if config.discount_fallback == "never" or "discount_fallback" not in str(exc):
            raise
        log.warning("lmplz cannot estimate Kneser-Ney discounts (tiny or artificial text): retrying with --discount_fallback")
        run_tool([*base, "--discount_fallback"], text, arpa)
        return True


def _check_binary(arpa: Path, binary: Path, sentences: list[str]) -> None:
    """Raise :class:`LMError` unless the binary model scores ``sentences`` like the ARPA."""
    a, b = load_kenlm(arpa), load_kenlm(binary)
    for sentence in sentences:
        diff = abs(a.score(sentence) - b.score(sentence))
        if diff > BINARY_SCORE_TOLERANCE:
            raise LMError(f"binary LM {binary} scores {sentence!r} {diff:.2g} away from its ARPA source")


def _sample_lines(path: Path, limit: int) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for _, line in zip(range(limit), handle, strict=False)]


def build_lm(
    text: str | Path | Iterable[str | Path],
    out: str | Path,
    config: LMBuildConfig | None = None,
    normalizer: TextNormalizer | None = None,
    alphabet: Alphabet | None = None,
    heldout: str | Path | None = None,
) -> LMBuildReport:
    """Build a word n-gram LM from text file(s) into ``out`` (``.arpa`` or ``.bin``).

    Also writes ``<stem>.unigrams.txt`` beside it. With ``heldout`` (a text file), reports the
    model's perplexity on it and raises :class:`LMError` when that is not finite.

    >>> report = build_lm("corpus.txt", "lm/3gram.bin", LMBuildConfig(order=3))  # doctest: +SKIP
    >>> report.heldout.perplexity  # doctest: +SKIP
    """
    started = time.monotonic()
    config = config or LMBuildConfig()
    normalizer = normalizer or TextNormalizer()
    out = Path(out)
    binary = out.suffix == ".bin"
    if out.suffix not in (".arpa", ".bin"):
        raise LMError(f"LM output must end in .arpa or .bin, got {out}")
    find_kenlm_tool("lmplz")
    if binary:
        find_kenlm_tool("build_binary")
    sources = [text] if isinstance(text, str | Path) else list(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        workdir = Path(tmp)
        normalised, arpa = workdir / "text.txt", workdir / "model.arpa"
        stats = prepare_text(sources, normalised, normalizer, alphabet, config.drop_unknown_chars)
        log.info("LM text: %d of %d lines used (%d empty, %d with unknown characters), %d words",
                 stats.lines_used, stats.lines_read, stats.dropped_empty, stats.dropped_unknown_chars, stats.words)
        fallback = _run_lmplz(normalised, arpa, config, workdir)
        words = arpa_unigrams(arpa)
        write_unigrams(words, unigrams_path(out))
        if binary:
            built = workdir / "model.bin"
            run_tool([str(find_kenlm_tool("build_binary")), str(arpa), str(built)], writes_to=built.parent)
            _check_binary(arpa, built, _sample_lines(normalised, BINARY_CHECK_SENTENCES))
        else:
            built = arpa
        os.replace(built, out)
    model = load_kenlm(out)
    heldout_ppl = _heldout_perplexity(model, heldout, normalizer) if heldout else None
    return LMBuildReport(
        path=str(out), unigrams_path=str(unigrams_path(out)), order=config.order, binary=binary, text=stats,
        vocab_size=len(set(words)), discount_fallback_used=fallback, heldout=heldout_ppl,
        seconds=round(time.monotonic() - started, 3),
    )


def _heldout_perplexity(model, heldout: str | Path, normalizer: TextNormalizer) -> Perplexity:
    try:
        with open(heldout, encoding="utf-8") as handle:
            sentences = [s for s in (normalizer(line) for line in handle) if s]
    except (OSError, UnicodeDecodeError) as exc:
        raise LMError(f"cannot read held-out text {heldout}: {exc}") from exc
    if not sentences:
        raise LMError(f"held-out text {heldout} has no usable lines")
    result = perplexity(model, sentences)
    if not math.isfinite(result.perplexity) or result.perplexity < 1.0:
        raise LMError(f"LM perplexity on {heldout} is {result.perplexity}: the model is broken")
    return result
