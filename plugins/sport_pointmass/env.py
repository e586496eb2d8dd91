"""Reach-avoid point mass in the plane, vectorised over a batch of worlds.

State per world: position p, velocity v. Action a ∈ [−1, 1]² is an acceleration command:
``v ← damping·v + accel·dt·a``, ``p ← p + dt·v``. The goal is met when ‖p − g‖ ≤ goal_radius and a
violation is ‖p − h‖ ≤ hazard_radius (the same events as the safety-gymnasium tasks). Observation (7):
goal − p, hazard − p, v, and the distance to the hazard's edge. Reward: progress toward the goal plus
``goal_reward`` on reaching it (the native reward of the safety tasks), ``violation_reward`` on a violation.
Layouts: agent in [−1, 1] × [−1, 0], hazard in [−0.5, 0.5] × [0.4, 0.9], goal in [−1, 1] × [1.2, 1.8];
``layout_seed`` fixes the layout for every reset.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import gymnasium as gym
import numpy as np

AGENT_BOX = np.array([[-1.0, -1.0], [1.0, 0.0]])
HAZARD_BOX = np.array([[-0.5, 0.4], [0.5, 0.9]])
GOAL_BOX = np.array([[-1.0, 1.2], [1.0, 1.8]])


@attrs.frozen
class PointMassConfig:
    """Config of the ``pointmass`` env."""

    max_steps: int = attrs.field(default=60, validator=attrs.validators.gt(0))
    dt: float = attrs.field(default=0.1, validator=attrs.validators.gt(0))
    accel: float = 3.0
    damping: float = attrs.field(default=0.8, validator=[attrs.validators.ge(0), attrs.validators.le(1)])
    goal_radius: float = attrs.field(default=0.3, validator=attrs.validators.gt(0))
    hazard_radius: float = attrs.field(default=0.3, validator=attrs.validators.gt(0))
    goal_reward: float = 1.0
    violation_reward: float = 0.0
    on_violation: Literal["terminate", "continue"] = "terminate"
    layout_seed: int | None = None


def sample_layouts(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """``n`` layouts (agent, hazard, goal centres, each [n, 2]) uniformly from their boxes."""

    def draw(box: np.ndarray) -> np.ndarray:
        return box[0] + (box[1] - box[0]) * rng.random((n, 2))

    return {"agent": draw(AGENT_BOX), "hazard": draw(HAZARD_BOX), "goal": draw(GOAL_BOX)}


def observe(pos: np.ndarray, vel: np.ndarray, goal: np.ndarray, hazard: np.ndarray, hazard_radius: float) -> np.ndarray:
    """Observations [n, 7] for a batch of worlds."""
    edge = np.linalg.norm(hazard - pos, axis=-1, keepdims=True) - hazard_radius
    return np.concatenate([goal - pos, hazard - pos, vel, edge], axis=-1)


def step_batch(
    cfg: PointMassConfig, pos: np.ndarray, vel: np.ndarray, action: np.ndarray, goal: np.ndarray, hazard: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Advance every world one step: returns new pos, vel, reward, goal_met, violated ([n] each for the last)."""
    a = np.clip(action, -1.0, 1.0)
    before = np.linalg.norm(goal - pos, axis=-1)
    vel = cfg.damping * vel + cfg.accel * cfg.dt * a
    pos = pos + cfg.dt * vel
    after = np.linalg.norm(goal - pos, axis=-1)
    goal_met = after <= cfg.goal_radius
    violated = np.linalg.norm(hazard - pos, axis=-1) <= cfg.hazard_radius
    reward = (before - after) + cfg.goal_reward * goal_met + cfg.violation_reward * violated
    return pos, vel, reward, goal_met, violated


class PointMassEnv(gym.Env):
    """One point-mass world as a gymnasium env (the batched functions above do the work)."""

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(self, config: PointMassConfig | None = None) -> None:
        self.cfg = config or PointMassConfig()
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (7,), np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        rng = np.random.default_rng(self.cfg.layout_seed) if self.cfg.layout_seed is not None else self.np_random
        layout = sample_layouts(rng, 1)
        self._pos, self._goal, self._hazard = layout["agent"], layout["goal"], layout["hazard"]
        self._vel = np.zeros((1, 2))
        self._t = 0
        return self._obs(), self._info(False, False)

    def _obs(self) -> np.ndarray:
        return observe(self._pos, self._vel, self._goal, self._hazard, self.cfg.hazard_radius)[0]

    def _info(self, goal_met: bool, violated: bool) -> dict[str, Any]:
        return {
            "goal_met": bool(goal_met),
            "constraint_violated": bool(violated),
            "cost": float(violated),
            "agent_pos": self._pos[0].copy(),
            "goal_pos": self._goal[0].copy(),
            "hazard_pos": self._hazard[0].copy(),
            "goal_radius": float(self.cfg.goal_radius),
            "hazard_radius": float(self.cfg.hazard_radius),
        }

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        act = np.asarray(action, dtype=np.float64).reshape(1, 2)
        self._pos, self._vel, reward, goal_met, violated = step_batch(
            self.cfg, self._pos, self._vel, act, self._goal, self._hazard
        )
        self._t += 1
        g, v = bool(goal_met[0]), bool(violated[0])
        terminated = g or (v and self.cfg.on_violation == "terminate")
        truncated = not terminated and self._t >= self.cfg.max_steps
        return self._obs(), float(reward[0]), terminated, truncated, self._info(g, v)


@attrs.frozen
class PointMassMaker:
    """Env maker for ``pointmass`` (picklable)."""

    config: PointMassConfig

    @property
    def env_id(self) -> str:
        return "PointMass-v0"

    @property
    def fixed_layout(self) -> bool:
        return self.config.layout_seed is not None

    @property
    def scenario(self) -> str:
        if self.fixed_layout:
            return (
                f"pointmass, fixed layout (layout seed {self.config.layout_seed}); randomness only from the "
                "policy's action sampling"
            )
        return "pointmass, layouts drawn uniformly from the placement boxes at every reset"

    def make(self) -> PointMassEnv:
        return PointMassEnv(self.config)
