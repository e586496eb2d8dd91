"""The squashed diagonal-Gaussian MLP policy.

The network maps an observation to the *pre-tanh* Gaussian N(μ, diag σ²) (what the projection works on);
an action is ``a = tanh(x) · scale + bias`` with ``x ~ N(μ, σ²)``. The log-std head is bounded smoothly:
``log σ = lo + (hi − lo) · (tanh(raw) + 1) / 2`` (lo = −5, hi = 2 by default).

Log-density of the squashed action (change of variables, per dimension):
``log π(a) = log N(x; μ, σ²) − log(scale) − log(1 − tanh²x)``, with the stable form
``log(1 − tanh² x) = 2 (log 2 − x − softplus(−2x))``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import attrs
import torch
from torch import nn
from torch.nn import functional as F

from sport_core.protocols import GaussianMLPLayout

_LOG_2PI = math.log(2 * math.pi)


@attrs.frozen
class GaussianMLPConfig:
    """``hidden`` layer widths, their ``activation`` and the log-std range."""

    hidden: tuple[int, ...] = (256, 256)
    activation: Literal["relu", "tanh"] = "relu"
    log_std_min: float = -5.0
    log_std_max: float = 2.0

    def __attrs_post_init__(self) -> None:
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f"log_std_min ({self.log_std_min}) must be below log_std_max ({self.log_std_max})")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise ValueError(f"hidden must be positive layer widths, got {self.hidden}")


def mlp(sizes: Sequence[int], activation: str, out_activation: bool = False) -> nn.Sequential:
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or out_activation:
            layers.append(act())
    return nn.Sequential(*layers)


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Σ_i log N(x_i; μ_i, σ_i²) over the last dimension."""
    z = (x - mu) / std
    return (-0.5 * z.pow(2) - std.log() - 0.5 * _LOG_2PI).sum(-1)


def squashed_log_prob(x: torch.Tensor, mu: torch.Tensor, std: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """log π(a) for ``a = tanh(x)·scale + bias``: the Gaussian log-density minus the tanh/scale Jacobian."""
    log_det = (2.0 * (math.log(2.0) - x - F.softplus(-2.0 * x)) + scale.log()).sum(-1)
    return gaussian_log_prob(x, mu, std) - log_det


class GaussianMLPPolicy(nn.Module):
    """obs → (μ, σ) of the pre-tanh Gaussian; ``act`` and ``sample`` squash into the action box.

    Satisfies :class:`sport_core.protocols.Policy` (and gives its optional ``sample`` and ``mlp_layout``)."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        action_scale: Sequence[float],
        action_bias: Sequence[float],
        config: GaussianMLPConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = config or GaussianMLPConfig()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.trunk = mlp([self.obs_dim, *self.config.hidden], self.config.activation, out_activation=True)
        self.mu_head = nn.Linear(self.config.hidden[-1], self.act_dim)
        self.log_std_head = nn.Linear(self.config.hidden[-1], self.act_dim)
        self.register_buffer("action_scale", torch.as_tensor(action_scale, dtype=torch.float32).reshape(act_dim))
        self.register_buffer("action_bias", torch.as_tensor(action_bias, dtype=torch.float32).reshape(act_dim))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean and standard deviation, each [B, act_dim]."""
        h = self.trunk(obs)
        lo, hi = self.config.log_std_min, self.config.log_std_max
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(self.log_std_head(h)) + 1.0)
        return self.mu_head(h), log_std.exp()

    distribution = forward

    def squash(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-tanh sample → env action."""
        return torch.tanh(x) * self.action_scale + self.action_bias

    def sample(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reparameterised sample: (env action, log π(action), pre-tanh x), differentiable in the parameters."""
        mu, std = self(obs)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        x = mu + std * eps
        return self.squash(x), squashed_log_prob(x, mu, std, self.action_scale), x

    def log_prob(self, obs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log N(x; μ(obs), σ(obs)²) of pre-tanh samples (the density the policy ratio is defined on)."""
        mu, std = self(obs)
        return gaussian_log_prob(x, mu, std)

    def mlp_layout(self) -> GaussianMLPLayout:
        """The layers as :class:`sport_core.protocols.GaussianMLPLayout` (the module's own tensors)."""
        return GaussianMLPLayout(
            trunk=tuple(self.trunk),
            mu_head=self.mu_head,
            log_std_head=self.log_std_head,
            log_std_min=float(self.config.log_std_min),
            log_std_max=float(self.config.log_std_max),
            action_scale=self.action_scale,
            action_bias=self.action_bias,
        )

    @torch.no_grad()
    def act(
        self, obs: torch.Tensor, generator: torch.Generator | None = None, deterministic: bool = False
    ) -> torch.Tensor:
        """Env actions [B, act_dim]: the squashed mean, or a squashed sample drawn with ``generator``."""
        mu, std = self(obs)
        if deterministic:
            return self.squash(mu)
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return self.squash(mu + std * eps)


def gaussian_mlp_builder(config: GaussianMLPConfig):
    """The ``gaussian-mlp`` factory: returns ``build(obs_dim, act_dim, action_scale, action_bias)``."""

    def build(
        obs_dim: int, act_dim: int, action_scale: Sequence[float], action_bias: Sequence[float]
    ) -> GaussianMLPPolicy:
        return GaussianMLPPolicy(obs_dim, act_dim, action_scale, action_bias, config)

    return build
