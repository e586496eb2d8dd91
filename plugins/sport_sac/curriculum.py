"""A curriculum over env levels that advances on a windowed success rate.

Level i of n is one value of an env-config field (``key``, e.g. the env ``id``). The curriculum records
whether each finished episode was a success; once the current level has seen at least ``window`` episodes
and the success rate of the last ``window`` of them is at least ``threshold``, it moves to level i + 1 and
starts counting afresh. The last level is never left. With no levels the curriculum is a single level: the
env as configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np


class Curriculum:
    """Level bookkeeping (no env handling: :meth:`env_config` says which config a level uses)."""

    def __init__(self, key: str, values: Sequence[Any], threshold: float, window: int) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"curriculum threshold must be in [0, 1], got {threshold}")
        if window < 1:
            raise ValueError(f"curriculum window must be positive, got {window}")
        self.key, self.values = key, tuple(values)
        self.threshold, self.window = float(threshold), int(window)
        self.level = 0
        self._recent = np.zeros(self.window, dtype=bool)  # ring of the last `window` outcomes
        self.episodes_at_level = 0

    @property
    def n_levels(self) -> int:
        return max(1, len(self.values))

    @property
    def final(self) -> bool:
        return self.level == self.n_levels - 1

    def success_rate(self) -> float:
        """Success rate over the last min(window, episodes at this level) episodes (0 if none)."""
        n = min(self.window, self.episodes_at_level)
        if n == 0:
            return 0.0
        if n < self.window:
            return float(self._recent[:n].mean())
        return float(self._recent.mean())

    def record(self, success: bool) -> bool:
        """Record one finished episode; returns True if the curriculum moved to the next level."""
        self._recent[self.episodes_at_level % self.window] = success
        self.episodes_at_level += 1
        if self.final or self.episodes_at_level < self.window or self.success_rate() < self.threshold:
            return False
        self.level += 1
        self.episodes_at_level = 0
        self._recent[:] = False
        return True

    def env_config(self, base: Any) -> Any:
        """The env config of the current level: ``base`` with ``key`` set to this level's value."""
        if not self.values:
            return base
        fields = attrs.fields_dict(type(base))
        if self.key not in fields:
            raise ValueError(
                f"curriculum_key {self.key!r} is not a config key of this env (its keys: {', '.join(fields)})"
            )
        return attrs.evolve(base, **{self.key: self.values[self.level]})

    def state_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "episodes_at_level": self.episodes_at_level,
            "recent": [bool(x) for x in self._recent],
            "values": list(self.values),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["values"]) != list(self.values) or len(state["recent"]) != self.window:
            raise ValueError("checkpoint was written with a different curriculum (levels or window)")
        self.level = int(state["level"])
        self.episodes_at_level = int(state["episodes_at_level"])
        self._recent[:] = np.asarray(state["recent"], dtype=bool)
