"""Under real torchrun: the ranks of one job share a work folder, a second job is refused."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

RANK_SCRIPT = """
import os, sys, time
from selftrain.generation.lock import lock_workdir
lock_workdir(sys.argv[1])
print("rank", os.environ["RANK"], "holds", flush=True)
time.sleep(float(sys.argv[2]))
"""
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _torchrun(script: Path, folder: Path, seconds: float, log: Path) -> subprocess.Popen:
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with open(log, "wb") as out:
        return subprocess.Popen([str(torchrun), "--nproc_per_node=2", f"--master_port={_free_port()}", str(script),
                                 str(folder), str(seconds)], stdout=out, stderr=subprocess.STDOUT, env=env)


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun is not installed")
def test_ranks_of_one_job_share_the_folder_and_another_job_is_refused(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    folder = tmp_path / "work"
    first = _torchrun(script, folder, 20, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 60
        while (tmp_path / "first.log").read_text().count("holds") < 2:
            assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.2)
        second = _torchrun(script, folder, 0, tmp_path / "second.log")
        assert second.wait(timeout=60) != 0
        assert "WorkdirBusyError" in (tmp_path / "second.log").read_text()
        assert "in use by pid" in (tmp_path / "second.log").read_text()
    finally:
        first.terminate()
        first.wait(timeout=60)
