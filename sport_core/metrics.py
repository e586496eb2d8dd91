"""A metrics window: what a trainer sums between two log records, turned into scalars for the loggers.

Tags follow the hookspec convention (``group/name``): episodes finished in the window give
``train/episodes``, ``train/return``, ``train/length``, ``train/success_rate`` and ``train/violation_rate``
(means over those episodes); every named quantity added with :meth:`MetricsWindow.add` gives its mean
over the window (sum of totals / sum of counts); ``perf/steps_per_s`` is env steps per wall second since the
window opened. A quantity never added in the window is left out rather than logged as 0.
"""

from __future__ import annotations

import time


class MetricsWindow:
    """Sums over one logging window (open a new one after each :meth:`scalars`)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.steps = 0
        self.episodes = self.successes = self.violations = 0
        self.ret = self.length = 0.0
        self._totals: dict[str, float] = {}
        self._counts: dict[str, float] = {}

    def add_episode(self, outcome: str, ret: float, length: int) -> None:
        """One finished episode (``outcome`` as in :mod:`sport_core.tracking`)."""
        self.episodes += 1
        self.ret += ret
        self.length += length
        self.successes += outcome == "goal"
        self.violations += outcome == "violation"

    def add(self, name: str, total: float, count: float = 1) -> None:
        """Add ``total`` over ``count`` occurrences of ``name`` (nothing happens when ``count`` is 0)."""
        if count:
            self._totals[name] = self._totals.get(name, 0.0) + float(total)
            self._counts[name] = self._counts.get(name, 0.0) + count

    def scalars(self) -> dict[str, float]:
        """The window's means (see the module docstring)."""
        seconds = max(time.perf_counter() - self.start, 1e-9)
        out = {"perf/steps_per_s": self.steps / seconds}
        if self.episodes:
            n = self.episodes
            out.update(
                {
                    "train/episodes": n,
                    "train/return": self.ret / n,
                    "train/length": self.length / n,
                    "train/success_rate": self.successes / n,
                    "train/violation_rate": self.violations / n,
                }
            )
        out.update({name: total / self._counts[name] for name, total in self._totals.items()})
        return out
