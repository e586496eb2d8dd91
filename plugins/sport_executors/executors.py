"""The ``inline`` and ``process`` executors.

Both satisfy :class:`sport_core.protocols.Executor`: ``map(fn, tasks)`` yields ``fn(task)`` as tasks
finish. ``process`` uses spawned workers (fork is unsafe once torch or MuJoCo threads exist); each worker
runs torch with one thread, since the workers already use every core.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

import attrs


@attrs.frozen
class InlineConfig:
    """Run every task in the calling process, in order (deterministic, easy to debug)."""


@attrs.frozen
class ProcessConfig:
    """A pool of local processes. ``workers = 0`` uses every available core."""

    workers: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    max_in_flight: int = attrs.field(default=0, validator=attrs.validators.ge(0))


class InlineExecutor:
    workers = 1
    in_process = True  # tasks run in the caller: collect() sends episodes one at a time

    def __init__(self, config: InlineConfig | None = None) -> None:
        self.config = config or InlineConfig()

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        for task in tasks:
            yield fn(task)

    def close(self) -> None:
        pass


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ["SPORT_NO_PROGRESS"] = "1"  # the parent draws the bars; workers share its terminal


class ProcessExecutor:
    """Tasks go to a spawned process pool; at most ``max_in_flight`` (default 2 × workers) are queued, so
    a long task stream is not materialised and an interruption loses only the tasks in flight."""

    def __init__(self, config: ProcessConfig | None = None) -> None:
        self.config = config or ProcessConfig()
        self.workers = self.config.workers or available_cores()
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
            )
        return self._pool

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        pool = self._get_pool()
        limit = self.config.max_in_flight or 2 * self.workers
        pending: set[Future] = set()
        iterator = iter(tasks)
        try:
            exhausted = False
            while True:
                while not exhausted and len(pending) < limit:
                    try:
                        pending.add(pool.submit(fn, next(iterator)))
                    except StopIteration:
                        exhausted = True
                if not pending:
                    return
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            # Queued tasks are cancelled; tasks already running (an α's whole fine-tuning, say) would keep
            # their workers busy for minutes after an interruption, so the workers are stopped. What a task
            # had saved (atomically) stays, and what it had not is redone by a resumed stage.
            running = [f for f in pending if not f.cancel() and not f.done()]
            if running:
                self._abort()

    def _abort(self) -> None:
        """Stop every worker now (there is no public way before Python 3.14's ``terminate_workers``)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
