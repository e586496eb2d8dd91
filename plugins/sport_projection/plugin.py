"""Registers the projections ``gaussian-kl`` and ``categorical-kl``."""

from sport_core import Component, hookimpl
from sport_projection.components import (
    CategoricalKLConfig,
    CategoricalKLProjection,
    GaussianKLConfig,
    GaussianKLProjection,
)


@hookimpl
def sport_register_projections():
    return [
        Component(
            "gaussian-kl",
            GaussianKLProjection,
            GaussianKLConfig,
            "exact batched reverse-KL projection of diagonal Gaussians onto the density-ratio bound α",
        ),
        Component(
            "categorical-kl",
            CategoricalKLProjection,
            CategoricalKLConfig,
            "exact batched reverse-KL projection of categorical policies onto p_i ≤ α·b_i",
        ),
    ]
