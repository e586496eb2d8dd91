"""The projection components a recipe can name: ``gaussian-kl`` and ``categorical-kl``.

Both satisfy :class:`sport_core.protocols.Projection`: ``project(base, task, alpha) -> params`` on batched
distribution parameters, ``max_log_ratio(p, b)`` and a running ``fallbacks`` count (rows replaced by the base
because their input was invalid or their result failed verification). Gaussian parameters are ``(mu, std)``
tuples of ``[B, d]`` tensors (pre-tanh); categorical parameters are ``(logits,)`` tuples of ``[B, n]`` tensors
(unnormalised log-probabilities; the projection returns normalised ones).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import torch

from sport_projection.categorical import categorical_max_log_ratio, project_categorical
from sport_projection.gaussian import ProjectionInfo, max_log_ratio, project


def _unpack(params: Any, size: int, what: str) -> tuple:
    if not isinstance(params, (tuple, list)) or len(params) != size:
        names = "(mu, std)" if size == 2 else "(logits,)"
        raise ValueError(
            f"{what} must be a tuple {names}, got {type(params).__name__} of length "
            f"{len(params) if isinstance(params, (tuple, list)) else '?'}"
        )
    return tuple(params)


@attrs.frozen
class GaussianKLConfig:
    """``backend``: "auto" (numba kernel for CPU tensors, else torch), "numba" or "torch".
    ``differentiable``: gradients through the projection (implicit differentiation). ``rtol``: relative
    tolerance on the ratio constraint for the multiplier search; ``max_iter``: its iteration cap;
    ``verify_tol``: slack allowed when verifying max_log_ratio ≤ log α (0 = exact)."""

    backend: Literal["auto", "numba", "torch"] = "auto"
    differentiable: bool = False
    rtol: float = 1e-14
    max_iter: int = 100
    verify_tol: float = 0.0

    def __attrs_post_init__(self) -> None:
        if not 0.0 < self.rtol <= 1e-3:
            raise ValueError(f"rtol must be in (0, 1e-3], got {self.rtol}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter}")
        if not self.verify_tol >= 0.0:
            raise ValueError(f"verify_tol must be non-negative, got {self.verify_tol}")


class _Counted:
    """Running statistics over calls: ``rows`` projected, ``fallbacks`` among them, the ``last_info``."""

    def __init__(self) -> None:
        self.fallbacks = 0
        self.rows = 0
        self.last_info: ProjectionInfo | None = None

    def _count(self, info: ProjectionInfo) -> None:
        self.last_info = info
        self.rows += info.status.numel()
        self.fallbacks += info.fallbacks


class GaussianKLProjection(_Counted):
    """Reverse-KL projection of a diagonal Gaussian task policy onto the α-ratio set of the base."""

    def __init__(self, config: GaussianKLConfig | None = None) -> None:
        super().__init__()
        self.config = config or GaussianKLConfig()

    def project(self, base: tuple, task: tuple, alpha: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu_b, std_b = _unpack(base, 2, "base")
        mu_t, std_t = _unpack(task, 2, "task")
        c = self.config
        mu, std, info = project(
            mu_b,
            std_b,
            mu_t,
            std_t,
            alpha,
            backend=c.backend,
            differentiable=c.differentiable,
            return_info=True,
            rtol=c.rtol,
            max_iter=c.max_iter,
            verify_tol=c.verify_tol,
        )
        self._count(info)
        return mu, std

    def max_log_ratio(self, p: tuple, b: tuple) -> torch.Tensor:
        return max_log_ratio(*_unpack(p, 2, "p"), *_unpack(b, 2, "b"))


@attrs.frozen
class CategoricalKLConfig:
    """``differentiable``: keep the autograd graph through the projection; ``verify_tol``: slack allowed when
    verifying max_i p_i/b_i ≤ α (in log units, 0 = exact)."""

    differentiable: bool = False
    verify_tol: float = 0.0

    def __attrs_post_init__(self) -> None:
        if not self.verify_tol >= 0.0:
            raise ValueError(f"verify_tol must be non-negative, got {self.verify_tol}")


class CategoricalKLProjection(_Counted):
    """Reverse-KL projection of a categorical task policy onto {p : p_i ≤ α·b_i}; parameters ``(logits,)``."""

    def __init__(self, config: CategoricalKLConfig | None = None) -> None:
        super().__init__()
        self.config = config or CategoricalKLConfig()

    def project(self, base: tuple, task: tuple, alpha: float | torch.Tensor) -> tuple[torch.Tensor]:
        (logits_b,) = _unpack(base, 1, "base")
        (logits_t,) = _unpack(task, 1, "task")
        c = self.config
        logits, info = project_categorical(
            logits_b, logits_t, alpha, differentiable=c.differentiable, return_info=True, verify_tol=c.verify_tol
        )
        self._count(info)
        return (logits,)

    def max_log_ratio(self, p: tuple, b: tuple) -> torch.Tensor:
        return categorical_max_log_ratio(_unpack(p, 1, "p")[0], _unpack(b, 1, "b")[0])
