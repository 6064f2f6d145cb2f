"""Audio input: read with soundfile (as SpeechBrain does), mix to mono, resample with torchaudio.

torchaudio >= 2.9 reads files through torchcodec, which is not part of our stack, so reading is done
with soundfile and only the resampling is torchaudio's.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from selftrain.errors import AudioError

log = logging.getLogger(__name__)

__all__ = ["AudioInfo", "SkipLog", "audio_info", "read_audio", "load_audio", "load_audio_converted", "load_audio_or_skip"]


@dataclass
class AudioInfo:
    """What a file's header says, plus whether its data is all there."""

    sample_rate: int
    channels: int
    frames: int
    truncated: bool

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def audio_info(path: str | Path) -> AudioInfo:
    """Read a file's header; raise :class:`AudioError` (``missing``, ``empty`` or ``unreadable``)."""
    path = Path(path)
    if not path.exists():
        raise AudioError("missing", f"{path}: file not found")
    if path.stat().st_size == 0:
        raise AudioError("empty", f"{path}: zero-length file")
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError("unreadable", f"{path}: not a readable audio file ({exc})") from exc
    return AudioInfo(info.samplerate, info.channels, info.frames, _wav_is_truncated(path))


def _wav_is_truncated(path: Path) -> bool:
    """True when a RIFF/WAVE ``data`` chunk claims more bytes than the file holds.

    libsndfile silently shortens such files, so we read the chunk header ourselves.
    """
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return False
        file_size = path.stat().st_size
        position = 12
        while position + 8 <= file_size:
            handle.seek(position)
            chunk = handle.read(8)
            size = int.from_bytes(chunk[4:8], "little")
            if chunk[:4] == b"data":
                return size != 0xFFFFFFFF and position + 8 + size > file_size
            position += 8 + size + (size & 1)
    return True  # no data chunk before the end of the file


def read_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a whole file as float32 ``[frames, channels]`` plus its sample rate."""
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError("unreadable", f"{path}: cannot decode audio ({exc})") from exc
    return data, rate


def load_audio(path: str | Path, sample_rate: int = 16000, max_seconds: float | None = None) -> torch.Tensor:
    """Load ``path`` as a 1-D float32 tensor at ``sample_rate``: mixed to mono, resampled if needed.

    Raises :class:`AudioError` with reason ``missing``, ``empty``, ``unreadable``, ``truncated``,
    ``no_samples``, ``nonfinite`` or (when the header gives more than ``max_seconds``, checked before
    the samples are read) ``too_long``: callers skip the utterance and report the reason.
    """
    return load_audio_converted(path, sample_rate, max_seconds)[0]


def load_audio_converted(path: str | Path, sample_rate: int = 16000,
                         max_seconds: float | None = None) -> tuple[torch.Tensor, list[str]]:
    """:func:`load_audio`, plus what was done to fit the model: ``"downmixed"`` (more than one
    channel, averaged) and/or ``"resampled"`` (another rate, resampled with torchaudio)."""
    info = audio_info(path)
    if info.truncated:
        raise AudioError("truncated", f"{path}: data chunk is shorter than its header says")
    if max_seconds and info.duration > max_seconds:
        raise AudioError("too_long", f"{path}: {info.duration:.1f} s is longer than {max_seconds:g} s")
    data, rate = read_audio(path)
    if data.shape[0] == 0:
        raise AudioError("no_samples", f"{path}: contains no samples")
    if not np.isfinite(data).all():
        raise AudioError("nonfinite", f"{path}: contains NaN or infinite samples")
    conversions = ["downmixed"] if data.shape[1] > 1 else []
    wav = torch.from_numpy(data.mean(axis=1))
    if rate != sample_rate:
        import torchaudio.functional

        wav = torchaudio.functional.resample(wav, rate, sample_rate)
        conversions.append("resampled")
    return wav, conversions


@dataclass
class SkipLog:
    """What a stage left out of a manifest and why, and what audio it had to convert: its report.

    ``bad`` counts skipped rows by reason, ``rows`` lists them (``{"id", "reason", "detail"}``),
    ``converted`` counts rows kept after being downmixed or resampled.
    """

    bad: Counter[str] = field(default_factory=Counter)
    rows: list[dict] = field(default_factory=list)
    converted: Counter[str] = field(default_factory=Counter)

    def skip(self, utt_id: str, reason: str, detail: str = "") -> None:
        """Record (and log) that row ``utt_id`` is skipped for ``reason``."""
        log.warning("skipping %s (%s): %s", utt_id, reason, detail)
        self.bad[reason] += 1
        self.rows.append({"id": utt_id, "reason": reason, "detail": detail})

    def load(self, utt_id: str, path: str | Path, sample_rate: int, max_seconds: float | None = None) -> torch.Tensor | None:
        """:func:`load_audio`, or ``None`` (recorded with its reason) when the file cannot be used."""
        try:
            wav, conversions = load_audio_converted(path, sample_rate, max_seconds)
        except AudioError as exc:
            self.skip(utt_id, exc.reason, str(exc))
            return None
        self.converted.update(conversions)
        return wav


def load_audio_or_skip(utt_id: str, path: str | Path, sample_rate: int, bad: Counter[str]) -> torch.Tensor | None:
    """:func:`load_audio`, or ``None`` for an unreadable file: logged and counted in ``bad`` by reason."""
    return SkipLog(bad).load(utt_id, path, sample_rate)
