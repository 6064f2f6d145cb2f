"""Word and character error rates of a teacher on a labeled manifest (jiwer)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import jiwer

from selftrain.data.audio import SkipLog
from selftrain.decode.pool import DecoderPool
from selftrain.decode.run import iter_decoded, screen_rows
from selftrain.errors import DecodeError
from selftrain.models.api import AcousticModel
from selftrain.record import Utterance

__all__ = ["EvalResult", "evaluate", "error_rates", "error_kinds"]


@dataclass
class EvalResult:
    """WER/CER of one decoding setting, with what it was measured on.

    ``bad_audio`` counts the labeled rows left out by reason (as in decoding) and ``skipped_rows``
    lists them: ``utterances + len(skipped_rows) + unlabeled_skipped`` is the manifest's size.
    """

    wer: float
    cer: float
    utterances: int
    words: int
    unlabeled_skipped: int
    bad_audio: dict[str, int]
    decoder: str
    settings: dict
    lm: str | None
    seconds: float
    audio_seconds: float
    examples: list[dict] = field(default_factory=list)
    skipped_rows: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> tuple[float, float]:
    """Corpus-level (WER, CER) of already-normalised texts."""
    if not references:
        raise DecodeError("no labeled utterances to evaluate")
    return float(jiwer.wer(list(references), list(hypotheses))), float(jiwer.cer(list(references), list(hypotheses)))


def error_kinds(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Substitutions, deletions and insertions per reference word of already-normalised texts
    (their sum is the WER). WER alone hides a model that trades substitutions for deletions."""
    if not references:
        raise DecodeError("no labeled utterances to evaluate")
    out = jiwer.process_words(list(references), list(hypotheses))
    words = out.hits + out.substitutions + out.deletions
    return {kind: getattr(out, kind) / words for kind in ("substitutions", "deletions", "insertions")}


def evaluate(model: AcousticModel, utterances: Sequence[Utterance], decoder: DecoderPool,
             num_examples: int = 5, progress: bool = True) -> EvalResult:
    """Decode the labeled ``utterances`` and score them against their normalised references.

    References go through the model tokenizer's normaliser, the same one its training text saw.
    Rows that cannot be decoded are skipped (see :func:`~selftrain.decode.decode_manifest`).
    """
    started = time.monotonic()
    labeled = [u for u in utterances if u.reference is not None]
    normalise = model.tokenizer.normalizer
    model.train(False)
    log = SkipLog()
    refs, hyps, audio_seconds = [], [], 0.0
    decoder.start()
    for utt, hyp in iter_decoded(model, screen_rows(labeled, log), decoder, progress=progress, log=log):
        refs.append(normalise(utt.reference or ""))
        hyps.append(hyp.text)
        audio_seconds += hyp.num_frames * model.frame_shift_seconds
    wer, cer = error_rates(refs, hyps)
    examples = [{"reference": r, "hypothesis": h} for r, h in zip(refs[:num_examples], hyps[:num_examples], strict=True)]
    return EvalResult(
        wer=wer, cer=cer, utterances=len(refs), words=sum(len(r.split()) for r in refs),
        unlabeled_skipped=len(utterances) - len(labeled), bad_audio=dict(log.bad), decoder=decoder.name,
        settings=decoder.config.to_dict(), lm=str(decoder.lm_path) if decoder.lm_path else None,
        seconds=round(time.monotonic() - started, 3), audio_seconds=round(audio_seconds, 3), examples=examples,
        skipped_rows=log.rows,
    )
