"""Validate manifests row by row: what is wrong with each file and transcript, and which rows to skip.

Every stage that reads audio runs :func:`filter_valid` first, so a bad file in a 10,000-row manifest is
skipped and reported instead of crashing a run an hour in. ``selftrain data check`` prints the same report.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from selftrain.errors import AudioError
from selftrain.record import Utterance
from selftrain.text import Alphabet, TextNormalizer, has_undecodable_bytes

__all__ = [
    "CheckConfig",
    "Problem",
    "RowReport",
    "CheckReport",
    "check_utterances",
    "filter_valid",
    "record_problem",
    "has_bad_encoding",
    "save_report",
    "ERROR_CODES",
]

# Problem codes and what they mean; every code except the warnings makes a row be skipped.
ERROR_CODES = {
    "missing": "audio file not found",
    "empty": "zero-length audio file",
    "unreadable": "not a readable audio file",
    "truncated": "audio data shorter than its header says",
    "no_samples": "audio file holds no samples",
    "nonfinite": "NaN or infinite samples",
    "silent": "peak level below the silence threshold",
    "wrong_rate": "sample rate differs from the model's",
    "wrong_channels": "more than one channel",
    "too_short": "shorter than min_duration",
    "too_long": "longer than max_duration",
    "duration_mismatch": "manifest duration differs from the audio's",
    "empty_transcript": "labeled row with an empty (or all-punctuation) transcript",
    "encoding": "transcript or path is not valid UTF-8",
    "out_of_alphabet": "transcript has characters outside the alphabet",
    "duplicate_id": "ID already used by an earlier row",
}
WARNING_CODES = {"resampled", "downmixed"}


@dataclass
class CheckConfig:
    """What counts as a usable row. Defaults suit 16 kHz speech recognition."""

    sample_rate: int = 16000  # the model's rate
    strict_format: bool = True  # wrong rate / channels: skip (True) or resample / downmix with a warning (False)
    min_duration: float = 0.1  # seconds; shorter utterances are skipped
    max_duration: float = 60.0  # seconds; longer utterances are skipped (they blow up CTC memory)
    duration_tolerance: float = 0.1  # seconds allowed between the manifest's duration and the audio's
    silence_peak_dbfs: float = -60.0  # a file whose peak is below this is silent
    workers: int = 4  # threads reading audio (I/O and libsndfile release the GIL)


@dataclass
class Problem:
    code: str
    message: str

    @property
    def is_error(self) -> bool:
        return self.code not in WARNING_CODES


@dataclass
class RowReport:
    id: str
    wav: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.is_error for p in self.problems)


@dataclass
class CheckReport:
    """Per-row results; ``kept + skipped == total`` always."""

    rows: list[RowReport]

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def skipped(self) -> list[RowReport]:
        return [r for r in self.rows if not r.ok]

    @property
    def kept(self) -> int:
        return self.total - len(self.skipped)

    def counts(self) -> dict[str, int]:
        """Number of rows with each problem code."""
        return dict(Counter(p.code for r in self.rows for p in r.problems))

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "kept": self.kept,
            "skipped": len(self.skipped),
            "problems": self.counts(),
            "rows": [asdict(r) for r in self.rows if r.problems],
        }

    def summary(self, max_rows: int = 20) -> str:
        """A readable summary: counts per problem, then the first ``max_rows`` bad rows."""
        lines = [f"{self.total} rows: {self.kept} usable, {len(self.skipped)} skipped"]
        for code, count in sorted(self.counts().items(), key=lambda kv: -kv[1]):
            lines.append(f"  {code:18s} {count:6d}  {ERROR_CODES.get(code, 'warning')}")
        bad = [r for r in self.rows if r.problems]
        for row in bad[:max_rows]:
            lines.append(f"  {row.id}: " + "; ".join(f"[{p.code}] {p.message}" for p in row.problems))
        if len(bad) > max_rows:
            lines.append(f"  ... and {len(bad) - max_rows} more rows (see the full report)")
        return "\n".join(lines)


_ENCODING_MESSAGE = "bytes that are not UTF-8 in the transcript, ID, path or another column"


def has_bad_encoding(utt: Utterance) -> bool:
    """True when a text field of ``utt`` (ID, path, transcript, speaker, extra columns) holds bytes
    that are not UTF-8: such a row cannot be written to JSON and is skipped (reason ``encoding``)."""
    return has_undecodable_bytes(utt.id, utt.wav, utt.reference, utt.spk_id, *utt.extra.keys(), *utt.extra.values())


def record_problem(utt: Utterance, seen: set[str]) -> Problem | None:
    """Why a stage must skip ``utt`` before reading its audio, or ``None``; adds its ID to ``seen``.

    ``duplicate_id``: an earlier row (IDs in ``seen``) has its ID; only the first row with an ID can
    be used, as in :func:`check_utterances`. ``encoding``: see :func:`has_bad_encoding`.
    """
    if utt.id in seen:
        return Problem("duplicate_id", f"ID {utt.id!r} appears earlier in the manifest")
    seen.add(utt.id)
    if has_bad_encoding(utt):
        return Problem("encoding", _ENCODING_MESSAGE)
    return None


def _check_audio(utt: Utterance, config: CheckConfig) -> list[Problem]:
    # imported here: it brings torch, which `selftrain data check --help` (CheckConfig's defaults) does without
    from selftrain.data.audio import audio_info, read_audio

    try:
        info = audio_info(utt.wav)
    except AudioError as exc:
        return [Problem(exc.reason, str(exc))]
    problems: list[Problem] = []
    if info.truncated:
        return [Problem("truncated", f"header says {info.frames} frames but the data is cut short")]
    if info.sample_rate != config.sample_rate:
        code = "wrong_rate" if config.strict_format else "resampled"
        problems.append(Problem(code, f"{info.sample_rate} Hz, expected {config.sample_rate} Hz"))
    if info.channels != 1:
        code = "wrong_channels" if config.strict_format else "downmixed"
        problems.append(Problem(code, f"{info.channels} channels, expected mono"))
    try:
        data, rate = read_audio(utt.wav)
    except AudioError as exc:
        return [*problems, Problem(exc.reason, str(exc))]
    return problems + _check_samples(utt, data, rate, config)


def _check_samples(utt: Utterance, data: np.ndarray, rate: int, config: CheckConfig) -> list[Problem]:
    if data.size == 0:
        return [Problem("no_samples", "the file holds no samples")]
    if not np.isfinite(data).all():
        return [Problem("nonfinite", f"{int((~np.isfinite(data)).sum())} NaN/inf samples")]
    problems = []
    duration = data.shape[0] / rate
    peak = float(np.abs(data).max())
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_db < config.silence_peak_dbfs:
        problems.append(Problem("silent", f"peak {peak_db:.1f} dBFS < {config.silence_peak_dbfs} dBFS"))
    if duration < config.min_duration:
        problems.append(Problem("too_short", f"{duration:.3f} s < {config.min_duration} s"))
    if duration > config.max_duration:
        problems.append(Problem("too_long", f"{duration:.1f} s > {config.max_duration} s"))
    if utt.duration > 0 and abs(utt.duration - duration) > config.duration_tolerance:
        problems.append(Problem("duration_mismatch", f"manifest says {utt.duration:.3f} s, audio is {duration:.3f} s"))
    return problems


def _check_text(utt: Utterance, labeled: bool, normalizer: TextNormalizer, alphabet: Alphabet | None) -> list[Problem]:
    text = utt.reference or ""
    if has_bad_encoding(utt):
        return [Problem("encoding", _ENCODING_MESSAGE)]
    if not labeled:
        return []
    normalized = normalizer(text)
    if not normalized:
        return [Problem("empty_transcript", f"transcript {text!r} is empty after normalisation")]
    if alphabet is not None:
        unknown = alphabet.unknown_chars(normalized)
        if unknown:
            return [Problem("out_of_alphabet", f"characters {''.join(sorted(unknown))!r} not in the alphabet")]
    return []


def check_utterances(
    utterances: Sequence[Utterance],
    config: CheckConfig | None = None,
    normalizer: TextNormalizer | None = None,
    alphabet: Alphabet | None = None,
    labeled: bool | None = None,
    progress: bool = True,
) -> CheckReport:
    """Check every row's audio and transcript.

    ``labeled=None`` infers it: a manifest where any row has a transcript is labeled, and then an
    empty transcript is an error. ``alphabet`` (e.g. a model's) enables the out-of-alphabet check.
    """
    config = config or CheckConfig()
    normalizer = normalizer or TextNormalizer()
    if labeled is None:
        labeled = any(u.reference for u in utterances)
    with ThreadPoolExecutor(max(1, config.workers)) as pool:
        audio_problems = list(
            tqdm(
                pool.map(lambda u: _check_audio(u, config), utterances),
                total=len(utterances),
                desc="checking audio",
                disable=not progress,
                unit="file",
            )
        )
    seen: set[str] = set()
    rows = []
    for utt, problems in zip(utterances, audio_problems, strict=True):
        row = RowReport(utt.id, utt.wav, _check_text(utt, labeled, normalizer, alphabet) + problems)
        if utt.id in seen:
            row.problems.insert(0, Problem("duplicate_id", f"ID {utt.id!r} appears earlier in the manifest"))
        seen.add(utt.id)
        rows.append(row)
    return CheckReport(rows)


def filter_valid(
    utterances: Sequence[Utterance], config: CheckConfig | None = None, **kwargs
) -> tuple[list[Utterance], CheckReport]:
    """The usable rows of ``utterances`` (in order) and the report saying why the others were skipped."""
    report = check_utterances(utterances, config, **kwargs)
    kept = [u for u, r in zip(utterances, report.rows, strict=True) if r.ok]
    return kept, report


def save_report(report: CheckReport, path: str | Path) -> None:
    """Write the report as JSON (``.json``) or as the readable summary (any other suffix)."""
    from selftrain.io import atomic_write_json, atomic_write_text

    path = Path(path)
    if path.suffix == ".json":
        atomic_write_json(path, report.to_dict())
    else:
        atomic_write_text(path, report.summary(max_rows=len(report.rows)) + "\n")
