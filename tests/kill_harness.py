"""Kill -9 a `selftrain run` at chosen moments, restart it each time, and compare with a clean run.

Used by ``tests/integration/test_kill_resume.py`` (a few kills, in CI) and by
``scripts/kill_suite.py`` (the long version). A kill targets one stage of the experiment: the
harness waits until that stage is running, then sends SIGKILL after a random share of the time the
stage took in the uninterrupted run; ``checkpoint`` kills as soon as a new checkpoint folder
appears, i.e. while the checkpoint is being written. After every kill the work folder is checked
for files that a reader would take for finished but are not.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from selftrain.generation.registry import EXPERIMENT, Plan, generation_stages

REPO = Path(__file__).resolve().parents[1]
# Files whose bytes must not depend on interruptions or on the process (no paths, clocks or names
# of checkpoint folders in them): hypotheses, decisions, selected pseudo-labels, audits, models.
COMPARED_GLOBS = ("summary.json", "lm/lm.bin", "gen_*/decode/*.jsonl", "gen_*/select/selected.csv",
                  "gen_*/select/decisions.jsonl", "gen_*/select/dev/decisions.jsonl", "gen_*/select/calibration.json",
                  "gen_*/audit/audit.json", "gen_*/eval/*.jsonl", "gen_*/train/model/model.pt",
                  "gen_*/train/model_ema/model.pt", "gen_*/train/continuous/labels.jsonl")
TRAINING_STATE = ("trainer.ckpt", "optimizer.ckpt", "scheduler.ckpt")  # torch files; counter.ckpt is text


@dataclass
class Kill:
    """One SIGKILL: what it aimed at and where the run really was."""

    target: str
    stage: str
    delay_seconds: float
    landed: str = ""
    run_seconds: float = 0.0


@dataclass
class KillSuiteResult:
    kills: list[Kill] = field(default_factory=list)
    missed: int = 0  # the run finished before the kill came
    processes: int = 0  # the first start and every restart
    problems: list[str] = field(default_factory=list)  # torn files seen after a kill
    differing: list[str] = field(default_factory=list)  # final files unlike the clean run's
    compared: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def run_args(corpus: Path, workdir: Path, generations: int, settings: list[str]) -> list[str]:
    """`selftrain run` arguments for an experiment on a `selftrain synth` corpus."""
    return ["run", "--workdir", str(workdir), "--labeled", str(corpus / "labeled.csv"),
            "--unlabeled", str(corpus / "unlabeled.csv"), "--dev", str(corpus / "dev.csv"),
            "--test", str(corpus / "test.csv"), "--lm-text", str(corpus / "lm_text.txt"),
            "--unlabeled-reference", str(corpus / "unlabeled_reference.csv"),
            "--generations", str(generations), *settings]


def start(args: list[str], log: Path, hash_seed: str | None = None) -> subprocess.Popen:
    """Start `selftrain` in a child process (its own output appended to ``log``)."""
    env = dict(os.environ)
    if hash_seed is not None:
        env["PYTHONHASHSEED"] = hash_seed
    env.setdefault("OMP_NUM_THREADS", "1")
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", "from selftrain.cli import main; main()", *args],
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env, start_new_session=True)


def run_clean(args: list[str], log: Path, hash_seed: str | None = None) -> float:
    """Run to the end without interruption; returns the wall time."""
    started = time.monotonic()
    code = start(args, log, hash_seed).wait()
    if code != 0:
        raise RuntimeError(f"selftrain run failed with exit code {code}: see {log}")
    return time.monotonic() - started


def stage_order(generations: int, schedule: str = "generations") -> list[str]:
    """Stage folders relative to the work folder, in the order they run, as the library's stage
    registry declares them for the harness's experiments (``labels: policy``, no decoder tuning, no
    external teachers; the continuous schedule: generation 0, then one training of generation 1)."""
    plan = Plan.of({"generations": generations, "schedule": schedule})
    return [stage.name if stage.scope == EXPERIMENT else f"gen_{g:03d}/{stage.name}"
            for g in range(plan.last_generation + 1) for stage in generation_stages(plan, g)]


def stage_seconds(workdir: Path, generations: int, schedule: str = "generations") -> dict[str, float]:
    """How long each stage took in a finished run (from its done marker)."""
    return {s: json.loads((workdir / s / ".done").read_text())["seconds"] for s in stage_order(generations, schedule)}


def compared_files(workdir: Path) -> dict[str, bytes]:
    """The bytes of every file that must equal the clean run's."""
    files = {}
    for pattern in COMPARED_GLOBS:
        for path in sorted(workdir.glob(pattern)):
            files[str(path.relative_to(workdir))] = path.read_bytes()
    return files


def torn_files(workdir: Path) -> list[str]:
    """Files a reader would accept although they are incomplete: JSON that does not parse, a done
    marker that does not parse, a checkpoint folder that says it is complete but cannot be loaded."""
    problems = []
    for path in workdir.rglob("*.json"):
        if not path.name.startswith("."):
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                problems.append(f"{path.relative_to(workdir)}: {exc}")
    for marker in workdir.rglob(".done"):
        try:
            json.loads(marker.read_text(encoding="utf-8"))
        except ValueError as exc:
            problems.append(f"{marker.relative_to(workdir)}: {exc}")
    for meta in workdir.glob("gen_*/train/save/CKPT*/CKPT.yaml"):
        for name in TRAINING_STATE:
            try:
                torch.load(meta.parent / name, weights_only=True)
            except Exception as exc:  # noqa: BLE001 (any failure to load is the finding)
                problems.append(f"{(meta.parent / name).relative_to(workdir)}: {type(exc).__name__}")
        labeler = meta.parent / "continuous.ckpt"  # a continuous run's label cache and guard (JSON)
        if labeler.exists():
            try:
                json.loads(labeler.read_text(encoding="utf-8"))
            except ValueError as exc:
                problems.append(f"{labeler.relative_to(workdir)}: {exc}")
        counter = meta.parent / "counter.ckpt"
        if not (counter.exists() and counter.read_text().strip().isdigit()):
            problems.append(f"{counter.relative_to(workdir)}: missing or not an epoch number")
    return problems


def _current_stage(workdir: Path, stages: list[str]) -> str:
    return next((s for s in stages if not (workdir / s / ".done").exists()), "finished")


def _landed(workdir: Path, stage: str) -> str:
    partial = [p for p in workdir.glob("gen_*/train/save/CKPT*") if not (p / "CKPT.yaml").exists()]
    return f"{stage} (mid-checkpoint)" if partial else stage


def plan_kills(stages: list[str], kills: int, rng: random.Random) -> list[tuple[str, str]]:
    """``(target, stage)`` per kill, in run order, spread over every stage (and every training's
    checkpoint writes): each gets one kill before any gets two."""
    targets = []
    for stage in stages:
        targets.append((stage.split("/")[-1], stage))
        if stage.endswith("/train"):
            targets.append(("checkpoint", stage))
    if kills < len(targets):
        return sorted(rng.sample(targets, kills), key=targets.index)
    return [targets[i * len(targets) // kills] for i in range(kills)]


def _wait_for(proc: subprocess.Popen, ready, timeout: float = 900.0, poll: float = 0.01) -> bool:
    """Poll until ``ready()`` or the process ends; True when ready while the process still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            return True
        time.sleep(poll)
    raise TimeoutError("the run did not reach the stage in time")


def _stage_started(log: Path, stage: str):
    return lambda: f"{stage}: running" in log.read_text(encoding="utf-8", errors="replace")


def _arm(proc: subprocess.Popen, log: Path, workdir: Path, target: str, stage: str, seconds: float,
         rng: random.Random) -> float | None:
    """Wait for the kill moment of ``target``; the delay used, or None when the run ended first.

    The stage counts as started when this process logs it (its folder may be left from a kill). A
    training resumed after its last checkpoint writes none: the kill then lands in the stage after
    it, as soon as that training is done, instead of missing and letting the run finish."""
    if not _wait_for(proc, _stage_started(log, stage)):
        return None
    if target == "checkpoint":
        save, done = workdir / stage / "save", workdir / stage / ".done"
        seen = set(save.glob("CKPT*")) if save.exists() else set()
        begun = time.monotonic()
        found = _wait_for(proc, lambda: done.exists() or (save.exists() and bool(set(save.glob("CKPT*")) - seen)),
                          poll=0.002)
        return round(time.monotonic() - begun, 3) if found else None
    delay = rng.random() * max(seconds, 0.2)
    time.sleep(delay)
    return delay if proc.poll() is None else None


def run_with_kills(args: list[str], workdir: Path, generations: int, kills: int, reference: Path,
                   logs: Path, seed: int = 0, schedule: str = "generations") -> KillSuiteResult:
    """Run ``args`` to the end while SIGKILLing it ``kills`` times; compare with ``reference``.

    Each process (first start and every restart) logs to its own file under ``logs``. ``schedule``
    is the experiment's (``--set schedule=...`` in ``args``)."""
    rng = random.Random(seed)
    stages = stage_order(generations, schedule)
    seconds = stage_seconds(reference, generations, schedule)
    logs.mkdir(parents=True, exist_ok=True)
    result = KillSuiteResult()
    started = time.monotonic()
    for target, stage in plan_kills(stages, kills, rng):
        if (workdir / stage / ".done").exists():  # an earlier kill came after this stage: aim at the next one
            stage = _current_stage(workdir, stages)
            target = stage.split("/")[-1]
            if stage == "finished":
                break
        log = logs / f"process_{result.processes:02d}.log"
        proc = start(args, log)
        result.processes += 1
        launched = time.monotonic()
        delay = _arm(proc, log, workdir, target, stage, seconds.get(stage, 1.0), rng)
        if delay is None:  # the process ended before the kill: finished, or failed
            if proc.wait() != 0:
                raise RuntimeError(f"a restart failed with exit code {proc.returncode}: see {log}")
            result.missed += 1
            continue
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group, as a preemption would
        proc.wait()
        kill = Kill(target, _current_stage(workdir, stages), round(delay, 3), run_seconds=round(time.monotonic() - launched, 2))
        kill.landed = _landed(workdir, kill.stage)
        result.kills.append(kill)
        result.problems += [f"after kill {len(result.kills)}: {p}" for p in torn_files(workdir)]
    # As a user would: run the command once more and let it finish (a finished run redoes nothing;
    # one killed after its last stage still has its summary to write).
    log = logs / f"process_{result.processes:02d}.log"
    result.processes += 1
    if start(args, log).wait() != 0:
        raise RuntimeError(f"the final restart failed: see {log}")
    expected, got = compared_files(reference), compared_files(workdir)
    result.compared = len(expected)
    result.differing = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
    result.seconds = round(time.monotonic() - started, 1)
    return result
