"""What the core needs from each kind of component. Core code depends only on these protocols."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class EnvMaker(Protocol):
    """Builds environments; must be picklable (it is shipped to worker processes).

    ``make(seed)`` returns a ``gymnasium.Env`` whose every ``info`` (reset and step) carries ``goal_met``,
    ``constraint_violated``, ``cost`` and ``agent_pos``. ``env_id`` names the task and ``scenario`` states
    in words the distribution of initial conditions (written into certificates); ``fixed_layout`` is True
    when every reset gives the same layout and initial pose.
    """

    env_id: str
    scenario: str
    fixed_layout: bool

    def make(self) -> Any: ...


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

    Outputs map artifact names to paths (inside ``ctx.stage_dir``). A stage must write its files atomically
    and may checkpoint into ``ctx.checkpoint_dir``: after an interruption it is called again with
    ``ctx.resumed`` True and the same directories, and must continue rather than start over.
    """

    def run(self, ctx: Any) -> dict[str, Path]: ...


@runtime_checkable
class Executor(Protocol):
    """Runs independent tasks: ``map(fn, tasks)`` yields ``fn(task)`` results as they finish (any order).

    ``fn`` and the tasks must be picklable for out-of-process executors. ``workers`` is the parallelism;
    an optional ``in_process = True`` says tasks run in the caller (so batching them gains nothing).
    """

    workers: int

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]: ...

    def close(self) -> None: ...
