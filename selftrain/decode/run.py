"""Decoding a manifest with a teacher: batched forward passes, pooled beam search, resumable output.

Records stream into a JSON-lines file (:class:`~selftrain.io.JsonlWriter`): a rerun after an
interruption skips the ids already written. ``Shard("i/N")`` splits a manifest deterministically
(whole batches, by a hash of each batch's first id) so N jobs can share it; :func:`merge_shards`
joins their outputs into exactly what one unsharded run writes. Batches are always the same
consecutive runs of the manifest (resumed and sharded runs included), because a model's output can
depend on its batch neighbours through padding.

Rows that cannot be decoded are skipped with a reason, never a crash: a repeated ID or text that is
not UTF-8 before any audio is read (:func:`~selftrain.data.check.record_problem`), then unusable
audio (:class:`~selftrain.errors.AudioError` reasons, ``too_long`` above ``max_duration``). Audio
at another rate or with several channels is resampled / downmixed and counted in the report.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import os
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence, Set, Sized
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from selftrain.data.audio import SkipLog
from selftrain.data.check import record_problem
from selftrain.decode.pool import DecoderPool, PendingResult
from selftrain.errors import ConfigError, DecodeError
from selftrain.io import atomic_write, read_jsonl
from selftrain.models.api import AcousticModel
from selftrain.record import Hypothesis, Utterance

__all__ = ["Shard", "DecodeReport", "MergeReport", "acoustic_log_probs", "iter_decoded", "decode_manifest", "merge_shards",
           "screen_rows", "iter_screened"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based): the batches whose first id hashes to ``index``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"shard must be i/N with 0 <= i < N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"0/4"`` -> ``Shard(0, 4)``."""
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError as exc:
            raise ConfigError(f"shard must look like i/N (e.g. 0/4), got {text!r}") from exc
        return cls(index, count)

    def contains(self, utt_id: str) -> bool:
        # A content hash, not Python's salted hash(), so every job agrees on the split.
        digest = hashlib.sha1(utt_id.encode("utf-8", "surrogateescape")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def select(self, utterances: Iterable[Utterance], batch_size: int) -> list[Utterance]:
        """This shard's utterances, taken in whole batches of the unsharded run.

        A batch goes to the shard its first id hashes to, so every utterance is decoded with the
        same batch neighbours (the same padding) as without sharding: the outputs match exactly.
        """
        return list(self.stream(utterances, batch_size))

    def stream(self, utterances: Iterable[Utterance], batch_size: int) -> Iterator[Utterance]:
        """:meth:`select` one utterance at a time, reading ``utterances`` as it goes."""
        for batch in _batches(utterances, batch_size):
            if self.contains(batch[0].id):
                yield from batch

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class DecodeReport:
    """What a decoding run did (counts include only this shard).

    ``utterances == already_done + decoded + skipped`` once the run finishes (``limit`` stops it
    early). ``bad_audio`` counts the skipped rows by reason (audio problems, ``duplicate_id``,
    ``encoding``) and ``skipped_rows`` lists them; ``converted`` counts decoded rows whose audio was
    ``downmixed`` or ``resampled``.
    """

    out: str
    teacher: str
    decoder: str
    shard: str | None
    utterances: int
    already_done: int
    decoded: int
    bad_audio: dict[str, int] = field(default_factory=dict)
    skipped_rows: list[dict] = field(default_factory=list)
    converted: dict[str, int] = field(default_factory=dict)
    audio_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        """Rows of this run that were not decoded, for the reasons in ``skipped_rows``."""
        return len(self.skipped_rows)

    @property
    def real_time_factor(self) -> float:
        """Processing time per second of audio (lower is faster)."""
        return self.seconds / self.audio_seconds if self.audio_seconds else 0.0


def _load_batch(batch: Sequence[Utterance], sample_rate: int, max_seconds: float, log: SkipLog,
                skip: Set[str]) -> tuple[list[Utterance], list[torch.Tensor]]:
    """Load a batch's audio; bad files are recorded in ``log`` and left out (rows in ``skip``, only
    loaded as batch neighbours, were reported by an earlier run)."""
    kept, wavs = [], []
    for utt in batch:
        wav = (SkipLog() if utt.id in skip else log).load(utt.id, utt.wav, sample_rate, max_seconds)
        if wav is not None:
            kept.append(utt)
            wavs.append(wav)
    return kept, wavs


def acoustic_log_probs(model: AcousticModel, wavs: list[torch.Tensor]) -> list[np.ndarray]:
    """Padded batch forward pass; one ``[T_valid, V]`` float32 array per utterance."""
    lengths = torch.tensor([len(w) for w in wavs], dtype=torch.float32)
    padded = torch.nn.utils.rnn.pad_sequence(wavs, batch_first=True)
    with torch.inference_mode():
        log_probs, frames = model.log_probs(padded, lengths / lengths.max())
    array = log_probs.float().cpu().numpy()
    return [array[i, : int(n)] for i, n in enumerate(frames.cpu().tolist())]


@contextmanager
def _forward_threads(model: AcousticModel, workers: int) -> Iterator[None]:
    """Leave the beam-search workers their cores: the forward pass gets the rest (at least one).

    With torch's default of one thread per core, the forward pass and one busy worker
    oversubscribe the CPU and the LSTM forward pass slows down several times, which cost more than
    the worker saved (docs/experiments/2026-11-23-decode-speed.md).
    """
    parameters = getattr(model, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    if workers == 0 or (first is not None and first.device.type != "cpu"):
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(before, len(os.sched_getaffinity(0)) - workers)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _batches(utterances: Iterable[Utterance], batch_size: int) -> Iterator[list[Utterance]]:
    """Consecutive runs of ``batch_size`` utterances (the last one shorter), read as they are needed."""
    batch: list[Utterance] = []
    for utt in utterances:
        batch.append(utt)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def iter_decoded(model: AcousticModel, utterances: Iterable[Utterance], decoder: DecoderPool,
                 bad_audio: Counter[str] | None = None, progress: bool = True,
                 skip: Set[str] = frozenset(), log: SkipLog | None = None) -> Iterator[tuple[Utterance, Hypothesis]]:
    """Yield ``(utterance, hypothesis)`` in input order, batching ``utterances`` consecutively.

    ``utterances`` may be a stream (:class:`~selftrain.data.manifest.ManifestStream`): it is read one
    batch ahead of the forward pass. The next batch's forward pass overlaps the workers' beam search
    of earlier ones. Unusable audio (longer than ``max_duration`` included) is skipped: recorded in
    ``log`` when given, else counted by reason in ``bad_audio``. Ids in ``skip`` (already decoded) are
    neither decoded nor yielded, but still padded into their batch, so the others' outputs do not change.
    """
    config = decoder.config
    if log is None:
        log = SkipLog(Counter() if bad_audio is None else bad_audio)
    pending: deque[tuple[list[Utterance], PendingResult]] = deque()
    total = (sum(u.id not in skip for u in utterances) if isinstance(utterances, Sequence)
             else max(len(utterances) - len(skip), 0) if isinstance(utterances, Sized) else None)
    bar = tqdm(total=total, desc=f"decode {decoder.teacher}", unit="utt", disable=not progress)
    for batch in _batches(utterances, config.batch_size):
        if all(u.id in skip for u in batch):
            continue
        kept, wavs = _load_batch(batch, model.sample_rate, config.max_duration, log, skip)
        bar.update(sum(u.id not in skip for u in batch) - sum(u.id not in skip for u in kept))
        if any(u.id not in skip for u in kept):
            with _forward_threads(model, config.workers):
                outputs = acoustic_log_probs(model, wavs)
            todo = [(u, lp) for u, lp in zip(kept, outputs, strict=True) if u.id not in skip]
            pending.append(([u for u, _ in todo], decoder.submit([lp for _, lp in todo])))
        while pending and (len(pending) > config.max_pending_batches or pending[0][1].ready()):
            yield from _finish(pending.popleft(), bar)
    while pending:
        yield from _finish(pending.popleft(), bar)
    bar.close()


def _finish(item: tuple[list[Utterance], PendingResult], bar: tqdm) -> Iterator[tuple[Utterance, Hypothesis]]:
    utterances, result = item
    for utt, hyp in zip(utterances, result.get(), strict=True):
        bar.update()
        yield utt, hyp


def decode_manifest(model: AcousticModel, utterances: Iterable[Utterance], decoder: DecoderPool,
                    out: str | Path, shard: Shard | None = None, limit: int | None = None,
                    progress: bool = True) -> DecodeReport:
    """Decode ``utterances`` (this ``shard`` of them) with ``model`` and ``decoder`` into the JSON-lines
    file ``out``, resuming: the CTC teacher (:class:`~selftrain.teachers.CTCTeacher`) through the
    writer every teacher shares (:func:`~selftrain.teachers.transcribe_manifest`, which says what is
    held in memory, skipped and reported). ``decoder`` stays open for the caller."""
    from selftrain.teachers.ctc import CTCTeacher
    from selftrain.teachers.run import transcribe_manifest

    return transcribe_manifest(CTCTeacher(model, decoder), utterances, out, limit, progress, shard=shard)


def screen_rows(utterances: Iterable[Utterance], log: SkipLog, shard: Shard | None = None) -> list[Utterance]:
    """The rows worth reading audio for: a repeated ID (all but its first row) and text that is not
    UTF-8 are recorded in ``log`` (only by the ``shard`` that owns the ID, so shards add up)."""
    return list(iter_screened(utterances, log, shard))


def iter_screened(utterances: Iterable[Utterance], log: SkipLog, shard: Shard | None = None) -> Iterator[Utterance]:
    """:func:`screen_rows` as a stream (only the ids seen are held)."""
    seen: set[str] = set()
    for utt in utterances:
        problem = record_problem(utt, seen)
        if problem is None:
            yield utt
        elif shard is None or shard.contains(utt.id):
            log.skip(utt.id, problem.code, problem.message)


@dataclass
class MergeReport:
    """The result of :func:`merge_shards`."""

    out: str
    written: int
    missing: list[str]


def merge_shards(shard_files: Iterable[str | Path], utterances: Iterable[Utterance], out: str | Path) -> MergeReport:
    """Join shard outputs into ``out`` in manifest order: the same file an unsharded run writes.

    Raises :class:`DecodeError` when an id appears in two shards or is not in the manifest;
    ids with no record (skipped audio, unfinished shards) are returned in ``missing``. Shards
    written in manifest order (as :func:`decode_manifest` writes them) are merged as streams, holding
    only ids; others are loaded whole.
    """
    paths = [Path(p) for p in shard_files]
    for path in paths:
        if not path.is_file():
            raise DecodeError(f"shard output not found: {path}")
    position: dict[str, int] = {}
    for utt in utterances:  # a repeated id was decoded (and is written) once
        position.setdefault(utt.id, len(position))
    decoded, in_order = _check_shards(paths, position)
    with atomic_write(out) as handle:
        lines = (_merged_lines(paths, position) if in_order else
                 (_json_line(r) for r in sorted((r for p in paths for r in read_jsonl(p)), key=lambda r: position[r["id"]])))
        handle.writelines(lines)
    return MergeReport(str(out), len(decoded), [i for i in position if i not in decoded])


def _check_shards(paths: list[Path], position: dict[str, int]) -> tuple[set[str], bool]:
    """The ids decoded in all shards (refused: one in two shards, or not in the manifest), and whether
    every shard lists its ids in manifest order."""
    decoded: set[str] = set()
    unknown: set[str] = set()
    in_order = True
    for path in paths:
        last = -1
        for record in read_jsonl(path):
            utt_id = record["id"]
            if utt_id in decoded:
                raise DecodeError(f"utterance {utt_id} appears in more than one shard ({path})")
            decoded.add(utt_id)
            if utt_id not in position:
                unknown.add(utt_id)
                continue
            in_order = in_order and position[utt_id] > last
            last = position[utt_id]
    if unknown:
        raise DecodeError(f"{len(unknown)} decoded ids are not in the manifest, e.g. {sorted(unknown)[0]}")
    return decoded, in_order


def _merged_lines(paths: list[Path], position: dict[str, int]) -> Iterator[str]:
    """The shards' records as lines, in manifest order (each shard already is)."""
    streams = [((position[r["id"]], k, r) for r in read_jsonl(path)) for k, path in enumerate(paths)]
    for _, _, record in heapq.merge(*streams):
        yield _json_line(record)


def _json_line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"
