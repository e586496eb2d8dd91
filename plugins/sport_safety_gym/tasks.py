"""The reach-avoid tasks as safety-gymnasium ``BaseTask`` subclasses, registered with safety-gymnasium.

:func:`ensure_registered` imports safety-gymnasium (through the Python 3.11 shim), creates one task class
per id of :mod:`sport_safety_gym.levels`, sets it on ``safety_gymnasium.tasks`` under the name the stock
``Builder`` derives from the id, and registers the id, so ``safety_gymnasium.make(id)`` works as well
(returning the raw 6-tuple env). Idempotent and cheap after the first call in a process.

Task semantics (per step): the goal is met when the planar agent–goal distance is ≤ 0.3; a violation is
a planar agent–hazard distance ≤ the hazard radius. Native reward: (previous − current goal distance) ×
``goal.reward_distance`` + ``goal.reward_goal`` on the goal step. The stock builder ends the episode on the
goal (``continue_goal = False``) and truncates after ``num_steps``; ending on a violation is done by
:class:`sport_safety_gym.env.ReachAvoidEnv` (the Point robot is never "dead").

With ``fast_step`` (an instance attribute, on by default) two stock methods take a shorter route to the
same numbers: the frameskip physics steps run in one ``mj_step(model, data, nstep)`` call instead of a
Python loop (after the same action write and the same random draw of the step count), and ``obs`` skips
the stock re-validation of every observation against its space (values and order are unchanged). The
tests compare against the stock methods (``fast_step = False``) with max abs difference 0.0.
"""

from __future__ import annotations

import threading
from typing import Any

import mujoco
import numpy as np

from sport_safety_gym.levels import (
    AGENT_KEEPOUT,
    AGENT_RECT,
    GOAL_KEEPOUT,
    GOAL_RADIUS,
    LIDAR_BINS,
    LIDAR_EXP_GAIN,
    Level,
    env_ids,
    parse_env_id,
)
from sport_safety_gym.shim import import_safety_gymnasium

_LOCK = threading.Lock()
_CLASSES: dict[str, type] = {}


def _make_base_class() -> type:
    sg = import_safety_gymnasium()
    from safety_gymnasium.assets.color import COLOR
    from safety_gymnasium.assets.geoms import Goal, Hazards
    from safety_gymnasium.bases.base_task import BaseTask

    class ReachAvoidTask(BaseTask):
        """Reach the goal, avoid the hazard. Subclasses set ``LEVEL`` (a :class:`Level`)."""

        LEVEL: Level

        def __init__(self, config: dict[str, Any]) -> None:
            super().__init__(config=config)
            level, geometry = self.LEVEL, self.LEVEL.geometry
            # num_steps and the *_conf objects exist only after BaseTask.__init__, so they cannot come
            # through the config dict ("Bad key"): set them here.
            self.num_steps = level.max_steps
            self.sim_conf.frameskip_binom_n = level.frameskip
            self.sim_conf.frameskip_binom_p = 1.0
            self.mechanism_conf.continue_goal = False
            self.mechanism_conf.randomize_layout = True  # fixed layouts reseed every reset (see env.py)
            self.lidar_conf.num_bins = LIDAR_BINS
            self.lidar_conf.max_dist = None
            self.lidar_conf.exp_gain = LIDAR_EXP_GAIN
            self.lidar_conf.alias = True
            self.placements_conf.extents = [-1.5, -1.5, 1.5, 1.5]  # unused: every object has placements
            self.agent.placements = [list(AGENT_RECT)]
            self.agent.keepout = AGENT_KEEPOUT
            # Added in this order (goal, then hazard), so layouts sample agent, goal, hazard, as the reference.
            self._add_geoms(Goal(size=GOAL_RADIUS, keepout=GOAL_KEEPOUT, placements=[list(geometry.goal_rect)]))
            self._add_geoms(
                Hazards(
                    num=1,
                    size=geometry.hazard_radius,
                    keepout=geometry.hazard_keepout,
                    placements=[list(geometry.hazard_rect)],
                    color=COLOR["red"],
                    cost=1.0,
                )
            )
            self.last_dist_goal: float | None = None
            self.fast_step = True

        def simulation_forward(self, action: np.ndarray) -> bool:
            if not self.fast_step or self.debug or self._mocaps:
                return super().simulation_forward(action)
            # the stock order: action (and its noise draw), then the frameskip draw, then the physics
            noise = (
                self.action_noise * self.random_generator.randn(self.agent.body_info.nu) if self.action_noise else None
            )
            self.agent.apply_action(action, noise)
            sim = self.sim_conf
            nstep = int(self.random_generator.binomial(sim.frameskip_binom_n, sim.frameskip_binom_p))
            model, data = self.model, self.data
            if nstep > 0:
                mujoco.mj_step(model, data, nstep=nstep)
            mujoco.mj_forward(model, data)
            return False  # the stock loop's MujocoException is never raised (no MuJoCo callback installs it)

        def obs(self) -> np.ndarray:
            if (
                not self.fast_step
                or self.observe_vision
                or not self.observation_flatten
                or any(getattr(o, "is_comp_observed", False) for o in self._obstacles)
            ):
                return super().obs()
            mujoco.mj_forward(self.model, self.data)
            obs = self.agent.obs_sensor()
            for obstacle in self._obstacles:
                if obstacle.is_lidar_observed:
                    obs[obstacle.name + "_lidar"] = self._obs_lidar(obstacle.pos, obstacle.group)
            # what gymnasium.spaces.utils.flatten does for a Dict of Boxes, in the space's key order
            spaces = self.obs_info.obs_space_dict.spaces
            return np.concatenate([np.asarray(obs[key], dtype=box.dtype).flatten() for key, box in spaces.items()])

        def calculate_reward(self) -> float:
            dist_goal = self.dist_goal()
            reward = (self.last_dist_goal - dist_goal) * self.goal.reward_distance
            self.last_dist_goal = dist_goal
            if self.goal_achieved:
                reward += self.goal.reward_goal
            return reward

        def specific_reset(self) -> None:
            pass

        def specific_step(self) -> None:
            pass

        def update_world(self) -> None:
            self.build_goal_position()
            self.last_dist_goal = self.dist_goal()

        @property
        def goal_achieved(self) -> bool:
            return self.dist_goal() <= self.goal.size

        @property
        def constraint_violated(self) -> bool:
            return any(self.agent.dist_xy(pos) <= self.hazards.size for pos in self.hazards.pos)

    del sg
    return ReachAvoidTask


def ensure_registered() -> dict[str, type]:
    """Create and register every reach-avoid task (once per process); returns class name -> class."""
    if _CLASSES:
        return _CLASSES
    with _LOCK:
        if _CLASSES:
            return _CLASSES
        sg = import_safety_gymnasium()
        import safety_gymnasium.tasks as sg_tasks
        from safety_gymnasium.utils.registration import safe_registry

        base = _make_base_class()
        classes = {}
        for env_id in env_ids():
            level = parse_env_id(env_id)
            name = level.task_class_name
            cls = type(name, (base,), {"LEVEL": level, "__doc__": f"Reach-avoid task of {env_id}."})
            setattr(sg_tasks, name, cls)
            classes[name] = cls
            if env_id not in safe_registry:
                sg.register(
                    id=env_id,
                    entry_point="safety_gymnasium.builder:Builder",
                    kwargs={"config": {"agent_name": "Point"}, "task_id": env_id},
                    max_episode_steps=level.max_steps,
                )
        _CLASSES.update(classes)
        return _CLASSES
