"""Sub-utterance pseudo-labels: cut the confident runs of words out of an utterance.

Selection decides per utterance; :func:`apply_segments` then gives utterances (the dropped ones, or
all) :class:`~selftrain.record.Segment` s, runs of at least ``min_words`` consecutive words whose
word confidence reaches the threshold. :func:`training_rows` turns them into training rows: with
``context: cut``, :func:`write_segment_audio` cuts their audio into files that train like any other
pseudo-labeled utterance; with ``context: whole``, :func:`in_context_row` keeps the utterance's
audio whole and names its runs (seconds and words) in the ``runs`` column, and training takes the CTC
loss over each run's frames only. No library of the field does this for CTC pseudo-labels (Kaldi's
``clean_and_segment_data`` does it for transcripts that exist), hence by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path

import jiwer

from selftrain.confidence.calibrate import CALIBRATED_SUFFIX
from selftrain.data.runs import RUNS_COLUMN, format_runs, parse_runs
from selftrain.record import Decision, Hypothesis, Segment, Utterance
from selftrain.select.config import SegmentConfig

__all__ = ["SEGMENT_AUDIO_DIR", "WAS", "confident_runs", "cut_segments", "segment_bounds", "apply_segments",
           "label_pairs", "trained_seconds", "segment_rows", "write_segment_audio", "in_context_row",
           "training_rows", "parse_runs", "RUNS_COLUMN"]

SEGMENT_AUDIO_DIR = "segments"
WAS = "; was "  # a segmented utterance's reason ends with the decision it had before: "; was threshold: ..."


def _word_score(scores: dict[str, float], method: str) -> float | None:
    return scores.get(method + CALIBRATED_SUFFIX, scores.get(method))


def confident_runs(hyp: Hypothesis, method: str, threshold: float, min_words: int) -> list[tuple[int, int]]:
    """``(first, last)`` word indices of each maximal run of >= ``min_words`` words scoring >= ``threshold``.

    A word without the score breaks a run.
    """
    runs: list[tuple[int, int]] = []
    start = None
    for index, word in enumerate([*hyp.words, None]):
        score = None if word is None else _word_score(word.scores, method)
        if score is not None and score >= threshold:
            start = index if start is None else start
            continue
        if start is not None and index - start >= min_words:
            runs.append((start, index - 1))
        start = None
    return runs


def cut_segments(utt: Utterance, hyp: Hypothesis, config: SegmentConfig) -> list[Segment]:
    """The segments of ``utt`` whose words come from ``hyp`` (empty without word spans or a duration).

    Frame spans become seconds at ``duration / num_frames`` per frame (the model's output frame shift,
    up to the last frame's rounding). A boundary takes ``config.gap_share`` of the gap between the
    run's outer word and its neighbour, or lies at the utterance's edge.
    """
    words = hyp.words
    if not words or hyp.num_frames <= 0 or utt.duration <= 0:
        return []
    segments = []
    for first, last in confident_runs(hyp, config.method, config.threshold, config.min_words):
        start, end = segment_bounds(hyp, first, last, utt.duration, config.gap_share)
        if end - start >= config.min_seconds:
            text = " ".join(w.word for w in words[first : last + 1])
            segments.append(Segment(round(start, 3), round(end, 3), text, first, last))
    return segments


def segment_bounds(hyp: Hypothesis, first: int, last: int, duration: float, gap_share: float) -> tuple[float, float]:
    """Start and end (seconds) of the audio of words ``first..last`` of ``hyp``: ``gap_share`` of the gap
    to each neighbour's word span, or the utterance's edge where there is no neighbour."""
    words, shift = hyp.words, duration / hyp.num_frames
    start = 0.0 if first == 0 else (words[first].start - gap_share * (words[first].start - words[first - 1].end)) * shift
    end = duration if last == len(words) - 1 else min(
        duration, (words[last].end + gap_share * (words[last + 1].start - words[last].end)) * shift)
    return start, end


def apply_segments(utterances: Iterable[Utterance], config: SegmentConfig, labelling: dict[str, Hypothesis]) -> int:
    """Give each eligible utterance its segments and a decision that says so; returns how many of the
    dropped or cut ones are kept through their runs.

    ``labelling`` maps utterance ids to the hypothesis that gave (or would give) the pseudo-label.
    Eligible: those the policy dropped for their confidence (``threshold``, ``keep_fraction``,
    ``agreement``, ``dust``; never those that failed a sanity filter) and, with ``apply_to: all``,
    the kept ones. A kept utterance without a confident run is dropped (``segments: no run ...``);
    one whose single run spans every word trains whole, from its own file.
    """
    config.__post_init__()
    with_segments = 0
    for utt in utterances:
        hyp = labelling.get(utt.id)
        if hyp is None or utt.decision is None or not _eligible(utt.decision, config):
            continue
        segments = cut_segments(utt, hyp, config)
        seconds = sum(s.end - s.start for s in segments)
        words = sum(s.last_word - s.first_word + 1 for s in segments)
        # one run over every word is the whole utterance: it trains from its own file
        utt.segments = [] if words == len(hyp.words) else segments
        if segments and utt.decision.kept and not utt.segments:
            continue
        if segments:
            with_segments += 1
            reason = (f"segments: {len(segments)} run(s), {words} of {len(hyp.words)} words, "
                      f"{seconds:.1f} of {utt.duration:.1f} s ({config.method} >= {config.threshold:g})"
                      f"{WAS}{utt.decision.reason}")
            utt.decision = Decision(True, reason, utt.decision.policy)
        elif utt.decision.kept:
            utt.decision = Decision(False, f"segments: no run of {config.min_words} words with "
                                           f"{config.method} >= {config.threshold:g}", utt.decision.policy)
    return with_segments


_CONFIDENCE_REASONS = ("threshold", "keep_fraction", "agreement", "dust")


def _eligible(decision: Decision, config: SegmentConfig) -> bool:
    if decision.kept:
        return config.apply_to == "all"
    return decision.reason.split(":", 1)[0] in _CONFIDENCE_REASONS


def _segment_reference(alignment: list, reference_words: list[str], segment: Segment) -> str:
    """The reference words aligned to the segment's hypothesis words (insertions align to none)."""
    indices = [chunk.ref_start_idx + (k - chunk.hyp_start_idx)
               for chunk in alignment if chunk.type != "insert"
               for k in range(chunk.hyp_start_idx, chunk.hyp_end_idx)
               if segment.first_word <= k <= segment.last_word]
    return " ".join(reference_words[min(indices) : max(indices) + 1]) if indices else ""


def label_pairs(utt: Utterance, reference: str) -> Iterator[tuple[str, str]]:
    """(reference, pseudo-label) pairs that measure what trains: the whole utterance, or each segment
    against the reference words aligned to it (``reference`` normalised like the pseudo-label).

    A segmented utterance's ``pseudo_label`` is its whole hypothesis, whose word indices the
    segments name.
    """
    if not utt.segments:
        yield reference, utt.pseudo_label or ""
        return
    alignment = jiwer.process_words(reference or "<empty>", utt.pseudo_label or "<empty>").alignments[0]
    reference_words = reference.split()
    for segment in utt.segments:
        yield _segment_reference(alignment, reference_words, segment), segment.text


def trained_seconds(utt: Utterance) -> float:
    """Seconds of ``utt`` that train: its segments' when it has any, else all of it."""
    return sum(s.end - s.start for s in utt.segments) if utt.segments else utt.duration


def segment_rows(utt: Utterance, folder: Path) -> list[Utterance]:
    """The training rows of ``utt``'s segments (audio files under ``folder``, see :func:`write_segment_audio`)."""
    return [dataclasses.replace(utt, id=f"{utt.id}__seg{k}", wav=str(folder / f"{utt.id}__seg{k}.wav"),
                                duration=round(s.end - s.start, 3), pseudo_label=s.text, segments=[], hypotheses=[])
            for k, s in enumerate(utt.segments)]


def write_segment_audio(utt: Utterance, folder: Path) -> list[Utterance]:
    """Cut ``utt``'s segments out of its audio into ``folder``; returns their training rows.

    The audio is read as it is (sample rate and channels untouched: training converts them as for any
    row). Each file is written beside its final name and renamed, so a half-written one never trains.
    """
    import soundfile as sf

    rows = segment_rows(utt, folder)
    if not rows:
        return rows
    folder.mkdir(parents=True, exist_ok=True)
    audio, rate = sf.read(utt.wav, dtype="float32", always_2d=True)
    for row, segment in zip(rows, utt.segments, strict=True):
        piece = audio[int(segment.start * rate) : int(segment.end * rate)]
        partial = Path(row.wav).with_suffix(".partial.wav")
        sf.write(partial, piece, rate, subtype="PCM_16")
        partial.replace(row.wav)
        row.duration = round(len(piece) / rate, 3)
    return rows


def in_context_row(utt: Utterance) -> Utterance:
    """The training row of ``utt`` whose runs train in context: its own audio, the runs' words as its
    label (for reading) and the runs themselves in the ``runs`` column (what training uses)."""
    runs = [(s.start, s.end, s.text) for s in utt.segments]
    return dataclasses.replace(utt, pseudo_label=" ".join(s.text for s in utt.segments), segments=[], hypotheses=[],
                               extra={**utt.extra, RUNS_COLUMN: format_runs(runs)})


def training_rows(utt: Utterance, folder: Path, context: str) -> list[Utterance]:
    """The training rows of a kept utterance: itself; or, when it has segments, their cut audio
    (``context: cut``, files under ``folder``) or itself with its runs named (``context: whole``)."""
    if not utt.segments:
        return [utt]
    return write_segment_audio(utt, folder) if context == "cut" else [in_context_row(utt)]
