"""The work-folder lock: a second process is refused, a dead owner's lock is taken over, torchrun ranks share it."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from selftrain.errors import WorkdirBusyError
from selftrain.generation.lock import LOCK_FILE, lock_workdir, read_owner

HOLDER = """
import sys
from selftrain.generation.lock import lock_workdir
lock_workdir(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""
SECOND = """
import sys
from selftrain.errors import WorkdirBusyError
from selftrain.generation.lock import lock_workdir
try:
    lock_workdir(sys.argv[1])
except WorkdirBusyError as exc:
    print(exc)
    sys.exit(2)
"""
NO_TORCHRUN = ("RANK", "TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    for name in NO_TORCHRUN:
        monkeypatch.delenv(name, raising=False)


def _python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in NO_TORCHRUN}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, stdout=subprocess.PIPE, **kwargs)


def _start_holder(folder: Path) -> subprocess.Popen:
    holder = _python(HOLDER, str(folder), stdin=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_second_process_is_refused_naming_the_first(tmp_path):
    holder = _start_holder(tmp_path)
    try:
        second = _python(SECOND, str(tmp_path))
        out, _ = second.communicate(timeout=60)
        assert second.returncode == 2
        message = out.strip()
        assert "\n" not in message
        assert f"pid {holder.pid} on host {socket.gethostname()}" in message and str(tmp_path) in message
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0
    assert read_owner(tmp_path / LOCK_FILE) is None  # released at exit
    lock_workdir(tmp_path).release()


def test_killed_owner_is_taken_over_with_a_warning(tmp_path, caplog):
    holder = _start_holder(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    assert read_owner(tmp_path / LOCK_FILE).pid == holder.pid  # its line is left behind
    with caplog.at_level(logging.WARNING, logger="selftrain.generation.lock"):
        lock = lock_workdir(tmp_path)
    assert f"pid {holder.pid}" in caplog.text and "no longer running" in caplog.text
    assert read_owner(tmp_path / LOCK_FILE).pid == os.getpid()
    lock.release()


def test_stale_line_of_a_dead_pid_is_taken_over(tmp_path, caplog):
    finished = _python("pass")
    finished.wait(timeout=60)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": finished.pid, "host": socket.gethostname()}))
    with caplog.at_level(logging.WARNING, logger="selftrain.generation.lock"):
        lock_workdir(tmp_path).release()
    assert "no longer running" in caplog.text


def test_lock_is_reentrant_and_released_cleanly(tmp_path, caplog):
    first = lock_workdir(tmp_path)
    assert lock_workdir(tmp_path) is first
    first.release()
    assert read_owner(tmp_path / LOCK_FILE) is None
    with caplog.at_level(logging.WARNING, logger="selftrain.generation.lock"):
        lock_workdir(tmp_path).release()
    assert caplog.text == ""


def test_owner_on_another_host_keeps_the_folder(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "elsewhere.invalid"}))
    with pytest.raises(WorkdirBusyError, match="pid 1 on host elsewhere.invalid"):
        lock_workdir(tmp_path)


def _torchrun_env(monkeypatch, rank: int, port: str) -> None:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", port)


def test_ranks_of_one_torchrun_job_share_the_folder(tmp_path, monkeypatch):
    _torchrun_env(monkeypatch, 0, "29500")
    lock_workdir(tmp_path).release()
    assert (tmp_path / LOCK_FILE).read_text() == ""
    holder = _start_holder(tmp_path / "other")  # a live process, standing for rank 0 of a job
    try:
        owner = {"pid": holder.pid, "host": socket.gethostname(), "job": "none/127.0.0.1/29500"}
        (tmp_path / LOCK_FILE).write_text(json.dumps(owner))
        _torchrun_env(monkeypatch, 1, "29500")
        lock_workdir(tmp_path).release()  # rank 1 of the same job passes
        assert read_owner(tmp_path / LOCK_FILE).pid == holder.pid
        _torchrun_env(monkeypatch, 1, "29600")
        with pytest.raises(WorkdirBusyError, match=f"pid {holder.pid}.*torchrun job none/127.0.0.1/29500"):
            lock_workdir(tmp_path)
    finally:
        holder.communicate("", timeout=60)


def test_rank_zero_records_its_job(tmp_path, monkeypatch):
    _torchrun_env(monkeypatch, 0, "29500")
    lock = lock_workdir(tmp_path)
    assert read_owner(tmp_path / LOCK_FILE).job == "none/127.0.0.1/29500"
    lock.release()


def test_run_cli_on_a_folder_in_use_fails_at_once_with_one_line(tmp_path):
    from click.testing import CliRunner

    from selftrain.cli import main

    inputs = []
    for name in ("labeled", "unlabeled", "dev", "lm-text"):
        (tmp_path / f"{name}.txt").write_text("x\n")
        inputs += [f"--{name}", str(tmp_path / f"{name}.txt")]
    workdir = tmp_path / "work"
    holder = _start_holder(workdir)
    try:
        result = CliRunner().invoke(main, ["run", "--workdir", str(workdir), *inputs])
    finally:
        holder.communicate("", timeout=60)
    assert result.exit_code == 1 and "Usage:" not in result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and f"in use by pid {holder.pid} on host" in error[0]
    assert not (workdir / "experiment.json").exists()


def test_status_names_the_run_in_progress(tmp_path):
    from selftrain.generation import Workdir, experiment_status

    Workdir(tmp_path, {"generations": 1, "preset": "tiny"})
    holder = _start_holder(tmp_path)
    try:
        assert f"  in use by pid {holder.pid} on host {socket.gethostname()}" in experiment_status(tmp_path)
    finally:
        holder.communicate("", timeout=60)
    assert not any("in use" in line for line in experiment_status(tmp_path))
