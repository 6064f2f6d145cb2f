"""The self-training benchmark: does self-training beat the supervised-only model, and by how much?

On a synthetic corpus made for the run (labeled: known voices, nearly clean; unlabeled, dev and
test: the target domain, degraded, with unseen voices), it runs these arms with ``selftrain run``,
each in its own resumable experiment folder under ``--work``:

- ``main``: the supervised teacher (CTC only), then 3 generations with the default policy
  (confidence + agreement of the LM and greedy teachers, threshold chosen on dev);
- ``labeled_only``: the control (``labels: none``). The same generations from the same teacher with
  nothing decoded or selected, so each student trains on the labeled audio alone, for as many
  optimizer steps as a self-training student and with the same acceptance test: what the extra
  training alone buys. Self-training helps only where it beats this chain;
- ``oracle``: the same generations, each student trained on the TRUE transcripts of all the
  unlabeled audio (``labels: oracle``, the topline);
- ``ssl_teacher``: the teacher trained with CTC + SSL on the labeled and unlabeled audio;
- ablations of generation 1, sharing ``main``'s teacher and decoding: ``no_filter`` (every
  pseudo-label), ``confidence_only`` and ``agreement_only`` (ranked by one signal, keeping the
  share the default policy kept), ``no_lm`` (pseudo-labels from greedy decoding), ``student_ssl``
  (the default selection, SSL loss on in the student);
- ``labeled_<pct>``: a teacher and ``curve_generations`` generations on a subset of the labeled set
  (the sample-efficiency curve);
- explored variants with ``schedule: continuous`` (on any scale): from the main run's teacher, one
  continuous run (labels made during training, :mod:`selftrain.train.continuous`) on the step budget
  of the scale's generations, reported against those generations and the labeled-only control.

It writes ``self_training.{json,md,png}`` under ``--out``: test WER/CER, pseudo-label WER, kept
fraction and wall time per row, the gap recovery (control - final) / (control - oracle) after the
same number of generations (and, as in earlier runs, against the teacher) and the targets. Re-running continues an interrupted benchmark. Scales live in
``benchmarks/self_training.yaml``::

    python benchmarks/self_training.py                  # default scale (its time: benchmarks/results/self_training.md)
    python benchmarks/self_training.py --scale quick    # ~9 min: checks every arm runs, for development
    python benchmarks/self_training.py --skip ssl_teacher   # leave out arms (the results say which)
    python benchmarks/self_training.py --scale pretrained_30min --skip generations ... --explore continuous_best_ema
    python benchmarks/self_training.py --scale followup --report-only   # rewrite .md/.png from the .json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from _results import save_results
from _seeds import GENERATIONS, final_generation, gap_recovery, own_control_arm, pooled_seeds, seeds_lines

from selftrain.audit.significance import paired_bootstrap, utterance_errors
from selftrain.data.manifest import read_manifest, write_speechbrain_csv
from selftrain.errors import ConfigError
from selftrain.generation import ExperimentConfig, load_experiment_config, lock_workdir
from selftrain.generation.controls import SELECTED_BY, step_matched_epochs
from selftrain.generation.registry import stage_named
from selftrain.generation.results import AuditStageResult, DecodeResult, SelectResult
from selftrain.generation.run import open_workdir, run_experiment
from selftrain.generation.stages import evaluate_hyps, model_dir
from selftrain.generation.workdir import Workdir, experiment_hash
from selftrain.overrides import deep_merge
from selftrain.synth import SynthConfig, build_corpus

HERE = Path(__file__).resolve().parent
TARGET_GAP_RECOVERY = 0.6
TEACHER = ["lm", "gen_000"]
DECODED = [*TEACHER, "gen_001/decode"]
SELECTED = [*DECODED, "gen_001/select", "gen_001/audit"]
FILTERED_ARMS = ("whole_utterances", "confidence_only", "agreement_only", "no_lm", "student_ssl")
POLICY_NAMES = {"main": "confidence + agreement (default)"}  # the filtered policies' names in the no-filtering table
NO_FILTER = "no_filter:"  # key prefix of a policy's comparison with no filtering in the results' significance
ABLATIONS = ("no_filter", *FILTERED_ARMS)
# "generations": the main run trains its teacher only (generation 0); arms that start from its generation-1
# decoding cannot run then
OPTIONAL_ARMS = ("generations", "labeled_only", "oracle", *ABLATIONS, "explore", "curve", "ssl_teacher", "compare_presets")
PRESET_ARM = "preset_"  # arm-name prefix of a scale's ``compare_presets`` teachers
# the generations panel shows at least this much WER, about a test set's 95 % interval, so that
# differences within the noise do not fill the panel
MIN_PLOTTED_WER_SPAN = 0.03
EXPLORED = "explore:"  # arm-name prefix of the scale's ``explore`` variants
# What an explored student trains on: the experiment's own ``labels`` (policy, none, oracle) or an
# analysis oracle this benchmark plants (PLANTED_LABELS: selections made from the main run's)
PLANTED_LABELS = ("oracle_selected", "oracle_random", "oracle_runs")
EXPLORED_LABELS = ("policy", "none", "oracle", *PLANTED_LABELS)
CONTINUOUS = "continuous"  # an explored variant's ``schedule`` that makes it a continuous run
# key suffixes of a continuous arm's comparisons: the labeled-only control chain, the offline generations,
# and its own `<name>_labeled_only` variant (the same run without unlabeled audio)
VS_CONTROL, VS_OFFLINE, VS_OWN = ":vs_labeled_only", ":vs_generations", ":vs_own_labeled_only"

log = logging.getLogger("self_training")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="default", help="a scale of the config file [default]")
    parser.add_argument("--config", default=str(HERE / "self_training.yaml"), help="scales file")
    parser.add_argument("--work", default="benchmarks/work/self_training", help="work folder (resumable)")
    parser.add_argument("--out", default="benchmarks/results", help="results folder")
    parser.add_argument("--name", default=None, help="results file stem [self_training, quick: self_training_quick]")
    parser.add_argument("--skip", action="append", default=[], choices=OPTIONAL_ARMS,
                        help="leave an arm out of this invocation (repeatable); the results list what was left out")
    parser.add_argument("--explore", action="append", default=[], metavar="NAME",
                        help="run and report only this explored variant of the scale (repeatable; default: all of them)")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: rewrite the analysis, Markdown and plot from the results JSON, "
                             "keeping its command, date and machine")
    return parser.parse_args(argv)


def load_scale(path: str | Path, name: str) -> dict[str, Any]:
    """One scale of the benchmark's YAML file."""
    scales = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if name not in scales:
        raise SystemExit(f"unknown scale {name!r}; {path} has {', '.join(scales)}")
    return scales[name]


def _other_scale_home(scale: dict[str, Any], work: Path, key: str) -> Path | None:
    other = scale.get(key)
    if other is None:
        return None
    if not isinstance(other, str) or other == work.name:
        raise SystemExit(f"{key} must name another scale, got {other!r}")
    return work.parent / other


def teacher_home(scale: dict[str, Any], work: Path) -> Path:
    """Where the scale's teacher lives: its own work folder, or that of the scale named by
    ``teacher_from`` (a scale that differs from it after generation 0 only, so the slowest stages are
    shared; a different corpus or teacher config is refused by the corpus and the teacher's folder)."""
    return _other_scale_home(scale, work, "teacher_from") or work


def corpus_home(scale: dict[str, Any], work: Path) -> Path:
    """Where the scale's corpus lives: that of the scale named by ``corpus_from`` (same audio), else of
    ``teacher_from``'s scale, else its own work folder. A scale whose ``teacher_from`` scale has its
    corpus from a third one names that one in ``corpus_from`` too."""
    return _other_scale_home(scale, work, "corpus_from") or _other_scale_home(scale, work, "teacher_from") or work


def make_corpus(scale: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Synthesize (or finish) the corpus; returns its paths and ``corpus.json`` summary."""
    started = time.time()
    summary = build_corpus(SynthConfig.from_dict(scale["corpus"]), folder)
    paths = {name: str(folder / f"{name}.csv") for name in ("labeled", "unlabeled", "dev", "test", "unlabeled_reference")}
    paths["lm_text"] = str(folder / "lm_text.txt")
    return {"paths": paths, "summary": summary, "seconds": round(time.time() - started, 1)}


def labeled_subset(labeled: str, fraction: float, out: Path, seed: int = 0) -> tuple[str, float]:
    """A seeded random ``fraction`` of the labeled manifest; returns its path and hours."""
    rows = read_manifest(labeled)
    chosen = sorted(random.Random(seed).sample(range(len(rows)), round(fraction * len(rows))))
    subset = [rows[i] for i in chosen]
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        write_speechbrain_csv(subset, out)
    return str(out), sum(u.duration for u in subset) / 3600


def run_arm(work: Path, name: str, overrides: dict[str, Any], adopt_from: Path | None = None,
            adopt: list[str] | None = None, before=None) -> Path:
    """Run (or finish) one experiment; ``adopt`` takes finished stages from ``adopt_from``."""
    config = load_experiment_config(overrides=overrides)
    reopen_planted(work / name, config)
    workdir = open_workdir(config, work / name)
    if adopt_from is not None:
        workdir.adopt(adopt_from, adopt or [])
    if before is not None:
        before(workdir)
    log.info("arm %s: %s", name, workdir.root)
    run_experiment(config, workdir.root)
    return workdir.root


def teacher_overrides(base: dict[str, Any]) -> dict[str, Any]:
    """The settings of generation 0 alone (data, model, LM, teacher training, its evaluation), so that
    every arm shares one teacher and a change of the student or selection settings keeps it. The
    speaking-rate bounds are a selection setting: off here, so teachers made before they became the
    default keep their folders."""
    keys = ("data", "seed", "preset", "lm_order", "teacher_train", "decode", "teachers", "state_cache")
    settings = {key: base[key] for key in keys if key in base}
    if "ensemble" in settings.get("teachers", {}):
        # Ensemble members join from generation 1's decoding on: generation 0 is the teacher alone.
        settings["teachers"] = {k: v for k, v in settings["teachers"].items() if k != "ensemble"}
    return {**settings, "generations": 0, "speaking_rate_quantile": None}


def teacher_stages(base: dict[str, Any]) -> list[str]:
    """What ``main`` takes from the shared teacher folder: the LM and all of generation 0, or, with
    ``decode_tuning`` on (not a teacher setting, so the folder stays shared), the LM and the trained
    teacher only: generation 0's decoder is tuned and evaluated in main's folder, and the other arms
    take it from there."""
    if (base.get("decode_tuning") or {}).get("enabled"):
        return ["lm", "gen_000/train"]
    return list(TEACHER)


def ensemble_members(scale: dict[str, Any], work: Path, config: Path) -> list[str]:
    """Model folders of the generation-0 teachers of the scales named in ``ensemble_from``, trained
    (or finished) by this run; each must train on this scale's corpus (its audio, its labels)."""
    members = []
    corpus = corpus_home(scale, work)
    for name in scale.get("ensemble_from") or []:
        other_work = work.parent / name
        if name == work.name:
            raise SystemExit(f"ensemble_from must name other scales, got {name!r}")
        other = load_scale(config, name)
        if corpus_home(other, other_work) != corpus:
            raise SystemExit(f"ensemble_from: the {name} scale's teacher trains on another corpus "
                             f"({corpus_home(other, other_work)}, this scale's is {corpus})")
        paths = make_corpus(other, corpus / "corpus")["paths"]
        teacher = run_arm(teacher_home(other, other_work), "teacher",
                          teacher_overrides(deep_merge(other["experiment"], {"data": paths})))
        members.append(str(model_dir(Workdir(teacher), 0)))
    return members


def planted_config(config: ExperimentConfig) -> dict[str, Any]:
    """The config this benchmark gave a ``labels: none`` or ``oracle`` experiment while it planted
    their selections, before the setting existed: the same settings with the policy's labels and,
    for the control, the student's epochs it now trains by itself (as many steps as a student)."""
    settings = {key: value for key, value in config.to_dict().items() if key != "labels"}
    if config.labels == "none":
        settings = deep_merge(settings, {"student_train": {"epochs": step_matched_epochs(config)}})
    return load_experiment_config(overrides=settings).to_dict()


def reopen_planted(root: Path, config: ExperimentConfig) -> None:
    """Let a control or oracle folder made while this benchmark planted their selections open under
    ``labels``: its finished stages are what the setting makes (the same selections, the same
    trainings), but its config, written without the setting, would be refused as another
    experiment. Only a folder whose config is :func:`planted_config`'s and whose generation-1
    selection was planted as the setting's is rebound."""
    if config.labels == "policy" or not (root / "experiment.json").exists():
        return
    workdir = Workdir(root)
    select = workdir.stage_dir(1, "select")
    if (experiment_hash(workdir.config()) != experiment_hash(planted_config(config)) or not workdir.is_done(select)
            or SelectResult.read(select).method != SELECTED_BY[config.labels]):
        return
    lock_workdir(root)
    workdir.rebind(config.to_dict())
    log.info("%s: planted before `labels` existed, now opened as labels: %s", root, config.labels)


def plant_decode(workdir: Workdir, generation: int) -> None:
    """Mark a generation's decode done: its selection is planted, so nothing reads its hypotheses."""
    stage_named("decode").record(workdir, generation,
                                 lambda out: DecodeResult(teacher_generation=generation - 1, planted="control: no decoding"))


def _empty_selection(out: Path) -> SelectResult:
    write_speechbrain_csv([], out / "selected.csv")
    return SelectResult(threshold=None, method="control: nothing selected", selected_utterances=0, selected_hours=0.0,
                        selected_fraction=0.0)


def _plant_selections(generations: int, select, pseudo_label_wer: float | None):
    """A ``before`` hook: generations 1..N take their selection from ``select(out)`` (no decoding)."""

    def plant(workdir: Workdir) -> None:
        for generation in range(1, generations + 1):
            plant_decode(workdir, generation)
            stage_named("select").record(workdir, generation, select)
            stage_named("audit").record(workdir, generation, lambda out: AuditStageResult(pseudo_label_wer=pseudo_label_wer))

    return plant


def plant_empty_selections(generations: int):
    """A ``before`` hook: generations 1..N select nothing (no decoding), so students see labeled data
    only, for the epochs of the config (``labels: none`` trains as many steps as a student instead)."""
    return _plant_selections(generations, _empty_selection, None)


def plant_oracle_selections(reference: str, unlabeled: str, generations: int, choose, method: str):
    """A ``before`` hook: generations 1..N select the unlabeled utterances ``choose(truth)`` returns,
    with their true text (no decoding); ``labels: oracle`` trains on all of them."""

    def select(out: Path) -> SelectResult:
        truth = read_manifest(reference)
        chosen = choose(truth)
        write_speechbrain_csv(chosen, out / "selected.csv")
        return SelectResult(threshold=None, method=method, selected_utterances=len(chosen),
                            selected_hours=round(sum(u.duration for u in chosen) / 3600, 4),
                            selected_fraction=round(len(chosen) / len(read_manifest(unlabeled)), 4))

    return _plant_selections(generations, select, 0.0)


def whole_utterances_selected(selected: Path, truth: list) -> list:
    """The utterances of a selection that it kept whole (a segment's true text is unknown), with their true text."""
    kept = {u.id for u in read_manifest(selected)}
    return [u for u in truth if u.id in kept]


def random_like(selected: Path, truth: list, seed: int = 0) -> list:
    """Utterances drawn at random (seeded) until they add up to the hours of ``selected``'s whole
    utterances: the same amount of audio without the selection's preference for easy audio."""
    hours = sum(u.duration for u in whole_utterances_selected(selected, truth))
    chosen, total = [], 0.0
    for utt in random.Random(seed).sample(truth, len(truth)):
        if total >= hours:
            break
        chosen.append(utt)
        total += utt.duration
    return sorted(chosen, key=lambda u: u.id)


def oracle_runs(decoded: Path, reference: str, settings: dict[str, Any]):
    """A ``select`` of :func:`_plant_selections`: every unlabeled utterance trains, in context, the runs
    of words its LM-teacher hypothesis got right against the true transcript (``settings``: the
    variant's ``select.segments``, for ``min_words`` and ``min_seconds``): what a perfect word
    confidence would keep of the main run's generation-1 decoding."""
    from selftrain.audit.inputs import attach_references, load_records
    from selftrain.confidence.calibrate import pick_hypothesis, word_correctness
    from selftrain.select.config import SegmentConfig
    from selftrain.select.segments import cut_segments, in_context_row
    from selftrain.text import TextNormalizer

    config = SegmentConfig(**{**settings, "enabled": True, "apply_to": "all", "method": "right", "threshold": 0.5,
                              "context": "whole"})
    normalizer = TextNormalizer()

    def select(out: Path) -> SelectResult:
        records = load_records(decoded)
        attach_references(records, reference)
        rows = []
        for utt in records:
            hyp = pick_hypothesis(utt, "lm")
            if hyp is None or not hyp.words or utt.reference is None:
                continue
            right = word_correctness([w.word for w in hyp.words], normalizer(utt.reference))
            for word, ok in zip(hyp.words, right, strict=True):
                word.scores["right"] = float(ok)
            utt.pseudo_label, utt.segments = hyp.text, cut_segments(utt, hyp, config)
            if utt.segments:
                rows.append(in_context_row(utt))
        write_speechbrain_csv(rows, out / "selected.csv", use_pseudo_labels=True)
        seconds = sum(end - start for utt in rows for start, end, _ in json.loads(utt.extra["runs"]))
        return SelectResult(threshold=None, method="oracle runs: the words the teacher got right, in context",
                            selected_utterances=len(rows), selected_hours=round(seconds / 3600, 4),
                            selected_fraction=round(len(rows) / len(records), 4))

    return select


def split_variant(one: dict[str, Any], variant: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """An explored variant's experiment settings (over the one-generation ``one``) and the labels the
    benchmark plants for it (None: the experiment makes them). Its ``labels`` (``policy`` unless
    given): ``none`` and ``oracle`` are the experiment's own setting; the analysis oracles
    (:data:`PLANTED_LABELS`) and a ``labels: none`` variant with ``match_steps: false`` (a control at
    its config's epochs, not a student's steps) are planted."""
    labels = variant.get("labels", "policy")
    if labels not in EXPLORED_LABELS:
        raise SystemExit(f"unknown explored labels {labels!r}: expected one of {', '.join(EXPLORED_LABELS)}")
    if "match_steps" in variant and labels != "none":
        raise SystemExit(f"match_steps is a setting of labeled-only controls (labels: none), not of labels {labels!r}")
    overrides = deep_merge(one, {k: v for k, v in variant.items() if k not in ("labels", "match_steps")})
    if labels in PLANTED_LABELS or not variant.get("match_steps", True):
        return overrides, labels
    return (deep_merge(overrides, {"labels": labels}) if labels != "policy" else overrides), None


def explored_labels(kind: str | None, paths: dict[str, str], main: Path, generations: int,
                    segments: dict[str, Any] | None = None):
    """The ``before`` hook that plants an explored variant's labels (None when the experiment makes
    them): nothing (``none`` at the config's epochs: nothing is decoded), or the true transcripts of
    the whole utterances the main run's generation 1 kept (``oracle_selected``), of as much audio
    drawn at random (``oracle_random``), or the runs of words the teacher got right (``oracle_runs``,
    with the variant's ``select.segments`` settings)."""
    if kind is None:
        return None
    if kind == "none":
        return plant_empty_selections(generations)
    selected = main / "gen_001" / "select" / "selected.csv"
    if kind == "oracle_runs":
        settings = {k: v for k, v in (segments or {}).items() if k in ("min_words", "min_seconds", "gap_share")}
        select = oracle_runs(main / "gen_001" / "decode" / "unlabeled_lm.jsonl", paths["unlabeled_reference"], settings)
        return _plant_selections(generations, select, 0.0)
    choices = {"oracle_selected": (lambda truth: whole_utterances_selected(selected, truth),
                                   "oracle: the main run's generation-1 whole utterances, true transcripts"),
               "oracle_random": (lambda truth: random_like(selected, truth),
                                 "oracle: random utterances, as many hours as the main run kept whole, true transcripts")}
    choose, method = choices[kind]
    return plant_oracle_selections(paths["unlabeled_reference"], paths["unlabeled"], generations, choose, method)


def generation_rows(root: Path, arm: str, adopted: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One row per finished generation of an experiment folder (from its ``generation.json``)."""
    rows = []
    for path in sorted(root.glob("gen_*/generation.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        generation = record["generation"]
        own = {stage: seconds for stage, seconds in record["stage_seconds"].items()
               if f"gen_{generation:03d}/{stage}" not in adopted and f"gen_{generation:03d}" not in adopted
               and not (stage == "lm" and "lm" in adopted)}
        rows.append({
            "arm": arm, "generation": generation,
            "test_wer": record["test_wer"], "test_cer": record["test_cer"], "dev_wer": record["dev_wer"],
            "test_errors": record.get("test_errors") or test_errors(root, generation),
            "pseudo_label_wer": record.get("pseudo_label_wer"), "kept_fraction": record.get("selected_fraction"),
            "selected_hours": record.get("selected_hours"), "accepted": record.get("accepted", True),
            **({"schedule": CONTINUOUS, "guard_trips": record.get("guard_trips"),
                "optimizer_steps": record.get("optimizer_steps")} if record.get("schedule") == CONTINUOUS else {}),
            "wall_seconds": round(sum(v or 0.0 for v in own.values()), 1), "stage_seconds": own,
            **({"decoder_tuning": record["decoder_tuning"]} if record.get("decoder_tuning") else {}),
        })
    return rows


def test_errors(root: Path, generation: int) -> dict[str, float] | None:
    """A generation's test WER split into substitutions, deletions and insertions per reference word,
    from its test hypotheses (generations finished before ``generation.json`` recorded it), or None
    without a test set."""
    hyps = root / f"gen_{generation:03d}" / "eval" / "test_lm.jsonl"
    test = json.loads((root / "experiment.json").read_text(encoding="utf-8"))["config"]["data"].get("test")
    if not test or not hyps.exists():
        return None
    return evaluate_hyps(hyps, test, "lm").errors


def run_benchmark(scale: dict[str, Any], work: Path, skip: tuple[str, ...] = (),
                  config: Path = HERE / "self_training.yaml", explore: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run every arm not in ``skip`` (resumable), most important first, and collect their rows;
    ``explore`` names the explored variants to run (all of the scale's when empty)."""
    home = teacher_home(scale, work)
    corpus = make_corpus(scale, corpus_home(scale, work) / "corpus")
    paths = corpus["paths"]
    base = deep_merge(scale["experiment"], {"data": paths})
    if scale.get("state_cache") == "shared":  # one frozen-state cache for every arm on this audio (content-addressed)
        base = deep_merge(base, {"state_cache": str(corpus_home(scale, work).resolve() / "state_cache")})
    members = ensemble_members(scale, work, config)
    if members:
        base = deep_merge(base, {"teachers": {"ensemble": members}})
    generations = int(base["generations"])
    ssl = {"ssl": scale["ssl"]}
    check_skips(skip)
    teacher = run_arm(home, "teacher", teacher_overrides(base))
    shared = teacher_stages(base)
    main = run_arm(work, "main", deep_merge(base, {"generations": 0}) if "generations" in skip else base, teacher, shared)
    if shared == TEACHER:
        students = [r for r in generation_rows(main, "main", tuple(TEACHER)) if r["generation"] > 0]
        arms: dict[str, list[dict[str, Any]]] = {"main": generation_rows(teacher, "main") + students}
    else:  # the teacher's row is main's (evaluated with the decoder settings tuned for it), its training included
        arms = {"main": generation_rows(main, "main")}
    one = deep_merge(base, {"generations": 1})
    fraction = next((r["kept_fraction"] for r in arms["main"] if r["generation"] == 1), None)
    ranked = {"threshold": {"mode": "fixed"}, "select": {"method": "entropy_tsallis_exp", "keep_fraction": fraction}}
    no_sanity = {"min_chars_per_second": None, "max_chars_per_second": None, "max_repeat": None, "max_length_ratio": None}
    variants = [
        ("labeled_only", deep_merge(base, {"labels": "none"}), TEACHER, None),
        ("oracle", deep_merge(base, {"labels": "oracle"}), TEACHER, None),
        ("no_filter", deep_merge(one, {"threshold": {"mode": "fixed"}, "speaking_rate_quantile": None,
                                  "select": {"method": "entropy_tsallis_exp", "keep_fraction": 1.0, "sanity": no_sanity}}),
         DECODED, None),
        ("whole_utterances", deep_merge(one, {"select": {"segments": {"enabled": False}}}), DECODED, None),
        ("confidence_only", deep_merge(one, ranked), DECODED, None),
        ("agreement_only", deep_merge(one, deep_merge(ranked, {"select": {"rank_by": "agreement"}})), DECODED, None),
        ("no_lm", deep_merge(one, {"select": {"teacher": "greedy"}}), DECODED, None),
        ("student_ssl", deep_merge(one, {"student_train": ssl}), SELECTED, None),
    ]
    for name, overrides, adopt, before in variants:
        if name not in skip:
            root = run_arm(work, name, overrides, main, adopt, before)
            arms[name] = generation_rows(root, name, tuple(adopt))
    unavailable: dict[str, str] = {}
    for name, variant in explored_variants(scale, explore) if "explore" not in skip else []:
        overrides, planted = split_variant(one, continuous_variant(variant, generations))
        missing = missing_recognizer(overrides)
        if missing is not None:
            log.warning("explored variant %s not run: %s", name, missing)
            unavailable[name] = missing
            continue
        plant = explored_labels(planted, paths, main, int(overrides["generations"]),
                                (overrides.get("select") or {}).get("segments"))
        adopted = explored_adoption(name, variant)
        if "generations" in skip and adopted != TEACHER:
            raise SystemExit(f"explored variant {name!r} starts from the main run's generation-1 decoding: "
                             "it cannot run with --skip generations")
        root = run_arm(work / "exp", name, overrides, main, adopted, plant)
        arms[EXPLORED + name] = generation_rows(root, EXPLORED + name, tuple(adopted))
    curve = [{"fraction": 1.0, "labeled_hours": corpus["summary"]["hours"]["labeled"], "arm": "main"}]
    for share in scale["labeled_fractions"] if "curve" not in skip else []:
        if share >= 1.0:
            continue
        name = f"labeled_{round(share * 100):03d}"
        subset, hours = labeled_subset(paths["labeled"], share, work / "subsets" / f"{name}.csv")
        root = run_arm(work, name, deep_merge(base, {"generations": scale["curve_generations"], "data": {"labeled": subset}}))
        arms[name] = generation_rows(root, name)
        curve.append({"fraction": share, "labeled_hours": round(hours, 4), "arm": name})
    if "ssl_teacher" not in skip:
        root = run_arm(work, "ssl_teacher", deep_merge(base, {"generations": 0, "teacher_train": ssl}), main, ["lm"])
        arms["ssl_teacher"] = generation_rows(root, "ssl_teacher", ("lm",))
    for preset, settings in (scale.get("compare_presets") or {}).items() if "compare_presets" not in skip else []:
        # another model preset's supervised teacher on the same labeled audio, LM and test set
        name = PRESET_ARM + preset
        root = run_arm(work, name, {**base, "generations": 0, "preset": preset, **settings}, main, ["lm"])
        arms[name] = generation_rows(root, name, ("lm",))
    teacher_eval = teacher_evaluation(teacher, main, shared)

    def test_hyps(arm: str, generation: int) -> Path:
        root = teacher_eval if generation == 0 else work / "exp" / arm[len(EXPLORED):] if arm.startswith(EXPLORED) else work / arm
        return root / f"gen_{generation:03d}" / "eval" / "test_lm.jsonl"

    oracle = final_generation(arms["oracle"])["test_wer"] if arms.get("oracle") else None
    return {"significance": significance(work, teacher_eval, arms, paths["test"]),
            "seeds": pooled_seeds(arms, EXPLORED, oracle, test_hyps, paths["test"]),
            "teacher_from": scale.get("teacher_from"), "corpus_from": scale.get("corpus_from"),
            "ensemble_from": scale.get("ensemble_from"),
            "corpus": {"hours": corpus["summary"]["hours"], "counts": corpus["summary"]["counts"],
                       "seconds_this_run": corpus["seconds"]},
            "arms": arms, "curve": sorted(curve, key=lambda c: c["fraction"]),
            "curve_generations": scale["curve_generations"], "skipped": list(skip), "unavailable": unavailable,
            "explored_only": list(explore)}


def explored_variants(scale: dict[str, Any], names: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The scale's explored variants named in ``names`` (every one when empty), in the scale's order;
    a name the scale does not have is refused."""
    variants = scale.get("explore") or {}
    unknown = sorted(set(names) - set(variants))
    if unknown:
        raise SystemExit(f"unknown explored variants {', '.join(unknown)}; the scale has {', '.join(variants) or 'none'}")
    return [(name, variant) for name, variant in variants.items() if not names or name in names]


def check_skips(skip: tuple[str, ...]) -> None:
    """Refuse a ``--skip generations`` run that keeps an ablation: ablations start from the main run's
    generation-1 decoding, which such a run does not make."""
    kept = [name for name in ABLATIONS if name not in skip]
    if "generations" in skip and kept:
        raise SystemExit(f"--skip generations leaves the main run at its teacher; the ablations {', '.join(kept)} "
                         "start from its generation-1 decoding: skip them too")


def continuous_variant(variant: dict[str, Any], generations: int) -> dict[str, Any]:
    """A ``schedule: continuous`` variant runs on the budget of the scale's ``generations`` (unless it
    sets its own) and labels its audio itself (``labels: policy``); other variants are returned as given."""
    if variant.get("schedule") != CONTINUOUS:
        return variant
    if variant.get("labels", "policy") != "policy":
        raise SystemExit(f"a continuous variant makes its own labels: labels {variant['labels']!r} cannot go with it")
    return {"generations": generations, **variant}


def explored_adoption(name: str, variant: dict[str, Any]) -> list[str]:
    """The main run's stages an explored variant reuses: its teacher always, its generation-1
    decoding unless the variant's students train on other labels than the policy's (``labels``) or
    it changes how the unlabeled audio is decoded.
    A variant that changes the teacher itself (its data, model, LM or training) is refused: explored
    variants differ from the main run after generation 0 only (change those in the scale's
    ``experiment`` instead)."""
    changes_teacher = sorted(set(variant) & {"data", "preset", "lm_order", "teacher_train"})
    if changes_teacher:
        raise SystemExit(f"explored variant {name!r} changes the teacher ({', '.join(changes_teacher)}); "
                         "set those in the scale's `experiment` (a scale of its own) instead")
    continuous = variant.get("schedule") == CONTINUOUS  # decodes nothing before it trains
    own_labels = variant.get("labels", "policy") != "policy"
    return TEACHER if own_labels or continuous or {"teachers", "decode"} & set(variant) else DECODED


def missing_recognizer(overrides: dict[str, Any]) -> str | None:
    """Why an experiment's external teachers cannot run here (their extra or model folder is
    missing), or None: such a variant is left out and the results say why, not the whole run."""
    from selftrain.teachers.errors import MissingExtraError, ModelFolderError

    try:
        load_experiment_config(overrides=overrides)
    except ConfigError as exc:
        if isinstance(exc.__cause__, MissingExtraError | ModelFolderError):
            return str(exc)
        raise
    return None


def teacher_evaluation(teacher: Path, main: Path, shared: list[str]) -> Path:
    """The folder whose generation-0 evaluation is the teacher's row: the shared teacher folder, or,
    when main evaluates generation 0 itself (decode tuning: ``shared`` holds only its training), main,
    whose test hypotheses are decoded at the settings tuned for the teacher. Paired comparisons
    against the teacher read the hypotheses from there."""
    return teacher if shared == TEACHER else main


def significance(work: Path, teacher_root: Path, arms: dict[str, list[dict[str, Any]]], test: str) -> dict[str, dict[str, float]]:
    """Paired bootstrap of the final self-training model against the teacher, the control and the oracle."""
    def final_errors(arm: str) -> dict[str, tuple[int, int]] | None:
        if not arms.get(arm):
            return None
        generation = final_generation(arms[arm])["generation"]
        root = teacher_root if arm == "main" and generation == 0 else work / arm
        return utterance_errors(root / f"gen_{generation:03d}" / "eval" / "test_lm.jsonl", test)

    final = final_errors("main")
    offline = final if _later(arms, "main") else None  # --skip generations: no offline generations to compare with
    teacher = utterance_errors(teacher_root / "gen_000" / "eval" / "test_lm.jsonl", test)
    compared = {"teacher": teacher, "labeled_only": final_errors("labeled_only"), "oracle": final_errors("oracle")}
    result = {name: paired_bootstrap(final, errors).to_dict() for name, errors in compared.items() if errors and final}
    for row in (r for n in arms if n.startswith(EXPLORED) for r in _later(arms, n)):  # every explored student against the teacher
        folder = work / "exp" / row["arm"][len(EXPLORED):] / f"gen_{row['generation']:03d}"
        result[_explored_name(row)] = paired_bootstrap(utterance_errors(folder / "eval" / "test_lm.jsonl", test), teacher).to_dict()
    return {**result, **_against_no_filter(work, arms, test), **_continuous_against(work, arms, offline, compared)}


def _continuous_against(work: Path, arms: dict[str, list[dict[str, Any]]], offline, compared: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Paired bootstrap of each continuous arm's model against the labeled-only control's final model,
    the offline generations' final model and its own labeled-only variant's (keys: the arm's row name +
    :data:`VS_CONTROL` / :data:`VS_OFFLINE` / :data:`VS_OWN`)."""
    def errors(arm: str, generation: int) -> dict[str, tuple[int, int]]:
        folder = work / "exp" / arm[len(EXPLORED):] / f"gen_{generation:03d}"
        return utterance_errors(folder / "eval" / "test_lm.jsonl", _test_manifest(folder.parent))

    result = {}
    for row in _continuous_rows(arms):
        own = arms.get(own_control_arm(row["arm"]))
        own_errors = errors(own_control_arm(row["arm"]), final_generation(own)["generation"]) if own else None
        mine = errors(row["arm"], row["generation"])
        for suffix, other in ((VS_CONTROL, compared.get("labeled_only")), (VS_OFFLINE, offline), (VS_OWN, own_errors)):
            if other:
                result[_explored_name(row) + suffix] = paired_bootstrap(mine, other).to_dict()
    return result


def _test_manifest(root: Path) -> str:
    return json.loads((root / "experiment.json").read_text(encoding="utf-8"))["config"]["data"]["test"]


def _continuous_rows(arms: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [r for name in arms if name.startswith(EXPLORED) for r in _later(arms, name) if r.get("schedule") == CONTINUOUS]


def _against_no_filter(work: Path, arms: dict[str, list[dict[str, Any]]], test: str) -> dict[str, dict[str, float]]:
    """Paired bootstrap of each filtered policy's generation-1 student against the unfiltered one's,
    keyed ``no_filter:<arm>``: how clearly filtering beats no filtering."""
    if not _first(arms, "no_filter"):
        return {}
    def errors(arm: str):
        return utterance_errors(work / arm / "gen_001" / "eval" / "test_lm.jsonl", test)
    unfiltered = errors("no_filter")
    return {f"{NO_FILTER}{arm}": paired_bootstrap(errors(arm), unfiltered).to_dict()
            for arm in ("main", *FILTERED_ARMS) if _first(arms, arm)}


def _explored_name(row: dict[str, Any]) -> str:
    """An explored student's name in the tables: the variant, and its generation after the first."""
    return row["arm"] if row["generation"] == 1 else f"{row['arm']}, generation {row['generation']}"


def _test(arms: dict, arm: str, generation: int) -> float | None:
    rows = [r for r in arms.get(arm, []) if r["generation"] == generation]
    return rows[0]["test_wer"] if rows else None


def analyse(result: dict[str, Any]) -> dict[str, Any]:
    """Gap recovery, the control, the comparison with no filtering, the sample-efficiency curve and the targets."""
    arms = result["arms"]
    supervised = _test(arms, "main", 0)
    final = final_generation(arms["main"])
    control = final_generation(arms["labeled_only"])["test_wer"] if arms.get("labeled_only") else None
    oracle_rows = arms.get("oracle")
    oracle = final_generation(oracle_rows)["test_wer"] if oracle_rows else None
    oracle_1 = _test(arms, "oracle", 1)
    students = [r for r in arms["main"] if r["generation"] > 0]
    chain = [supervised] + [r["test_wer"] for r in students]
    no_filter = _test(arms, "no_filter", 1)
    filtered = {"main": _test(arms, "main", 1), **{name: _test(arms, name, 1) for name in FILTERED_ARMS}}
    compared = result.get("significance") or {}
    vs_no_filter = {POLICY_NAMES.get(name, name): {"test_wer": wer, "better_than_no_filter_by": round(no_filter - wer, 4),
                                                   "interval": _interval(compared.get(NO_FILTER + name))}
                    for name, wer in filtered.items() if wer is not None and no_filter is not None}
    default_vs_no_filter = vs_no_filter.get(POLICY_NAMES["main"], {}).get("interval")
    curve = []
    for point in result["curve"]:
        rows = arms[point["arm"]]
        after = [r for r in rows if r["generation"] == result["curve_generations"]]
        curve.append({**point, "supervised_test_wer": _test(arms, point["arm"], 0),
                      "self_training_test_wer": (after or rows)[-1]["test_wer"],
                      "final_test_wer": final_generation(rows)["test_wer"]})
    every_filtered = [r["test_wer"] for r in students] + [w for w in filtered.values() if w is not None]
    recovery = gap_recovery(control, final["test_wer"], oracle) if students else None
    pooled_generations = next((p for p in result.get("seeds") or [] if p["setting"] == GENERATIONS), None)
    # (name, whether its arms ran, met): a target whose arms were skipped is left out, not failed
    targets = [
        ("every_generation_at_least_as_good", bool(students), all(b <= a for a, b in zip(chain, chain[1:], strict=False))),
        ("final_model_not_worse_than_supervised", bool(students), final["test_wer"] <= supervised),
        ("final_model_better_than_labeled_only_control", control is not None and bool(students), control is not None and final["test_wer"] < control),
        ("no_filtered_setting_worse_than_supervised", bool(every_filtered), all(w <= supervised for w in every_filtered)),
        (f"gap_recovery_at_least_{TARGET_GAP_RECOVERY}", control is not None and oracle is not None and bool(students),
         recovery is not None and recovery >= TARGET_GAP_RECOVERY),
        # "clearly": every policy better, and the default one by more than the test set's noise where
        # the run measured its interval (runs recorded before it was measured: the margins alone)
        (f"gap_recovery_mean_of_seeds_at_least_{TARGET_GAP_RECOVERY}", pooled_generations is not None,
         pooled_generations is not None and (pooled_generations.get("gap_recovery") or -1.0) >= TARGET_GAP_RECOVERY
         and (pooled_generations.get("vs_control") or {}).get("high", 1.0) < 0),
        ("filtering_beats_no_filtering", no_filter is not None,
         bool(vs_no_filter) and all(v["better_than_no_filter_by"] > 0 for v in vs_no_filter.values())
         and (default_vs_no_filter is None or default_vs_no_filter[1] < 0)),
    ]
    return {
        "supervised_test_wer": supervised, "final_test_wer": final["test_wer"], "final_generation": final["generation"],
        "labeled_only_test_wer": control, "oracle_test_wer": oracle, "oracle_generation_1_test_wer": oracle_1,
        "gap_recovery": recovery, "gap_recovery_vs_teacher": gap_recovery(supervised, final["test_wer"], oracle) if students else None,
        "vs_no_filter": vs_no_filter, "no_filter_test_wer": no_filter, "curve": curve,
        "continuous": continuous_analysis(result, control, oracle),
        "targets": {name: met for name, ran, met in targets if ran},
    }


def continuous_analysis(result: dict[str, Any], control: float | None, oracle: float | None) -> dict[str, Any] | None:
    """Each continuous arm against the offline generations and the labeled-only control: test WER, wall
    time (the self-training stages after the shared teacher), gap recovery, guard trips and intervals."""
    arms, compared = result["arms"], result.get("significance") or {}
    rows = _continuous_rows(arms)
    if not rows:
        return None
    final = final_generation(arms["main"])

    def wall(arm: str) -> float:
        return round(sum(r["wall_seconds"] for r in _later(arms, arm)), 1)

    def own_recovery(row: dict[str, Any]) -> float | None:  # against the arm's own labeled-only variant
        own = arms.get(own_control_arm(row["arm"]))
        return gap_recovery(final_generation(own)["test_wer"], row["test_wer"], oracle) if own else None

    return {
        "generations": ({"test_wer": final["test_wer"], "final_generation": final["generation"], "wall_seconds": wall("main")}
                        if _later(arms, "main") else None),
        "labeled_only": {"test_wer": control, "wall_seconds": wall("labeled_only")} if control is not None else None,
        "arms": [{"name": _explored_name(r), "test_wer": r["test_wer"], "dev_wer": r["dev_wer"], "accepted": r["accepted"],
                  "wall_seconds": r["wall_seconds"], "optimizer_steps": r.get("optimizer_steps"), "guard_trips": r.get("guard_trips"),
                  "pseudo_label_wer": r["pseudo_label_wer"], "gap_recovery": gap_recovery(control, r["test_wer"], oracle),
                  "own_gap_recovery": own_recovery(r), "vs_teacher": _interval(compared.get(_explored_name(r))),
                  "vs_labeled_only": _interval(compared.get(_explored_name(r) + VS_CONTROL)),
                  "vs_generations": _interval(compared.get(_explored_name(r) + VS_OFFLINE)),
                  "vs_own_labeled_only": _interval(compared.get(_explored_name(r) + VS_OWN))} for r in rows],
    }


LABELS = {
    "main": "self-training, default policy", "ssl_teacher": "supervised, CTC + SSL (BEST-RQ on all audio)",
    "no_filter": "ablation: no filtering", "whole_utterances": "ablation: whole utterances only (no segments)",
    "confidence_only": "ablation: confidence only", "agreement_only": "ablation: agreement only",
    "no_lm": "ablation: teacher without the LM (greedy labels)", "student_ssl": "ablation: SSL loss on in the student",
}


def _interval(comparison: dict[str, float] | None) -> list[float] | None:
    return [comparison["low"], comparison["high"]] if comparison else None


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _row_name(row: dict[str, Any]) -> str:
    if row["arm"] == "main":
        return "supervised, CTC only (teacher)" if row["generation"] == 0 else f"self-training, generation {row['generation']}"
    if row["arm"] == "labeled_only":
        return f"control: labeled only, generation {row['generation']}"
    if row["arm"] == "oracle":
        return f"oracle: true transcripts, generation {row['generation']}"
    if row["arm"].startswith("labeled_"):
        kind = "supervised" if row["generation"] == 0 else f"self-training, generation {row['generation']}"
        return f"{int(row['arm'].split('_')[1])} % labeled: {kind}"
    if row["arm"].startswith(EXPLORED):
        return _explored_name(row)
    if row["arm"].startswith(PRESET_ARM):
        return f"supervised, preset {row['arm'][len(PRESET_ARM):]}"
    return LABELS.get(row["arm"], row["arm"])


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| row | test WER | test CER | test sub / del / ins | dev WER | pseudo-label WER | kept | wall time (s) | accepted |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {_row_name(r)} | {_fmt(r['test_wer'])} | {_fmt(r['test_cer'])} | {_error_kinds(r)} | {_fmt(r['dev_wer'])} | "
                     f"{_fmt(r['pseudo_label_wer'])} | {_fmt(r['kept_fraction'], 2) if r['generation'] else '-'} | "
                     f"{_fmt(r['wall_seconds'], 0)} | {'yes' if r['accepted'] else 'no (rejected on dev)'} |")
    return lines


def _tuning_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The decoder settings each model's ``tune`` stage chose on dev (``decode_tuning``), if any."""
    tuned = [r for r in rows if r.get("decoder_tuning")]
    if not tuned:
        return []
    lines = ["## Decoder settings tuned on dev", "",
             "Each model's blank penalty, word bonus (beta) and LM weight (alpha), chosen on dev before it was "
             "evaluated and before it decoded the next generation's unlabeled audio; dev WER at the configured "
             "settings and at the chosen ones.", "",
             "| row | blank penalty | beta | alpha | dev WER, configured | dev WER, tuned |", "| --- | --- | --- | --- | --- | --- |"]
    for r in tuned:
        best, t = r["decoder_tuning"]["best"], r["decoder_tuning"]
        lines.append(f"| {_row_name(r)} | {best['blank_penalty']:g} | {best['beta']:g} | {best['alpha']:g} | "
                     f"{_fmt(t['base_wer'])} | {_fmt(t['best_wer'])} |")
    return [*lines, ""]


def _error_kinds(row: dict[str, Any]) -> str:
    kinds = row.get("test_errors")  # absent from results written before it was recorded
    return " / ".join(_fmt(kinds[k]) for k in ("substitutions", "deletions", "insertions")) if kinds else "-"


def _explored_lines(arms: dict[str, list[dict[str, Any]]], compared: dict[str, dict[str, float]]) -> list[str]:
    rows = [r for name in arms if name.startswith(EXPLORED) for r in _later(arms, name)]
    if not rows:
        return []
    lines = ["", "## Explored on the way (from the main run's teacher and generation-1 decoding; settings: the scale's `explore`)",
             "", *_table(rows)]
    against = [f"| {_explored_name(r)} | {c['difference']:+.4f} | [{c['low']:+.4f}, {c['high']:+.4f}] |"
               for r in rows for c in [compared.get(_explored_name(r))] if c]
    if against:
        lines += ["", "Each against the teacher (paired bootstrap, 2000 resamples; an interval that excludes 0 is a real difference):", "",
                  "| row | test WER difference | 95 % interval |", "| --- | --- | --- |", *against]
    return lines


def _significance_lines(compared: dict[str, dict[str, float]], a: dict[str, Any]) -> list[str]:
    if not compared or a["final_generation"] == 0:  # no student was accepted: the final model is the teacher
        return []
    names = {"teacher": "the supervised teacher", "labeled_only": "the labeled-only control", "oracle": "the oracle"}
    lines = ["Final self-training model against each, on the same test utterances (paired bootstrap, 2000 "
             "resamples; an interval that excludes 0 is a real difference):", "",
             "| against | test WER difference | 95 % interval |", "| --- | --- | --- |"]
    lines += [f"| {names[name]} | {c['difference']:+.4f} | [{c['low']:+.4f}, {c['high']:+.4f}] |"
              for name, c in compared.items() if name in names]
    return [*lines, ""]


def _later(arms: dict, name: str) -> list[dict[str, Any]]:
    return [r for r in arms.get(name, []) if r["generation"] > 0]


def _first(arms: dict, name: str) -> list[dict[str, Any]]:
    return [r for r in arms.get(name, []) if r["generation"] == 1]


def to_markdown(result: dict[str, Any], command: str, name: str = "self_training") -> str:
    """The results as Markdown; sections whose arms did not run (``--skip``) are left out."""
    a, arms, meta = result["analysis"], result["arms"], result["meta"]
    rows = arms["main"] + _later(arms, "labeled_only") + _later(arms, "oracle") + arms.get("ssl_teacher", [])
    rows += [r for name in arms if name.startswith(PRESET_ARM) for r in arms[name]]
    hours = result["corpus"]["hours"]
    skipped = result.get("skipped") or []
    lines = [
        f"# Self-training benchmark ({meta['scale']} scale)", "",
        f"Command: `{command}`  ", f"Date: {meta['date']}; machine: {meta['machine']}, {meta['cpus']} CPU cores, no GPU.  ",
        f"Corpus: labeled {hours['labeled']:.2f} h, unlabeled {hours['unlabeled']:.2f} h, dev {hours['dev']:.2f} h, "
        f"test {hours['test']:.2f} h. Total wall time of the stages: {meta['stage_seconds_total'] / 60:.1f} min "
        f"(this invocation: {meta['invocation_seconds'] / 60:.1f} min).",
        *([f"Corpus and teacher: the `{result['teacher_from']}` scale's (trained by its run; their stage "
           "times are in the total)."] if result.get("teacher_from") else []),
        *([f"Corpus: the `{result['corpus_from']}` scale's (synthesized by its run; the teacher is this "
           "scale's own)."] if result.get("corpus_from") and not result.get("teacher_from") else []),
        *([f"Teacher ensemble: each generation's teacher labels the unlabeled audio (and dev, for the "
           f"selection's calibration) together with the generation-0 teacher of the "
           f"{', '.join(f'`{n}`' for n in result['ensemble_from'])} scale, their posteriors averaged "
           "(`teachers.ensemble`); test and dev WERs are each generation's single model's."]
          if result.get("ensemble_from") else []),
        *([f"Arms left out of this run (`--skip`): {', '.join(skipped)}."] if skipped else []),
        *([f"Explored variants run (`--explore`): {', '.join(result['explored_only'])}; the scale's others are left out."]
          if result.get("explored_only") else []),
        *[f"Explored variant `{n}` not run: {why}." for n, why in (result.get("unavailable") or {}).items()], "",
        "## Main result", "", *_table(rows), "", *_recovery_lines(a), *_significance_lines(result.get("significance") or {}, a),
        *seeds_lines(result.get("seeds"), a["oracle_test_wer"]), *_tuning_lines(rows),
        *_ablation_lines(arms, a), *_continuous_lines(a.get("continuous")), *_explored_lines(arms, result.get("significance") or {}),
        *_curve_lines(result),
        "", "## Targets", "", *([f"- {target}: {'met' if ok else 'NOT met'}" for target, ok in a["targets"].items()]
                                or ["- none: every arm a target is judged on was left out of this run"]),
        "", f"Plots: `{name}.png`. What the budget buys and what was tried: `docs/experiments/`.", "",
    ]
    return "\n".join(lines)


def _recovery_lines(a: dict[str, Any]) -> list[str]:
    if a["oracle_test_wer"] is None:
        return []
    lines = [f"Against the teacher, (teacher - final) / (teacher - oracle), as earlier runs reported it: "
             f"{_fmt(a['gap_recovery_vs_teacher'])} (teacher {_fmt(a['supervised_test_wer'])}).", ""]
    if a["labeled_only_test_wer"] is None:
        return lines
    return [f"Gap recovery against the labeled-only control, (control - final) / (control - oracle), each after its "
            f"last accepted generation: **{_fmt(a['gap_recovery'])}** (control {_fmt(a['labeled_only_test_wer'])}, "
            f"self-training generation {a['final_generation']} {_fmt(a['final_test_wer'])}, "
            f"oracle {_fmt(a['oracle_test_wer'])}).  ", *lines]


def _ablation_lines(arms: dict[str, list[dict[str, Any]]], a: dict[str, Any]) -> list[str]:
    ablations = [r for name in ABLATIONS for r in _first(arms, name)]
    if not ablations:
        return []
    lines = ["## Ablations (generation 1, same teacher and decoding)", "",
             *_table(_first(arms, "labeled_only") + ablations), ""]
    if a["vs_no_filter"]:
        lines += ["Each filtered policy against no filtering (generation 1; the interval is the paired bootstrap's "
                  "95 % interval of policy - no filtering: below 0 throughout is a clear win):", "",
                  "| policy | test WER | better than no filtering by | 95 % interval |", "| --- | --- | --- | --- |",
                  *[f"| {policy} | {_fmt(v['test_wer'])} | {_fmt(v['better_than_no_filter_by'], 4)} | "
                    f"{_fmt_interval(v.get('interval'))} |" for policy, v in a["vs_no_filter"].items()]]
    return lines


def _continuous_lines(c: dict[str, Any] | None) -> list[str]:
    """The continuous schedule against the offline generations and the labeled-only control."""
    if not c:
        return []
    offline, control = c["generations"], c["labeled_only"]
    lines = ["## Continuous schedule (one run on the generations' step budget) against offline generations", "",
             "Wall time: the stages after the shared teacher (continuous: its training and evaluation; generations: "
             "decoding, selection, audit, training and evaluation of each). Intervals: paired bootstrap (2000 resamples) "
             "of the continuous model's test WER minus the other's; below 0 throughout is a clear win.", "",
             "Gap recovery: against the labeled-only control chain, and against the arm's own labeled-only variant "
             "(the same run without unlabeled audio), each with the oracle chain's final test WER.", "",
             "| row | test WER | wall time (s) | gap recovery | gap recovery vs own variant | guard trips | steps | "
             "sampled label WER | accepted | vs teacher | vs labeled-only control | vs offline generations | "
             "vs own labeled-only variant |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    if offline is not None:
        lines.append(f"| offline generations (final: generation {offline['final_generation']}) | {_fmt(offline['test_wer'])} | "
                     f"{_fmt(offline['wall_seconds'], 0)} | - | - | - | - | - | - | - | - | - | - |")
    if control is not None:
        lines.append(f"| control: labeled only (final) | {_fmt(control['test_wer'])} | {_fmt(control['wall_seconds'], 0)} | "
                     "- | - | - | - | - | - | - | - | - | - |")
    for arm in c["arms"]:
        lines.append(f"| {arm['name']} | {_fmt(arm['test_wer'])} | {_fmt(arm['wall_seconds'], 0)} | {_fmt(arm['gap_recovery'])} | "
                     f"{_fmt(arm.get('own_gap_recovery'))} | "
                     f"{_fmt(arm['guard_trips'])} | {_fmt(arm['optimizer_steps'])} | {_fmt(arm['pseudo_label_wer'])} | "
                     f"{'yes' if arm['accepted'] else 'no (rejected on dev)'} | {_fmt_interval(arm['vs_teacher'])} | "
                     f"{_fmt_interval(arm['vs_labeled_only'])} | {_fmt_interval(arm['vs_generations'])} | "
                     f"{_fmt_interval(arm.get('vs_own_labeled_only'))} |")
    return [*lines, ""]


def _fmt_interval(interval: list[float] | None) -> str:
    return f"[{interval[0]:+.4f}, {interval[1]:+.4f}]" if interval else "- (not measured in this run)"


def _curve_lines(result: dict[str, Any]) -> list[str]:
    curve = result["analysis"]["curve"]
    if len(curve) < 2:
        return []
    return ["", f"## Sample efficiency (self-training: generation {result['curve_generations']})", "",
            "| labeled | hours | supervised test WER | self-training test WER | final test WER (accepted) |",
            "| --- | --- | --- | --- | --- |",
            *[f"| {round(c['fraction'] * 100)} % | {c['labeled_hours']:.2f} | {_fmt(c['supervised_test_wer'])} | "
              f"{_fmt(c['self_training_test_wer'])} | {_fmt(c['final_test_wer'])} |" for c in curve]]


def plot(result: dict[str, Any], path: Path) -> list[str]:
    """Test WER per generation (control and oracle chains beside), every generation-1 arm against the
    teacher, and the sample-efficiency curve when the run has more than one labeled amount; returns
    the panels' titles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = result["analysis"]["curve"]
    panels = 3 if len(curve) > 1 else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2))
    _plot_generations(axes[0], result)
    _plot_first_generation(axes[1], result)
    if panels == 3:
        hours = [c["labeled_hours"] for c in curve]
        axes[2].plot(hours, [c["supervised_test_wer"] for c in curve], "s--", label="supervised only")
        axes[2].plot(hours, [c["self_training_test_wer"] for c in curve], "o-",
                     label=f"self-training (generation {result['curve_generations']})")
        axes[2].set(xlabel="labeled hours", ylabel="test WER", title="Sample efficiency")
        axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [axis.get_title() for axis in axes]


def _plot_generations(axis, result: dict[str, Any]) -> None:
    arms = result["arms"]
    teacher = [r for r in arms["main"] if r["generation"] == 0]
    for name, label, style in (("main", "self-training (default policy)", "o-"),
                               ("labeled_only", "control: labeled only", "s--"), ("oracle", "oracle: true transcripts", "^:")):
        chain = teacher + _later(arms, name)
        if len(chain) > 1:
            line, = axis.plot([r["generation"] for r in chain], [r["test_wer"] for r in chain], style, label=label)
            rejected = [r for r in chain if not r["accepted"]]
            axis.plot([r["generation"] for r in rejected], [r["test_wer"] for r in rejected], style[0],
                      markerfacecolor="white", color=line.get_color())
    no_filter = result["analysis"]["no_filter_test_wer"]
    if no_filter is not None:
        axis.axhline(no_filter, linestyle="-.", color="gray", label=f"no filtering (gen 1) {no_filter:.3f}")
    axis.set_xticks(sorted({r["generation"] for rows in arms.values() for r in rows}))
    low, high = axis.get_ylim()
    if high - low < MIN_PLOTTED_WER_SPAN:
        middle = (low + high) / 2
        axis.set_ylim(middle - MIN_PLOTTED_WER_SPAN / 2, middle + MIN_PLOTTED_WER_SPAN / 2)
    axis.set(xlabel="generation", ylabel="test WER", title="Generations (hollow: rejected on dev)")
    axis.legend(fontsize=8)


def _plot_first_generation(axis, result: dict[str, Any]) -> None:
    """One bar per generation-1 student (main, control, oracle, ablations, explored), teacher as a line;
    hatched bars were rejected on dev."""
    arms = result["arms"]
    names = ["main", "labeled_only", "oracle", *ABLATIONS, *(n for n in arms if n.startswith(EXPLORED))]
    rows = [r for name in names for r in _first(arms, name)]
    labels = ["self-training" if r["arm"] == "main" else _row_name(r).replace(", generation 1", "") for r in rows]
    bars = axis.barh(range(len(rows)), [r["test_wer"] for r in rows], color="tab:blue")
    for bar, row in zip(bars, rows, strict=True):
        if not row["accepted"]:
            bar.set(hatch="//", alpha=0.5)
    axis.axvline(result["analysis"]["supervised_test_wer"], color="black", linestyle="--",
                 label=f"teacher {result['analysis']['supervised_test_wer']:.3f}")
    axis.set_yticks(range(len(rows)), labels, fontsize=7)
    axis.invert_yaxis()
    values = [r["test_wer"] for r in rows] + [result["analysis"]["supervised_test_wer"]]
    axis.set_xlim(min(values) - 0.02, max(values) + 0.01)
    axis.set(xlabel="test WER", title="Generation 1 (hatched: rejected on dev)")
    axis.legend(fontsize=8, loc="lower right")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = _parse(argv)
    name = args.name or ("self_training" if args.scale == "default" else f"self_training_{args.scale}")
    out = Path(args.out)
    if args.report_only:
        return rewrite_report(out, name)
    scale = load_scale(args.config, args.scale)
    started = time.time()
    result = run_benchmark(scale, Path(args.work) / args.scale, tuple(args.skip), Path(args.config), tuple(args.explore))
    result["analysis"] = analyse(result)
    stage_total = sum(r["wall_seconds"] for rows in result["arms"].values() for r in rows) + result["corpus"]["seconds_this_run"]
    result["meta"] = {"scale": args.scale, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "machine": platform.platform(), "cpus": os.cpu_count(),
                      "stage_seconds_total": round(stage_total, 1), "invocation_seconds": round(time.time() - started, 1)}
    out.mkdir(parents=True, exist_ok=True)
    _write_report(result, sys.argv[1:] if argv is None else argv, out, name)
    return 0


def _write_report(result: dict[str, Any], argv: list[str], out: Path, name: str) -> None:
    plot(result, out / f"{name}.png")
    print(save_results(result, "self_training.py", argv, out, name,
                       lambda result, command: to_markdown(result, command, name)))


def rewrite_report(out: Path, name: str) -> int:
    """Re-analyse a recorded run and rewrite its Markdown and plot (after a change to the report);
    the measurements, command, date and machine stay as recorded."""
    path = out / f"{name}.json"
    if not path.exists():
        raise SystemExit(f"no recorded run to report: {path} does not exist")
    result = json.loads(path.read_text(encoding="utf-8"))
    result["analysis"] = analyse(result)
    _write_report(result, shlex.split(result["command"])[2:], out, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
