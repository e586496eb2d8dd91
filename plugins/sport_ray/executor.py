"""The ``ray`` executor (:class:`sport_core.protocols.Executor` on a Ray cluster).

``address = None`` starts a new local cluster (``num_cpus`` of this machine's cores, no GPUs), even where
``ray start`` ran (unless ``RAY_ADDRESS`` is set, as inside a Ray job: then it joins that cluster, as Ray
does), and shuts it down on ``close()``; ``"auto"`` or ``"host:port"`` joins a running cluster (``ray start
--head``) and ``"ray://host:port"`` joins one through Ray Client; a joined cluster is left running (an explicit
address of a cluster with token authentication also needs ``RAY_AUTH_MODE=token``). If Ray is already
initialised in this process, that connection is used as it is and left running too.

``map(fn, tasks)`` keeps at most ``max_in_flight`` tasks submitted (default 2 × the cluster's CPUs) and yields
results as they finish (``ray.wait``): a long task stream is never materialised, and an interruption loses,
and cancels, only the tasks in flight. A task's exception is re-raised in the caller as itself (and not
retried). A task whose worker process dies (killed, out of memory, a crash in native code, its node lost) is
run again by Ray, up to ``max_task_retries`` times; then the map ends with a one-line
:class:`~sport_core.errors.WorkerDiedError` naming the task (its number, from 0, in the order the map
took the tasks). Re-running a task must give what its first run would have given: tasks must be deterministic
(their own seeds) or idempotent (resuming from their own checkpoints), as sport's episode chunks and training
jobs are; a result is yielded once, and none is lost. Each task
asks for one CPU and no GPU, hides every GPU from torch and runs torch with one thread, since the cluster
already runs one task per core. ``fn`` and the tasks travel by (cloud)pickle, module-level functions by
reference: the workers must be able to import them (this project's packages, when it is installed in the
workers' Python, as in an editable install on the machine of a local cluster; else pass ``runtime_env``).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs
import torch

from sport_core.errors import SportError, WorkerDiedError

#: Seconds to wait for a TCP connection to a cluster's address before calling it unreachable.
CONNECT_TIMEOUT_S = 5.0

# "host:port", "[ipv6]:port", optionally with the Ray Client scheme; other forms ("auto", ...) go to Ray as is.
_HOST_PORT = re.compile(r"^(?:ray://)?(?P<host>\[[^\]]+\]|[^:/\[\]]+):(?P<port>\d+)/?$")


class RayExecutorError(SportError):
    """Ray is not installed, or the cluster cannot be started or reached."""


@attrs.frozen
class RayConfig:
    """Config of the ``ray`` executor.

    ``address``: None starts a new local cluster; ``"auto"``, ``"host:port"`` or ``"ray://host:port"`` joins a
    running one. ``num_cpus``: size of a local cluster (default: every core; not with ``address``).
    ``max_in_flight``: tasks submitted at once (0 = 2 × the cluster's CPUs). ``max_task_retries``: how many times
    Ray runs a task again whose worker died, before the map gives up. ``namespace``: the Ray namespace.
    ``runtime_env``: a Ray runtime environment for the tasks (e.g. ``{env_vars = {...}}``, ``py_modules``),
    for workers that cannot import this project as installed.
    """

    address: str | None = None
    num_cpus: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.ge(1)))
    max_in_flight: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    max_task_retries: int = attrs.field(default=2, validator=attrs.validators.ge(0))
    namespace: str | None = None
    runtime_env: dict[str, Any] | None = attrs.field(default=None, hash=False)

    def __attrs_post_init__(self) -> None:
        if self.address is not None and self.num_cpus is not None:
            raise ValueError(
                f"num_cpus sizes a local Ray cluster; the cluster at address {self.address!r} has its own size "
                "(leave out one of the two)"
            )


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayExecutorError(
            f"the 'ray' executor needs Ray, which is not installed ({exc}); install it with: pip install 'sport[ray]'"
        ) from exc
    return ray


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast with a one-line error when a ``[ray://]host:port`` address does not accept connections.

    Ray itself retries an unreachable address for minutes; other address forms (``"auto"``) are left to Ray.
    """
    match = _HOST_PORT.match(address)
    if match is None:
        return
    host, port = match["host"].strip("[]"), int(match["port"])
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise RayExecutorError(
            f"cannot reach a Ray cluster at address {address!r}: {reason} (is Ray running there, and the port open?)"
        ) from exc


def _run_task(fn: Callable[[Any], Any], task: Any) -> Any:
    """The body of every Ray task: CPU only, one torch thread, then ``fn(task)``."""
    # The task asked for no GPU; hiding them keeps torch (lazy CUDA init) off any GPU of the node.
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    torch.set_num_threads(1)
    return fn(task)


def _worker_deaths(ray: Any) -> tuple[type[BaseException], ...]:
    """Ray's errors for a task whose worker process, or its node, died (a SIGKILLed or ``os._exit``-ed worker
    gives ``WorkerCrashedError``; the OOM killer of Ray's memory monitor gives ``OutOfMemoryError``)."""
    names = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "OutOfMemoryError")
    return tuple(getattr(ray.exceptions, name) for name in names if hasattr(ray.exceptions, name))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _auth_refused(exc: BaseException | None) -> bool:
    """Whether Ray's connection failure was a cluster refusing us for want of its auth token."""
    while exc is not None:
        if type(exc).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class RayExecutor:
    """Runs tasks on a Ray cluster; ``workers`` is the cluster's CPU count. A task whose worker dies is run again
    by Ray up to ``max_task_retries`` times, then the map raises a one-line :class:`WorkerDiedError`; tasks must
    therefore be deterministic or idempotent (see the module docstring)."""

    def __init__(self, config: RayConfig | None = None) -> None:
        self.config = config = config or RayConfig()
        ray = self._ray = _import_ray()
        if config.address is not None:
            check_reachable(config.address)
        self._owns = False
        if not ray.is_initialized():
            local = config.address is None and not os.environ.get("RAY_ADDRESS")
            kwargs: dict[str, Any] = {
                # "local" starts a new cluster even where `ray start` ran (Ray would join that one).
                "address": "local" if local else config.address,
                "namespace": config.namespace,
                # Worker output stays in the session's log files instead of flooding the caller's terminal.
                "log_to_driver": False,
                "logging_level": logging.WARNING,
            }
            if local:
                kwargs.update(num_cpus=config.num_cpus, num_gpus=0, include_dashboard=False)
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
                where = "start a local Ray cluster" if local else f"reach a Ray cluster at address {config.address!r}"
                hint = ""
                if _auth_refused(exc):  # Ray sends its token only with RAY_AUTH_MODE=token to an explicit address
                    hint = (
                        "; the cluster requires its token: set RAY_AUTH_MODE=token and provide the token "
                        "(~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH)"
                    )
                raise RayExecutorError(f"cannot {where}: {_first_line(exc)}{hint}") from exc
            self._owns = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 0)))
        # Ray runs a task again when its worker dies (not when the task raises: retry_exceptions stays off).
        options: dict[str, Any] = {"num_cpus": 1, "num_gpus": 0, "max_retries": config.max_task_retries}
        if config.runtime_env is not None:
            options["runtime_env"] = config.runtime_env
        self._remote = ray.remote(**options)(_run_task)

    def map(self, fn: Callable[[Any], Any], tasks: Iterable[Any]) -> Iterator[Any]:
        """Yield ``fn(task)`` for every task, in the order the tasks finish."""
        ray = self._ray
        limit = self.config.max_in_flight or 2 * self.workers
        fn_ref = ray.put(fn)  # shipped once, not with every task
        deaths = _worker_deaths(ray)
        iterator = enumerate(tasks)
        pending: list[Any] = []
        numbers: dict[Any, int] = {}  # task ref -> the task's number in this map
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < limit:
                    try:
                        number, task = next(iterator)
                    except StopIteration:
                        exhausted = True
                        break
                    ref = self._remote.remote(fn_ref, task)
                    pending.append(ref)
                    numbers[ref] = number
                if not pending:
                    return
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    number = numbers.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as err:
                        cause = getattr(err, "cause", None)
                        if isinstance(cause, BaseException):  # as the inline executor would raise it
                            raise cause from err
                        raise
                    except deaths as err:  # Ray has used up the task's retries
                        raise WorkerDiedError(
                            f"ray executor: a worker died {self.config.max_task_retries + 1} times running task "
                            f"{number} of this map ({type(err).__name__}: {_first_line(err)}); giving up (the "
                            "task's inputs may crash the worker: see the worker's stderr, worker-*.err in the logs of "
                            "the Ray session)"
                        ) from err
                    yield result
        finally:
            for ref in pending:
                ray.cancel(ref)

    def close(self) -> None:
        """Disconnect from Ray if this executor connected (which also stops a local cluster it started);
        a connection made before it, by someone else, is left alone."""
        if self._owns:
            self._owns = False
            if self._ray.is_initialized():
                self._ray.shutdown()
