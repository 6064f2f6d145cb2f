"""The stages of an experiment, each a function of (config, workdir, generation, stage folder) that
returns its typed result (:mod:`selftrain.generation.results`).

Stages call the library (train, decode, select, audit); :mod:`selftrain.generation.registry` says
which a generation has and in which order, :mod:`selftrain.generation.run` runs them and skips
finished ones.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from selftrain.audit import load_audit, sweep, write_audit
from selftrain.audit.inputs import attach_references, iter_records, load_records, reference_texts
from selftrain.audit.sweep import SELECTION_FRACTIONS, choose_threshold
from selftrain.data.manifest import ManifestStream, read_manifest
from selftrain.decode.evaluate import error_kinds, error_rates
from selftrain.errors import ConfigError
from selftrain.generation.config import ExperimentConfig
from selftrain.generation.results import (
    AuditStageResult,
    ContinuousTraining,
    DecodedSplit,
    DecodeResult,
    EvalResult,
    ExternalFiles,
    ExternalResult,
    LMResult,
    Scores,
    SelectResult,
    TeacherFile,
    TrainResult,
    TuneStageResult,
)
from selftrain.generation.workdir import Workdir
from selftrain.overrides import deep_merge
from selftrain.record import Utterance
from selftrain.select.output import LabelQuality
from selftrain.text import TextNormalizer

__all__ = ["train_model", "train_continuous", "build_language_model", "decode_teachers", "decode_generation",
           "transcribe_external", "evaluate_hyps", "evaluate_generation", "selection_inputs", "select_pseudo_labels",
           "audit_generation", "model_dir", "teacher_generation", "tune_generation", "tuned_settings", "LM_FILE",
           "EXTERNAL_STAGE", "TUNE_STAGE"]

log = logging.getLogger(__name__)
LM_FILE = "lm.bin"
TUNE_STAGE = "tune"  # W/gen_XXX/tune/: the decoder settings chosen on dev for that generation's model
EXTERNAL_STAGE = "external"  # W/external/: the external teachers' hypotheses, made once per experiment


def model_dir(workdir: Workdir, generation: int) -> Path:
    """The trained model folder of a generation."""
    return workdir.stage_dir(generation, "train") / "model"


def teacher_generation(workdir: Workdir, generation: int) -> int:
    """The generation whose model teaches ``generation``: the newest earlier one that was accepted.

    A student that ended worse than its teacher on dev is rejected (``accepted: false`` in its
    ``generation.json``); its own teacher then stays on, so a bad generation never propagates.
    """
    previous = generation - 1
    record_path = workdir.generation_dir(previous) / "generation.json"
    if previous <= 0 or not record_path.exists():
        return max(previous, 0)
    record = json.loads(record_path.read_text(encoding="utf-8"))
    if record.get("accepted", True):
        return previous
    return int(record["teacher_generation"])


def state_cache_dir(config: ExperimentConfig, workdir: Workdir) -> Path:
    """Where the experiment caches a pretrained encoder's frozen states (``config.state_cache``)."""
    return Path(config.state_cache) if config.state_cache else workdir.root / "state_cache"


def train_model(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path) -> TrainResult:
    """Train generation 0's teacher (labeled only) or a student (labeled + the selection's labels + SSL;
    with ``labels: none`` the selection is empty and the student trains :func:`~selftrain.generation.controls.step_matched_epochs`)."""
    from selftrain.train import load_train_config, train

    if generation > 0 and config.schedule == "continuous":
        return train_continuous(config, workdir, generation, out)
    data: dict[str, Any] = {"labeled": [config.data.labeled], "dev": config.data.dev}
    overrides: dict[str, Any] = {"out": str(out), "seed": config.seed + generation,
                                 "state_cache": str(state_cache_dir(config, workdir))}
    if generation == 0:
        extra = config.teacher_train
        if extra.get("ssl", {}).get("objectives"):
            # SSL runs on all audio: a teacher with SSL objectives also learns from the unlabeled set.
            data["unlabeled"] = [config.data.unlabeled]
    else:
        selected = workdir.stage_dir(generation, "select") / "selected.csv"
        data["pseudo"] = [str(selected)]
        data["unlabeled"] = [str(_ssl_only_manifest(config, selected, out))]
        extra = config.student_train
        if config.labels == "none":  # the labeled-only control: as many optimizer steps as a student with pseudo-labels
            from selftrain.generation.controls import step_matched_epochs

            extra = {**extra, "epochs": step_matched_epochs(config)}
        teacher_model = str(model_dir(workdir, teacher_generation(workdir, generation)))
        if config.student_init != "scratch":
            start = teacher_model if config.student_init == "teacher" else str(model_dir(workdir, 0))
            overrides["init"] = {"encoder": start, "head": True}
        if extra.get("distill", {}).get("weight", 0) > 0:
            # Distillation learns from the generation's teacher: its posteriors on every row, unlabeled ones too.
            overrides["distill"] = {"teacher_model": teacher_model}
    overrides["data"] = data
    overrides.update(_lm_dev_settings(config, workdir, generation, extra))
    train_config = load_train_config(config.preset, overrides=deep_merge(overrides, extra))
    model = train(train_config)
    return TrainResult(model=str(Path(model).relative_to(out)))


def _lm_dev_settings(config: ExperimentConfig, workdir: Workdir, generation: int, extra: dict[str, Any]) -> dict[str, Any]:
    """With ``checkpoint_metric: lm_wer``, checkpoints are chosen on dev decoded as the experiment
    decodes: its LM, and the decoder weights of the teacher (tuned for it when decode_tuning is on;
    the student's own are tuned later)."""
    if extra.get("checkpoint_metric") != "lm_wer":
        return {}
    decoder = _decoder_config(config, workdir, teacher_generation(workdir, generation))
    return {"dev_lm": str(workdir.stage_dir(None, "lm") / LM_FILE),
            "dev_decoder": {k: getattr(decoder, k) for k in ("alpha", "beta", "blank_penalty")}}


def train_continuous(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path) -> TrainResult:
    """The continuous schedule's one student run: labeled + unlabeled audio, labeled on the fly from
    the first step (generation 0 was the warm-up; a ``scratch`` student keeps the configured warm-up),
    filtered like the offline selection (its target WER, keep floor and speaking-rate quantile), on
    the budget of the offline generations (:func:`~selftrain.generation.config.continuous_budget`)."""
    from selftrain.generation.config import continuous_budget
    from selftrain.train import load_train_config, train

    budget = continuous_budget(config)
    # The experiment's LM and generation 0's decoder settings, for labels by beam search + LM (continuous.decoder=lm)
    continuous: dict[str, Any] = {"enabled": True, "target_wer": config.threshold.target_wer,
                                  "min_keep_fraction": config.threshold.min_keep_fraction,
                                  "speaking_rate_quantile": config.speaking_rate_quantile,
                                  "lm": str(workdir.stage_dir(None, "lm") / LM_FILE),
                                  "decode": asdict(_decoder_config(config, workdir, 0))}
    if config.data.unlabeled_reference:
        continuous["references"] = [config.data.unlabeled_reference]
    overrides: dict[str, Any] = {"out": str(out), "seed": config.seed + generation,
                                 "state_cache": str(state_cache_dir(config, workdir)), "continuous": continuous,
                                 "data": {"labeled": [config.data.labeled], "unlabeled": [config.data.unlabeled],
                                          "dev": config.data.dev, "mix_unlabeled": budget["mix_unlabeled"]}}
    if config.student_init != "scratch":
        continuous["warmup_steps"] = 0
        overrides["init"] = {"encoder": str(model_dir(workdir, 0)), "head": True}
    overrides.update(_lm_dev_settings(config, workdir, generation, config.student_train))
    train_config = load_train_config(config.preset, overrides=deep_merge(overrides, config.student_train))
    train_config = replace(train_config, epochs=budget["epochs"], max_steps=budget["max_steps"])
    model = train(train_config)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    run = ContinuousTraining(budget=budget, continuous=summary["continuous"], optimizer_steps=summary["optimizer_steps"],
                             pseudo_label_wer=_sampled_label_wer(out))
    return TrainResult(model=str(Path(model).relative_to(out)), continuous_run=run)


def _sampled_label_wer(out: Path) -> float | None:
    """The WER of the kept labels in the continuous run's audit sample (None without references)."""
    from selftrain.train.continuous import AUDIT_FILE

    path = out / AUDIT_FILE
    if not path.exists():
        return None
    quality, normalizer = LabelQuality(), TextNormalizer()
    for utt in iter_records(path):
        if utt.decision is not None and utt.decision.kept:
            quality.add(utt, normalizer)
    result = quality.result()
    return round(result["wer"], 4) if result else None


def _ssl_only_manifest(config: ExperimentConfig, selected: Path, out: Path) -> Path:
    """The unlabeled audio that was not selected: it still trains the SSL objectives, without a label.

    (Selected utterances take part in SSL too, as members of the pseudo-labeled pool.)
    """
    from selftrain.data.manifest import write_speechbrain_csv

    chosen = {u.id for u in read_manifest(selected)}
    path = out / "ssl_only.csv"
    write_speechbrain_csv([u for u in read_manifest(config.data.unlabeled) if u.id not in chosen], path)
    return path


def build_language_model(config: ExperimentConfig, workdir: Workdir, out: Path) -> LMResult:
    """Build the n-gram LM from the LM text with the teacher's normaliser and alphabet."""
    from selftrain.data.tokenizer import load_tokenizer
    from selftrain.lm import LMBuildConfig, build_lm

    tokenizer = load_tokenizer(model_dir(workdir, 0) / "tokenizer.json")
    report = build_lm(config.data.lm_text, out / LM_FILE, LMBuildConfig(order=config.lm_order),
                      normalizer=tokenizer.normalizer, alphabet=getattr(tokenizer, "alphabet", None))
    return LMResult(lm=LM_FILE, report=report.to_dict())


def _decoder_config(config: ExperimentConfig, workdir: Workdir | None = None, generation: int | None = None,
                    **changes: Any):
    """The experiment's decoder settings; with ``decode_tuning`` on, those tuned for ``generation``'s
    model on dev (its ``tune`` stage) replace the configured ones; then ``changes``."""
    from selftrain.decode import DecoderConfig
    from selftrain.models.config import update_dataclass

    decoder = DecoderConfig()
    update_dataclass(decoder, config.decode, "decode")
    if config.decode_tuning.enabled and workdir is not None and generation is not None:
        decoder = decoder.with_tuned(tuned_settings(workdir, generation))
    return replace(decoder, **changes)


def tuned_settings(workdir: Workdir, generation: int) -> dict[str, float]:
    """The decoder settings a generation's ``tune`` stage chose (:class:`DecodeError` before it ran)."""
    from selftrain.errors import DecodeError

    stage = workdir.stage_dir(generation, TUNE_STAGE)
    if not workdir.is_done(stage):
        raise DecodeError(f"decode_tuning is on but generation {generation}'s decoder was not tuned ({stage})")
    return dict(TuneStageResult.read(stage).best)


def tune_generation(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path) -> TuneStageResult:
    """Tune the LM weight, word bonus and blank penalty of ``generation``'s model on dev
    (:func:`selftrain.decode.tune.tune_decoder`); the generation's evaluation and its decoding of
    the next generation's unlabeled audio use what it chose."""
    from selftrain.decode.tune import dev_log_probs, tune_decoder
    from selftrain.models import load_acoustic_model

    model = load_acoustic_model(model_dir(workdir, generation), state_cache=state_cache_dir(config, workdir))
    base = _decoder_config(config)
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
    from selftrain.decode import DecoderPool, decode_manifest
    from selftrain.models import load_ensemble

    lm_path = workdir.stage_dir(None, "lm") / LM_FILE
    utterances = ManifestStream(manifest)  # read row by row by each teacher: memory flat in the manifest's size
    runs: list[tuple[str, int, Any]] = []
    if config.teachers.lm:
        runs.append(("lm", teacher_generation, _decoder_config(config, workdir, teacher_generation)))
    if config.teachers.greedy:
        runs.append(("greedy", teacher_generation, _decoder_config(config, workdir, teacher_generation, decoder="greedy")))
    for k in range(config.teachers.dropout_samples):
        runs.append((f"dropout{k}", teacher_generation, _decoder_config(config, workdir, teacher_generation, decoder="greedy",
                                                                        dropout=True, seed=config.seed + k)))
    if config.teachers.previous and teacher_generation >= 1:
        runs.append(("previous", teacher_generation - 1, _decoder_config(config, workdir, teacher_generation - 1)))
    files = {}
    members = config.teachers.ensemble if ensemble else []
    for name, generation, decoder_config in runs:
        model = load_ensemble([model_dir(workdir, generation), *(members if generation == teacher_generation else [])],
                              state_cache=state_cache_dir(config, workdir))
        path = out / f"{prefix}_{name}.jsonl"
        uses_lm = decoder_config.decoder != "greedy"
        with DecoderPool(decoder_config, model.tokenizer.ctc_labels(), lm_path if uses_lm else None, name) as decoder:
            report = decode_manifest(model, utterances, decoder, path)
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


def _transcribe_split(teacher: Any, manifest: str, path: Path) -> TeacherFile:
    from selftrain.teachers import transcribe_manifest

    report = transcribe_manifest(teacher, read_manifest(manifest), path)
    return TeacherFile(file=path.name, decoded=report.transcribed + report.already_done, bad_audio=report.bad_audio,
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


def selection_inputs(workdir: Workdir, generation: int) -> dict[str, list[str | Path]]:
    """Every teacher's hypothesis files that a generation's selection reads, by split (``unlabeled``,
    ``dev``): the teacher's own (dev: from its evaluation), then the external teachers'."""
    decode_dir = workdir.stage_dir(generation, "decode")
    decoded = DecodeResult.read(decode_dir)
    if decoded.unlabeled is None or decoded.dev is None or decoded.dev_dir is None:
        raise ConfigError(f"{decode_dir} holds no hypotheses ({decoded.planted or 'nothing decoded'}): "
                          f"generation {generation}'s selection was given from outside")
    inputs: dict[str, list[str | Path]] = {"unlabeled": list(decoded.unlabeled.files(decode_dir)),
                                           "dev": list(decoded.dev.files(workdir.root / decoded.dev_dir))}
    if decoded.external is not None:
        external_dir = workdir.root / decoded.external.dir
        inputs["unlabeled"] += decoded.external.unlabeled.files(external_dir)
        inputs["dev"] += decoded.external.dev.files(external_dir)
    return inputs


def _auto_threshold(config: ExperimentConfig, dev_records: list[Utterance]) -> tuple[float | None, dict[str, Any]]:
    """The lowest threshold whose pseudo-label WER on the transcribed dev set stays under the target,
    lowered when needed so that at least ``min_keep_fraction`` of dev is kept."""
    points = sweep(dev_records, "selection", fractions=SELECTION_FRACTIONS)
    chosen = choose_threshold(points, config.threshold.target_wer, config.threshold.min_keep_fraction)
    info = {"target_wer": config.threshold.target_wer,
            "dev_points": [p.to_dict() for p in points],
            "dev_choice": chosen.to_dict() if chosen else None}
    return (chosen.threshold if chosen else None), info


def select_pseudo_labels(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path) -> SelectResult:
    """Calibrate on dev, choose the threshold, then select pseudo-labels of the unlabeled audio."""
    from functools import partial

    from selftrain.agreement.rover import AgreementConfig
    from selftrain.confidence.calibrate import fit_calibration
    from selftrain.models.config import update_dataclass
    from selftrain.select import SelectConfig
    from selftrain.select.pipeline import run_selection
    from selftrain.select.policy import chosen_hypothesis, speaking_rate_bounds_or_warning
    from selftrain.select.stream import run_selection_stream

    inputs = selection_inputs(workdir, generation)
    agreement = AgreementConfig()
    update_dataclass(agreement, config.agreement, "agreement")
    select_config = SelectConfig(generation=generation)
    update_dataclass(select_config, config.select, "select")
    rate_bounds, rate_warning = None, None
    if config.speaking_rate_quantile is not None:
        bounds, rate_warning = speaking_rate_bounds_or_warning(
            read_manifest(config.data.labeled), config.speaking_rate_quantile, config.data.labeled)
        if bounds is not None:
            rate_bounds = [round(v, 2) for v in bounds]
            select_config = replace(select_config, sanity=replace(
                select_config.sanity, min_chars_per_second=rate_bounds[0], max_chars_per_second=rate_bounds[1]))
    # Calibration and the automatic threshold come from the teacher's output on the transcribed dev set.
    # On dev every utterance is kept whole: it is measured there, not trained on.
    dev_config = replace(select_config, threshold=None, keep_fraction=None,
                         segments=replace(select_config.segments, enabled=False))
    dev = run_selection(inputs["dev"], out / "dev", dev_config, agreement, manifest=config.data.dev)
    calibration_path = out / "calibration.json"
    # Calibrate the scores of the hypotheses that become the pseudo-labels (ROVER's, when it is the label source).
    calibration = fit_calibration(dev.utterances, teacher=partial(chosen_hypothesis, label_source=select_config.label_source))
    calibration.save(calibration_path)
    select_config = select_config.for_calibration(calibration)  # method auto: the calibrated combination
    dev = run_selection(inputs["dev"], out / "dev", replace(dev_config, method=select_config.method),
                        agreement, calibration=calibration_path, manifest=config.data.dev)
    threshold_info: dict[str, Any] = {"mode": config.threshold.mode}
    if config.threshold.mode == "auto":
        threshold, details = _auto_threshold(config, dev.utterances)
        select_config = replace(select_config, threshold=threshold, keep_fraction=None, threshold_schedule=None,
                                keep_fraction_schedule=None)
        threshold_info.update(details)
    # The unlabeled pool can be large: streamed, memory flat in its size (the same files as run_selection).
    result = run_selection_stream(inputs["unlabeled"], out, select_config, agreement,
                                  calibration=calibration_path, manifest=config.data.unlabeled)
    kept, total = result.summary["kept"], result.summary["utterances"]
    return SelectResult(
        threshold=select_config.threshold,
        method=select_config.method,
        selected_utterances=kept,
        selected_hours=round(result.summary["kept_hours"], 4),
        segmented_utterances=result.summary["segmented"],
        selected_fraction=round(kept / total, 4) if total else 0.0,
        threshold_choice=threshold_info,
        speaking_rate_bounds=tuple(rate_bounds) if rate_bounds else None,
        warnings=tuple(result.warnings + ([rate_warning] if rate_warning else [])),
    )


def audit_generation(config: ExperimentConfig, workdir: Workdir, generation: int, out: Path) -> AuditStageResult:
    """Audit the unlabeled decisions (measured WER when the unlabeled references are given).

    The decisions are read as a stream into a :class:`~selftrain.audit.table.ScoreTable` (scores and
    sizes, not the records); the references, when given, are held as one text per utterance."""
    from selftrain.audit.report import run_audit_table
    from selftrain.audit.table import ScoreTable

    references = reference_texts(config.data.unlabeled_reference) if config.data.unlabeled_reference else None
    kept_quality = LabelQuality()
    table = ScoreTable(_audited(workdir.stage_dir(generation, "select") / "decisions.jsonl", references, kept_quality))
    result = run_audit_table(table, target_wer=config.threshold.target_wer, label=f"gen_{generation:03d}")
    previous = [load_audit(workdir.stage_dir(g, "audit")) for g in range(1, generation)
                if (workdir.stage_dir(g, "audit") / "audit.json").exists()]
    write_audit(result, out, table, previous=previous)
    quality = kept_quality.result()
    pseudo_label_wer_kept = round(quality["wer"], 4) if quality else None
    return AuditStageResult(pseudo_label_wer=pseudo_label_wer_kept, with_reference=result.with_reference)


def _audited(decisions: Path, references: dict[str, str | None] | None, kept_quality: LabelQuality) -> Iterator[Utterance]:
    """The decisions one at a time, with their references (as :func:`attach_references` sets them);
    the pseudo-label quality of the kept ones is added up in ``kept_quality``."""
    normalizer = TextNormalizer()
    for utt in iter_records(decisions):
        if references is not None and references.get(utt.id) is not None:
            utt.reference = references[utt.id]
        if utt.decision is not None and utt.decision.kept and utt.reference:
            kept_quality.add(utt, normalizer)
        yield utt
