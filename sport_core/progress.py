"""Progress bars (rich) for anything that takes more than a few seconds.

A stage that runs in its own process beside other stages (``run.parallel_stages``) cannot draw a live bar: two
processes drawing on one terminal garble each other. There :func:`report_as_lines` turns every bar into a log
line every ``every`` seconds (``<description>: 12000/100000 (12%), 41.3/s, 35:12 left``), prefixed by the
stage's name in the log format, so each stage's progress stays readable and separate.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger("sport")
_LINES_EVERY: float | None = None  # seconds between progress lines; None: live bars


def report_as_lines(every: float = 30.0) -> None:
    """From now on in this process, progress is logged as a line every ``every`` seconds instead of drawn."""
    global _LINES_EVERY
    _LINES_EVERY = float(every)


def enabled() -> bool:
    """Bars are drawn on a terminal unless ``SPORT_NO_PROGRESS=1``."""
    return os.environ.get("SPORT_NO_PROGRESS", "") in ("", "0") and sys.stderr.isatty()


_active = False  # rich allows one live display at a time: an inner bar (e.g. one α job run inline) is silent


@contextlib.contextmanager
def progress_bar(total: int | None, description: str, completed: int = 0) -> Iterator[Callable[[int], None]]:
    """A bar for ``total`` units starting at ``completed``; yields ``advance(n)``. Inside another bar, silent."""
    global _active
    if _LINES_EVERY is not None and not _active:
        _active = True
        try:
            with _lines(total, description, completed, _LINES_EVERY) as advance:
                yield advance
        finally:
            _active = False
        return
    if not enabled() or _active:
        yield lambda n=1: None
        return
    _active = True
    try:
        with _bar(total, description, completed) as advance:
            yield advance
    finally:
        _active = False


@contextlib.contextmanager
def _bar(total: int | None, description: str, completed: int) -> Iterator[Callable[[int], None]]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total, completed=completed)
        yield lambda n=1: bar.advance(task, n)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@contextlib.contextmanager
def _lines(total: int | None, description: str, completed: int, every: float) -> Iterator[Callable[[int], None]]:
    """Log ``done/total (pct), rate/s, time left`` at most every ``every`` seconds, and once at the end. The rate
    is that of the interval since the previous line (a trainer's random warm-up steps are far faster than its
    learning steps, so an average since the start would promise too early an end)."""
    now = time.monotonic()
    state = {"done": completed, "last": now, "done_at_last": completed, "first": completed}

    def line(now: float) -> None:
        done, elapsed = state["done"], now - state["last"]
        rate = (done - state["done_at_last"]) / elapsed if elapsed > 0 else 0.0
        state.update(last=now, done_at_last=done)
        if total:
            left = f", {_clock((total - done) / rate)} left" if rate > 0 and done < total else ""
            log.info("%s: %d/%d (%.0f%%), %.1f/s%s", description, done, total, 100 * done / total, rate, left)
        else:
            log.info("%s: %d, %.1f/s", description, done, rate)

    def advance(n: int = 1) -> None:
        state["done"] += n
        now = time.monotonic()
        if now - state["last"] >= every:
            line(now)

    yield advance
    if state["done"] != state["first"]:
        line(time.monotonic())
