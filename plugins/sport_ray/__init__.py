"""The ``ray`` executor: episode collection and α sweeps on a Ray cluster (the optional ``[ray]`` extra).

Importing this package does not import Ray; building the executor does, so the component is listed (and
recipes naming it validate) even where Ray is not installed.
"""

from sport_ray.executor import RayConfig, RayExecutor, RayExecutorError

__all__ = ["RayConfig", "RayExecutor", "RayExecutorError"]
