"""Stages that run at the same time, each in its own process (``[run] parallel_stages``).

The runner (:class:`sport_core.runner.Runner`) starts a stage as soon as every stage it takes inputs from has
completed. When several stages are ready together, each runs in a *spawned* process (a :class:`StageProcess`;
fork is unsafe once torch or MuJoCo threads exist) that rebuilds what the runner's process has:

* the plugin manager: the same built-in and entry-point plugins (``pm.autoload``), ``SPORT_PLUGINS`` and
  ``SPORT_DISABLE_PLUGINS`` (inherited environment), and the plugins added by hand (``pm.extras``, sent
  pickled; one that cannot be pickled makes the runner run stages one after the other, with a warning);
* the recipe (``recipe.resolved.toml``), its loggers and its executor, built afresh: the loggers see
  ``sport_run_started`` and then the stage's own events, exactly as in the runner's process, but never
  ``sport_run_finished`` (the run's end is the runner's);
* the manifest as it was when the stage started (its inputs are complete and no longer change).

The stage's process never writes the manifest: every change of its entry (running, completed with outputs,
failed, interrupted) goes to the runner over a pipe, and the runner, the manifest's only writer, records it.
Progress bars become log lines prefixed with the stage's name (:func:`sport_core.progress.report_as_lines`).
On Linux the stage's process is killed when the runner's process dies (``PR_SET_PDEATHSIG``), so a killed run
leaves no stage running on its own; ``sport run --resume`` then continues each stage from its checkpoints, as
after a kill of a sequential run.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from sport_core import progress
from sport_core.errors import SportError

log = logging.getLogger("sport")
PROGRESS_LINE_SECONDS = 30.0


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def stage_limit(setting: int) -> int:
    """How many stages may run at once for ``[run] parallel_stages = setting`` (``0``: one per usable core)."""
    return setting if setting > 0 else usable_cores()


def portable_extras(pm: Any) -> list[tuple[str, Any]] | str:
    """``pm.extras`` in a form a spawned process can rebuild (modules by name, objects pickled), or a sentence
    saying which plugin cannot be sent to another process."""
    extras: list[tuple[str, Any]] = []
    for name, plugin in pm.extras:
        if isinstance(plugin, ModuleType):
            extras.append((name, plugin.__name__))
            continue
        try:
            pickle.dumps(plugin)
        except Exception as exc:
            return f"plugin {name!r} ({type(plugin).__qualname__}) cannot be sent to another process: {exc}"
        extras.append((name, plugin))
    return extras


@attrs.frozen
class StageJob:
    """What a stage's process needs: the run, the stage, the manifest at its start and how to load plugins."""

    run_dir: Path
    stage: str
    manifest: dict
    autoload: bool
    extras: list
    log_level: int


class StageProcess:
    """One stage running in a spawned process; :attr:`conn` receives ``("entry", dict)`` for every change of
    the stage's manifest entry and ``("done", status, error)`` once at the end."""

    def __init__(self, job: StageJob) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = job.stage
        self.conn, child_end = context.Pipe(duplex=False)
        self.process = context.Process(target=_stage_main, args=(job, child_end), name=f"sport-stage-{job.stage}")
        self.process.start()
        child_end.close()  # the runner keeps only the reading end, so the child's exit reads as end of file
        self.status: str | None = None
        self.error: str | None = None

    def interrupt(self) -> None:
        """Ask the stage to stop as after Ctrl-C: it records itself as interrupted and exits."""
        if self.process.is_alive() and self.process.pid is not None:
            os.kill(self.process.pid, signal.SIGINT)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - without prctl a stage just outlives its runner
        return
    if os.getppid() == 1:  # the runner died before prctl took effect
        os._exit(1)


def _interrupt_once(signum: int, frame: object) -> None:
    """SIGINT or SIGTERM: stop the stage as Ctrl-C would, once. Further signals (a terminal's Ctrl-C reaches
    the runner and every stage, and the runner passes a SIGTERM on) are ignored while the stage records itself
    as interrupted and closes its loggers and executor."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}")


def _one_line(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, SportError) else f"{type(exc).__name__}: {exc}"


def _stage_main(job: StageJob, conn: Connection) -> None:
    """Entry point of a stage's process: load plugins, the recipe, loggers and executor; run the stage."""
    _die_with_parent()
    logging.basicConfig(
        level=job.log_level,
        format=f"%(asctime)s %(levelname)s [{job.stage}] %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    progress.report_as_lines(PROGRESS_LINE_SECONDS)
    signal.signal(signal.SIGINT, _interrupt_once)
    signal.signal(signal.SIGTERM, _interrupt_once)
    send: Callable[..., None] = conn.send
    status, error = "failed", None
    try:
        from sport_core.plugins import load_plugin_manager
        from sport_core.runner import Runner

        pm = load_plugin_manager(autoload=job.autoload, extra=job.extras)
        runner = Runner.resume(job.run_dir, pm)
        status = runner.run_in_child(job.stage, job.manifest, lambda entry: send(("entry", entry)))
    except KeyboardInterrupt:
        status = "interrupted"
    except BaseException as exc:  # reported to the runner, which raises it in the run's process
        error = _one_line(exc)
        if job.log_level <= logging.DEBUG:
            traceback.print_exc()
    try:
        send(("done", status, error))
    finally:
        conn.close()
    sys.exit(0 if status == "completed" else 130 if status == "interrupted" else 1)
