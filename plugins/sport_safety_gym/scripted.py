"""A scripted reach-avoid controller for the Point robot that reads only the lidar (tests and benchmarks).

The pseudo-lidar puts an object at ego angle ``(b + a)·w`` (bin width w = 2π/16) and distance d into bin b
as ``exp(-0.5 d)`` and aliases ``a·exp(-0.5 d)`` into bin b+1, so the brightest bin and its successor give
the object's ego angle and distance exactly. The controller steers toward the goal; when the straight line
passes within ``hazard_radius + margin`` of the hazard centre, it aims at the tangent of that enlarged disc
on the goal's side instead (the side is chosen once per episode, so noise cannot make it dither into the
hazard); once inside that disc it uses the tighter ``hazard_radius + inner_margin``. Optional Gaussian
noise (from the episode's generator only) makes episodes differ, as a stochastic policy's would.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sport_safety_gym.levels import LIDAR_BINS, LIDAR_EXP_GAIN

GOAL_LIDAR = slice(12, 28)
HAZARD_LIDAR = slice(28, 44)
_BIN = 2 * math.pi / LIDAR_BINS


def lidar_target(bins: np.ndarray) -> tuple[float, float] | None:
    """(distance, ego angle in (-π, π]) of the single object seen by a pseudo-lidar block; None if unseen."""
    b = int(np.argmax(bins))
    peak = float(bins[b])
    if peak <= 0.0:
        return None
    alias = float(bins[(b + 1) % LIDAR_BINS]) / peak
    angle = (b + alias) * _BIN
    angle = math.atan2(math.sin(angle), math.cos(angle))
    return -math.log(peak) / LIDAR_EXP_GAIN, angle


class LidarGoalSeeker:
    """A picklable :class:`sport_core.protocols.Actor` for the reach-avoid tasks (44-dim observations).

    ``act`` returns (forward, turn) in [-1, 1]: turn ∝ heading error, forward throttled while the error is
    large. ``noise_std`` adds N(0, noise_std²) to both components before clipping.
    """

    def __init__(
        self,
        hazard_radius: float = 0.5,
        margin: float = 0.25,
        inner_margin: float = 0.1,
        turn_gain: float = 4.0,
        noise_std: float = 0.0,
    ) -> None:
        self.hazard_radius = hazard_radius
        self.margin = margin
        self.inner_margin = inner_margin
        self.turn_gain = turn_gain
        self.noise_std = noise_std
        self._side = 0.0

    def reset(self) -> None:
        self._side = 0.0

    def heading(self, obs: np.ndarray) -> float:
        """The ego angle to steer toward (0 when the goal is not seen)."""
        goal = lidar_target(obs[GOAL_LIDAR])
        if goal is None:
            return 0.0
        goal_dist, goal_angle = goal
        hazard = lidar_target(obs[HAZARD_LIDAR])
        if hazard is None:
            return goal_angle
        hazard_dist, hazard_angle = hazard
        if hazard_dist >= goal_dist:
            return goal_angle
        clearance = self.hazard_radius + self.margin
        if hazard_dist <= clearance:
            clearance = self.hazard_radius + self.inner_margin
        off = math.atan2(math.sin(goal_angle - hazard_angle), math.cos(goal_angle - hazard_angle))
        half_width = math.asin(min(1.0, clearance / hazard_dist))
        if abs(off) >= half_width:
            return goal_angle
        if self._side == 0.0:
            self._side = 1.0 if off >= 0 else -1.0
        return hazard_angle + self._side * half_width

    def act(self, obs: np.ndarray, generator: torch.Generator) -> np.ndarray:
        error = self.heading(np.asarray(obs, dtype=np.float64))
        turn = self.turn_gain * error
        forward = max(0.0, math.cos(error))
        action = np.array([forward, turn], dtype=np.float64)
        if self.noise_std > 0:
            action += self.noise_std * torch.randn(2, generator=generator, dtype=torch.float64).numpy()
        return np.clip(action, -1.0, 1.0)
