"""Configurations of the ``ppo`` and ``projected-ppo`` trainers.

The ``projected-ppo`` defaults are the paper's Projected PPO hyperparameters (FACTS §5): 128-step rollouts,
4 minibatches × 4 epochs, lr 5e-5, γ 0.99, GAE λ 0.95, clip 0.2, entropy 0, value 0.5, grad-norm 0.5, a critic
warm-up of 2432 steps (19 rollouts) at lr 3e-4 with the actor frozen, then 30 000 steps per α.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs
from attrs import validators as v

from sport_core.bounds import PAPER_ALPHAS
from sport_core.config import component_field

_positive = v.gt(0)
_non_negative = v.ge(0)
_fraction = [v.ge(0), v.le(1)]


def _check_common(self: Any) -> None:
    if not self.critic_hidden or any(h <= 0 for h in self.critic_hidden):
        raise ValueError(f"critic_hidden must be positive layer widths, got {self.critic_hidden}")
    if self.total_steps < self.num_steps * self.num_envs:
        raise ValueError(
            f"total_steps ({self.total_steps}) is below one rollout (num_steps × num_envs = "
            f"{self.num_steps * self.num_envs}): nothing would be learned"
        )
    size = self.num_steps * self.num_envs
    if size % self.num_minibatches or size // self.num_minibatches < 2:
        raise ValueError(
            f"num_minibatches ({self.num_minibatches}) must divide the rollout size num_steps × num_envs "
            f"({size}) into minibatches of at least 2 (advantages are normalised per minibatch)"
        )


@attrs.frozen
class PPOHyperparameters:
    """What PPO and Projected PPO share: proximal policy optimisation with a clipped surrogate and GAE(λ).

    Rollouts: ``num_envs`` envs stepped together by one learner, ``num_steps`` steps each; episode i (counted
    over all envs in the order they start) resets with ``episode_seed(seed, i, "env")`` and samples its
    actions from ``torch_generator(seed, i, "policy")``, so an episode's randomness does not depend on which
    env slot plays it. Training runs for ``total_steps // (num_steps · num_envs)`` rollouts (the remainder
    is not played), after ``warmup_steps`` of critic warm-up (actor frozen, critic lr ``warmup_lr``).

    Update per rollout: ``update_epochs`` passes over the rollout in ``num_minibatches`` shuffled
    minibatches; loss = mean max(−A·r, −A·clip(r, 1 ± ``clip_coef``)) − ``ent_coef``·H + ``vf_coef``·½(V − R)²
    with advantages A normalised per minibatch (``norm_adv``), returns R = A_GAE + V; one Adam step
    (``learning_rate``, ``adam_eps``) after clipping the global gradient norm of actor and critic to
    ``max_grad_norm``. ``bootstrap_truncated``: a time-limit truncation adds γ·V(s_final) to the last
    reward (the reference treats a timeout as a termination: false reproduces it).

    Networks: the actor (see the trainers), a new critic MLP (``critic_hidden``, ``critic_activation``).
    ``device``: where the learner runs ("auto" = cuda when available); acting, and so every random number
    of an episode, stays on the CPU. ``checkpoint_every`` env steps between
    checkpoints (taken between updates); ``torch_threads`` for the learner's process.
    """

    total_steps: int = attrs.field(default=100_000, validator=_positive)
    num_envs: int = attrs.field(default=1, validator=_positive)
    num_steps: int = attrs.field(default=128, validator=_positive)
    num_minibatches: int = attrs.field(default=4, validator=_positive)
    update_epochs: int = attrs.field(default=4, validator=_positive)
    learning_rate: float = attrs.field(default=3e-4, validator=_positive)
    adam_eps: float = attrs.field(default=1e-5, validator=_positive)
    gamma: float = attrs.field(default=0.99, validator=_fraction)
    gae_lambda: float = attrs.field(default=0.95, validator=_fraction)
    clip_coef: float = attrs.field(default=0.2, validator=_positive)
    ent_coef: float = 0.0
    vf_coef: float = attrs.field(default=0.5, validator=_non_negative)
    max_grad_norm: float = attrs.field(default=0.5, validator=_positive)
    norm_adv: bool = True
    bootstrap_truncated: bool = True
    warmup_steps: int = attrs.field(default=0, validator=_non_negative)
    warmup_lr: float = attrs.field(default=3e-4, validator=_positive)
    critic_hidden: tuple[int, ...] = (256, 256)
    critic_activation: Literal["relu", "tanh"] = "relu"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    checkpoint_every: int = attrs.field(default=4096, validator=_positive)
    torch_threads: int = attrs.field(default=1, validator=_positive)

    def __attrs_post_init__(self) -> None:
        _check_common(self)


@attrs.frozen
class PPOConfig(PPOHyperparameters):
    """``ppo``: :class:`PPOHyperparameters` for a new actor, the ``policy`` component built with
    ``policy_config``, trained on the stage's env."""

    policy: str = component_field("policy", "gaussian-mlp", config_field="policy_config")
    policy_config: dict[str, Any] = attrs.Factory(dict)


def _check_alphas(instance: Any, attribute: attrs.Attribute, value: tuple) -> None:
    if not value:
        raise ValueError("alphas must list at least one ratio bound")
    for a in value:
        if isinstance(a, str):
            if a != "certificate":
                raise ValueError(f'an alpha is a number >= 1 or "certificate", got {a!r}')
        elif not (math.isfinite(a) and a >= 1.0):
            raise ValueError(f"alphas must be ratio bounds, finite and >= 1; got {a}")
    if len(set(value)) != len(value):
        raise ValueError(f"alphas must not list a value twice: {list(value)}")


@attrs.frozen
class ProjectedPPOConfig(PPOHyperparameters):
    """Projected PPO (SPoRt): PPO whose every action comes from the task policy projected onto the α-ratio
    set of the certified base, one independent fine-tuning per α in ``alphas``.

    Inputs: ``base`` (the certified policy) and ``certificate``. The task actor starts from the base's
    weights; the critic is new. Training happens on the certificate's scenario (its env config, with
    ``env_overrides`` merged in, e.g. a reward option; the scenario must stay the certified one).
    Each rollout step projects (base, task) for all envs in one batched call of the ``projection``
    component, samples x ~ p_proj, acts squash(x) and stores x and log p_proj(x); the update uses the ratio
    exp(log π_task,θ(x) − log p_proj,old(x)) with no gradient through the projection (the paper), or with
    ``through_projection`` exp(log p_proj,θ(x) − log p_proj,old(x)), differentiating through the projection.

    ``alphas``: numbers ≥ 1, or ``"certificate"`` for α* of ``bound`` (default: the certificate's largest
    bound). Training-time failures are counted at the T* of ``bound`` (or ``horizon``). Every α is an
    independent job through the stage's executor, checkpointed and resumed on its own.
    The other fields are :class:`PPOHyperparameters`; the defaults here are the paper's (FACTS §5).
    """

    alphas: tuple[float | str, ...] = attrs.field(default=PAPER_ALPHAS, validator=_check_alphas)
    bound: float | None = None
    horizon: int | None = attrs.field(default=None, validator=v.optional(_positive))
    projection: str = component_field("projection", "gaussian-kl", config_field="projection_config")
    projection_config: dict[str, Any] = attrs.Factory(dict)
    through_projection: bool = False
    env_overrides: dict[str, Any] = attrs.Factory(dict)
    total_steps: int = attrs.field(default=30_000, validator=_positive)
    learning_rate: float = attrs.field(default=5e-5, validator=_positive)
    warmup_steps: int = attrs.field(default=2432, validator=_non_negative)
