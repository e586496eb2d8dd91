"""Episode collection: one small record per episode, reproducible whatever the number of workers.

Episode ``i`` resets its env with seed ``episode_seed(seed, i, "env")`` (fixed-layout envs give the same
layout whatever the seed) and samples actions with ``torch_generator(seed, i, "policy")``: its record
depends only on (actor, env, seed, i). Episodes are sent to the executor in chunks; records come back as
chunks finish and are handed to ``on_record`` at once, so a kill loses only the chunks in flight.

Outcome and event steps (steps count from 1, the first action):
``goal_step`` / ``violation_step`` are the first steps whose ``info`` had ``goal_met`` /
``constraint_violated`` (−1 if never). The outcome is ``violation`` if a violation happened no later than
the first goal (a goal and a violation in the same step count as a violation: the safe choice),
else ``goal`` if the goal was met, else ``timeout``.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np

from sport_core.seeding import episode_seed, torch_generator

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
    """Classify an episode from its first goal and first violation steps (see module docstring)."""
    if violation_step > 0 and (goal_step < 0 or violation_step <= goal_step):
        return "violation"
    return "goal" if goal_step > 0 else "timeout"


def run_episode(actor: Any, env: Any, seed: int, index: int, trajectory: bool = False) -> EpisodeRecord:
    """Roll out one episode of ``actor`` in ``env`` with the random streams of episode ``index``."""
    env_seed = episode_seed(seed, index, "env")
    generator = torch_generator(seed, index, "policy")
    obs, info = env.reset(seed=env_seed)
    actor.reset()
    goal_step = violation_step = -1
    ret = 0.0
    path = [np.asarray(info["agent_pos"], dtype=np.float64)[:2]] if trajectory else None
    t = 0
    while True:
        t += 1
        action = actor.act(np.asarray(obs), generator)
        obs, reward, terminated, truncated, info = env.step(action)
        ret += float(reward)
        if goal_step < 0 and info.get("goal_met", False):
            goal_step = t
        if violation_step < 0 and info.get("constraint_violated", False):
            violation_step = t
        if path is not None:
            path.append(np.asarray(info["agent_pos"], dtype=np.float64)[:2])
        if terminated or truncated:
            break
    return EpisodeRecord(
        index=index,
        seed=seed,
        outcome=outcome_of(goal_step, violation_step),
        goal_step=goal_step,
        violation_step=violation_step,
        length=t,
        ret=ret,
        trajectory=np.stack(path) if path is not None else None,
    )


# Per-process caches so that a worker builds (and, for MuJoCo, compiles) its env and actor once.
_ENV_CACHE: dict[str, Any] = {}
_ACTOR_CACHE: dict[str, Any] = {}


def _cached(cache: dict[str, Any], blob: bytes, build: Callable[[Any], Any]) -> Any:
    key = hashlib.sha256(blob).hexdigest()
    if key not in cache:
        if len(cache) >= 4:
            old = cache.pop(next(iter(cache)))
            close = getattr(old, "close", None)
            if close is not None:
                close()
        cache[key] = build(pickle.loads(blob))  # our own bytes from the parent process, never a user file
    return cache[key]


@attrs.frozen
class _Chunk:
    actor: bytes
    env_maker: bytes
    seed: int
    indices: tuple[int, ...]
    trajectory: bool


def worker_env(env_maker_blob: bytes) -> Any:
    """The env of a pickled env maker, built once per process (a MuJoCo env compiles its model on build)."""
    return _cached(_ENV_CACHE, env_maker_blob, lambda maker: maker.make())


def _run_chunk(chunk: _Chunk) -> list[EpisodeRecord]:
    env = worker_env(chunk.env_maker)
    actor = _cached(_ACTOR_CACHE, chunk.actor, lambda a: a)
    return [run_episode(actor, env, chunk.seed, i, chunk.trajectory) for i in chunk.indices]


def iter_collect(
    actor: Any,
    env_maker: Any,
    indices: Iterable[int] | int,
    seed: int,
    executor: Any,
    *,
    trajectory: bool = False,
    chunk_size: int | None = None,
) -> Iterator[EpisodeRecord]:
    """Yield the records of episodes ``indices`` (an int n means ``range(n)``) as their chunks finish."""
    todo: Sequence[int] = range(indices) if isinstance(indices, int) else list(indices)
    if not todo:
        return
    workers = max(1, getattr(executor, "workers", 1))
    if chunk_size is None:
        if getattr(executor, "in_process", False):
            chunk_size = 1  # nothing to amortise in-process; an interruption then loses no finished episode
        else:  # enough chunks to balance the load, few enough to amortise shipping the actor
            chunk_size = max(1, min(64, math.ceil(len(todo) / (4 * workers))))
    actor_blob = pickle.dumps(actor)
    env_blob = pickle.dumps(env_maker)
    chunks = [
        _Chunk(actor_blob, env_blob, seed, tuple(todo[i : i + chunk_size]), trajectory)
        for i in range(0, len(todo), chunk_size)
    ]
    for records in executor.map(_run_chunk, chunks):
        yield from records


def collect(
    actor: Any,
    env_maker: Any,
    indices: Iterable[int] | int,
    seed: int,
    executor: Any,
    *,
    trajectory: bool = False,
    on_record: Callable[[EpisodeRecord], None] | None = None,
    progress: Any = None,
    chunk_size: int | None = None,
) -> list[EpisodeRecord]:
    """Collect episodes and return their records sorted by index.

    ``on_record`` sees each record as soon as its chunk finishes (append it to a store there);
    ``progress``, if given, is called with the number of newly finished episodes.
    """
    records = []
    for record in iter_collect(actor, env_maker, indices, seed, executor, trajectory=trajectory, chunk_size=chunk_size):
        if on_record is not None:
            on_record(record)
        if progress is not None:
            progress(1)
        records.append(record)
    return sorted(records, key=lambda r: r.index)
