"""The safety layer: exact, batched, verified policy-ratio projections (Gaussian and categorical).

Functions: :func:`project` / :func:`max_log_ratio` for diagonal Gaussians, :func:`project_categorical` /
:func:`categorical_max_log_ratio` for categorical policies. Components (``gaussian-kl``, ``categorical-kl``)
wrap them behind :class:`sport_core.protocols.Projection`.
"""

from sport_projection.categorical import categorical_max_log_ratio, project_categorical
from sport_projection.components import (
    CategoricalKLConfig,
    CategoricalKLProjection,
    GaussianKLConfig,
    GaussianKLProjection,
)
from sport_projection.gaussian import ProjectionInfo, max_log_ratio, project

__all__ = [
    "CategoricalKLConfig",
    "CategoricalKLProjection",
    "GaussianKLConfig",
    "GaussianKLProjection",
    "ProjectionInfo",
    "categorical_max_log_ratio",
    "max_log_ratio",
    "project",
    "project_categorical",
]
