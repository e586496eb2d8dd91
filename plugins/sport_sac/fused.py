"""The SAC update with hand-derived gradients: same math as :meth:`SACLearner._autograd_update`, faster.

Why: on one CPU core a SAC step at batch 512 is a chain of ~40 matmuls, which autograd surrounds with
allocations, mask products and weight gradients nobody uses. Here every matmul goes through
:mod:`sport_sac.kernels` (oneDNN where it is faster, with the bias and activation fused in) and only the
gradients that feed an optimiser are computed:

* critic step: forward Q_e(s, a) for each critic, then back-propagate ∂L/∂Q_e = 2 w (Q_e − y)/B to the
  weights;
* actor step: ∂L/∂ã needs only the *input* gradient of min_e Q_e, and each row gets it from the critic that
  attains the minimum only (the first one on a tie, as autograd's ``min(0)``), so the backward pass runs once
  per row (rows grouped by critic) instead of once per critic, and no critic weight gradient is formed;
* weight gradients are BLAS products written straight into ``.grad`` (oneDNN would first copy the transposed
  operand), and the first actor step shares one actor forward pass with the target (the actor does not
  change in between), the noise still drawn in the autograd engine's order;
* the critic step runs critic by critic (forward, then at once its backward pass, whose activations are then
  still in cache: ∂L/∂Q_e needs only Q_e and the target), and the transposed weight views every product
  takes are made once, not per call;
* between the products, the activation backward, the bias gradients and the output layer's backward are one
  sweep each over memory (:mod:`sport_sac.passes`: compiled with numba, torch as the fallback), and the whole
  update runs in ``torch.inference_mode`` (none of its tensors outlives it; parameters, gradients and
  optimiser states are updated in place and stay normal tensors).

The actor (a ``gaussian-mlp`` policy: trunk of Linear + activation, heads μ and raw log σ, bounded
log σ = lo + (hi − lo)(tanh(raw) + 1)/2, a = tanh(x)·scale + bias with x = μ + σ ε) gives, with ε fixed,

    log π(a|s) = Σ_i [−ε_i²/2 − log σ_i − ½ log 2π − log(1 − tanh² x_i) − log scale_i],
    ∂ log π/∂x = 2 tanh x,   ∂ log π/∂ log σ = −1 (through the Gaussian term only),

because (x − μ)/σ = ε does not depend on the parameters. With L = mean_b(α log π − min_e Q_e):
∂L/∂x = (∂L/∂a)·scale·(1 − tanh² x) + (2α/B) tanh x, ∂L/∂μ = ∂L/∂x, ∂L/∂log σ = ∂L/∂x·ε·σ − α/B,
∂L/∂raw = ∂L/∂log σ·(hi − lo)/2·(1 − tanh² raw).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from sport_sac.kernels import blas_runs_full_isa, make_linear
from sport_sac.passes import make_passes

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)
_ROWS = 32  # row-count granularity of the per-critic backward where it runs on oneDNN (see _min_q_action_grad)


_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _layout(actor: nn.Module) -> tuple[Any, str | None]:
    """(layout, None) if the fused engine can train ``actor``, else (None, the reason it cannot).

    The engine asks the policy for its :class:`sport_core.protocols.GaussianMLPLayout` (the optional
    ``mlp_layout()`` of the Policy protocol) and never reads a policy's attributes otherwise."""
    get_layout = getattr(actor, "mlp_layout", None)
    layout = get_layout() if callable(get_layout) else None
    if layout is None:
        return None, "the policy gives no mlp_layout() (the fused engine needs a Gaussian MLP policy)"
    layers = list(layout.trunk)
    if not layers or len(layers) % 2 or not all(isinstance(m, nn.Linear) for m in layers[::2]):
        return None, "the policy trunk is not a sequence of (Linear, activation) pairs"
    kinds = {type(m) for m in layers[1::2]}
    names = [name for name, module in _MODULES.items() if kinds == {module}]
    if not names:
        return None, f"unsupported trunk activation {', '.join(sorted(k.__name__ for k in kinds))}"
    return layout, None


def supports(actor: nn.Module) -> str | None:
    """None if the fused engine can train ``actor``, else the reason it cannot."""
    return _layout(actor)[1]


def _per_critic(critic: nn.Module, grad: bool = False) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per critic k, per layer l: views (W_l[k], b_l[k]) of the stacked parameters (or of their ``.grad``), the
    last layer's weight as a vector. Made once: ``select`` costs more than some of the ops it would feed; the
    optimiser, the Polyak update and ``load_state_dict`` all write into these same tensors."""
    ws = [w.grad if grad else w.detach() for w in critic.weights]
    bs = [b.grad if grad else b.detach() for b in critic.biases]
    n = len(ws)
    return [[(ws[i][k, :, 0] if i == n - 1 else ws[i][k], bs[i][k]) for i in range(n)] for k in range(critic.ensemble)]


def _transposed(critics: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> list[list[torch.Tensor]]:
    """W_l[k]ᵀ per critic and hidden layer: the [out, in] views the forward products take (made once)."""
    return [[w.t() for w, _ in layers[:-1]] for layers in critics]


def _rows(f: dict[str, Any], start: int, stop: int, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The rows ``start:stop`` of an actor forward pass (views; ``w_heads`` is shared), of ``keys`` only if
    given."""
    return {
        k: (v if k == "w_heads" else [h[start:stop] for h in v] if k == "hidden" else v[start:stop])
        for k, v in f.items()
        if keys is None or k in keys
    }


def _activation(layout: Any) -> str:
    kind = type(layout.trunk[1])
    return next(name for name, module in _MODULES.items() if module is kind)


class FusedUpdate:
    """The fused engine bound to one :class:`sport_sac.learner.SACLearner`."""

    def __init__(self, learner: Any, matmul: str = "auto", passes: str = "auto") -> None:
        layout, reason = _layout(learner.actor)
        if reason is not None:
            raise ValueError(f"engine 'fused' cannot train this policy: {reason}; use engine = \"autograd\"")
        self.learner = learner
        plain_to_blas = blas_runs_full_isa()  # decided once: the products and the row padding must agree
        self.backend, self.linear = make_linear(matmul, plain_to_blas)
        self.pad_rows = self.backend == "onednn" and not plain_to_blas
        self.trunk = [(m.weight, m.bias) for m in layout.trunk[::2]]
        self.trunk_t = [m.weight.t() for m in layout.trunk[::2]]  # [in, out] views for the input gradients
        self.actor_act = _activation(layout)
        self.actor_passes = make_passes(passes, self.actor_act)
        self.critic_act = learner.critic.activation
        self.critic_passes = make_passes(passes, self.critic_act)
        self.lo, self.hi = layout.log_std_min, layout.log_std_max
        # Plain references: module and ParameterList attribute lookups cost more than the small ops here.
        # load_state_dict copies into these same tensors, so the references stay valid.
        self.scale, self.bias = layout.action_scale, layout.action_bias
        mu_head, ls_head = layout.mu_head, layout.log_std_head
        self.heads = (mu_head.weight, ls_head.weight, mu_head.bias, ls_head.bias)
        self.critics = _per_critic(learner.critic)
        self.targets = _per_critic(learner.critic_target)
        self.critics_t, self.targets_t = _transposed(self.critics), _transposed(self.targets)
        self._bind_grads()

    def _bind_grads(self) -> None:
        """Views of the critics' ``.grad`` tensors, which the backward pass writes into (made again if a caller
        ever set them to None or to new tensors, e.g. ``zero_grad()``)."""
        critic = self.learner.critic
        for p in [*self.learner.actor.parameters(), *critic.parameters()]:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.critic_grads = _per_critic(critic, grad=True)
        self._critic_grad = critic.weights[0].grad

    # -- actor ------------------------------------------------------------------------------------

    def _actor_forward(self, obs: torch.Tensor, eps: torch.Tensor) -> dict[str, Any]:
        """Sampled squashed action and its log-probability for noise ``eps``, keeping what backward needs."""
        linear = self.linear
        mu_w, ls_w, mu_b, ls_b = self.heads
        hidden = []
        h = obs
        for w, bias in self.trunk:
            h = linear(h, w, bias, self.actor_act)
            hidden.append(h)
        d = eps.shape[1]
        w_heads = torch.cat([mu_w, ls_w])
        heads = linear(h, w_heads, torch.cat([mu_b, ls_b]))
        # contiguous halves: elementwise kernels on a [B, d] view with row stride 2d are ~10× slower
        mu, raw = heads[:, :d].contiguous(), heads[:, d:].contiguous()
        t = torch.tanh(raw)
        log_std = t.add(1.0).mul_(0.5 * (self.hi - self.lo)).add_(self.lo)
        std = log_std.exp()
        x = torch.addcmul(mu, std, eps)
        y = torch.tanh(x)
        # log(1 − tanh² x) = 2 (log 2 − x − softplus(−2x)), stable for large |x|
        log_jac = (_LOG_2 - x - nn.functional.softplus(-2.0 * x)).mul_(2.0) + self.scale.log()
        logp = (eps.square().mul_(-0.5) - log_std - log_jac).sum(1) - _HALF_LOG_2PI * d
        action = torch.addcmul(self.bias, y, self.scale)
        return {
            "obs": obs,
            "hidden": hidden,
            "w_heads": w_heads,
            "t": t,
            "std": std,
            "y": y,
            "eps": eps,
            "logp": logp,
            "action": action,
        }

    def _actor_backward(self, f: dict[str, Any], d_action: torch.Tensor, alpha: float) -> None:
        """Write ∂L/∂θ of L = mean(α log π − min Q) into the actor's ``.grad`` (formulas in the module doc)."""
        linear = self.linear
        mu_w, ls_w, mu_b, ls_b = self.heads
        b = d_action.shape[0]
        y, t = f["y"], f["t"]
        dx = (d_action * self.scale).mul_(1.0 - y * y).add_(y, alpha=2.0 * alpha / b)
        d_log_std = (dx * f["eps"]).mul_(f["std"]).sub_(alpha / b)
        d_raw = d_log_std.mul_(1.0 - t * t).mul_(0.5 * (self.hi - self.lo))
        hidden = f["hidden"]
        h = hidden[-1]
        torch.mm(dx.t(), h, out=mu_w.grad)
        torch.mm(d_raw.t(), h, out=ls_w.grad)
        torch.sum(dx, 0, out=mu_b.grad)
        torch.sum(d_raw, 0, out=ls_b.grad)
        passes, n = self.actor_passes, len(self.trunk)
        # inner width 2·act_dim: BLAS; then the activation's backward, the bias gradient on the way
        dz = passes.backward_sum_(torch.mm(torch.cat([dx, d_raw], 1), f["w_heads"]), h, self.trunk[n - 1][1].grad)
        for i in range(n - 1, -1, -1):
            # dzᵀ h_in is the [out, in] gradient itself: the BLAS writes it in place, no transposed copy
            torch.mm(dz.t(), hidden[i - 1] if i > 0 else f["obs"], out=self.trunk[i][0].grad)
            if i > 0:
                dz = passes.backward_sum_(linear(dz, self.trunk_t[i]), hidden[i - 1], self.trunk[i - 1][1].grad)

    # -- critics ----------------------------------------------------------------------------------

    def _critic_forward(
        self,
        critics: list[list[tuple[torch.Tensor, torch.Tensor]]],
        weights_t: list[list[torch.Tensor]],
        x: torch.Tensor,
    ) -> tuple[list[list[torch.Tensor]], torch.Tensor]:
        """Hidden outputs (per critic, per layer) and Q-values [E, B] of ``critics`` (:func:`_per_critic`, with
        ``weights_t`` their :func:`_transposed`) at inputs ``x`` [B, in]."""
        q = torch.empty(len(critics), x.shape[0])
        hidden = [
            self._one_critic_forward(layers, w_t, x, q[k])
            for k, (layers, w_t) in enumerate(zip(critics, weights_t, strict=True))
        ]
        return hidden, q

    def _one_critic_forward(
        self, layers: list[tuple[torch.Tensor, torch.Tensor]], w_t: list[torch.Tensor], x: torch.Tensor, q: torch.Tensor
    ) -> list[torch.Tensor]:
        """One critic's hidden outputs at inputs ``x``; its Q-values [B] go into ``q``."""
        h, hk = x, []
        for (_, bias), w in zip(layers[:-1], w_t, strict=True):
            h = self.linear(h, w, bias, self.critic_act)
            hk.append(h)
        w, bias = layers[-1]
        torch.addmv(bias, h, w, out=q)
        return hk

    def _critic_backward(
        self,
        layers: list[tuple[torch.Tensor, torch.Tensor]],
        grads: list[tuple[torch.Tensor, torch.Tensor]],
        x: torch.Tensor,
        hk: list[torch.Tensor],
        dqk: torch.Tensor,
    ) -> None:
        """Write one critic's weight gradients for ∂L/∂Q = ``dqk`` [B] into ``grads`` (views of its ``.grad``)."""
        n, passes = len(layers), self.critic_passes
        torch.sum(dqk, 0, keepdim=True, out=grads[n - 1][1])
        # the output layer's weight gradient, and the last hidden layer's bias gradient, on the way
        dz = passes.top(dqk, layers[n - 1][0], hk[-1], grads[n - 1][0], grads[n - 2][1])
        for i in range(n - 2, -1, -1):
            # h_inᵀ dz is the [in, out] gradient itself: the BLAS writes it in place, no transposed copy
            torch.mm(hk[i - 1].t() if i > 0 else x.t(), dz, out=grads[i][0])
            if i > 0:
                dz = passes.backward_sum_(self.linear(dz, layers[i][0]), hk[i - 1], grads[i - 1][1])

    def _min_q_action_grad(
        self, hidden: list[list[torch.Tensor]], pick: torch.Tensor, obs_dim: int, scale: float
    ) -> torch.Tensor:
        """``scale`` · ∂ min_e Q_e(s, a)/∂a [B, act_dim] with ``pick`` [B] the minimising critic of each row,
        back-propagating each row through that critic only."""
        linear = self.linear
        d_act = torch.empty(pick.shape[0], self.critics[0][0][0].shape[0] - obs_dim)
        for k, (layers, hk) in enumerate(zip(self.critics, hidden, strict=True)):
            rows = (pick == k).nonzero().squeeze(1)
            m = rows.numel()
            if m == 0:
                continue
            # The row count changes at every step. oneDNN builds a kernel per product shape: where these products
            # (no activation) go to oneDNN, the rows are padded to a multiple of _ROWS, which keeps the shapes few
            # (and cached); the padded rows are discarded. The BLAS builds nothing per shape: no padding.
            padded = torch.cat([rows, rows.new_zeros(-m % _ROWS)]) if self.pad_rows and m % _ROWS else rows
            n, passes = len(layers), self.critic_passes
            dz = passes.gather_top(layers[n - 1][0].mul(scale), hk[-1], padded)
            for i in range(n - 2, 0, -1):
                dz = passes.gather_backward_(linear(dz, layers[i][0]), hk[i - 1], padded)
            d_act.index_copy_(0, rows, torch.mm(dz, layers[0][0][obs_dim:].t())[:m])  # output width act_dim: BLAS
        return d_act

    # -- the update -------------------------------------------------------------------------------

    def update(self, obs, act, rew, next_obs, done, weights, actor_steps: int):
        """One update (the learner's :meth:`~sport_sac.learner.SACLearner.update` contract), computed in
        ``torch.inference_mode``: its tensors are all intermediate (the parameters, their ``.grad`` and the
        optimiser states are written in place and stay normal tensors), and the mode drops the view and
        version-counter bookkeeping that ``no_grad`` still does at each of the update's ~150 operations."""
        lr = self.learner
        if lr.critic.weights[0].grad is not self._critic_grad or self.heads[0].grad is None:  # .grad replaced
            self._bind_grads()  # outside inference mode: .grad must stay a normal tensor
        with torch.inference_mode():
            return self._update(obs, act, rew, next_obs, done, weights, actor_steps)

    def _update(self, obs, act, rew, next_obs, done, weights, actor_steps: int):
        from sport_sac.learner import UpdateStats

        lr = self.learner
        p, g = lr.params, lr.generator
        b, obs_dim, act_dim = obs.shape[0], obs.shape[1], act.shape[1]
        alpha = lr.alpha
        # Noise in the autograd engine's order: a' for the target, then ã for the first actor step. The actor
        # does not change before that step, so one forward pass over [s'; s] serves both.
        eps = torch.randn((b, act_dim), generator=g)
        if actor_steps:
            eps_pi = torch.randn((b, act_dim), generator=g)
            both = self._actor_forward(torch.cat([next_obs, obs]), torch.cat([eps, eps_pi]))
            f_next, f_pi = _rows(both, 0, b, ("action", "logp")), _rows(both, b, 2 * b)
        else:
            f_next = self._actor_forward(next_obs, eps)
        # target y = r + γ(1 − d)(min_e Q̄_e(s', a') − α log π(a'|s'))
        _, q_next = self._critic_forward(self.targets, self.targets_t, torch.cat([next_obs, f_next["action"]], 1))
        target = q_next.amin(0).sub_(f_next["logp"], alpha=alpha).mul_(1.0 - done).mul_(p.gamma).add_(rew)
        # critic step, one critic at a time: its backward pass finds its activations still in cache
        x = torch.cat([obs, act], 1)
        q, td = torch.empty(len(self.critics), b), torch.empty(len(self.critics), b)
        critic_loss = 0.0
        for k, (layers, w_t, grads) in enumerate(zip(self.critics, self.critics_t, self.critic_grads, strict=True)):
            hk = self._one_critic_forward(layers, w_t, x, q[k])
            torch.sub(q[k], target, out=td[k])
            wtd = td[k] * weights if weights is not None else td[k].clone()
            critic_loss += float(torch.dot(wtd, td[k]))
            self._critic_backward(layers, grads, x, hk, wtd.mul_(2.0 / b))
        stats = UpdateStats(critic_loss / b, float(q.mean()), td[0].abs().numpy())
        lr.step_optimizer(lr.critic_opt)
        # actor steps (and α steps)
        for step in range(actor_steps):
            if step:
                f_pi = self._actor_forward(obs, torch.randn((b, act_dim), generator=g))
            hidden_pi, q_pi = self._critic_forward(self.critics, self.critics_t, torch.cat([obs, f_pi["action"]], 1))
            q_min, pick = q_pi.min(0)  # on a tie the first critic, as autograd's min(0) sends the gradient
            mean_logp = float(f_pi["logp"].mean())
            stats.actor_loss += alpha * mean_logp - float(q_min.mean())
            self._actor_backward(f_pi, self._min_q_action_grad(hidden_pi, pick, obs_dim, -1.0 / b), alpha)
            lr.step_optimizer(lr.actor_opt)
            alpha = lr._alpha_step(mean_logp, stats)
            stats.actor_steps += 1
            stats.entropy -= mean_logp
        return stats
