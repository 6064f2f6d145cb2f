"""Multi-teacher agreement: word alignment, ROVER-style voting, pairwise agreement and DUST.

ROVER (Fiscus 1997), simplified to one pivot: every teacher's words are aligned to the pivot
hypothesis with jiwer. Each pivot word is a slot, and so is each gap between pivot words (where
teachers may insert). In every slot each teacher votes for a candidate: its aligned word, or the
empty word for a deletion (also what a teacher "says" in a gap where it inserts nothing; the words
one teacher inserts into one gap form a single candidate). A vote weighs ``teacher_weight x
confidence`` (the word's ``confidence_method`` score, 1 when missing; ``null_confidence`` for the
empty word). The candidate with the largest total wins (ties go to the pivot's candidate); the
combined hypothesis is the sequence of non-empty winners.

Per combined word: ``agreement`` = weighted fraction of teachers that voted for it, ``rover`` = its
share of the confidence-weighted votes, and every other score (confidence methods) averaged over the
teachers that voted for it; the combined hypothesis' utterance scores are the means over its words
(utterance-only scores: see :func:`_utterance_scores`). Per utterance (``Utterance.agreement``): ``agreement`` =
1 - mean pairwise disagreement, where the disagreement of two teachers is their word edit count
divided by the longer hypothesis' length (symmetric, in [0, 1]); ``word_agreement`` = mean
per-word agreement of the combined hypothesis (1 when it is empty and every teacher is empty);
``exact_match`` = weighted fraction of teachers whose text equals the combined text; and, with DUST
configured, ``dust_max_wer`` = the largest WER of a dropout sample against the deterministic
hypothesis (Khurana et al. 2021: keep an utterance when it is below a threshold).

Per word of every teacher's own hypothesis (:func:`add_peer_scores`): ``peer_agreement`` = weighted
share of the other teachers whose aligned word is the same word, ``peer_similarity`` = the same with
partial credit, one minus the character error rate between the two words (0 where the other
teacher has no word). They are ordinary word scores, so calibration and the learned combination
use them: frame scores cannot see a word that the LM substituted for a confidently recognised one
(the frames are sure, of other letters), the greedy teacher's word at that place can.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections import defaultdict
from dataclasses import dataclass, field

import jiwer

from selftrain.confidence.nbest import hypothesis_posterior
from selftrain.errors import ConfigError
from selftrain.record import Hypothesis, Utterance, Word

__all__ = [
    "AgreementConfig",
    "align_to_pivot",
    "rover",
    "pairwise_disagreement",
    "dust_max_wer",
    "compute_agreement",
    "add_peer_scores",
    "PEER_SCORES",
]


_POSTERIORS = ("nbest_posterior", "acoustic_posterior")
PEER_SCORES = ("peer_agreement", "peer_similarity")


@dataclass
class AgreementConfig:
    """How teachers are combined (defaults in brackets).

    teachers: teacher names taking part [None: all but ``combined_name`` and DUST samples].
    pivot: ``medoid`` (the teacher closest to all others), ``first``, or a teacher name [medoid].
    confidence_method: word score used as vote confidence, 1 when absent [entropy_tsallis_exp].
    null_confidence: confidence of a vote for "no word here" [0.5].
    teacher_weights: per-teacher vote weight, 1 when absent [{}].
    combined_name: teacher name of the combined hypothesis [rover].
    dust_reference: deterministic teacher whose dropout samples DUST compares with [None: off].
    dust_samples: fnmatch pattern of the dropout-sample teacher names [*dropout*].
    """

    teachers: list[str] | None = None
    pivot: str = "medoid"
    confidence_method: str = "entropy_tsallis_exp"
    null_confidence: float = 0.5
    teacher_weights: dict[str, float] = field(default_factory=dict)
    combined_name: str = "rover"
    dust_reference: str | None = None
    dust_samples: str = "*dropout*"

    def __post_init__(self) -> None:
        if not 0.0 <= self.null_confidence <= 1.0:
            raise ConfigError(f"null_confidence must be in [0, 1], got {self.null_confidence}")
        if any(w < 0 for w in self.teacher_weights.values()):
            raise ConfigError("teacher weights must be >= 0")


@dataclass
class _Vote:
    words: tuple[Word, ...]  # empty tuple: a vote for "no word"
    weight: float
    confidence: float


def _words(hyp: Hypothesis) -> list[Word]:
    return list(hyp.words) if hyp.words else [Word(w, 0, 0) for w in hyp.text.split()]


def _text(words: list[Word] | tuple[Word, ...]) -> str:
    return " ".join(w.word for w in words)


def align_to_pivot(pivot: list[str], other: list[str]) -> tuple[list[int | None], dict[int, list[int]]]:
    """Align ``other`` to ``pivot`` with jiwer.

    Returns ``(slot_of_pivot_word, inserted)``: for each pivot word the index of the aligned word of
    ``other`` (None when deleted), and for each gap ``g`` (before pivot word ``g``; ``g = len(pivot)``
    is the end) the indices of words ``other`` inserts there.

    >>> align_to_pivot(["a", "b", "c"], ["a", "x", "c", "d"])
    ([0, 1, 2], {3: [3]})
    """
    matched: list[int | None] = [None] * len(pivot)
    inserted: dict[int, list[int]] = defaultdict(list)
    if not pivot:
        if other:
            inserted[0] = list(range(len(other)))
        return matched, dict(inserted)
    if not other:
        return matched, {}
    for chunk in jiwer.process_words(" ".join(pivot), " ".join(other)).alignments[0]:
        if chunk.type in ("equal", "substitute"):
            for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
                matched[chunk.ref_start_idx + k] = chunk.hyp_start_idx + k
        elif chunk.type == "insert":
            inserted[chunk.ref_start_idx].extend(range(chunk.hyp_start_idx, chunk.hyp_end_idx))
    return matched, dict(inserted)


def _confidence(words: tuple[Word, ...], method: str, null_confidence: float) -> float:
    if not words:
        return null_confidence
    values = [w.scores.get(method, 1.0) for w in words]
    return sum(values) / len(values)


def _slot_votes(pivot: list[Word], hyps: list[Hypothesis], weights: list[float], config: AgreementConfig
                ) -> list[list[_Vote]]:
    """Votes per slot: slot ``2g`` is the gap before pivot word ``g``, slot ``2g + 1`` is pivot word ``g``."""
    slots: list[list[_Vote]] = [[] for _ in range(2 * len(pivot) + 1)]
    pivot_tokens = [w.word for w in pivot]
    for hyp, weight in zip(hyps, weights, strict=True):
        words = _words(hyp)
        matched, inserted = align_to_pivot(pivot_tokens, [w.word for w in words])
        for gap in range(len(pivot) + 1):
            chosen = tuple(words[i] for i in inserted.get(gap, []))
            slots[2 * gap].append(_Vote(chosen, weight, _confidence(chosen, config.confidence_method,
                                                                    config.null_confidence)))
        for g, index in enumerate(matched):
            chosen = () if index is None else (words[index],)
            slots[2 * g + 1].append(_Vote(chosen, weight, _confidence(chosen, config.confidence_method,
                                                                      config.null_confidence)))
    return slots


def _winner(votes: list[_Vote]) -> tuple[list[tuple[Word, ...]], float, float]:
    """The winning candidate of one slot (as every voter's words for it, the pivot's first when it
    voted for it), its weighted vote fraction and its share of the confidence-weighted votes."""
    totals: dict[str, float] = {}
    counts: dict[str, float] = {}
    voters: dict[str, list[tuple[Word, ...]]] = defaultdict(list)
    for vote in votes:  # the pivot votes first, so it wins ties (dicts keep insertion order)
        key = _text(vote.words)
        totals[key] = totals.get(key, 0.0) + vote.weight * vote.confidence
        counts[key] = counts.get(key, 0.0) + vote.weight
        voters[key].append(vote.words)
    best = max(totals, key=lambda k: totals[k])
    all_weight = sum(counts.values()) or 1.0
    all_score = sum(totals.values()) or 1.0
    return voters[best], counts[best] / all_weight, totals[best] / all_score


def _merged_word(versions: list[Word], agreement: float, share: float) -> Word:
    """One combined word: the first voter's span, every score averaged over the voters that have it."""
    scores: dict[str, float] = {}
    for key in sorted({k for w in versions for k in w.scores}):  # sorted: byte-identical output across runs
        values = [w.scores[key] for w in versions if key in w.scores]
        scores[key] = sum(values) / len(values)
    scores.update({"agreement": agreement, "rover": share})
    return Word(versions[0].word, versions[0].start, versions[0].end, scores)


def _edit_fraction(a: str, b: str) -> float:
    """Word edits between ``a`` and ``b`` over the longer one's length (0 when both are empty)."""
    len_a, len_b = len(a.split()), len(b.split())
    if len_a == 0 or len_b == 0:
        return 0.0 if len_a == len_b else 1.0
    out = jiwer.process_words(a, b)
    return (out.substitutions + out.deletions + out.insertions) / max(len_a, len_b)


def pairwise_disagreement(texts: list[str]) -> float:
    """Mean symmetric word disagreement over all pairs of ``texts`` (0 with fewer than two)."""
    pairs = list(itertools.combinations(texts, 2))
    if not pairs:
        return 0.0
    return sum(_edit_fraction(a, b) for a, b in pairs) / len(pairs)


def dust_max_wer(reference: str, samples: list[str]) -> float:
    """DUST: the largest WER of dropout ``samples`` against the deterministic ``reference`` hypothesis."""
    if not samples:
        raise ConfigError("DUST needs at least one dropout sample")
    ref_len = len(reference.split())
    worst = 0.0
    for sample in samples:
        if ref_len == 0:
            worst = max(worst, 0.0 if not sample.split() else 1.0)
            continue
        worst = max(worst, jiwer.wer(reference, sample) if sample.split() else 1.0)
    return float(worst)


def _medoid(hyps: list[Hypothesis]) -> int:
    texts = [h.text for h in hyps]
    costs = [sum(_edit_fraction(t, o) for o in texts) for t in texts]
    return min(range(len(hyps)), key=lambda i: costs[i])


def _pivot_index(hyps: list[Hypothesis], config: AgreementConfig) -> int:
    if config.pivot == "medoid":
        return _medoid(hyps)
    if config.pivot == "first":
        return 0
    names = [h.teacher for h in hyps]
    if config.pivot not in names:
        raise ConfigError(f"pivot teacher {config.pivot!r} not among {names}")
    return names.index(config.pivot)


def rover(hyps: list[Hypothesis], config: AgreementConfig | None = None) -> Hypothesis:
    """Combine hypotheses by confidence-weighted voting after alignment to a pivot (see module docstring)."""
    config = config or AgreementConfig()
    if not hyps:
        raise ConfigError("ROVER needs at least one hypothesis")
    first = _pivot_index(hyps, config)
    ordered = [hyps[first], *hyps[:first], *hyps[first + 1:]]
    weights = [config.teacher_weights.get(h.teacher, 1.0) for h in ordered]
    words: list[Word] = []
    for votes in _slot_votes(_words(ordered[0]), ordered, weights, config):
        versions, agreement, share = _winner(votes)
        for k in range(len(versions[0])):
            words.append(_merged_word([v[k] for v in versions], agreement, share))
    return Hypothesis(teacher=config.combined_name, text=_text(words), words=words,
                      scores=_utterance_scores(words, ordered), num_frames=ordered[0].num_frames, decoder="rover")


def _utterance_scores(words: list[Word], hyps: list[Hypothesis]) -> dict[str, float]:
    """Utterance scores of the combined hypothesis.

    Word-based scores: the mean over the combined words. Utterance-only scores (n-best and
    likelihood based): ``nbest_posterior``/``acoustic_posterior`` are the teachers' mean posterior of
    the combined text in their own n-best lists (temperature 1); any other is the mean over teachers
    of their score when their text is the combined text, else 0 (no teacher vouches for a hybrid).
    """
    text = _text(words).split()
    scores: dict[str, float] = {}
    for key in sorted({k for w in words for k in w.scores}):
        values = [w.scores[key] for w in words if key in w.scores]
        scores[key] = sum(values) / len(values)
    for key in sorted({k for h in hyps for k in h.scores} - set(scores)):
        having = [h for h in hyps if key in h.scores]
        if key in _POSTERIORS and all(h.nbest for h in having):
            values = [hypothesis_posterior(" ".join(text), h.nbest, acoustic_only=key == "acoustic_posterior") or 0.0
                      for h in having]
        else:
            values = [h.scores[key] if h.text.split() == text else 0.0 for h in having]
        scores[key] = sum(values) / len(values)
    if not words:
        empty_share = sum(1 for h in hyps if not h.text.split()) / len(hyps)
        scores.update({"agreement": empty_share, "rover": empty_share})
    return scores


def _participants(utt: Utterance, config: AgreementConfig) -> list[Hypothesis]:
    if config.teachers is not None:
        return [h for h in utt.hypotheses if h.teacher in config.teachers]
    return [h for h in utt.hypotheses if h.teacher != config.combined_name
            and not (config.dust_reference and fnmatch.fnmatch(h.teacher, config.dust_samples))]


def _char_similarity(word: str, other: str) -> float:
    if word == other:
        return 1.0
    return max(0.0, 1.0 - jiwer.cer(word, other)) if word else 0.0


def _peer_word_scores(hyp: Hypothesis, peers: list[Hypothesis], weights: list[float]) -> list[tuple[float, float]]:
    """(agreement, similarity) of each word of ``hyp`` against ``peers``, weighted by ``weights``."""
    words = [w.word for w in hyp.words]
    totals = [[0.0, 0.0] for _ in words]
    for peer, weight in zip(peers, weights, strict=True):
        peer_words = peer.text.split()
        matched, _ = align_to_pivot(words, peer_words)
        for k, index in enumerate(matched):
            if index is not None:
                totals[k][0] += weight * (peer_words[index] == words[k])
                totals[k][1] += weight * _char_similarity(words[k], peer_words[index])
    norm = sum(weights) or 1.0
    return [(a / norm, b / norm) for a, b in totals]


def add_peer_scores(utt: Utterance, config: AgreementConfig | None = None) -> None:
    """Add ``peer_agreement`` and ``peer_similarity`` (module docstring) to every word of every
    participating teacher's hypothesis, and their means over the words to its utterance scores.

    Nothing is added with fewer than two participants. An empty hypothesis scores the weighted share of
    the other teachers that are empty too.
    """
    config = config or AgreementConfig()
    hyps = _participants(utt, config)
    if len(hyps) < 2:
        return
    for hyp in hyps:
        peers = [h for h in hyps if h is not hyp]
        weights = [config.teacher_weights.get(h.teacher, 1.0) for h in peers]
        if not hyp.text.split():
            empty = sum(w for h, w in zip(peers, weights, strict=True) if not h.text.split()) / (sum(weights) or 1.0)
            hyp.scores.update(dict.fromkeys(PEER_SCORES, empty))
            continue
        if not hyp.words:  # text without word records: nothing to annotate
            continue
        scores = _peer_word_scores(hyp, peers, weights)
        for word, values in zip(hyp.words, scores, strict=True):
            word.scores.update(zip(PEER_SCORES, values, strict=True))
        for k, name in enumerate(PEER_SCORES):
            hyp.scores[name] = sum(v[k] for v in scores) / len(scores)


def compute_agreement(utt: Utterance, config: AgreementConfig | None = None) -> Hypothesis | None:
    """Fill ``utt.agreement`` and add (or replace) the combined hypothesis; returns it (None without teachers)."""
    config = config or AgreementConfig()
    hyps = _participants(utt, config)
    if config.dust_reference:
        reference = utt.hypothesis(config.dust_reference)
        samples = [h.text for h in utt.hypotheses if fnmatch.fnmatch(h.teacher, config.dust_samples)]
        if reference is not None and samples:
            utt.agreement["dust_max_wer"] = dust_max_wer(reference.text, samples)
    if not hyps:
        return None
    combined = rover(hyps, config)
    weights = {h.teacher: config.teacher_weights.get(h.teacher, 1.0) for h in hyps}
    total = sum(weights.values()) or 1.0
    utt.agreement["agreement"] = 1.0 - pairwise_disagreement([h.text for h in hyps])
    utt.agreement["word_agreement"] = combined.scores["agreement"]
    utt.agreement["exact_match"] = sum(weights[h.teacher] for h in hyps if h.text.split() == combined.text.split()) / total
    utt.agreement["num_teachers"] = float(len(hyps))
    utt.hypotheses = [h for h in utt.hypotheses if h.teacher != config.combined_name] + [combined]
    return combined
