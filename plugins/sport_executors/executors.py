"""The ``inline`` and ``process`` executors.

Both satisfy :class:`sport_core.protocols.Executor`: ``map(fn, tasks)`` yields ``fn(task)`` as tasks
finish. ``process`` uses spawned workers (fork is unsafe once torch or MuJoCo threads exist); each worker
runs torch with one thread, since the workers already use every core. A worker that dies (killed, out of
memory, a crash in native code) costs a re-run of the tasks it took down, not the map (see
:class:`ProcessExecutor`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import attrs

from sport_core.errors import WorkerDiedError

log = logging.getLogger("sport")

#: Seconds to wait for a broken pool to fail the rest of its tasks (it does so at once; this only bounds a bug).
BREAK_GRACE_S = 60.0


@attrs.frozen
class InlineConfig:
    """Run every task in the calling process, in order (deterministic, easy to debug)."""


@attrs.frozen
class ProcessConfig:
    """A pool of local processes. ``workers = 0`` uses every available core; ``max_in_flight`` tasks are
    submitted at once (0 = 2 × workers); a task whose worker dies is run again, up to ``max_task_retries``
    times (see :class:`ProcessExecutor`)."""

    workers: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    max_in_flight: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    max_task_retries: int = attrs.field(default=2, validator=attrs.validators.ge(0))


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


@attrs.frozen(eq=False)
class _Run:
    """A task in flight: its number in the map's stream, the task, the pool running it, and whether that pool
    runs nothing else (so that the pool breaking convicts this task)."""

    number: int
    task: Any
    pool: ProcessPoolExecutor
    alone: bool


def _broke(future: Future, pool: ProcessPoolExecutor) -> bool:
    """Whether ``future`` failed because its pool broke (a worker died), rather than by the task's own error."""
    return isinstance(future.exception(), BrokenProcessPool) and bool(getattr(pool, "_broken", True))


def _exit_text(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"exit code {code}, signal {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"exit code {code}"


def _death_of(processes: list[Any]) -> str:
    """How the dead worker among ``processes`` ended; a broken pool terminates (SIGTERM) the ones that outlived it."""
    codes = [p.exitcode for p in processes if p.exitcode is not None]
    dead = [c for c in codes if c != -signal.SIGTERM] or codes
    return _exit_text(dead[0] if dead else None)


class ProcessExecutor:
    """Tasks go to a spawned process pool; at most ``max_in_flight`` (default 2 × workers) are queued, so
    a long task stream is not materialised and an interruption loses only the tasks in flight.

    A worker that dies abruptly (SIGKILL, ``os._exit``, a segfault, the OOM killer) breaks the pool, which
    fails every task in flight without saying which one killed it. The executor then starts fresh workers and
    runs those tasks again, each alone in a one-worker pool (as many at once as there are workers), so that a
    death convicts its task; once they have all returned it goes back to one shared pool. Each result is
    yielded once, and no task is lost. A task whose worker died more than ``max_task_retries`` times, the last
    of them while it ran alone, ends the map with a one-line :class:`WorkerDiedError` naming the task (its
    number, from 0, in the order the map took the tasks) and the worker's exit code. Re-running a task must
    give what its first run would have given: tasks must be deterministic (their own seeds) or idempotent
    (resuming from their own checkpoints), as sport's episode chunks and training jobs are. A task's own
    exception is not a death: it is raised in the caller as itself, and not retried.
    """

    def __init__(self, config: ProcessConfig | None = None) -> None:
        self.config = config or ProcessConfig()
        self.workers = self.config.workers or available_cores()
        self._pool: ProcessPoolExecutor | None = None
        self._lanes: list[ProcessPoolExecutor] = []  # one-worker pools that re-run suspects of a death

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker
        )

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = self._new_pool(self.workers)
        return self._pool

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        """Yield ``fn(task)`` for every task, in the order the tasks finish."""
        limit = self.config.max_in_flight or 2 * self.workers
        stream = enumerate(tasks)
        running: dict[Future, _Run] = {}
        suspects: deque[tuple[int, Any]] = deque()  # to run again, each alone, before new tasks are taken
        deaths: Counter[int] = Counter()  # worker deaths while the task was in flight
        held: tuple[int, Any] | None = None  # taken from the stream, not yet submitted
        exhausted = False
        try:
            while True:
                if suspects or any(run.alone for run in running.values()):
                    self._fill_lanes(fn, running, suspects, min(self.workers, limit))
                else:
                    self._close_lanes()
                    while (held is not None or not exhausted) and len(running) < limit:
                        if held is None:
                            try:
                                held = next(stream)
                            except StopIteration:
                                exhausted = True
                                break
                        pool = self._get_pool()
                        try:
                            running[pool.submit(fn, held[1])] = _Run(*held, pool, alone=False)
                        except BrokenProcessPool:  # a worker died since the last wait (or the last map)
                            if not running:  # ... while idle: nothing was lost
                                self._retire(pool)
                                continue
                            break  # the tasks in flight fail at the next wait, and are re-run
                        held = None
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = {running[f].pool for f in done if not running[f].alone and _broke(f, running[f].pool)}
                if broken:  # the pool fails every task it holds: gather them before deciding what to re-run
                    done |= wait([f for f, run in running.items() if run.pool in broken], timeout=BREAK_GRACE_S)[0]
                shared_deaths = []
                for future in sorted(done, key=lambda f: running[f].number):
                    run = running.pop(future)
                    if run.pool in broken and _broke(future, run.pool):
                        shared_deaths.append(run)
                    elif not _broke(future, run.pool):
                        yield future.result()  # a task's own exception is raised here, as itself
                    else:  # it ran alone: it killed its worker
                        deaths[run.number] += 1
                        how = self._retire(run.pool)
                        if deaths[run.number] > self.config.max_task_retries:
                            raise WorkerDiedError(
                                f"process executor: a worker died {deaths[run.number]} times running task "
                                f"{run.number} of this map ({how}); giving up (the task's inputs may crash the "
                                "worker: see the worker's stderr)"
                            )
                        log.warning(
                            "process executor: a worker died running task %d alone (%s); running it again "
                            "(death %d of at most %d)",
                            run.number,
                            how,
                            deaths[run.number],
                            self.config.max_task_retries + 1,
                        )
                        suspects.appendleft((run.number, run.task))
                # Futures the grace period did not see fail are dropped with their pool, and re-run too.
                for future, run in list(running.items()):
                    if run.pool in broken:
                        shared_deaths.append(running.pop(future))
                if broken:
                    how = ", ".join(sorted({self._retire(pool) for pool in broken}))
                    shared_deaths.sort(key=lambda run: run.number)
                    for run in shared_deaths:
                        deaths[run.number] += 1
                    suspects.extend((run.number, run.task) for run in shared_deaths)
                    log.warning(
                        "process executor: a worker died (%s) and took down the pool; running the %s that had not "
                        "returned again, each alone in a fresh worker, to find the one that killed it",
                        how,
                        "task" if len(shared_deaths) == 1 else f"{len(shared_deaths)} tasks",
                    )
        finally:
            # Queued tasks are cancelled; tasks already running (an α's whole fine-tuning, say) would keep
            # their workers busy for minutes after an interruption, so the workers are stopped. What a task
            # had saved (atomically) stays, and what it had not is redone by a resumed stage.
            leftover = [f for f in running if not f.cancel() and not f.done()]
            if leftover:
                self._abort()
            else:
                self._close_lanes()

    def _fill_lanes(
        self, fn: Callable[[Any], Any], running: dict[Future, _Run], suspects: deque[tuple[int, Any]], lanes: int
    ) -> None:
        """Submit suspects, one per one-worker pool, up to ``lanes`` of them."""
        busy = {run.pool for run in running.values() if run.alone}
        free = [lane for lane in self._lanes if lane not in busy]
        while suspects and (free or len(self._lanes) < lanes):
            if free:
                lane = free.pop()
            else:
                lane = self._new_pool(1)
                self._lanes.append(lane)
            number, task = suspects[0]
            try:
                future = lane.submit(fn, task)
            except BrokenProcessPool:  # its worker died while idle; the next lane is a fresh one
                self._retire(lane)
                continue
            suspects.popleft()
            running[future] = _Run(number, task, lane, alone=True)

    def _retire(self, pool: ProcessPoolExecutor) -> str:
        """Shut a (broken) pool down for good; returns how its dead worker ended (e.g. ``exit code -9, signal
        SIGKILL``)."""
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            if process.is_alive():
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        if pool is self._pool:
            self._pool = None
        if pool in self._lanes:
            self._lanes.remove(pool)
        return _death_of(processes)

    def _close_lanes(self) -> None:
        lanes, self._lanes = self._lanes, []
        for lane in lanes:
            lane.shutdown(wait=True, cancel_futures=True)

    def _abort(self) -> None:
        """Stop every worker now (there is no public way before Python 3.14's ``terminate_workers``)."""
        pools = [self._pool, *self._lanes] if self._pool is not None else list(self._lanes)
        self._pool, self._lanes = None, []
        for pool in pools:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._close_lanes()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __del__(self) -> None:
        for pool in [getattr(self, "_pool", None), *getattr(self, "_lanes", [])]:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
