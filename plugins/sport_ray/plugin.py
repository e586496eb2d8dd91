"""Registers the ``ray`` executor."""

from sport_core import Component, hookimpl
from sport_ray.executor import RayConfig, RayExecutor


@hookimpl
def sport_register_executors():
    return [Component("ray", RayExecutor, RayConfig, "tasks on a Ray cluster (a local one, or one joined by address)")]
