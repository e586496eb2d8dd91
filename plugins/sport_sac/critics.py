"""Twin Q critics as one module with stacked weights.

The E critics (E = 2 for SAC's clipped double-Q) share their architecture, so layer l of all of them is one
tensor ``weights[l]`` of shape [E, in, out] (``x @ W`` layout) with bias [E, out], and a forward pass is one
batched matmul per layer (``baddbmm``) instead of E separate ones. Each critic is initialised exactly as an
``nn.Linear`` stack would be (U(−1/√in, 1/√in) for weights and biases).

``forward(obs, act)`` returns Q of every critic, shape [E, B].
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


class TwinCritic(nn.Module):
    """E Q-networks Q_e(s, a) = MLP_e([s, a]) with hidden widths ``hidden``."""

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
        ensemble: int = 2,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"critic activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if not hidden or any(h <= 0 for h in hidden):
            raise ValueError(f"critic hidden must be positive layer widths, got {tuple(hidden)}")
        if ensemble < 1:
            raise ValueError(f"need at least one critic, got ensemble={ensemble}")
        self.obs_dim, self.act_dim, self.ensemble = int(obs_dim), int(act_dim), int(ensemble)
        self.hidden, self.activation = tuple(int(h) for h in hidden), activation
        sizes = [self.obs_dim + self.act_dim, *self.hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(ensemble, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(ensemble, fan_out).uniform_(-bound, bound)))

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Q-values [E, B] of the batch ``(obs [B, obs_dim], act [B, act_dim])`` under every critic."""
        x = torch.cat([obs, act], dim=-1)
        h = x.unsqueeze(0).expand(self.ensemble, *x.shape)
        act_fn = ACTIVATIONS[self.activation]
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = torch.baddbmm(b.unsqueeze(1), h, w)
            if i < self.n_layers - 1:
                h = act_fn(h)
        return h.squeeze(-1)
