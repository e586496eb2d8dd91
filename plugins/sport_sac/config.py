"""``sac`` trainer configuration; the defaults are the paper's base-policy hyperparameters (5 Hz task)."""

from __future__ import annotations

from typing import Any, Literal

import attrs
from attrs import validators as v

from sport_core.config import component_field

_positive = v.gt(0)
_non_negative = v.ge(0)
_fraction = [v.ge(0), v.le(1)]


@attrs.frozen
class SACConfig:
    """Soft actor-critic with twin critics, entropy tuning, (prioritized) replay and a level curriculum.

    Training: ``total_steps`` env steps; the first ``learning_starts`` take uniform random actions and no
    update; afterwards one update per env step (critics every step, the actor ``policy_delay`` times every
    ``policy_delay``-th step). The policy is the ``policy`` component built with ``policy_config``; the
    critics are MLPs with ``critic_hidden`` widths. ``target_entropy`` is the total target entropy H̄ in nats
    (0 for the base policy; the paper's unsafe task policy uses −0.41 per action dimension, −0.82).

    Replay: ``prioritized_replay`` draws transitions with probability ∝ (|δ| + ``per_eps``)^``per_alpha``
    and weights their loss by importance weights with exponent β annealed linearly from ``per_beta_start``
    to ``per_beta_end`` over the run.

    Curriculum: level i trains on the stage's env with config field ``curriculum_key`` set to
    ``curriculum[i]`` (e.g. env ids ``…Curriculum1-v0`` … ``…Curriculum5-v0``); it moves to the next level
    once at least ``curriculum_window`` episodes have been played at this level and the success rate of the
    last ``curriculum_window`` of them is ≥ ``curriculum_threshold``; ``curriculum_keep_buffer`` false empties
    the replay buffer at each move. An empty ``curriculum`` trains on the stage's env as it is.

    Engineering: ``device`` of the learner, "cpu", "cuda" or "auto" (cuda when available); acting, and so
    every random number of an episode, stays on the CPU. ``engine`` "fused" (hand-derived gradients with
    oneDNN/BLAS kernels: fast, CPU only) or "autograd" (plain PyTorch, any policy, any device); with
    ``device = "auto"`` on a GPU the autograd engine is used;
    ``matmul`` backend of the fused engine and its elementwise ``passes`` (``auto``: compiled with numba where
    it imports, else ``torch``; see :mod:`sport_sac.passes`); ``private_ops`` false uses no private
    (underscore-prefixed) torch operator (products through the BLAS, ``Optimizer.step()``, one ``lerp_`` per
    target tensor; the same numbers up to the BLAS's summation order, a little slower); ``checkpoint_every``
    env steps between resumable checkpoints
    (taken at the next episode end); ``log_every`` env steps between metric records; ``torch_threads``.
    """

    total_steps: int = attrs.field(default=100_000, validator=_positive)
    learning_starts: int = attrs.field(default=5_000, validator=_non_negative)
    batch_size: int = attrs.field(default=512, validator=_positive)
    buffer_size: int = attrs.field(default=100_000, validator=_positive)
    gamma: float = attrs.field(default=0.99, validator=_fraction)
    tau: float = attrs.field(default=0.005, validator=_fraction)
    actor_lr: float = attrs.field(default=3e-4, validator=_positive)
    critic_lr: float = attrs.field(default=1e-3, validator=_positive)
    alpha_lr: float = attrs.field(default=1e-3, validator=_positive)
    initial_alpha: float = attrs.field(default=0.1, validator=_positive)
    autotune_alpha: bool = True
    target_entropy: float = 0.0
    policy_delay: int = attrs.field(default=2, validator=_positive)
    policy: str = component_field("policy", "gaussian-mlp", config_field="policy_config")
    policy_config: dict[str, Any] = attrs.Factory(dict)
    critic_hidden: tuple[int, ...] = (256, 256)
    critic_activation: Literal["relu", "tanh"] = "relu"
    prioritized_replay: bool = True
    per_alpha: float = attrs.field(default=0.6, validator=_non_negative)
    per_beta_start: float = attrs.field(default=0.4, validator=_fraction)
    per_beta_end: float = attrs.field(default=1.0, validator=_fraction)
    per_eps: float = attrs.field(default=1e-6, validator=_positive)
    curriculum_key: str = "id"
    curriculum: tuple[str | int | float, ...] = ()
    curriculum_threshold: float = attrs.field(default=0.95, validator=_fraction)
    curriculum_window: int = attrs.field(default=100, validator=_positive)
    curriculum_keep_buffer: bool = True
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    engine: Literal["fused", "autograd"] = "fused"
    matmul: Literal["auto", "onednn", "blas"] = "auto"
    passes: Literal["auto", "numba", "torch"] = "auto"
    private_ops: bool = True
    checkpoint_every: int = attrs.field(default=10_000, validator=_positive)
    log_every: int = attrs.field(default=1_000, validator=_positive)
    torch_threads: int = attrs.field(default=1, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if not self.private_ops and self.matmul == "onednn":
            raise ValueError("matmul 'onednn' uses a private torch operator: with private_ops = false use 'blas'")
        if not self.critic_hidden or any(h <= 0 for h in self.critic_hidden):
            raise ValueError(f"critic_hidden must be positive layer widths, got {self.critic_hidden}")
        if self.learning_starts >= self.total_steps:
            raise ValueError(
                f"learning_starts ({self.learning_starts}) must be below total_steps ({self.total_steps}): "
                "otherwise nothing is learned"
            )
