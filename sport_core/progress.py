"""Progress bars (rich) for anything that takes more than a few seconds."""

from __future__ import annotations

import contextlib
import os
import sys
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


def enabled() -> bool:
    """Bars are drawn on a terminal unless ``SPORT_NO_PROGRESS=1``."""
    return os.environ.get("SPORT_NO_PROGRESS", "") in ("", "0") and sys.stderr.isatty()


_active = False  # rich allows one live display at a time: an inner bar (e.g. one α job run inline) is silent


@contextlib.contextmanager
def progress_bar(total: int | None, description: str, completed: int = 0) -> Iterator[Callable[[int], None]]:
    """A bar for ``total`` units starting at ``completed``; yields ``advance(n)``. Inside another bar, silent."""
    global _active
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
