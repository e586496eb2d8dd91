"""A hand-set goal-seeking gaussian-mlp policy and a stage that saves it (stands in for a trainer in tests).

On the point mass, μ = gain·(goal − position) exactly (ReLU units on ± the first two observations) and
σ = std everywhere: with noise it reaches the goal in 12–27 steps mostly, sometimes hits the hazard and
sometimes runs out of steps, which gives a k(T) curve with some shape.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import attrs

from sport_core import Component, hookimpl, testing
from sport_core.config import unstructure
from sport_core.registry import Registry
from sport_core.weights import ModelCard, save_policy
from sport_policies import plugin as policies_plugin


@functools.cache
def _policies() -> Registry:
    """A registry holding just the built-in policy components (no plugin manager needed)."""
    registry = Registry()
    registry.add_all([("policy", c) for c in policies_plugin.sport_register_policies()], "policies")
    return registry


def goal_seeking_policy(obs_dim: int = 7, gain: float = 2.0, std: float = 1.0) -> Any:
    """μ = gain·(goal − position), σ = std: :func:`sport_core.testing.goal_seeking_policy`."""
    return testing.goal_seeking_policy(_policies(), obs_dim, gain, std)


@attrs.frozen
class HandPolicyConfig:
    gain: float = 2.0
    std: float = 1.0


class HandPolicyStage:
    """Saves :func:`goal_seeking_policy` for the stage's env, with its model card (two artifacts, as trainers)."""

    needs_env = True

    def __init__(self, config: HandPolicyConfig) -> None:
        self.config = config

    def run(self, ctx: Any) -> dict[str, Path]:
        obs_dim = ctx.env.make().observation_space.shape[0]
        policy = goal_seeking_policy(obs_dim, self.config.gain, self.config.std)
        card = ModelCard("gaussian-mlp", unstructure(policy.config), obs_dim, 2, (1.0, 1.0), (0.0, 0.0))
        weights = save_policy(ctx.stage_dir / "policy", policy, card)
        return {"policy": weights, "card": weights.with_suffix(".json")}


class HandPolicyPlugin:
    @hookimpl
    def sport_register_evaluators(self):
        return [Component("hand-policy", HandPolicyStage, HandPolicyConfig, "a hand-set goal-seeking policy")]
