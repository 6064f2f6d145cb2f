"""Rendering planned utterances to 16-bit WAV files, in chunks spread over a process pool.

A chunk holds utterances of one voice: festival chunks are rendered by one festival process, the
others one synthesizer call each. Every utterance then goes through sox and the numpy noise mixer and
is written atomically, so a file that exists is complete and a re-run skips it. An utterance that
fails is retried once on its own, then reported (never fatal for the run).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf

from selftrain.io import atomic_write
from selftrain.synth.effects import apply_sox, babble_noise, colored_noise, mix_at_snr, set_level, to_pcm16
from selftrain.synth.plan import UttPlan, rng_for
from selftrain.synth.voices import Voice, synthesize, synthesize_festival_batch

__all__ = ["RenderSettings", "render_plans", "render_chunk", "chunk_plans", "default_workers"]

FESTIVAL_CHUNK = 40
OTHER_CHUNK = 12


@dataclass(frozen=True)
class RenderSettings:
    """What a worker needs besides the plans: output root, rate, seed and the babble material."""

    out_dir: str
    sample_rate: int
    seed: int
    babble_wavs: tuple[str, ...] = ()
    babble_talkers: tuple[int, int] = (3, 6)


_BABBLE_CACHE: dict[tuple[str, ...], list[np.ndarray]] = {}


def _babble_clips(paths: tuple[str, ...]) -> list[np.ndarray]:
    if paths not in _BABBLE_CACHE:
        _BABBLE_CACHE.clear()
        _BABBLE_CACHE[paths] = [sf.read(p, dtype="float32")[0] for p in paths if Path(p).exists()]
    return _BABBLE_CACHE[paths]


def _noise(plan: UttPlan, num_samples: int, settings: RenderSettings) -> np.ndarray:
    rng = rng_for(settings.seed, plan.id, "noise")
    if plan.conditions.noise == "babble":
        talkers = int(rng.integers(settings.babble_talkers[0], settings.babble_talkers[1] + 1))
        return babble_noise(_babble_clips(settings.babble_wavs), num_samples, talkers, rng)
    return colored_noise(str(plan.conditions.noise), num_samples, rng)


def _finish(plan: UttPlan, raw: Path, settings: RenderSettings) -> None:
    """sox effects, level, noise, 16-bit quantisation, atomic write."""
    samples = apply_sox(raw, plan.conditions, settings.sample_rate)
    samples = set_level(samples, plan.conditions.level_dbfs)
    if plan.conditions.noise and plan.conditions.snr_db is not None:
        samples = mix_at_snr(samples, _noise(plan, samples.size, settings), plan.conditions.snr_db)
    with atomic_write(Path(settings.out_dir, plan.wav), "wb") as handle:
        sf.write(handle, to_pcm16(samples), settings.sample_rate, format="WAV", subtype="PCM_16")


def _render_one(plan: UttPlan, raw: Path, settings: RenderSettings) -> None:
    raw.unlink(missing_ok=True)
    synthesize(Voice.parse(plan.voice), plan.spoken, raw)
    _finish(plan, raw, settings)


def render_chunk(plans: Sequence[UttPlan], settings: RenderSettings) -> list[tuple[str, str | None]]:
    """Render ``plans`` (all one voice); return ``(id, error or None)`` per utterance."""
    results: list[tuple[str, str | None]] = []
    with tempfile.TemporaryDirectory(prefix="selftrain-synth-") as tmp:
        raws = [Path(tmp, f"{p.id}.wav") for p in plans]
        voice = Voice.parse(plans[0].voice)
        batch_error = None
        if voice.engine == "festival":
            try:
                synthesize_festival_batch(
                    voice, [(p.spoken, raw) for p, raw in zip(plans, raws, strict=True)]
                )
            except Exception as exc:  # noqa: BLE001 - every item is retried alone below
                batch_error = exc
        for plan, raw in zip(plans, raws, strict=True):
            results.append((plan.id, _render_with_retry(plan, raw, settings, batched=batch_error is None)))
    return results


def _render_with_retry(plan: UttPlan, raw: Path, settings: RenderSettings, batched: bool) -> str | None:
    error = None
    for attempt in range(2):
        try:
            if attempt == 0 and batched and Voice.parse(plan.voice).engine == "festival":
                _finish(plan, raw, settings)
            else:
                _render_one(plan, raw, settings)
            return None
        except Exception as exc:  # noqa: BLE001 - one bad utterance must not stop the corpus
            error = f"{type(exc).__name__}: {exc}"
    return error


def _render_chunk_args(args: tuple[Sequence[UttPlan], RenderSettings]) -> list[tuple[str, str | None]]:
    return render_chunk(*args)


def chunk_plans(plans: Sequence[UttPlan]) -> list[list[UttPlan]]:
    """Group plans by voice into chunks (festival ones first: they are the longest jobs)."""
    by_voice: dict[str, list[UttPlan]] = {}
    for plan in plans:
        by_voice.setdefault(plan.voice, []).append(plan)
    chunks: list[list[UttPlan]] = []
    for voice in sorted(by_voice, key=lambda v: (not v.startswith("festival:"), v)):
        size = FESTIVAL_CHUNK if voice.startswith("festival:") else OTHER_CHUNK
        items = by_voice[voice]
        chunks.extend(items[i : i + size] for i in range(0, len(items), size))
    return chunks


def render_plans(
    plans: Sequence[UttPlan],
    settings: RenderSettings,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> dict[str, str]:
    """Render the plans whose wav is missing; return ``{id: error}`` for utterances that failed twice."""
    todo = [p for p in plans if not Path(settings.out_dir, p.wav).is_file()]
    chunks = chunk_plans(todo)
    failures: dict[str, str] = {}

    def collect(results: list[tuple[str, str | None]]) -> None:
        failures.update({utt_id: err for utt_id, err in results if err is not None})
        if progress:
            progress(len(results))

    if workers <= 1 or len(chunks) <= 1:
        for chunk in chunks:
            collect(render_chunk(chunk, settings))
        return failures
    # spawn: workers start clean, whatever the parent imported (torch, threads).
    pool = get_context("spawn").Pool(processes=workers)
    try:
        for results in pool.imap_unordered(_render_chunk_args, [(chunk, settings) for chunk in chunks]):
            collect(results)
    except BaseException:
        pool.terminate()  # Ctrl-C or a crash: stop at once; finished wavs stay for the resume
        raise
    finally:
        pool.close()
        pool.join()
    return failures


def default_workers() -> int:
    """Worker processes when none are given: every core."""
    return max(1, os.cpu_count() or 1)
