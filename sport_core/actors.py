"""Actors: picklable policies for rollouts (:class:`sport_core.protocols.Actor`).

Every actor draws its randomness only from the episode's ``torch.Generator``; with the same generator
state, the same observations give the same actions in any process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import torch


def draw_noise(generators: Sequence[torch.Generator], like: torch.Tensor) -> torch.Tensor:
    """ε ~ N(0, I) shaped like ``like`` [B, d]: row j from ``generators[j]``, drawn exactly as a single-row
    :meth:`Policy.act` draws it (``torch.randn((1, d), generator=…)``), so a batched env step gives each
    episode the same numbers it would get alone (common random numbers whatever the batch)."""
    if len(generators) != like.shape[0]:
        raise ValueError(f"{len(generators)} generators for {like.shape[0]} rows")
    shape = (1, *like.shape[1:])
    rows = [torch.randn(shape, generator=g, dtype=like.dtype, device=like.device) for g in generators]
    return torch.cat(rows) if len(rows) > 1 else rows[0]


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Σ_i log N(x_i; μ_i, σ_i²) over the last dimension (pre-tanh densities: where ratios are defined)."""
    return torch.distributions.Normal(mu, std).log_prob(x).sum(-1)


@attrs.frozen(eq=False)
class PolicySample:
    """One batched draw: env ``action`` = squash(``x``), pre-tanh ``x`` ~ N(``mu``, ``std``²) and its
    ``log_prob`` [B]; for a projected draw also the ``base`` and ``task`` parameters it was projected from."""

    action: torch.Tensor
    x: torch.Tensor
    log_prob: torch.Tensor
    mu: torch.Tensor
    std: torch.Tensor
    base: tuple[torch.Tensor, torch.Tensor] | None = None
    task: tuple[torch.Tensor, torch.Tensor] | None = None


@torch.no_grad()
def sample_policy(policy: Any, obs: torch.Tensor, generators: Sequence[torch.Generator]) -> PolicySample:
    """Act with a :class:`sport_core.protocols.Policy` on a batch, row j with ``generators[j]``."""
    mu, std = policy(obs)
    x = mu + std * draw_noise(generators, mu)
    return PolicySample(policy.squash(x), x, gaussian_log_prob(x, mu, std), mu, std)


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


class ProjectedActor:
    """Acts with the projection of a task policy onto the α-ratio set of a base policy.

    At each observation it takes the pre-tanh Gaussians of both policies, ``(μb, σb) = base(obs)`` and
    ``(μt, σt) = task(obs)``, projects them with ``projection`` (a :class:`sport_core.protocols.Projection`,
    e.g. the registry's ``gaussian-kl``) to ``(μp, σp)`` with sup_x p(x)/b(x) ≤ α, draws
    ``x = μp + σp·ε`` with ε ~ N(0, I) from the episode's generator, and returns ``base.squash(x)``.

    Because ε is drawn exactly as :meth:`GaussianMLPPolicy.act` draws it (same shape, dtype and generator
    call), episode i sees the same ε under every α (common random numbers), α = 1 acts bitwise like the base
    (the projection returns the base there) and a task that already meets the bound acts bitwise like the
    task. Both policies must share observation and action spaces (the base's squash is used).

    :meth:`sample` does the same for a batch of observations (one projection call for all rows, row j drawing
    from generator j) and also returns the pre-tanh x, log p_proj(x) and both policies' parameters: what a
    trainer that acts with the projected policy (Projected PPO) keeps.

    The policies are used only through :class:`sport_core.protocols.Policy` (``forward`` and ``squash``).

    ``steps`` counts projected observations; ``fallbacks`` is the projection's running count of rows it
    replaced by the base (invalid input or a failed verification). The counts live in this object, so in a
    worker process they stay with the worker's copy: whoever needs them must send them back (the sweep
    evaluator returns them with each chunk's records).
    """

    def __init__(self, base: torch.nn.Module, task: torch.nn.Module, projection: Any, alpha: float) -> None:
        alpha = float(alpha)
        if not (math.isfinite(alpha) and alpha >= 1.0):
            raise ValueError(f"the ratio bound alpha must be a finite number >= 1, got {alpha}")
        self.base = base
        self.task = task
        self.projection = projection
        self.alpha = alpha
        self.steps = 0

    @property
    def fallbacks(self) -> int:
        return int(self.projection.fallbacks)

    def reset(self) -> None:
        pass

    @torch.no_grad()
    def distribution(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The projected pre-tanh (μp, σp) for a batch of observations ``[B, n]`` (no autograd history)."""
        return self.projection.project(self.base(obs), self.task(obs), self.alpha)

    @torch.no_grad()
    def sample(self, obs: torch.Tensor, generators: Sequence[torch.Generator]) -> PolicySample:
        """Projected actions for observations ``[B, n]``, row j drawing its noise from ``generators[j]``."""
        base, task = self.base(obs), self.task(obs)
        mu, std = self.projection.project(base, task, self.alpha)
        self.steps += obs.shape[0]
        x = mu + std * draw_noise(generators, mu)
        return PolicySample(self.base.squash(x), x, gaussian_log_prob(x, mu, std), mu, std, base, task)

    @torch.no_grad()
    def act(self, obs: np.ndarray, generator: torch.Generator) -> np.ndarray:
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
        mu, std = self.distribution(x)
        self.steps += 1
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return self.base.squash(mu + std * eps)[0].to(torch.float64).numpy()
