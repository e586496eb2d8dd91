"""The PPO update: clipped surrogate, value loss, entropy bonus, global grad-norm clip, Adam.

For a rollout (states s, pre-tanh samples x, behaviour log-densities log q(x|s), advantages A and returns
R from GAE), each of ``update_epochs`` passes shuffles the rollout into ``num_minibatches`` minibatches and
takes one Adam step on each:

    r = exp(log π_θ(x|s) − log q(x|s)),   A ← (A − mean A) / (std A + 1e-8) per minibatch,
    L = mean max(−A r, −A clip(r, 1 − c, 1 + c)) − c_H · mean H[π_θ(·|s)] + c_V · mean ½ (V(s) − R)².

What "log π_θ" is comes from a :data:`LogProb` function: the task policy's own density (PPO, and the
paper's Projected PPO, where q is the projected behaviour policy) or the projected policy's density
computed through the projection (``through_projection``). During the critic warm-up only c_V·½(V − R)² is
minimised, by a separate Adam on the critic (the actor is frozen). Densities are on the pre-tanh x.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from sport_core.actors import gaussian_log_prob

#: (actor, obs [N, n], x [N, d]) -> (log-density of x [N], entropy [N]), differentiable in the actor.
LogProb = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def task_log_prob(actor: nn.Module, obs: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The task policy's own pre-tanh density and entropy (PPO; Projected PPO as in the paper)."""
    mu, std = actor(obs)
    return gaussian_log_prob(x, mu, std), torch.distributions.Normal(mu, std).entropy().sum(-1)


class ProjectedLogProb:
    """log p_proj,θ(x|s) with p_proj,θ = project(base(s), π_θ(s), α), differentiated through the projection
    (the projection component must be built with gradients on, e.g. ``gaussian-kl`` ``differentiable``)."""

    def __init__(self, base: nn.Module, projection: Any, alpha: float) -> None:
        self.base, self.projection, self.alpha = base, projection, alpha

    def __call__(self, actor: nn.Module, obs: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            base = self.base(obs)
        mu, std = self.projection.project(base, actor(obs), self.alpha)
        mu, std = mu.to(x.dtype), std.to(x.dtype)
        return gaussian_log_prob(x, mu, std), torch.distributions.Normal(mu, std).entropy().sum(-1)


class ValueMLP(nn.Module):
    """The critic: obs → hidden layers → V(s)."""

    def __init__(self, obs_dim: int, hidden: tuple[int, ...], activation: str) -> None:
        super().__init__()
        act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
        layers: list[nn.Module] = []
        sizes = [obs_dim, *hidden]
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), act()]
        layers.append(nn.Linear(sizes[-1], 1))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


def gae(
    rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, last_values: np.ndarray, gamma: float, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns [T, B] by GAE(λ).

    ``dones[t]``: the episode ended with step t (nothing is bootstrapped past it; a truncation's bootstrap
    value is already in ``rewards[t]``); ``last_values``: V of the observations after the rollout.
    δ_t = r_t + γ (1 − d_t) V_{t+1} − V_t,  A_t = δ_t + γλ (1 − d_t) A_{t+1},  R_t = A_t + V_t.
    """
    steps = rewards.shape[0]
    adv = np.zeros_like(rewards)
    last = np.zeros_like(last_values)
    for t in reversed(range(steps)):
        next_values = last_values if t == steps - 1 else values[t + 1]
        live = 1.0 - dones[t]
        delta = rewards[t] + gamma * live * next_values - values[t]
        last = delta + gamma * lam * live * last
        adv[t] = last
    return adv, adv + values


class PPOLearner:
    """Actor, critic and their optimisers on ``device``; :meth:`update` is one PPO update on a rollout."""

    def __init__(
        self,
        actor: nn.Module,
        critic: nn.Module,
        config: Any,
        generator: torch.Generator,
        device: torch.device,
        log_prob: LogProb = task_log_prob,
    ) -> None:
        self.actor, self.critic = actor.to(device), critic.to(device)
        self.config, self.generator, self.device, self.log_prob = config, generator, device, log_prob
        params = [*self.actor.parameters(), *self.critic.parameters()]
        self.opt = torch.optim.Adam(params, lr=config.learning_rate, eps=config.adam_eps)
        self.warmup_opt = torch.optim.Adam(self.critic.parameters(), lr=config.warmup_lr, eps=config.adam_eps)

    @torch.no_grad()
    def values(self, obs: np.ndarray) -> np.ndarray:
        """V(s) for observations [..., n] (float64 out)."""
        flat = torch.as_tensor(obs.reshape(-1, obs.shape[-1]), dtype=torch.float32, device=self.device)
        return self.critic(flat).double().cpu().numpy().reshape(obs.shape[:-1])

    def update(self, batch: dict[str, np.ndarray], warmup: bool) -> dict[str, float]:
        """One update on a flattened rollout (``obs``, ``x``, ``logp``, ``adv``, ``ret``, ``values``)."""
        cfg, dev = self.config, self.device
        t = {k: torch.as_tensor(v, dtype=torch.float32, device=dev) for k, v in batch.items()}
        n = t["obs"].shape[0]
        size = n // cfg.num_minibatches
        sums = {"pg": 0.0, "v": 0.0, "ent": 0.0, "kl": 0.0, "clip": 0.0}
        count = 0
        params = [*self.actor.parameters(), *self.critic.parameters()]
        for _ in range(cfg.update_epochs):
            order = torch.randperm(n, generator=self.generator).to(dev)
            for start in range(0, n, size):
                mb = order[start : start + size]
                obs = t["obs"][mb]
                v_loss = 0.5 * (self.critic(obs) - t["ret"][mb]).square().mean()
                if warmup:
                    self.warmup_opt.zero_grad(set_to_none=True)
                    (cfg.vf_coef * v_loss).backward()
                    nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.max_grad_norm)
                    self.warmup_opt.step()
                    sums["v"] += v_loss.item()
                    count += 1
                    continue
                logp, entropy = self.log_prob(self.actor, obs, t["x"][mb])
                log_ratio = logp - t["logp"][mb]
                ratio = log_ratio.exp()
                adv = t["adv"][mb]
                if cfg.norm_adv:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
                ent = entropy.mean()
                loss = pg_loss - cfg.ent_coef * ent + cfg.vf_coef * v_loss
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                self.opt.step()
                with torch.no_grad():
                    sums["pg"] += pg_loss.item()
                    sums["v"] += v_loss.item()
                    sums["ent"] += ent.item()
                    sums["kl"] += float(((ratio - 1) - log_ratio).mean())
                    sums["clip"] += float(((ratio - 1).abs() > cfg.clip_coef).float().mean())
                count += 1
        ret, values = batch["ret"], batch["values"]
        var = float(np.var(ret))
        out = {"loss/value": sums["v"] / count, "value/explained_variance": 1 - float(np.var(ret - values)) / var}
        if var == 0:
            out["value/explained_variance"] = float("nan")
        if not warmup:
            out.update(
                {
                    "loss/policy": sums["pg"] / count,
                    "policy/entropy": sums["ent"] / count,
                    "policy/approx_kl": sums["kl"] / count,
                    "policy/clip_fraction": sums["clip"] / count,
                }
            )
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "opt": self.opt.state_dict(),
            "warmup_opt": self.warmup_opt.state_dict(),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["opt"])
        self.warmup_opt.load_state_dict(state["warmup_opt"])
        self.generator.set_state(state["generator"])
