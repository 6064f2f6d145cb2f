"""One process (or one torchrun job) at a time on a work folder.

``W/.lock`` holds an exclusive ``flock`` for as long as the owner runs, and says who the owner is
(pid, host, torchrun job). A second process is refused at once with that owner's pid and host. The
kernel drops the lock when its owner dies, even by ``kill -9``; the owner's line stays in the file,
so the next process takes the folder over with a warning naming it. Where the file system has no
``flock``, a line naming a live process of this host (or any process of another host, whose
liveness cannot be seen from here) keeps the folder busy; a dead pid of this host is taken over.

Under torchrun the global rank 0 takes the lock and records its job; the other ranks of that job
only check that the folder is not held by another job (:func:`lock_workdir` does the right thing
for the calling process). The lock is reentrant within a process and released at exit.

>>> lock = lock_workdir("exp")  # doctest: +SKIP
>>> lock.release()               # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from selftrain.errors import WorkdirBusyError
from selftrain.storage import storage_errors

__all__ = ["LOCK_FILE", "LockOwner", "WorkdirLock", "lock_workdir", "current_owner", "read_owner"]

log = logging.getLogger(__name__)
LOCK_FILE = ".lock"
# Errors meaning "this file system has no flock": fall back to the pid check.
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


@dataclass(frozen=True)
class LockOwner:
    """Who holds a work folder: ``job`` names a torchrun job (its ranks share the folder), else None."""

    pid: int
    host: str
    job: str | None = None

    def describe(self) -> str:
        job = f", torchrun job {self.job}" if self.job else ""
        return f"pid {self.pid} on host {self.host}{job}"

    def same_process(self, other: LockOwner) -> bool:
        return (self.pid, self.host) == (other.pid, other.host)

    def is_alive(self) -> bool:
        """True when the owner may still run: a live pid of this host, or any pid of another host."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's live process
            return True
        return True


def torchrun_job(env: Mapping[str, str] | None = None) -> str | None:
    """An id shared by every rank of one torchrun job (its rendezvous id and master address), else None."""
    env = os.environ if env is None else env
    if "TORCHELASTIC_RUN_ID" not in env and "MASTER_PORT" not in env:
        return None
    parts = (env.get("TORCHELASTIC_RUN_ID", ""), env.get("MASTER_ADDR", ""), env.get("MASTER_PORT", ""))
    return "/".join(parts)


def global_rank(env: Mapping[str, str] | None = None) -> int:
    """The process' rank as torchrun sets it (0 without torchrun)."""
    env = os.environ if env is None else env
    try:
        return int(env.get("RANK", "0"))
    except ValueError:
        return 0


def current_owner() -> LockOwner:
    """This process, as it appears in a lock file."""
    return LockOwner(os.getpid(), socket.gethostname(), torchrun_job())


def read_owner(path: Path) -> LockOwner | None:
    """The owner line of a lock file; None when the file is missing, empty (released) or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "null")
        return None if data is None else LockOwner(int(data["pid"]), str(data["host"]), data.get("job"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class WorkdirLock:
    """The lock of one work folder held by this process (see :func:`lock_workdir`)."""

    def __init__(self, root: Path, fd: int | None, owner: LockOwner):
        self.root = root
        self.path = root / LOCK_FILE
        self._fd = fd
        self.owner = owner

    def release(self) -> None:
        """Give the folder back: its owner line is cleared, then the ``flock`` dropped (also for
        forked children that share it, which would otherwise hold it past this process' exit)."""
        if os.getpid() != self.owner.pid:  # a forked child: the lock is its parent's
            return
        if _HELD.get(self.root) is self:
            del _HELD[self.root]
        if self._fd is None:
            return
        if read_owner(self.path) == self.owner:
            try:
                self.path.write_text("", encoding="utf-8")
            except OSError as exc:  # a full disk or a read-only folder: the next run takes it over
                log.warning("could not clear %s (%s)", self.path, exc)
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


_HELD: dict[Path, WorkdirLock] = {}


def _busy(root: Path, owner: LockOwner | None) -> WorkdirBusyError:
    who = owner.describe() if owner else "another process"
    return WorkdirBusyError(f"{root} is in use by {who}; wait for it to finish, or stop it "
                            f"(if it is gone, delete {root / LOCK_FILE})")


def _flock(fd: int) -> bool:
    """Take the ``flock``: True when taken, False when the file system has none; busy raises BlockingIOError."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _NO_FLOCK:
            return False
        raise
    return True


def _take(root: Path, me: LockOwner) -> WorkdirLock:
    path = root / LOCK_FILE
    with storage_errors(path):
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        locked = _flock(fd)
    except BlockingIOError:
        os.close(fd)
        raise _busy(root, read_owner(path)) from None
    previous = read_owner(path)
    if previous is not None and not previous.same_process(me):
        # Another host's owner may run on although its flock looks free here (a lock local to each host).
        if previous.is_alive() and (not locked or previous.host != me.host):
            os.close(fd)
            raise _busy(root, previous)
        log.warning("%s: taking over the lock left by %s, which is no longer running", root, previous.describe())
    try:
        with storage_errors(path):
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(asdict(me)) + "\n").encode(), 0)
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        raise
    return WorkdirLock(root, fd, me)


def _check_job(root: Path, me: LockOwner) -> WorkdirLock:
    """A rank other than 0: pass when the folder is free or held by this rank's own job."""
    owner = read_owner(root / LOCK_FILE)
    if owner is not None and owner.job != me.job and owner.is_alive():
        raise _busy(root, owner)
    return WorkdirLock(root, None, me)


def lock_workdir(root: str | Path) -> WorkdirLock:
    """Hold ``root`` for this process (or its torchrun job); :class:`WorkdirBusyError` when it is in use.

    Calling it again for the same folder in the same process returns the lock already held.
    """
    key = Path(root).resolve()
    held = _HELD.get(key)
    if held is not None and held.owner.pid == os.getpid():
        return held
    me = current_owner()
    lock = _check_job(key, me) if global_rank() != 0 else _take(key, me)
    _HELD[key] = lock
    return lock


@atexit.register
def _release_all() -> None:
    for lock in list(_HELD.values()):
        lock.release()
