"""Per-episode bookkeeping shared by collection and training: first goal and violation steps, outcome.

Steps count from 1 (the first action). ``goal_step`` / ``violation_step`` are the first steps whose
``info`` had ``goal_met`` / ``constraint_violated`` (−1 if never). The outcome is ``violation`` if a
violation happened no later than the first goal (a goal and a violation in the same step count as a
violation: the safe choice, FACTS §1), else ``goal`` if the goal was met, else ``timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

OUTCOMES = ("goal", "violation", "timeout")


@attrs.frozen(eq=False)
class EpisodeRecord:
    """What one episode leaves behind. ``trajectory`` ([length + 1, 2] agent x-y) only when asked for."""

    index: int
    seed: int
    outcome: str
    goal_step: int
    violation_step: int
    length: int
    ret: float
    trajectory: np.ndarray | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EpisodeRecord):
            return NotImplemented
        same = attrs.astuple(self, filter=lambda a, _: a.name != "trajectory") == attrs.astuple(
            other, filter=lambda a, _: a.name != "trajectory"
        )
        if self.trajectory is None or other.trajectory is None:
            return same and self.trajectory is None and other.trajectory is None
        return same and np.array_equal(self.trajectory, other.trajectory)

    def failed_by(self, horizon: int) -> bool:
        """Reach-avoid failure at horizon T: not (goal by T with no violation at or before the goal step)."""
        return not (0 < self.goal_step <= horizon and self.outcome == "goal")


def outcome_of(goal_step: int, violation_step: int) -> str:
    """Classify an episode from its first goal and first violation steps (see the module docstring)."""
    if violation_step > 0 and (goal_step < 0 or violation_step <= goal_step):
        return "violation"
    return "goal" if goal_step > 0 else "timeout"


class EpisodeTracker:
    """Follows one episode step by step: length, return, first goal and violation steps.

    ``step(reward, info)`` after every env step; ``outcome`` once it ended; ``reset()`` before the next.
    """

    __slots__ = ("goal_step", "length", "ret", "violation_step")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.length = 0
        self.ret = 0.0
        self.goal_step = -1
        self.violation_step = -1

    def step(self, reward: float, info: Mapping[str, Any]) -> None:
        self.length += 1
        self.ret += float(reward)
        if self.goal_step < 0 and info.get("goal_met", False):
            self.goal_step = self.length
        if self.violation_step < 0 and info.get("constraint_violated", False):
            self.violation_step = self.length

    @property
    def outcome(self) -> str:
        return outcome_of(self.goal_step, self.violation_step)

    def record(self, index: int, seed: int, trajectory: np.ndarray | None = None) -> EpisodeRecord:
        """The finished episode's :class:`EpisodeRecord` (episode ``index`` of a run with seed ``seed``)."""
        return EpisodeRecord(
            index=index,
            seed=seed,
            outcome=self.outcome,
            goal_step=self.goal_step,
            violation_step=self.violation_step,
            length=self.length,
            ret=self.ret,
            trajectory=trajectory,
        )
