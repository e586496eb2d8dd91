"""Actors and tasks that kill the worker process running them (for tests/test_worker_faults.py).

They live in an importable module because spawned and Ray workers unpickle them by reference. Each dies in
one chosen place, either once (it first creates a marker file, atomically, and dies only if it created it:
a re-run finds the file and goes on) or every time (``marker=None``: a poison task).
"""

from __future__ import annotations

import os
import signal
from typing import Any

import attrs
import numpy as np

from sport_core.seeding import episode_seed


def die(how: str) -> None:
    """End this process at once, as a crash would: no cleanup, no exception (``kill``: SIGKILL, ``exit``:
    ``os._exit(1)``)."""
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(1)


def _dies_now(marker: str | None) -> bool:
    if marker is None:
        return True
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


@attrs.frozen
class DyingActor:
    """Acts as ``inner``, but kills its worker the first time it acts in episode ``index`` of a collection with
    run seed ``seed`` (it knows the episode by its policy generator's seed, :mod:`sport_core.seeding`)."""

    inner: Any
    seed: int
    index: int
    marker: str | None
    how: str = "kill"

    def reset(self) -> None:
        self.inner.reset()

    def act(self, obs: np.ndarray, generator: Any) -> np.ndarray:
        if generator.initial_seed() == episode_seed(self.seed, self.index, "policy") and _dies_now(self.marker):
            die(self.how)
        return self.inner.act(obs, generator)


def square_or_die(task: tuple[int, int, str | None, str]) -> int:
    """``n²`` for task ``(n, die_at, marker, how)``, except that task ``n == die_at`` kills its worker first
    (once, or every time without a marker)."""
    n, die_at, marker, how = task
    if n == die_at and _dies_now(marker):
        die(how)
    return n * n
