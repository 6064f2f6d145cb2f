"""Teachers' hypothesis files: selftrain records or external systems' JSONL, merged by utterance id.

A hypothesis file is JSON lines, one utterance per line, in either form:

* a selftrain record (``Utterance.to_dict()``, as written by decoding): every hypothesis it holds
  is a teacher;
* an external system's line: ``{"id": ..., "text": ..., "words": [{"word": ..., "confidence": ...,
  "start": ..., "end": ...}], "confidence": ...}`` where ``words`` and the confidences are optional;
  the file becomes one teacher (named after the file unless given). Text and words pass through
  :class:`~selftrain.text.TextNormalizer` (word by word when ``words`` are given; words that
  normalise to nothing are dropped). Word times are not frame spans, so imported words get the
  empty span ``[0, 0)``; confidences are stored under the score name ``external``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from selftrain.errors import ManifestError
from selftrain.io import read_jsonl
from selftrain.record import Hypothesis, Utterance, Word
from selftrain.text import TextNormalizer

__all__ = ["EXTERNAL_SCORE", "external_hypothesis", "load_teacher_file", "teacher_record", "absorb", "merge_teachers",
           "CoverageReport"]

EXTERNAL_SCORE = "external"


def _unit_interval(value: object, where: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"{where}: confidence {value!r} is not a number") from exc
    if not 0.0 <= number <= 1.0:
        raise ManifestError(f"{where}: confidence {number} is outside [0, 1]")
    return number


def external_hypothesis(row: dict, teacher: str, normalizer: TextNormalizer | None = None,
                        where: str = "") -> Hypothesis:
    """A :class:`Hypothesis` from one external JSONL row (see module docstring)."""
    normalizer = normalizer or TextNormalizer()
    if not isinstance(row.get("text"), str):
        raise ManifestError(f"{where}: external hypothesis needs a string 'text'")
    words: list[Word] = []
    for k, item in enumerate(row.get("words") or []):
        if not isinstance(item, dict) or not isinstance(item.get("word"), str):
            raise ManifestError(f"{where}: words[{k}] needs a string 'word'")
        scores = {}
        if item.get("confidence") is not None:
            scores[EXTERNAL_SCORE] = _unit_interval(item["confidence"], f"{where}: words[{k}]")
        words.extend(Word(token, 0, 0, dict(scores)) for token in normalizer(item["word"]).split())
    text = " ".join(w.word for w in words) if words else normalizer(row["text"])
    hyp = Hypothesis(teacher=teacher, text=text, words=words, decoder="external")
    if row.get("confidence") is not None:
        hyp.scores[EXTERNAL_SCORE] = _unit_interval(row["confidence"], where)
    elif words and all(EXTERNAL_SCORE in w.scores for w in words):
        hyp.scores[EXTERNAL_SCORE] = sum(w.scores[EXTERNAL_SCORE] for w in words) / len(words)
    return hyp


def load_teacher_file(path: str | Path, teacher: str | None = None,
                      normalizer: TextNormalizer | None = None) -> dict[str, Utterance]:
    """Read one hypothesis file into ``{id: Utterance}`` (records kept as they are, external rows imported)."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"hypothesis file not found: {path}")
    out: dict[str, Utterance] = {}
    try:
        rows = list(read_jsonl(path))
    except ValueError as exc:
        raise ManifestError(f"{path}: not JSON lines ({exc})") from exc
    for line_no, row in enumerate(rows, start=1):
        where = f"{path}:{line_no}"
        utt = teacher_record(row, teacher or path.stem, bool(teacher), normalizer, where)
        if utt.id in out:
            raise ManifestError(f"{where}: duplicate utterance id {utt.id!r}")
        out[utt.id] = utt
    return out


def teacher_record(row: object, name: str, renamed: bool, normalizer: TextNormalizer | None, where: str) -> Utterance:
    """One line of a hypothesis file as an :class:`Utterance`: a selftrain record (its teachers renamed
    after ``name`` when ``renamed``) or an external row (one teacher called ``name``)."""
    if not isinstance(row, dict) or "id" not in row:
        raise ManifestError(f"{where}: a hypothesis line needs an 'id'")
    if "hypotheses" not in row:
        hyp = external_hypothesis(row, name, normalizer, where)
        return Utterance(id=str(row["id"]), wav=str(row.get("wav", "")), duration=float(row.get("duration", 0.0)),
                         reference=row.get("reference"), hypotheses=[hyp])
    try:
        utt = Utterance.from_dict(row)
    except TypeError as exc:
        raise ManifestError(f"{where}: not a selftrain record ({exc})") from exc
    if renamed:
        for hyp in utt.hypotheses:
            hyp.teacher = name if len(utt.hypotheses) == 1 else f"{name}/{hyp.teacher}"
    return utt


@dataclass
class CoverageReport:
    """Which utterance ids each teacher's file lacks (ids present in some other file).

    Not a shard merge (:class:`selftrain.decode.MergeReport`: pieces of one decode put back
    together): the files here are different teachers' hypotheses of the same utterances, joined by id.
    """

    files: list[str]
    missing: dict[str, list[str]] = field(default_factory=dict)  # file -> ids it lacks

    def lines(self, limit: int = 5) -> list[str]:
        """Human-readable lines, one per file with missing ids."""
        out = []
        for name, ids in self.missing.items():
            shown = ", ".join(ids[:limit]) + (" ..." if len(ids) > limit else "")
            out.append(f"{name}: {len(ids)} utterance(s) missing ({shown})")
        return out


def absorb(target: Utterance, other: Utterance, tag: str) -> None:
    """Add ``other``'s hypotheses (a repeated teacher name gets ``@tag``) and missing fields to ``target``."""
    names = {h.teacher for h in target.hypotheses}
    for hyp in other.hypotheses:
        if hyp.teacher in names:
            hyp.teacher = f"{hyp.teacher}@{tag}"
        target.hypotheses.append(hyp)
        names.add(hyp.teacher)
    target.wav = target.wav or other.wav
    target.duration = target.duration or other.duration
    target.spk_id = target.spk_id or other.spk_id
    if target.reference is None:
        target.reference = other.reference
    for key, value in other.extra.items():
        target.extra.setdefault(key, value)


def merge_teachers(hyp_files: Iterable[str | Path], teachers: list[str | None] | None = None,
                   normalizer: TextNormalizer | None = None) -> tuple[list[Utterance], CoverageReport]:
    """Merge hypothesis files by utterance id (one file per teacher or set of teachers).

    Utterances keep the order of first appearance; a teacher name that repeats across files gets
    ``@<file stem>`` appended. The report lists, per file, the ids it lacks.
    """
    paths = [Path(p) for p in hyp_files]
    names = teachers or [None] * len(paths)
    if len(names) != len(paths):
        raise ManifestError(f"{len(names)} teacher names for {len(paths)} hypothesis files")
    loaded = [load_teacher_file(p, n, normalizer) for p, n in zip(paths, names, strict=True)]
    merged: dict[str, Utterance] = {}
    for path, records in zip(paths, loaded, strict=True):
        for utt_id, utt in records.items():
            if utt_id in merged:
                absorb(merged[utt_id], utt, path.stem)
            else:
                merged[utt_id] = utt
    report = CoverageReport(files=[str(p) for p in paths])
    for path, records in zip(paths, loaded, strict=True):
        lacking = [i for i in merged if i not in records]
        if lacking:
            report.missing[str(path)] = lacking
    return list(merged.values()), report
