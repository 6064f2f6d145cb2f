"""The benchmark's arms: their names, where a scale's corpus and teacher live, how one arm runs (an
experiment in its own resumable folder, taking finished stages from another) and the rows read back
from its folder."""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Any

import yaml
from _labels import reopen_planted

from selftrain.data.manifest import read_manifest, write_speechbrain_csv
from selftrain.generation import load_experiment_config
from selftrain.generation.run import open_workdir, run_experiment
from selftrain.generation.stages import evaluate_hyps, model_dir
from selftrain.generation.workdir import Workdir
from selftrain.overrides import deep_merge
from selftrain.synth import SynthConfig, build_corpus

__all__ = ["TEACHER", "DECODED", "SELECTED", "FILTERED_ARMS", "ABLATIONS", "OPTIONAL_ARMS", "PRESET_ARM", "EXPLORED",
           "CONTINUOUS", "load_scale", "teacher_home", "corpus_home", "make_corpus", "labeled_subset", "run_arm",
           "teacher_overrides", "teacher_stages", "ensemble_members", "check_skips", "teacher_evaluation",
           "generation_rows", "test_errors", "later_rows", "first_rows", "explored_name"]

TEACHER = ["lm", "gen_000"]
DECODED = [*TEACHER, "gen_001/decode"]
SELECTED = [*DECODED, "gen_001/select", "gen_001/audit"]
FILTERED_ARMS = ("whole_utterances", "confidence_only", "agreement_only", "no_lm", "student_ssl")
ABLATIONS = ("no_filter", *FILTERED_ARMS)
# "generations": the main run trains its teacher only (generation 0); arms that start from its generation-1
# decoding cannot run then
OPTIONAL_ARMS = ("generations", "labeled_only", "oracle", *ABLATIONS, "explore", "curve", "ssl_teacher", "compare_presets")
PRESET_ARM = "preset_"  # arm-name prefix of a scale's ``compare_presets`` teachers
EXPLORED = "explore:"  # arm-name prefix of the scale's ``explore`` variants
CONTINUOUS = "continuous"  # an explored variant's ``schedule`` that makes it a continuous run

log = logging.getLogger("self_training")


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
            adopt: list[str] | None = None) -> Path:
    """Run (or finish) one experiment; ``adopt`` takes finished stages from ``adopt_from``."""
    config = load_experiment_config(overrides=overrides)
    reopen_planted(work / name, config)
    workdir = open_workdir(config, work / name)
    if adopt_from is not None:
        workdir.adopt(adopt_from, adopt or [])
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


def check_skips(skip: tuple[str, ...]) -> None:
    """Refuse a ``--skip generations`` run that keeps an ablation: ablations start from the main run's
    generation-1 decoding, which such a run does not make."""
    kept = [name for name in ABLATIONS if name not in skip]
    if "generations" in skip and kept:
        raise SystemExit(f"--skip generations leaves the main run at its teacher; the ablations {', '.join(kept)} "
                         "start from its generation-1 decoding: skip them too")


def teacher_evaluation(teacher: Path, main: Path, shared: list[str]) -> Path:
    """The folder whose generation-0 evaluation is the teacher's row: the shared teacher folder, or,
    when main evaluates generation 0 itself (decode tuning: ``shared`` holds only its training), main,
    whose test hypotheses are decoded at the settings tuned for the teacher. Paired comparisons
    against the teacher read the hypotheses from there."""
    return teacher if shared == TEACHER else main


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


def later_rows(arms: dict, name: str) -> list[dict[str, Any]]:
    """An arm's student rows (generation 1 on)."""
    return [r for r in arms.get(name, []) if r["generation"] > 0]


def first_rows(arms: dict, name: str) -> list[dict[str, Any]]:
    """An arm's generation-1 row (none when it did not run)."""
    return [r for r in arms.get(name, []) if r["generation"] == 1]


def explored_name(row: dict[str, Any]) -> str:
    """An explored student's name in the tables: the variant, and its generation after the first."""
    return row["arm"] if row["generation"] == 1 else f"{row['arm']}, generation {row['generation']}"
