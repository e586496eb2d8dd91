"""One writer per run: a lock that a second ``sport run --resume`` on a running run meets, and that a killed
process never leaves behind.

:class:`RunLock` holds an exclusive ``flock`` on ``<run_dir>/.sport.lock`` while a process runs stages of the
run. The kernel releases a ``flock`` when its holder's file descriptor closes, which includes the process
dying in any way (SIGKILL, power loss of a local machine), so there is no stale lock to clean up: the next
``--resume`` simply gets it. The file holds the holder's pid, host and start time, for the refusal message.
Worker processes do not inherit the descriptor (Python opens files non-inheritable), so a worker that
outlives its killed parent does not keep the run locked. ``flock`` is advisory and local: on a network
filesystem shared by several machines it may not exclude a process on another host.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from sport_core.errors import SportError
from sport_core.provenance import now_utc

LOCK_FILE = ".sport.lock"


class RunLocked(SportError):
    """Another process is running this run."""


class RunLock:
    """``with RunLock(run_dir):`` — the exclusive right to run ``run_dir`` (see the module docstring)."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunLocked` naming the process that holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = self._holder(fd)
            os.close(fd)
            raise RunLocked(
                f"run {self.run_dir} is already being run by {holder}; wait for it to end, or stop it and then "
                f"`sport run --resume {self.run_dir}`"
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": now_utc()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0) or b"{}")
            return f"process {info['pid']} on {info['host']} (since {info['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
