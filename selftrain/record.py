"""The one record type that flows through the pipeline: an utterance and what was decided about it.

Manifests are read into :class:`Utterance` records; decoding adds one :class:`Hypothesis` per teacher
(with its n-best list, word spans and confidence scores); agreement fills ``agreement``; selection
sets ``pseudo_label``, ``confidence`` and ``decision``; training and audits read the same records.
Records serialise to one JSON object per line (see :mod:`selftrain.io`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["Word", "NBestEntry", "Hypothesis", "Decision", "Segment", "Utterance"]


@dataclass
class Word:
    """One hypothesised word: its model-output frame span ``[start, end)`` and word-level scores.

    ``scores`` maps a confidence method name (e.g. ``"max_prob"``, ``"entropy_tsallis"``,
    ``"nbest_posterior"``) to a value in [0, 1], higher meaning more likely correct.
    """

    word: str
    start: int
    end: int
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class NBestEntry:
    """One beam-search hypothesis with its scores kept apart (natural-log domain).

    ``acoustic_score`` is the CTC (acoustic model) part, ``lm_score`` the weighted LM part
    (alpha * log P_LM + beta * words) and ``score`` their sum, the beam's ranking score.
    """

    text: str
    acoustic_score: float
    lm_score: float
    score: float


@dataclass
class Hypothesis:
    """One teacher's output for one utterance."""

    teacher: str
    text: str
    words: list[Word] = field(default_factory=list)
    nbest: list[NBestEntry] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # utterance-level confidences by method
    num_frames: int = 0
    decoder: str = ""  # e.g. "greedy", "pyctcdecode", "flashlight", "external"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hypothesis:
        data = dict(data)
        data["words"] = [Word(**w) for w in data.get("words", [])]
        data["nbest"] = [NBestEntry(**n) for n in data.get("nbest", [])]
        return cls(**data)


@dataclass
class Decision:
    """Whether an utterance's pseudo-label is kept for training, and why (human-readable)."""

    kept: bool
    reason: str
    policy: str = ""


@dataclass
class Segment:
    """A part of an utterance that trains on its own: seconds ``[start, end)`` of the audio and the
    pseudo-label words ``[first_word, last_word]`` of the labelling hypothesis spoken there."""

    start: float
    end: float
    text: str
    first_word: int
    last_word: int


@dataclass
class Utterance:
    """An utterance: audio, reference when known, and every stage's result.

    ``reference`` is ``None`` for unlabeled audio (never the empty string, which would mean "silence").
    ``extra`` keeps manifest columns selftrain does not interpret, so they survive a round trip.
    """

    id: str
    wav: str
    duration: float
    spk_id: str = ""
    reference: str | None = None
    hypotheses: list[Hypothesis] = field(default_factory=list)
    agreement: dict[str, float] = field(default_factory=dict)
    pseudo_label: str | None = None
    confidence: float | None = None
    decision: Decision | None = None
    extra: dict[str, str] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)  # when set, only these parts are pseudo-labeled

    def hypothesis(self, teacher: str) -> Hypothesis | None:
        """The hypothesis of the named teacher, if any."""
        return next((h for h in self.hypotheses if h.teacher == teacher), None)

    def with_hypothesis(self, hyp: Hypothesis) -> Utterance:
        """A copy with ``hyp`` replacing any earlier hypothesis of the same teacher."""
        return replace(self, hypotheses=[*(h for h in self.hypotheses if h.teacher != hyp.teacher), hyp])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Utterance:
        data = dict(data)
        data["hypotheses"] = [Hypothesis.from_dict(h) for h in data.get("hypotheses", [])]
        if data.get("decision") is not None:
            data["decision"] = Decision(**data["decision"])
        data["segments"] = [Segment(**s) for s in data.get("segments", [])]
        return cls(**data)
