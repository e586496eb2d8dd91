"""A tiny pure-numpy reach-avoid point mass: the fast env for tests and quick recipes."""

from sport_pointmass.env import PointMassConfig, PointMassEnv, PointMassMaker

__all__ = ["PointMassConfig", "PointMassEnv", "PointMassMaker"]
