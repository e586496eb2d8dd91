"""What the core needs from each kind of component. Core code depends only on these protocols."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np


@runtime_checkable
class EnvMaker(Protocol):
    """Builds environments; must be picklable (it is shipped to worker processes).

    ``make()`` returns a ``gymnasium.Env`` whose every ``info`` (reset and step) carries ``goal_met``,
    ``constraint_violated``, ``cost`` and ``agent_pos``. ``env_id`` names the task and ``scenario`` states
    in words the distribution of initial conditions (written into certificates); ``fixed_layout`` is True
    when every reset gives the same layout and initial pose.
    """

    env_id: str
    scenario: str
    fixed_layout: bool

    def make(self) -> Any: ...


@runtime_checkable
class Policy(Protocol):
    """A squashed diagonal-Gaussian policy module (what the ``policy`` components build).

    The policy is a Gaussian N(μ(s), diag σ(s)²) on a *pre-tanh* variable x; the env action is
    ``squash(x) = tanh(x) · scale + bias``. The density ratio of two policies is defined on x (tanh acts the
    same on both, so the Jacobians cancel), which is where projections and PPO ratios work.

    * ``forward(obs[B, n]) -> (mu[B, d], std[B, d])``: the pre-tanh mean and standard deviation;
    * ``log_prob(obs[B, n], x[B, d]) -> [B]``: Σ_i log N(x_i; μ_i, σ_i²), differentiable in the parameters;
    * ``squash(x) -> action``;
    * ``act(obs, generator=None, deterministic=False) -> action[B, d]``: the squashed mean, or
      ``squash(μ + σ·ε)`` with ``ε = torch.randn(μ.shape, generator=generator, dtype=μ.dtype)``. Acting
      through this exact draw is what lets :class:`sport_core.actors.ProjectedActor` reproduce a policy's
      episodes bit for bit (common random numbers).

    Optional: ``sample(obs, generator) -> (action, log π(action), x)`` reparameterised (SAC needs it) and
    ``mlp_layout() -> GaussianMLPLayout | None`` (fast engines that differentiate by hand need it).
    """

    def forward(self, obs: Any) -> tuple[Any, Any]: ...

    def log_prob(self, obs: Any, x: Any) -> Any: ...

    def squash(self, x: Any) -> Any: ...

    def act(self, obs: Any, generator: Any = None, deterministic: bool = False) -> Any: ...


@attrs.frozen(eq=False)
class GaussianMLPLayout:
    """How a policy computes (μ, σ), for engines that differentiate it by hand (the fused SAC update).

    ``trunk``: the modules applied in order (``torch.nn.Linear`` followed by an activation module, repeated);
    ``mu_head`` and ``log_std_head``: linear layers on the trunk's output; the log-std is bounded as
    ``log σ = log_std_min + (log_std_max − log_std_min) · (tanh(raw) + 1) / 2`` with ``raw`` the head's
    output; the action is ``tanh(x) · action_scale + action_bias``. The tensors are the module's own
    parameters and buffers (not copies), so an engine that updates them in place trains the policy.
    """

    trunk: tuple[Any, ...]
    mu_head: Any
    log_std_head: Any
    log_std_min: float
    log_std_max: float
    action_scale: Any
    action_bias: Any


@runtime_checkable
class Actor(Protocol):
    """A picklable policy for rollouts: ``act(obs, generator)`` -> env action (numpy, float64).

    ``obs`` is one observation (1-D numpy); ``generator`` is the episode's ``torch.Generator``, the only
    source of randomness allowed (so that episode i is reproducible and identical across workers and α).
    ``reset()`` is called at the start of each episode.
    """

    def reset(self) -> None: ...

    def act(self, obs: np.ndarray, generator: Any) -> np.ndarray: ...


@runtime_checkable
class Projection(Protocol):
    """A safety layer on distribution parameters, batched over the leading dimension.

    Gaussian projections take ``(mu, std)`` tuples, categorical ones ``(logits,)``. ``project`` returns the
    projected parameters, whose ``max_log_ratio`` to the base is at most ``log(alpha)`` in every row;
    ``fallbacks`` counts rows that failed verification and were replaced by the base.
    """

    fallbacks: int

    def project(self, base: tuple, task: tuple, alpha: Any) -> tuple: ...

    def max_log_ratio(self, p: tuple, b: tuple) -> Any: ...


@runtime_checkable
class Stage(Protocol):
    """A recipe stage (trainer, certifier, evaluator): ``run(ctx)`` returns its outputs.

    ``ctx`` is a :class:`sport_core.context.StageContext`. Outputs map artifact names to paths (inside
    ``ctx.stage_dir``); use the names of :data:`sport_core.stages.STANDARD_ARTIFACTS` for the things they name.
    A stage must write its files atomically (:mod:`sport_core.artifacts`) and may checkpoint into
    ``ctx.checkpoint_dir``: after an interruption it is called again with ``ctx.resumed`` True and the same
    directories, and must continue rather than start over.

    The factory (usually the class) declares what the stage needs, so that ``sport check`` validates a recipe
    before anything runs (:mod:`sport_core.stages`): ``needs_env: bool``, ``inputs: dict[str, StageInput]``
    and ``outputs: tuple[str, ...]``.
    """

    def run(self, ctx: Any) -> dict[str, Path]: ...


@runtime_checkable
class Certifier(Stage, Protocol):
    """A certifier stage: reads a base policy (input ``policy``), makes ``certificate`` (a ``certificate.json``
    that :func:`sport_core.certificates.write_certificate` accepts: schema
    ``sport_core/schemas/certificate-v2.schema.json``) and usually ``episodes``. Its ``method`` must have a
    :class:`Verifier` registered under the same name (``sport_register_verifiers``), or ``sport verify``
    cannot check its certificates."""


@runtime_checkable
class Evaluator(Stage, Protocol):
    """An evaluator stage: rolls out existing policies and writes results. One that compares policies with a
    certificate reads it with :func:`sport_core.evaluation.stage_certificate` (any method's certificate, checked
    against the schema), reports ``certificate["guarantee"]`` with its numbers
    (:func:`sport_core.certificates.guarantee_label`) and, for a bound that holds only for policies within α of
    the certified base, checks the base with :func:`sport_core.evaluation.certified_base_input`."""


@runtime_checkable
class Verifier(Protocol):
    """Re-checks certificates of one method (registered under the method's name).

    ``verify(path, cert, *, store, policy, replay, registry)`` gets the certificate's path and its content
    (already checked against the schema), optional overrides of the episode store's and the base policy's
    paths, how many episodes to re-simulate, and the registry; it returns a
    :class:`sport_core.verification.VerificationSummary` or raises
    :class:`sport_core.verification.VerificationError` naming the first difference (a missing or corrupt file:
    :class:`sport_core.errors.ArtifactError`).
    """

    def verify(
        self, path: Path, cert: dict, *, store: Any = None, policy: Any = None, replay: int = 0, registry: Any = None
    ) -> Any: ...


@runtime_checkable
class Logger(Protocol):
    """A logger object implements event hooks as methods marked ``@sport_core.hookimpl`` (``sport_log_scalars``,
    ``sport_log_histogram``, ``sport_log_figure``, ``sport_log_text``, ``sport_run_started``, …; see
    :mod:`sport_core.hookspecs`), taking any subset of each hook's arguments by name. The runner checks it when a
    run starts (:func:`sport_core.plugins.check_hook_object`): an unmarked ``sport_*`` method, a misspelt hook
    name, an argument the hook does not pass, or no event hook at all is an error naming ``loggers[i]``. An
    optional ``close()`` is called when the run ends."""


@runtime_checkable
class Executor(Protocol):
    """Runs independent tasks: ``map(fn, tasks)`` yields ``fn(task)`` results as they finish (any order).

    ``fn`` and the tasks must be picklable for out-of-process executors. ``workers`` is the parallelism;
    an optional ``in_process = True`` says tasks run in the caller (so batching them gains nothing).

    A worker that dies while running a task (killed, out of memory, a crash in native code) must not cost the
    map: the executor runs the task again on a fresh worker, up to its ``max_task_retries`` times, yields each
    task's result exactly once and loses none; when a task keeps killing its worker it ends the map with a
    one-line :class:`sport_core.errors.WorkerDiedError` naming the task, never a hang or a traceback. A retry
    is a second run of ``fn(task)``, so tasks must be deterministic (their own seeds) or idempotent (resuming
    from their own checkpoints), as sport's episode chunks and training jobs are. A task's own exception is
    not a death: it is raised in the caller as itself and not retried.
    """

    workers: int

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]: ...

    def close(self) -> None: ...
