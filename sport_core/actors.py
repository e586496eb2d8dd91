"""Actors: picklable policies for rollouts (:class:`sport_core.protocols.Actor`).

Every actor draws its randomness only from the episode's ``torch.Generator``; with the same generator
state, the same observations give the same actions in any process.
"""

from __future__ import annotations

import numpy as np
import torch


class RandomActor:
    """Uniform actions on the box [low, high] (a baseline, and the burn-in policy of off-policy trainers)."""

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray, generator: torch.Generator) -> np.ndarray:
        u = torch.rand(self.low.shape, generator=generator, dtype=torch.float64).numpy()
        return self.low + (self.high - self.low) * u


class PolicyActor:
    """Wraps a policy module (anything with ``act(obs[B, n], generator, deterministic) -> actions[B, m]``)."""

    def __init__(self, policy: torch.nn.Module, deterministic: bool = False) -> None:
        self.policy = policy
        self.deterministic = deterministic

    def reset(self) -> None:
        pass

    @torch.no_grad()
    def act(self, obs: np.ndarray, generator: torch.Generator) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
        action = self.policy.act(x, generator=generator, deterministic=self.deterministic)
        return action[0].to(torch.float64).numpy()
