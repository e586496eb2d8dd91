"""Registers the ``pointmass`` env."""

from sport_core import Component, hookimpl
from sport_pointmass.env import PointMassConfig, PointMassMaker


@hookimpl
def sport_register_envs():
    return [Component("pointmass", PointMassMaker, PointMassConfig, "pure-numpy reach-avoid point mass (fast tests)")]
