"""Space checks for trainers of squashed-Gaussian policies: a flat Box observation, a bounded Box action.

A policy acts with ``a = tanh(x) · scale + bias``; :func:`box_spaces` reads ``scale = (high − low) / 2`` and
``bias = (high + low) / 2`` from the env's action box and refuses any other kind of space with one line
naming the stage and the trainer.
"""

from __future__ import annotations

from typing import Any

import attrs
import gymnasium as gym
import numpy as np

from sport_core.errors import SportError


@attrs.frozen
class BoxSpaces:
    """What a policy builder needs: dims, and the affine map from tanh's (−1, 1) onto the action box."""

    obs_dim: int
    act_dim: int
    action_scale: tuple[float, ...]
    action_bias: tuple[float, ...]

    @property
    def low(self) -> np.ndarray:
        return np.asarray(self.action_bias) - np.asarray(self.action_scale)

    @property
    def high(self) -> np.ndarray:
        return np.asarray(self.action_bias) + np.asarray(self.action_scale)


def box_spaces(env: Any, stage: str, trainer: str) -> BoxSpaces:
    """The :class:`BoxSpaces` of ``env``, or a :class:`SportError` naming ``stage`` and ``trainer``."""
    obs_space, act_space = env.observation_space, env.action_space
    bounded = (
        isinstance(act_space, gym.spaces.Box)
        and np.all(np.isfinite(act_space.low))
        and np.all(np.isfinite(act_space.high))
    )
    if not bounded:
        raise SportError(f"stage {stage!r}: {trainer} needs a bounded Box action space, got {act_space}")
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise SportError(f"stage {stage!r}: {trainer} needs a flat Box observation space, got {obs_space}")
    low, high = act_space.low.astype(np.float64), act_space.high.astype(np.float64)
    return BoxSpaces(
        int(obs_space.shape[0]),
        int(act_space.shape[0]),
        tuple(float(x) for x in (high - low) / 2.0),
        tuple(float(x) for x in (high + low) / 2.0),
    )
