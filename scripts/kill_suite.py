#!/usr/bin/env python
"""The long kill -9 suite: SIGKILL a tiny `selftrain run` many times, restart it, compare.

    .venv/bin/python scripts/kill_suite.py --kills 25 --generations 2 --out kill_suite

Synthesizes a tiny corpus, makes a clean reference run, then runs the same experiment in a new
folder while killing it ``--kills`` times (each kill aimed at a random unfinished stage, or at a
checkpoint being written) and restarting it after each kill. Prints one line per kill and the
verdict: every restart finished, no torn file was ever readable as complete, and the final
hypotheses, decisions, pseudo-labels, audits, models and summary are byte-identical to the clean
run's. Exit status 1 when any of that fails. The short version runs in the test suite
(``tests/integration/test_kill_resume.py``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.kill_harness import run_args, run_clean, run_with_kills  # noqa: E402

SETTINGS = ["--preset", "tiny", "--set", "teacher_train.epochs=3", "--set", "student_train.epochs=2",
            "--set", "decode.workers=0", "--set", "decode.beam_width=4", "--set", "decode.nbest=2"]


def _corpus(out: Path) -> Path:
    corpus = out / "corpus"
    if not (corpus / "corpus.json").exists():
        subprocess.run([sys.executable, "-c", "from selftrain.cli import main; main()", "synth", "--out", str(corpus),
                        "--scale", "0.01", "--seed", "3", "--quiet"], check=True)
    return corpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=25, help="SIGKILLs to deliver (default 25)")
    parser.add_argument("--generations", type=int, default=2, help="self-training generations (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill schedule (default 0)")
    parser.add_argument("--out", type=Path, default=Path("kill_suite"), help="work folder (default ./kill_suite)")
    options = parser.parse_args()
    out = options.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    corpus = _corpus(out)
    clean, killed = out / "clean", out / f"killed_{options.seed}"
    if not (clean / "summary.json").exists():
        print(f"clean run: {run_clean(run_args(corpus, clean, options.generations, SETTINGS), out / 'clean.log'):.1f} s")
    if killed.exists():
        raise SystemExit(f"{killed} exists: remove it or choose another --seed")
    result = run_with_kills(run_args(corpus, killed, options.generations, SETTINGS), killed, options.generations,
                            options.kills, clean, out / f"logs_{options.seed}", seed=options.seed)
    for k, kill in enumerate(result.kills, 1):
        print(f"kill {k:2d}: aimed at {kill.target:10s} landed in {kill.landed:32s} "
              f"{kill.delay_seconds:6.2f} s into the stage, {kill.run_seconds:6.2f} s after the restart")
    print("kills by stage:", dict(Counter(k.landed for k in result.kills)))
    print(f"kills {len(result.kills)}, processes started {result.processes}, runs that ended before their kill {result.missed}")
    print(f"torn files readable as complete: {len(result.problems)}")
    for problem in result.problems:
        print("  ", problem)
    print(f"final files compared with the clean run: {result.compared}, differing: {len(result.differing)}")
    for name in result.differing:
        print("  ", name)
    print(f"wall time {result.seconds:.0f} s")
    (out / f"result_{options.seed}.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return 0 if not result.problems and not result.differing and len(result.kills) == options.kills else 1


if __name__ == "__main__":
    sys.exit(main())
