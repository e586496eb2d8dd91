"""A hand-set goal-seeking gaussian-mlp policy and a stage that saves it (stands in for a trainer in tests).

On the point mass, μ = gain·(goal − position) exactly (ReLU units on ± the first two observations) and
σ = std everywhere: with noise it reaches the goal in 12–27 steps mostly, sometimes hits the hazard and
sometimes runs out of steps, which gives a k(T) curve with some shape.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs
import torch

from sport_core import Component, hookimpl
from sport_core.config import unstructure
from sport_core.weights import ModelCard, save_policy
from sport_policies.gaussian import GaussianMLPConfig, GaussianMLPPolicy


def goal_seeking_policy(obs_dim: int = 7, gain: float = 2.0, std: float = 1.0) -> GaussianMLPPolicy:
    """μ = gain·(goal − position), σ = std (see the module docstring)."""
    config = GaussianMLPConfig(hidden=(4,))
    policy = GaussianMLPPolicy(obs_dim, 2, (1.0, 1.0), (0.0, 0.0), config)
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
        w = torch.zeros(4, obs_dim)
        w[0, 0], w[1, 1], w[2, 0], w[3, 1] = 1.0, 1.0, -1.0, -1.0
        policy.trunk[0].weight.copy_(w)
        policy.mu_head.weight.copy_(gain * torch.tensor([[1.0, 0, -1, 0], [0, 1, 0, -1]]))
        u = (math.log(std) - config.log_std_min) / (config.log_std_max - config.log_std_min) * 2 - 1
        policy.log_std_head.bias.fill_(math.atanh(u))
    return policy


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
