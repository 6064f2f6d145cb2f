"""Training data: manifests -> checked rows -> SpeechBrain datasets and the mixed batch sampler.

Every row that cannot be trained on is skipped with a reason (never a crash) and counted per
pool (``labeled``, ``pseudo``, ``unlabeled``, ``dev``): an ID used by an earlier row of any training
manifest (``duplicate_id``; dev IDs are checked among dev rows), an ID, path or transcript that is
not UTF-8 (``encoding``), unreadable audio (:class:`~selftrain.errors.AudioError` reasons),
durations out of range (``too_long`` is decided from the header, before reading), empty or
untokenizable targets, targets longer than the model's output frames (CTC cannot align them),
pseudo-labels whose weight is below ``min_weight``. Audio at another sample rate or with several
channels is resampled / downmixed and counted in ``PreparedData.converted``.

A pseudo-labeled row with a ``runs`` column (segments trained in context,
:func:`~selftrain.select.segments.in_context_row`) trains its runs only: its tokens are the runs'
tokens one after another and ``Row.spans`` says where each run lies; a run too short for its words
is dropped (``run_too_short``, counted, the row trains the others).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from selftrain.data.audio import load_audio, load_audio_converted
from selftrain.data.batching import MixedDurationBatchSampler, Pool
from selftrain.data.check import record_problem
from selftrain.data.manifest import read_manifest
from selftrain.data.runs import RUNS_COLUMN, parse_runs
from selftrain.data.tokenizer import CharTokenizer, Tokenizer, load_tokenizer
from selftrain.errors import AudioError, ConfigError, ManifestError, TextError
from selftrain.record import Utterance
from selftrain.train.config import DataConfig

__all__ = ["KIND_LABELED", "KIND_PSEUDO", "KIND_UNLABELED", "Row", "PreparedData", "prepare_data", "make_dataset", "build_tokenizer"]

logger = logging.getLogger(__name__)

KIND_LABELED, KIND_PSEUDO, KIND_UNLABELED = 0, 1, 2
RUN_EDGE_SECONDS = 0.01  # a run this close to its audio's start or end lies at the edge (manifest rounding)
KIND_NAMES = {KIND_LABELED: "labeled", KIND_PSEUDO: "pseudo", KIND_UNLABELED: "unlabeled"}


@dataclass
class Row:
    """One usable utterance: audio path, kind, token ids (empty when unlabeled), CTC weight, and for a
    row that trains runs of its audio, ``spans``: ``(start, end, tokens)`` per run, start and end as
    fractions of the audio, ``tokens`` the run's share of ``tokens`` in order (empty: all of it)."""

    id: str
    wav: str
    duration: float
    kind: int
    text: str
    tokens: list[int]
    weight: float = 1.0
    spans: list[tuple[float, float, int]] = field(default_factory=list)


@dataclass
class PreparedData:
    """Checked rows of each pool, the tokenizer, and what was skipped.

    ``skipped`` counts ``"pool:reason"``, ``skipped_rows`` lists them, ``totals`` counts the rows
    read per pool (kept + skipped), ``converted`` counts ``"pool:resampled"`` / ``"pool:downmixed"``.
    """

    train: list[Row]
    dev: list[Row]
    tokenizer: Tokenizer
    skipped: Counter = field(default_factory=Counter)
    skipped_rows: list[dict] = field(default_factory=list)
    totals: Counter = field(default_factory=Counter)
    converted: Counter = field(default_factory=Counter)


def build_tokenizer(config: DataConfig, texts: list[str]) -> Tokenizer:
    """The configured tokenizer: characters of the (normalised) labeled text, or a saved one."""
    if config.tokenizer == "char":
        if not texts:
            raise ConfigError("no labeled text to build a character tokenizer from")
        return CharTokenizer.from_texts(texts)
    path = Path(config.tokenizer)
    if not path.exists():
        raise ConfigError(f"data.tokenizer: {path} does not exist (use 'char' or a tokenizer.json)")
    return load_tokenizer(path)


def _read_all(paths: list[str]) -> list[Utterance]:
    utterances: list[Utterance] = []
    for path in paths:
        utterances.extend(read_manifest(path))
    return utterances


def _weight(utt: Utterance, column: str) -> float:
    if not column:
        return 1.0
    value = utt.extra.get(column, "")
    if value in ("", None):
        return 1.0 if utt.confidence is None else float(utt.confidence)
    try:
        weight = float(value)
    except ValueError as exc:
        raise ManifestError(f"{utt.id}: {column}={value!r} is not a number") from exc
    if not weight >= 0.0 or weight != weight:
        raise ManifestError(f"{utt.id}: {column}={value!r} must be a non-negative number")
    return weight


class _Checker:
    """Turns utterances into rows, recording why rejected ones were skipped."""

    def __init__(self, config: DataConfig, tokenizer: Tokenizer, sample_rate: int, frame_shift: float):
        self.config = config
        self.tokenizer = tokenizer
        self.sample_rate = sample_rate
        self.frame_shift = frame_shift
        self.skipped: Counter = Counter()
        self.skipped_rows: list[dict] = []
        self.totals: Counter = Counter()
        self.converted: Counter = Counter()

    def skip(self, utt: Utterance, pool: str, reason: str, detail: str = "") -> None:
        self.skipped[f"{pool}:{reason}"] += 1
        self.skipped_rows.append({"id": utt.id, "pool": pool, "reason": reason, "detail": detail})

    def row(self, utt: Utterance, kind: int, pool: str, seen: set[str]) -> Row | None:
        """``utt`` as a training row of ``pool``, or ``None`` (recorded with its reason)."""
        problem = record_problem(utt, seen)
        if problem is not None:
            self.skip(utt, pool, problem.code, problem.message)
            return None
        duration = self._duration(utt, pool)
        if duration is None:
            return None
        if kind == KIND_UNLABELED:
            return Row(utt.id, utt.wav, duration, kind, "", [])
        if kind == KIND_PSEUDO and utt.extra.get(RUNS_COLUMN):
            return self._runs_row(utt, pool, duration)
        target = self._target(utt, kind, pool, duration)
        return None if target is None else Row(utt.id, utt.wav, duration, kind, *target)

    def _runs_row(self, utt: Utterance, pool: str, duration: float) -> Row | None:
        """A row that trains the runs of its ``runs`` column; runs that CTC cannot fit are dropped."""
        try:
            runs = parse_runs(utt)
        except ManifestError as exc:
            self.skip(utt, pool, "bad_runs", str(exc))
            return None
        weight = _weight(utt, self.config.weight_column)
        texts, tokens, spans = [], [], []
        separator = " " in self.tokenizer.ctc_labels()
        for start, end, words in runs:
            end = min(end, duration)
            text = self.tokenizer.normalizer(words)
            # a run that borders other words ends in a word separator there, as it would in the whole
            # label: without it, runs of a word or two taught the model to join words
            inner_start, inner_end = start > RUN_EDGE_SECONDS, end < duration - RUN_EDGE_SECONDS
            bordered = (" " if separator and inner_start else "") + text + (" " if separator and inner_end else "")
            try:
                run_tokens = self.tokenizer.encode(bordered) if text else []
            except TextError as exc:
                self.skip(utt, pool, "bad_text", str(exc))
                return None
            if not run_tokens or not self._fits(run_tokens, end - start):
                self.skip(utt, pool, "run_too_short", f"[{start:.2f}, {end:.2f}] s for {words!r}")
                continue
            texts.append(text)
            tokens.extend(run_tokens)
            spans.append((start / duration, end / duration, len(run_tokens)))
        if not spans:
            return None
        if weight < self.config.min_weight:
            self.skip(utt, pool, "low_weight", f"{weight:.3f}")
            return None
        return Row(utt.id, utt.wav, duration, KIND_PSEUDO, " ".join(texts), tokens, weight, spans)

    def _fits(self, tokens: list[int], seconds: float) -> bool:
        """Whether CTC can align ``tokens`` (a blank between repeats) to ``seconds`` of output frames."""
        repeats = sum(1 for a, b in zip(tokens, tokens[1:], strict=False) if a == b)
        return len(tokens) + repeats <= int(seconds / self.frame_shift)

    def _duration(self, utt: Utterance, pool: str) -> float | None:
        """The audio's length at the model's rate, if it loads and lies within the duration limits."""
        try:
            wav, conversions = load_audio_converted(utt.wav, self.sample_rate, self.config.max_duration)
        except AudioError as exc:
            self.skip(utt, pool, exc.reason, str(exc))
            return None
        self.converted.update(f"{pool}:{c}" for c in conversions)
        duration = wav.numel() / self.sample_rate
        if duration < self.config.min_duration:
            self.skip(utt, pool, "too_short", f"{duration:.2f}s")
            return None
        if duration > self.config.max_duration:
            self.skip(utt, pool, "too_long", f"{duration:.2f}s")
            return None
        return duration

    def _target(self, utt: Utterance, kind: int, pool: str, duration: float) -> tuple[str, list[int], float] | None:
        """Normalised text, token ids and CTC weight of a labeled or pseudo-labeled row."""
        text = self.tokenizer.normalizer(utt.reference or "")
        if not text:
            self.skip(utt, pool, "empty_target")
            return None
        try:
            tokens = self.tokenizer.encode(text)
        except TextError as exc:
            self.skip(utt, pool, "bad_text", str(exc))
            return None
        if not self._fits(tokens, duration):
            self.skip(utt, pool, "target_too_long", f"{len(tokens)} tokens in {duration:.2f}s")
            return None
        if kind != KIND_PSEUDO:
            return text, tokens, 1.0
        weight = _weight(utt, self.config.weight_column)
        if weight < self.config.min_weight:
            self.skip(utt, pool, "low_weight", f"{weight:.3f}")
            return None
        return text, tokens, weight

    def rows(self, utterances: list[Utterance], kind: int, pool: str, seen: set[str]) -> list[Row]:
        """The usable rows of one pool; ``seen`` holds the IDs of earlier rows (shared across pools)."""
        self.totals[pool] += len(utterances)
        rows = []
        for utt in tqdm(utterances, desc=f"checking {pool}", leave=False, disable=len(utterances) < 200):
            row = self.row(utt, kind, pool, seen)
            if row is not None:
                rows.append(row)
        return rows


def prepare_data(config: DataConfig, sample_rate: int, frame_shift: float) -> PreparedData:
    """Read and check every manifest of ``config``; build the tokenizer from the labeled text."""
    if not config.labeled and not config.pseudo:
        raise ConfigError("training needs at least one labeled or pseudo-labeled manifest")
    labeled = _read_all(config.labeled)
    pseudo = _read_all(config.pseudo)
    unlabeled = _read_all(config.unlabeled)
    dev = read_manifest(config.dev) if config.dev else []
    texts = [u.reference for u in (labeled or pseudo) if u.reference]  # the alphabet of the labeled text
    tokenizer = build_tokenizer(config, texts)
    checker = _Checker(config, tokenizer, sample_rate, frame_shift)
    seen: set[str] = set()  # IDs must be unique across the training pools (one dataset)
    train = checker.rows(labeled, KIND_LABELED, "labeled", seen) + checker.rows(pseudo, KIND_PSEUDO, "pseudo", seen)
    train += checker.rows(unlabeled, KIND_UNLABELED, "unlabeled", seen)
    dev_rows = checker.rows(dev, KIND_LABELED, "dev", set())
    for reason, count in sorted(checker.skipped.items()):
        logger.warning("skipped %d row(s): %s", count, reason)
    for conversion, count in sorted(checker.converted.items()):
        logger.info("%s: %d row(s) converted to the model's format", conversion, count)
    if not any(r.kind != KIND_UNLABELED for r in train):
        raise ManifestError("no usable labeled or pseudo-labeled utterance is left after checking")
    return PreparedData(train, dev_rows, tokenizer, checker.skipped, checker.skipped_rows, checker.totals,
                        checker.converted)


def make_dataset(rows: list[Row], sample_rate: int):
    """A SpeechBrain ``DynamicItemDataset`` yielding ``id, sig, tokens, num_tokens, kind, weight, spans``.

    Audio that fails to load at training time (it was checked before) becomes 0.1 s of silence with
    weight 0 and kind unlabeled, so the batch still runs and the row teaches nothing.
    """
    import speechbrain as sb

    data = {
        r.id: {"wav": r.wav, "duration": r.duration, "kind": r.kind, "tok": r.tokens, "w": r.weight, "spans": r.spans}
        for r in rows
    }
    dataset = sb.dataio.dataset.DynamicItemDataset(data)

    @sb.utils.data_pipeline.takes("wav", "tok", "kind", "w", "spans")
    @sb.utils.data_pipeline.provides("sig", "tokens", "num_tokens", "kind_id", "weight", "spans")
    def pipeline(wav, tok, kind, w, spans):
        try:
            sig = load_audio(wav, sample_rate)
        except AudioError as exc:
            logger.warning("audio failed at training time, row ignored: %s", exc)
            sig, tok, kind, w, spans = torch.zeros(sample_rate // 10), [], KIND_UNLABELED, 0.0, []
        yield sig
        yield torch.LongTensor(tok if tok else [0])
        yield len(tok)
        yield kind
        yield float(w)
        yield [tuple(span) for span in spans]

    dataset.add_dynamic_item(pipeline)
    dataset.set_output_keys(["id", "sig", "tokens", "num_tokens", "kind_id", "weight", "spans"])
    return dataset


def make_train_sampler(rows: list[Row], config: DataConfig, seed: int) -> MixedDurationBatchSampler:
    """The mixed, duration-bucketed batch sampler over ``rows`` (indices follow ``rows``' order)."""
    shares = {KIND_LABELED: config.mix_labeled, KIND_PSEUDO: config.mix_pseudo, KIND_UNLABELED: config.mix_unlabeled}
    pools = []
    for kind in (KIND_LABELED, KIND_PSEUDO, KIND_UNLABELED):
        idx = [i for i, r in enumerate(rows) if r.kind == kind]
        pools.append(Pool(KIND_NAMES[kind], idx, [rows[i].duration for i in idx], shares[kind]))
    if not any(p.indices and p.share > 0 for p in pools[:2]):
        raise ConfigError("data.mix_labeled and data.mix_pseudo give no share to the pools that have labels")
    return MixedDurationBatchSampler(pools, config.batch_seconds, config.max_batch_utterances, seed)
