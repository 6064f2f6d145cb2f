"""The decoding stages: tuning a generation's decoder on dev, decoding the unlabeled audio with its
teachers (and the external teachers), and evaluating a generation on dev and test."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selftrain.audit.inputs import attach_references, load_records
from selftrain.data.manifest import ManifestStream, read_manifest
from selftrain.decode.scoring import error_kinds, error_rates
from selftrain.generation.artifacts import (
    LM_FILE,
    decoder_for,
    model_dir,
    state_cache_dir,
    teacher_generation,
)
from selftrain.generation.config import ExperimentConfig
from selftrain.generation.results import (
    DecodedSplit,
    DecodeResult,
    EvalResult,
    ExternalFiles,
    ExternalResult,
    Scores,
    TeacherFile,
    TuneStageResult,
)
from selftrain.generation.workdir import Workdir

if TYPE_CHECKING:
    from selftrain.teachers import Teacher

__all__ = ["tune_generation", "decode_teachers", "decode_generation", "transcribe_external", "evaluate_hyps",
           "evaluate_generation"]

log = logging.getLogger(__name__)


def tune_generation(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path) -> TuneStageResult:
    """Tune the LM weight, word bonus and blank penalty of ``generation``'s model on dev
    (:func:`selftrain.decode.tune.tune_decoder`); the generation's evaluation and its decoding of
    the next generation's unlabeled audio use what it chose."""
    from selftrain.decode.tune import dev_log_probs, tune_decoder
    from selftrain.models import load_acoustic_model

    model = load_acoustic_model(model_dir(workdir, generation), state_cache=state_cache_dir(config, workdir))
    base = decoder_for(config)
    utterances, log_probs, skipped = dev_log_probs(model, read_manifest(config.data.dev), base.batch_size, base.max_duration)
    references = [model.tokenizer.normalizer(u.reference or "") for u in utterances]
    lm_path = workdir.stage_dir(None, "lm") / LM_FILE if base.decoder != "greedy" else None
    result = tune_decoder(log_probs, references, model.tokenizer.ctc_labels(), lm_path, base, config.decode_tuning)
    if skipped.rows:
        log.warning("decoder tuning left out %d dev utterances: %s", len(skipped.rows), dict(skipped.bad))
    log.info("generation %d decoder tuned on dev: %s (WER %.4f -> %.4f)", generation, result.best, result.base_wer,
             result.best_wer)
    return TuneStageResult(best=result.best, base_wer=result.base_wer, best_wer=result.best_wer, utterances=result.utterances,
                           points=tuple(result.points), bad_audio=dict(skipped.bad))


def decode_teachers(config: ExperimentConfig, workdir: Workdir, teacher_generation: int, manifest: str,
                    out: Path, prefix: str, ensemble: bool = False) -> DecodedSplit:
    """Decode ``manifest`` with every configured teacher of ``teacher_generation``; one JSONL per teacher.

    ``ensemble``: the generation's model decodes together with ``teachers.ensemble`` (posteriors
    averaged); the previous generation's stays alone."""
    from selftrain.decode import DecoderPool
    from selftrain.models import load_ensemble
    from selftrain.teachers import CTCTeacher, transcribe_manifest

    lm_path = workdir.stage_dir(None, "lm") / LM_FILE
    utterances = ManifestStream(manifest)  # read row by row by each teacher: memory flat in the manifest's size
    runs: list[tuple[str, int, Any]] = []
    if config.teachers.lm:
        runs.append(("lm", teacher_generation, decoder_for(config, workdir, teacher_generation)))
    if config.teachers.greedy:
        runs.append(("greedy", teacher_generation, decoder_for(config, workdir, teacher_generation, decoder="greedy")))
    for k in range(config.teachers.dropout_samples):
        runs.append((f"dropout{k}", teacher_generation, decoder_for(config, workdir, teacher_generation, decoder="greedy",
                                                                        dropout=True, seed=workdir.run_seed(config.seed, k))))
    if config.teachers.previous and teacher_generation >= 1:
        runs.append(("previous", teacher_generation - 1, decoder_for(config, workdir, teacher_generation - 1)))
    files = {}
    members = config.teachers.ensemble if ensemble else []
    for name, generation, decoder_config in runs:
        model = load_ensemble([model_dir(workdir, generation), *(members if generation == teacher_generation else [])],
                              state_cache=state_cache_dir(config, workdir))
        path = out / f"{prefix}_{name}.jsonl"
        uses_lm = decoder_config.decoder != "greedy"
        with CTCTeacher(model, DecoderPool(decoder_config, model.tokenizer.ctc_labels(), lm_path if uses_lm else None,
                                           name)) as teacher:
            report = transcribe_manifest(teacher, utterances, path)
        files[name] = TeacherFile(file=path.name, decoded=report.decoded + report.already_done, bad_audio=report.bad_audio)
    return DecodedSplit(teachers=files, ensemble=tuple(members) if members else None)


def decode_generation(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path,
                      external: ExternalFiles | None = None) -> DecodeResult:
    """Stage ``decode``: the unlabeled audio decoded by every teacher of the generation's teacher
    (with ``teachers.ensemble``, its members averaged in), and the dev hypotheses the selection
    calibrates on: the teacher's evaluation's, or with an ensemble the ensemble's (the selection
    calibrates on the labels of the teacher that labels); ``external``: the external teachers'."""
    teacher = teacher_generation(workdir, generation)
    unlabeled = decode_teachers(config, workdir, teacher, config.data.unlabeled, out, "unlabeled", ensemble=True)
    dev_dir = workdir.stage_dir(teacher, "eval")
    dev = EvalResult.read(dev_dir).dev
    if config.teachers.ensemble:
        dev, dev_dir = decode_teachers(config, workdir, teacher, config.data.dev, out, "dev", ensemble=True), out
    return DecodeResult(teacher_generation=teacher, unlabeled=unlabeled, dev=dev,
                        dev_dir=str(dev_dir.relative_to(workdir.root)), external=external)


def transcribe_external(config: ExperimentConfig, workdir: Workdir, out: Path) -> ExternalResult:
    """Transcribe the unlabeled and dev audio with every external teacher, in the words and frames of
    the supervised teacher (generation 0's model folder); one JSONL per split and teacher, resumable."""
    from selftrain.teachers import OutputSpace, external_teacher_config, load_external_teacher

    space = OutputSpace.from_model_dir(model_dir(workdir, 0))
    splits = {"unlabeled": config.data.unlabeled, "dev": config.data.dev}
    files: dict[str, dict[str, TeacherFile]] = {split: {} for split in splits}
    for kind in config.teachers.external:
        settings = external_teacher_config(kind, config.teachers.external_settings.get(kind))
        teacher = load_external_teacher(kind, settings, space)
        try:
            for split, manifest in splits.items():
                files[split][kind] = _transcribe_split(teacher, manifest, out / f"{split}_{kind}.jsonl")
        finally:
            teacher.close()
    return ExternalResult(unlabeled=DecodedSplit(teachers=files["unlabeled"]), dev=DecodedSplit(teachers=files["dev"]))


def _transcribe_split(teacher: Teacher, manifest: str, path: Path) -> TeacherFile:
    from selftrain.teachers import transcribe_manifest

    report = transcribe_manifest(teacher, ManifestStream(manifest), path)
    return TeacherFile(file=path.name, decoded=report.decoded + report.already_done, bad_audio=report.bad_audio,
                       real_time_factor=round(report.real_time_factor, 4))


def evaluate_hyps(hyps_file: Path, manifest: str, teacher: str | None = None) -> Scores:
    """WER/CER of decoded hypotheses against a manifest's transcripts (normalised like training text),
    and the WER's ``errors`` by kind (substitutions, deletions, insertions per reference word)."""
    from selftrain.confidence.calibrate import pick_hypothesis
    from selftrain.text import TextNormalizer

    normalizer = TextNormalizer()
    records = load_records(hyps_file)
    attach_references(records, manifest)
    pairs = [(normalizer(u.reference), h.text) for u in records if u.reference
             for h in [pick_hypothesis(u, teacher)] if h is not None]
    references, hypotheses = [r for r, _ in pairs], [h for _, h in pairs]
    wer, cer = error_rates(references, hypotheses)
    kinds = {kind: round(rate, 4) for kind, rate in error_kinds(references, hypotheses).items()}
    return Scores(wer=round(wer, 4), cer=round(cer, 4), utterances=len(pairs), errors=kinds)


def evaluate_generation(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path) -> EvalResult:
    """Decode dev with every teacher of this generation (kept for the next generation's calibration)
    and test with the LM teacher; WER/CER from the LM teacher's hypotheses."""
    dev = decode_teachers(config, workdir, generation, config.data.dev, out, "dev")
    dev_scores = evaluate_hyps(out / "dev_lm.jsonl", config.data.dev, "lm")
    if not config.data.test:
        return EvalResult(dev=dev, dev_scores=dev_scores)
    only_lm = replace(config, teachers=replace(config.teachers, greedy=False, dropout_samples=0, previous=False))
    test = decode_teachers(only_lm, workdir, generation, config.data.test, out, "test")
    return EvalResult(dev=dev, dev_scores=dev_scores, test=test,
                      test_scores=evaluate_hyps(out / "test_lm.jsonl", config.data.test, "lm"))

