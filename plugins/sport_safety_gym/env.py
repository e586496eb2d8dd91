"""The reach-avoid tasks as gymnasium envs (5-tuple API) with the info contract of the framework.

:class:`ReachAvoidEnv` wraps safety-gymnasium's ``Builder`` (whose ``step`` returns six values) and adds:

* ``info`` at every reset and step: ``goal_met`` and ``constraint_violated`` (bools), ``cost`` (the stock
  per-step cost, binary: 1.0 when the agent is strictly inside the hazard), ``agent_pos`` (planar x, y of the
  agent body, float64 [2]), ``goal_pos`` and ``hazard_pos`` (centres, [2]), ``goal_radius`` and
  ``hazard_radius`` (metres);
* episode endings: ``terminated`` on the goal, and on a violation unless the id is a ``ResetGoal`` variant;
  ``truncated`` at the step limit when not terminated;
* rewards: ``dense_reward`` × progress toward the goal (previous − current distance) + ``goal_reward`` on
  the goal step + ``violation_reward`` on every violating step. The defaults (True, 1.0, 0.0) are the
  native reward, bit for bit; the base policy's is (False, 1.0, -0.25);
* layouts: with ``layout_seed`` set, every reset rebuilds the layout of that seed whatever seed ``reset`` is
  given (identical hazard, goal and agent pose each time); otherwise ``reset(seed=s)`` gives the layout of
  seed ``s`` (deterministic) and ``reset()`` continues the env's own random stream;
* resets that keep the compiled model (:mod:`sport_safety_gym.fast_reset`), unless ``fast_reset=False``,
  and steps that run the physics in one call (``fast_step``, see :mod:`sport_safety_gym.tasks`), unless
  ``fast_step=False``; both give exactly the stock numbers.

Actions are float arrays of shape (2,) in [-1, 1] (forward force, turning velocity; clipped by the robot).
``np_random`` is not used: all env randomness comes from the layout seed.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from sport_safety_gym.fast_reset import FastReset
from sport_safety_gym.levels import Level, parse_env_id
from sport_safety_gym.tasks import ensure_registered


def legacy_seed(seed: int) -> int | list[int]:
    """A seed for safety-gymnasium's ``np.random.RandomState``, which takes only 32-bit integers.

    Seeds below 2**32 pass unchanged (layout seed 0 is the reference's seed 0); larger ones (the framework's
    63-bit episode seeds) become their two 32-bit words, which RandomState accepts as a key array: distinct
    seeds give distinct streams, with no folding collisions.
    """
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"env seeds must be non-negative, got {seed}")
    if seed < 2**32:
        return seed
    words = []
    while seed:
        words.append(seed & 0xFFFFFFFF)
        seed >>= 32
    return words


class ReachAvoidEnv(gym.Env):
    """One reach-avoid env (see the module docstring for the contract)."""

    metadata = {"render_modes": ["rgb_array", "depth_array"], "render_fps": 30}  # noqa: RUF012

    def __init__(
        self,
        env_id: str,
        *,
        layout_seed: int | None = None,
        goal_reward: float = 1.0,
        violation_reward: float = 0.0,
        dense_reward: bool = True,
        fast_reset: bool = True,
        fast_step: bool = True,
        render_mode: str | None = None,
        width: int = 256,
        height: int = 256,
        camera_name: str | None = None,
    ) -> None:
        self.level: Level = parse_env_id(env_id)
        ensure_registered()
        from safety_gymnasium.builder import Builder

        self.env_id = env_id
        self.layout_seed = layout_seed
        self.violation_reward = float(violation_reward)
        self.render_mode = render_mode
        # videos play in real time by default: one frame per control step
        self.metadata = {**self.metadata, "render_fps": round(1.0 / self.level.control_dt)}
        self._builder = Builder(
            task_id=env_id,
            config={"agent_name": "Point"},
            render_mode=render_mode,
            width=width,
            height=height,
            camera_name=camera_name,
        )
        task = self._builder.task
        task.goal.reward_goal = float(goal_reward)
        task.goal.reward_distance = 1.0 if dense_reward else 0.0
        task.fast_step = fast_step
        self._fast = FastReset(self._builder) if fast_reset else None
        self.observation_space = self._builder.observation_space
        self.action_space = self._builder.action_space
        self._needs_reset = True
        self._goal_pos = self._hazard_pos = np.zeros(2)
        self._goal_radius = float(task.goal.size)
        self._hazard_radius = float(self.level.geometry.hazard_radius)

    # -- gymnasium API -------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode; the layout comes from ``layout_seed`` if set, else from ``seed``."""
        builder_seed = self.layout_seed if self.layout_seed is not None else seed
        if builder_seed is not None:
            builder_seed = legacy_seed(builder_seed)
        if self._fast is not None:
            obs, _ = self._fast.reset(seed=builder_seed)
        else:
            obs, _ = self._builder.reset(seed=builder_seed)
        data, model = self._builder.task.data, self._builder.task.model
        self._agent_id = model.body("agent").id
        self._goal_pos = data.body("goal").xpos[:2].copy()
        self._hazard_pos = data.body("hazard0").xpos[:2].copy()
        self._needs_reset = False
        return obs, self._info(False, False, 0.0)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """One control step (0.2 s of simulation at 5 Hz, 0.02 s at 50 Hz)."""
        if self._needs_reset:
            raise RuntimeError(f"{self.env_id}: call reset() before step() (the episode has ended)")
        # a float ndarray copy: safety-gymnasium calls np.array(action, copy=False), which numpy 2 rejects for lists
        action = np.array(action, dtype=np.float64)
        obs, reward, cost, terminated, truncated, raw_info = self._builder.step(action)
        goal_met = bool(raw_info.get("goal_met", False))
        violated = bool(self._builder.task.constraint_violated)
        if violated and self.violation_reward:
            reward = reward + self.violation_reward
        terminated = bool(terminated) or (violated and self.level.terminate_on_violation)
        truncated = bool(truncated) and not terminated
        self._needs_reset = terminated or truncated
        return obs, float(reward), terminated, truncated, self._info(goal_met, violated, float(cost))

    def render(self) -> np.ndarray | None:
        return self._builder.render()

    def close(self) -> None:
        task = getattr(self._builder, "task", None)
        viewer = getattr(task, "viewer", None)
        if viewer is not None:
            viewer.close()

    # -- helpers ---------------------------------------------------------------------------------------------

    def _info(self, goal_met: bool, violated: bool, cost: float) -> dict[str, Any]:
        return {
            "goal_met": goal_met,
            "constraint_violated": violated,
            "cost": cost,
            "agent_pos": self._builder.task.data.xpos[self._agent_id, :2].copy(),
            "goal_pos": self._goal_pos.copy(),
            "hazard_pos": self._hazard_pos.copy(),
            "goal_radius": self._goal_radius,
            "hazard_radius": self._hazard_radius,
        }

    @property
    def builder(self) -> Any:
        """The wrapped safety-gymnasium ``Builder`` (raw 6-tuple API)."""
        return self._builder

    @property
    def compiles(self) -> int | None:
        """How many times the fast reset compiled the model (None with the stock reset)."""
        return None if self._fast is None else self._fast.compiles
