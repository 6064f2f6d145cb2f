"""Duration-bucketed batches that mix labeled, pseudo-labeled and unlabeled utterances.

Written by hand because SpeechBrain's ``DynamicBatchSampler`` buckets one pool of utterances;
here every batch takes a fixed share of its audio from each pool. Within a pool, batches are
built the usual way: shuffle, group into windows of similar length, fill each batch up to its
duration budget, then shuffle the batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from torch.utils.data import Sampler

__all__ = ["Pool", "MixedDurationBatchSampler", "duration_batches"]


@dataclass
class Pool:
    """Indices (into the combined dataset) and durations of one kind of utterance, with its share."""

    name: str
    indices: list[int]
    durations: list[float]
    share: float


def duration_batches(
    indices: Sequence[int],
    durations: Sequence[float],
    budget_seconds: float,
    max_utterances: int,
    rng: random.Random,
    window: int = 50,
) -> list[list[int]]:
    """Batches whose padded duration (longest x count) stays under ``budget_seconds``.

    Utterances are shuffled, then sorted by duration inside windows of ``window`` batches' worth of
    utterances, so batches hold similar lengths (little padding) but vary from epoch to epoch.
    """
    order = list(range(len(indices)))
    rng.shuffle(order)
    mean = max(sum(durations) / max(len(durations), 1), 1e-3)
    chunk = max(1, int(window * budget_seconds / mean))
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: durations[i])
        current: list[int] = []
        longest = 0.0
        for i in part:
            new_longest = max(longest, durations[i])
            if current and (new_longest * (len(current) + 1) > budget_seconds or len(current) >= max_utterances):
                batches.append(current)
                current, new_longest = [], durations[i]
            current.append(indices[i])
            longest = new_longest
        if current:
            batches.append(current)
    rng.shuffle(batches)
    return batches


class MixedDurationBatchSampler(Sampler[list[int]]):
    """Yields index lists mixing the pools at their shares of ``batch_seconds``.

    An epoch is one pass over the first pool (normally the labeled one); the other pools are
    cycled (reshuffled each time they run out). Deterministic for a given seed and epoch
    (:meth:`set_epoch`), as distributed training requires.
    """

    def __init__(self, pools: list[Pool], batch_seconds: float, max_utterances: int = 64, seed: int = 0):
        self.pools = [p for p in pools if p.indices and p.share > 0]
        if not self.pools:
            raise ValueError("no pool with utterances and a positive share")
        total = sum(p.share for p in self.pools)
        self.budgets = [batch_seconds * p.share / total for p in self.pools]
        self.max_utterances = max_utterances
        self.seed = seed
        self.epoch = 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _pool_batches(self, k: int, rng: random.Random) -> list[list[int]]:
        pool = self.pools[k]
        cap = max(1, round(self.max_utterances * self.budgets[k] / sum(self.budgets)))
        return duration_batches(pool.indices, pool.durations, self.budgets[k], cap, rng)

    def _batches(self) -> list[list[int]]:
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = random.Random(self.seed * 1000003 + self.epoch)
        mixed = [list(b) for b in self._pool_batches(0, rng)]
        for k in range(1, len(self.pools)):
            stream: list[list[int]] = []
            while len(stream) < len(mixed):
                stream.extend(self._pool_batches(k, rng))
            for batch, extra in zip(mixed, stream, strict=False):
                batch.extend(extra)
        self._cache = (self.epoch, mixed)
        return mixed

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
