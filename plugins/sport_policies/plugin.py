"""Registers the ``gaussian-mlp`` policy."""

from sport_core import Component, hookimpl
from sport_policies.gaussian import GaussianMLPConfig, gaussian_mlp_builder


@hookimpl
def sport_register_policies():
    return [Component("gaussian-mlp", gaussian_mlp_builder, GaussianMLPConfig, "squashed diagonal-Gaussian MLP")]
