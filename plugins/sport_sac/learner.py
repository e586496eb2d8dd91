"""The SAC learner: networks, optimisers, entropy coefficient and one update step.

One call of :meth:`SACLearner.update` on a batch (s, a, r, s', d, importance weights w) does, in order:

1. **Critics.** Target y = r + γ(1 − d)(min_e Q̄_e(s', a') − α log π(a'|s')) with a' ~ π(·|s') and Q̄ the
   Polyak-averaged target critics; loss Σ_e mean_b w_b (Q_e(s_b, a_b) − y_b)²; one Adam step. The TD errors
   δ_b = Q_1(s_b, a_b) − y_b give the new replay priorities.
2. **Actor, every ``policy_delay``-th call, ``policy_delay`` times** (the delayed-actor schedule with the
   same average number of actor steps as critic steps): loss mean_b(α log π(ã_b|s_b) − min_e Q_e(s_b, ã_b))
   with reparameterised ã ~ π(·|s); gradients reach the actor only. After each actor step, if α is tuned,
   one Adam step on log α with loss −log α · mean(log π + H̄) (H̄ the target entropy), reusing that step's
   log π rather than sampling again.
3. **Targets.** Q̄ ← (1 − τ) Q̄ + τ Q.

Two engines compute exactly this: ``autograd`` (plain PyTorch autograd, the readable definition) and
``fused`` (:mod:`sport_sac.fused`: hand-derived gradients, no wasted weight gradients, oneDNN matmuls). Both
step their optimisers with :func:`sport_sac.optim.adam_step` (``Adam.step()`` bit for bit, less Python;
``private_ops=False``: no private, underscore-prefixed torch operator: plain ``step()``, one ``lerp_`` per
target tensor, the fused engine's products through the BLAS). On one thread of a
2-core "Intel(R) Xeon(R) Processor" (AVX-512 and AMX; no finer model name), batch 512, 256×256 networks, the
fused update took 15.99 ms against Stable-Baselines3's 28.2 ms (1.80×) by default and 24.88 against 39.67 ms
(1.63×) with the ISA capped to AVX2; the autograd engine 1.34× and 1.25× (``benchmarks/sac.py [--isa avx2]``,
SB3 interleaved in blocks of 5 updates, on a busy day for that machine; lines with ``"code": "f627eec"`` in
``benchmarks/results/sac.jsonl``).
They agree to float32 rounding.
All noise comes from one ``torch.Generator`` in a fixed order, so a run is reproducible and resumable.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from sport_sac.critics import TwinCritic
from sport_sac.optim import adam_step, public_step


@attrs.frozen
class LearnerParams:
    """The update's hyperparameters (see :class:`sport_sac.config.SACConfig` for their meaning)."""

    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 1e-3
    alpha_lr: float = 1e-3
    initial_alpha: float = 0.1
    autotune_alpha: bool = True
    target_entropy: float = 0.0
    policy_delay: int = 1


@attrs.define(eq=False)
class UpdateStats:
    """What one update reports: losses as floats, ``td_abs`` |δ| per batch row for the priorities."""

    critic_loss: float
    q_mean: float
    td_abs: np.ndarray
    actor_steps: int = 0
    actor_loss: float = 0.0
    entropy: float = 0.0
    alpha_loss: float = 0.0


class SACLearner:
    """Holds actor, twin critics, target critics, their Adam optimisers and log α."""

    def __init__(
        self,
        actor: nn.Module,
        critic: TwinCritic,
        params: LearnerParams,
        generator: torch.Generator,
        engine: str = "fused",
        matmul: str = "auto",
        passes: str = "auto",
        private_ops: bool = True,
    ) -> None:
        if engine not in ("fused", "autograd"):
            raise ValueError(f"engine must be 'fused' or 'autograd', got {engine!r}")
        if not private_ops:  # no private (underscore) torch operator: BLAS products, Optimizer.step(), lerp_
            if matmul == "onednn":
                raise ValueError("matmul 'onednn' uses a private torch operator; with private_ops off use 'blas'")
            matmul = "blas"
        self.private_ops = private_ops
        #: one optimiser step: the fused kernel called directly (bit-identical), or plain ``step()``
        self.step_optimizer = adam_step if private_ops else public_step
        self.actor, self.critic, self.params, self.generator = actor, critic, params, generator
        device = next(critic.parameters()).device  # the learner runs where its networks are
        self.critic_target = (
            TwinCritic(critic.obs_dim, critic.act_dim, critic.hidden, critic.activation, critic.ensemble)
            .to(device)
            .requires_grad_(False)
        )
        self.critic_target.load_state_dict(critic.state_dict())
        # One fused kernel per optimiser step (sport_sac.optim.adam_step); both engines use the same optimisers.
        self.actor_opt = torch.optim.Adam(actor.parameters(), lr=params.actor_lr, fused=True)
        self.critic_opt = torch.optim.Adam(critic.parameters(), lr=params.critic_lr, fused=True)
        self.log_alpha = nn.Parameter(
            torch.tensor(math.log(params.initial_alpha), device=device), requires_grad=params.autotune_alpha
        )
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=params.alpha_lr, fused=True)
        self.updates = 0
        self.engine = engine
        self._polyak = (list(self.critic_target.parameters()), list(self.critic.parameters()))
        if engine == "fused":
            from sport_sac.fused import FusedUpdate

            self._fused = FusedUpdate(self, matmul, passes)

    @property
    def alpha(self) -> float:
        return math.exp(float(self.log_alpha.detach()))

    def update(self, obs, act, rew, next_obs, done, weights=None) -> UpdateStats:
        """One SAC update on a batch of float32 tensors (``weights`` None means all 1)."""
        self.updates += 1
        actor_steps = self.params.policy_delay if self.updates % self.params.policy_delay == 0 else 0
        if self.engine == "fused":
            stats = self._fused.update(obs, act, rew, next_obs, done, weights, actor_steps)
        else:
            stats = self._autograd_update(obs, act, rew, next_obs, done, weights, actor_steps)
        with torch.inference_mode():  # in place on the target parameters, which stay normal tensors
            if self.private_ops:
                torch._foreach_lerp_(self._polyak[0], self._polyak[1], self.params.tau)
            else:  # public API only: one lerp_ per tensor
                for target, source in zip(*self._polyak, strict=True):
                    target.lerp_(source, self.params.tau)
        return stats

    # -- the readable definition ---------------------------------------------------------------

    def _autograd_update(self, obs, act, rew, next_obs, done, weights, actor_steps: int) -> UpdateStats:
        p, g = self.params, self.generator
        alpha = self.alpha
        with torch.no_grad():
            next_act, next_logp, _ = self.actor.sample(next_obs, generator=g)
            next_q = self.critic_target(next_obs, next_act).min(0).values
            target = rew + p.gamma * (1.0 - done) * (next_q - alpha * next_logp)
        q = self.critic(obs, act)
        td = q - target
        sq = td.square() if weights is None else td.square() * weights
        critic_loss = sq.mean(1).sum()
        critic_params = list(self.critic.parameters())
        for param, grad in zip(critic_params, torch.autograd.grad(critic_loss, critic_params), strict=True):
            param.grad = grad
        self.step_optimizer(self.critic_opt)
        stats = UpdateStats(critic_loss.item(), q.mean().item(), td[0].detach().abs().cpu().numpy().copy())
        actor_params = list(self.actor.parameters())
        for _ in range(actor_steps):
            new_act, logp, _ = self.actor.sample(obs, generator=g)
            actor_loss = (alpha * logp - self.critic(obs, new_act).min(0).values).mean()
            for param, grad in zip(actor_params, torch.autograd.grad(actor_loss, actor_params), strict=True):
                param.grad = grad
            self.step_optimizer(self.actor_opt)
            alpha = self._alpha_step(float(logp.detach().mean()), stats)
            stats.actor_steps += 1
            stats.actor_loss += actor_loss.item()
            stats.entropy += -logp.mean().item()
        return stats

    def _alpha_step(self, mean_logp: float, stats: UpdateStats) -> float:
        """One Adam step on log α with loss −log α · (mean log π + H̄) given the batch's mean log π; returns the
        new α."""
        if self.params.autotune_alpha:
            gap = mean_logp + self.params.target_entropy
            if self.log_alpha.grad is None:
                with torch.inference_mode(False):  # the fused engine steps in inference mode: a normal .grad
                    self.log_alpha.grad = torch.zeros_like(self.log_alpha)
            self.log_alpha.grad.fill_(-gap)
            self.step_optimizer(self.alpha_opt)
            stats.alpha_loss += -float(self.log_alpha.detach()) * gap
        return self.alpha

    # -- exact save / restore -------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only (loadable with ``torch.load(weights_only=True)``)."""
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "alpha_opt": self.alpha_opt.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "updates": self.updates,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.updates = int(state["updates"])
        self.generator.set_state(state["generator"])
