"""Episode paths: where the agent went in a sample of episodes, kept in one compact binary file.

Figures of trajectories (the paper's figure e) and of the projection along an episode (figure f) need more
than an episode record: the agent's planar positions at every step, the layout it moved in, and the
observations it acted on. Evaluators keep these for a *sample* of episodes only (a few hundred bytes per
episode), never as JSON lines of every step.

File format ``sport-paths-v1``, a numpy ``.npz`` read without pickle:

* ``format``: the string ``"sport-paths-v1"``;
* ``episodes`` (n,) int64: episode indices; ``goal_step``, ``violation_step`` (n,) int32: as in
  :class:`sport_core.tracking.EpisodeRecord` (−1: never);
* ``lengths`` (n,) int64 and ``xy`` (Σ lengths, 2) float32: episode j's positions are the ``lengths[j]`` rows
  starting at ``sum(lengths[:j])``; the first row is the position after reset, then one row per step;
* ``obs`` (m, obs_dim) float32: the observations of episode ``episodes[0]`` (after reset, then after every
  step), or absent;
* ``goal`` (3,) float64: goal centre x, y and radius, and ``hazards`` (k, 3): each hazard's x, y, radius, when
  the env's reset ``info`` carries ``goal_pos``/``goal_radius`` and ``hazard_pos``/``hazard_radius``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from sport_core.artifacts import load_npz, save_npz
from sport_core.collect import run_episode
from sport_core.errors import ArtifactError
from sport_core.tracking import EpisodeRecord, outcome_of

PATHS_FORMAT = "sport-paths-v1"


@attrs.frozen(eq=False)
class Layout:
    """The scenery of a reach-avoid episode: the goal and hazard discs (x, y, radius), in metres."""

    goal: tuple[float, float, float] | None
    hazards: tuple[tuple[float, float, float], ...] = ()

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Layout | None:
        """The layout an env reports at reset (``goal_pos``, ``goal_radius``, ``hazard_pos``, ``hazard_radius``;
        ``hazard_pos`` may hold several centres, [k, 2]); None when the env does not report it."""
        goal = None
        if "goal_pos" in info and "goal_radius" in info:
            gx, gy = np.asarray(info["goal_pos"], dtype=np.float64).reshape(-1)[:2]
            goal = (float(gx), float(gy), float(info["goal_radius"]))
        hazards: tuple[tuple[float, float, float], ...] = ()
        if "hazard_pos" in info and "hazard_radius" in info:
            centres = np.asarray(info["hazard_pos"], dtype=np.float64).reshape(-1, 2)
            radii = np.broadcast_to(np.asarray(info["hazard_radius"], dtype=np.float64), (len(centres),))
            hazards = tuple((float(x), float(y), float(r)) for (x, y), r in zip(centres, radii, strict=True))
        return None if goal is None and not hazards else cls(goal, hazards)


@attrs.frozen(eq=False)
class EpisodePath:
    """One episode's record, its positions ([length + 1, 2]) and, if recorded, its observations."""

    record: EpisodeRecord
    xy: np.ndarray
    observations: np.ndarray | None = None
    layout: Layout | None = None


class _Recorder:
    """Wraps an env for one episode and keeps its reset ``info`` and (optionally) every observation."""

    def __init__(self, env: Any, observations: bool) -> None:
        self.env = env
        self.keep = observations
        self.obs: list[np.ndarray] = []
        self.reset_info: dict[str, Any] = {}

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self.reset_info = info
        if self.keep:
            self.obs.append(np.asarray(obs, dtype=np.float32).copy())
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        out = self.env.step(action)
        if self.keep:
            self.obs.append(np.asarray(out[0], dtype=np.float32).copy())
        return out


def record_episode(actor: Any, env: Any, seed: int, index: int, observations: bool = False) -> EpisodePath:
    """:func:`sport_core.collect.run_episode` with the path kept: the same record (recording changes nothing
    the episode draws), plus positions, the reset layout and, if asked, the observations."""
    recorder = _Recorder(env, observations)
    record = run_episode(actor, recorder, seed, index, trajectory=True)
    xy = record.trajectory.astype(np.float32)
    obs = np.stack(recorder.obs) if observations else None
    return EpisodePath(attrs.evolve(record, trajectory=None), xy, obs, Layout.from_info(recorder.reset_info))


def write_paths(path: str | os.PathLike, paths: Sequence[EpisodePath]) -> Path:
    """Write ``paths`` (sorted by episode index) atomically in the ``sport-paths-v1`` format.

    The layout written is the first episode's; the observations are those of the first episode (if kept)."""
    paths = sorted(paths, key=lambda p: p.record.index)
    if not paths:
        raise ValueError("no episode paths to write")
    arrays: dict[str, np.ndarray] = {
        "format": np.array(PATHS_FORMAT),
        "episodes": np.array([p.record.index for p in paths], dtype=np.int64),
        "goal_step": np.array([p.record.goal_step for p in paths], dtype=np.int32),
        "violation_step": np.array([p.record.violation_step for p in paths], dtype=np.int32),
        "lengths": np.array([len(p.xy) for p in paths], dtype=np.int64),
        "xy": np.concatenate([np.asarray(p.xy, dtype=np.float32).reshape(-1, 2) for p in paths]),
    }
    if paths[0].observations is not None:
        arrays["obs"] = np.asarray(paths[0].observations, dtype=np.float32)
    layout = paths[0].layout
    if layout is not None:
        if layout.goal is not None:
            arrays["goal"] = np.array(layout.goal, dtype=np.float64)
        arrays["hazards"] = np.array(layout.hazards, dtype=np.float64).reshape(-1, 3)
    return save_npz(path, **arrays)


@attrs.frozen(eq=False)
class PathFile:
    """A ``sport-paths-v1`` file read back (see the module docstring for the fields)."""

    episodes: np.ndarray
    goal_step: np.ndarray
    violation_step: np.ndarray
    xy: tuple[np.ndarray, ...]
    observations: np.ndarray | None
    layout: Layout | None

    def outcome(self, j: int, horizon: int | None = None) -> str:
        """Episode j's outcome (``goal``, ``violation``, ``timeout``), counting only steps ≤ ``horizon`` if given."""
        g, v = int(self.goal_step[j]), int(self.violation_step[j])
        if horizon is not None:
            g, v = (g if 0 < g <= horizon else -1), (v if 0 < v <= horizon else -1)
        return outcome_of(g, v)


def read_paths(path: str | os.PathLike, made_by: str | None = None) -> PathFile:
    """Read a ``sport-paths-v1`` file; anything else (or a damaged one) raises :class:`ArtifactError`."""
    what = "episode paths file" + (f" (made by {made_by})" if made_by else "")
    data = load_npz(path, what)
    fmt = data.get("format")
    if fmt is None or fmt.shape != () or str(fmt) != PATHS_FORMAT:
        raise ArtifactError(f"{what} {path} is not a {PATHS_FORMAT} file")
    try:
        lengths = data["lengths"].astype(np.int64)
        xy = data["xy"]
        n = len(data["episodes"])
        if lengths.shape != (n,) or (lengths < 1).any() or xy.shape != (int(lengths.sum()), 2):
            raise ValueError("lengths and positions disagree")
        if data["goal_step"].shape != (n,) or data["violation_step"].shape != (n,):
            raise ValueError("one step per episode expected")
        ends = np.cumsum(lengths)
        layout = None
        if "goal" in data or "hazards" in data:
            goal = tuple(float(v) for v in data["goal"]) if "goal" in data else None
            hazards = tuple(tuple(float(v) for v in h) for h in data.get("hazards", np.zeros((0, 3))))
            layout = Layout(goal, hazards)  # type: ignore[arg-type]
        return PathFile(
            episodes=data["episodes"].astype(np.int64),
            goal_step=data["goal_step"].astype(np.int32),
            violation_step=data["violation_step"].astype(np.int32),
            xy=tuple(xy[e - n_ : e] for e, n_ in zip(ends, lengths, strict=True)),
            observations=data.get("obs"),
            layout=layout,
        )
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"{what} {path} is damaged ({exc})") from exc
