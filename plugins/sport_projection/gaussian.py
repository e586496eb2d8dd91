"""The Gaussian policy-ratio projection (the safety layer) and its ratio bound.

For diagonal Gaussians on the pre-tanh action (tanh acts on both densities alike, so its Jacobian cancels),
dimension by dimension with p = N(m, s²) and base b = N(μb, σb²):

    log sup_x p(x)/b(x) = log(σb/s) + (m − μb)² / (2(σb² − s²))   if s < σb,
                        = 0                                        if s = σb and m = μb,
                        = +∞                                       otherwise,

and log-ratios add over dimensions (:func:`max_log_ratio`). :func:`project` solves, for every row,

    minimise KL(p ‖ t)  subject to  max_log_ratio(p, b) ≤ log α

over diagonal Gaussians p (t = N(μt, τ²) the task). Exact reduction (u = s², Sb = σb², St = τ²,
D = (μt − μb)², one multiplier λ on the ratio constraint): for fixed λ the problem separates per dimension,
m = μb + (Sb − u)/(Sb − u + λSt)·(μt − μb), and stationarity in u is a cubic that reads
(γ − w)w² + δ(1 − w) = 0 in w = (K − u)/K with K = Sb + λSt, γ = (Sb − St)/K, δ = λ·D·St/K² (solving in u
would lose all precision at large α, where λ ≈ 1e-10; where the root w is above ½ it is solved in v = 1 − w = u/K
instead, which keeps u's relative precision when s ≪ σb). The interior root exists while λ < λ*_i, the positive
root of λ² + (1 − Sb/St)λ − D·Sb/St²; beyond it the dimension sits exactly at the base. The total ratio
C(λ) falls from C(0+) (> log α, else the λ ↓ 0 limit is the answer) to 0 at max λ*_i; λ is found by Newton
in λ^(−1/2) with bisection safeguards, and a final shrink toward the base (C is convex and 0 at the base)
makes the written output meet the bound. Every output row is verified with the formula above; a row that
fails, or has non-finite or non-positive input, is replaced by the base and counted as a fallback.

Two solvers implement this: a compiled numba row kernel (:mod:`sport_projection.kernel`, the fast CPU path)
and a batched torch solver (:mod:`sport_projection.solver_torch`, for GPUs and without numba). A
differentiable mode gives gradients by implicit differentiation of the optimality conditions
(:mod:`sport_projection.implicit`).
"""

from __future__ import annotations

import math
from typing import Literal

import attrs
import numpy as np
import torch

from sport_projection import solver_torch
from sport_projection.status import FALLBACK_CODES, NAMES

Backend = Literal["auto", "numba", "torch"]


@attrs.frozen
class ProjectionInfo:
    """What happened in one :func:`project` call.

    ``status``: int8 code per row (batch shape; see :mod:`sport_projection.status`); ``multiplier``: the
    Lagrange multiplier λ per row (0 where the constraint is not active); ``iterations``: outer iterations of
    all rows together; ``backend``: the solver that ran; ``fallbacks``: rows replaced by the base because of
    invalid input or a failed verification.
    """

    status: torch.Tensor
    multiplier: torch.Tensor
    iterations: int
    backend: str
    fallbacks: int

    @property
    def counts(self) -> dict[str, int]:
        """Rows per outcome: base, task, projected, invalid, unverified."""
        binc = torch.bincount(self.status.reshape(-1).to(torch.int64).cpu(), minlength=len(NAMES))
        return {name: int(binc[i]) for i, name in enumerate(NAMES)}


def max_log_ratio(mu_p: torch.Tensor, std_p: torch.Tensor, mu_b: torch.Tensor, std_b: torch.Tensor) -> torch.Tensor:
    """log sup_x p(x)/b(x) for diagonal Gaussians, one value per row (shape ``[...]`` for inputs ``[..., d]``).

    Exact per dimension (see the module docstring): +inf where some dimension has s > σb, or s = σb with
    m ≠ μb; an identical dimension contributes 0. Computed in float64, returned in the inputs' (promoted)
    dtype. Differentiable where finite.
    """
    _check_shapes("max_log_ratio", mu_p=mu_p, std_p=std_p, mu_b=mu_b, std_b=std_b)
    dtype = _promoted(mu_p, std_p, mu_b, std_b)
    f64 = [t.to(torch.float64) for t in (mu_p, std_p, mu_b, std_b)]
    return solver_torch.dim_log_ratio(*f64).sum(-1).to(dtype)


def project(
    mu_b: torch.Tensor,
    std_b: torch.Tensor,
    mu_t: torch.Tensor,
    std_t: torch.Tensor,
    alpha: float | torch.Tensor,
    *,
    backend: Backend = "auto",
    differentiable: bool = False,
    return_info: bool = False,
    rtol: float = 1e-14,
    max_iter: int = 100,
    verify_tol: float = 0.0,
):
    """The diagonal Gaussian p closest to the task (min KL(p ‖ t)) with max_log_ratio(p, b) ≤ log α, per row.

    Parameters are tensors of one shape ``[..., d]`` (usually ``[B, d]``); ``alpha`` ≥ 1 is a number or a
    tensor of the batch shape ``[...]`` (or broadcastable to it). Works in float64 and returns ``(mu, std)``
    in the inputs' (promoted) dtype, plus a :class:`ProjectionInfo` when ``return_info``. α = 1 returns the
    base and a task that already meets the bound returns the task, bitwise. Every output row is verified
    (max_log_ratio ≤ log α + ``verify_tol``, on the values as returned); rows that fail or have non-finite or
    non-positive input are replaced by the base (``info.fallbacks``).

    ``backend``: "numba" (compiled CPU kernel), "torch" (batched, any device) or "auto" (numba for CPU
    tensors when numba is importable). ``differentiable``: gradients to all four parameter tensors (and a
    tensor ``alpha``) by implicit differentiation of the optimality conditions; otherwise the outputs carry no
    autograd history. ``rtol``: relative tolerance on the ratio constraint for the multiplier search.
    Raises ValueError for α < 1 (or non-finite), mismatched shapes or non-floating tensors.
    """
    _check_shapes("project", mu_b=mu_b, std_b=std_b, mu_t=mu_t, std_t=std_t)
    if not 0.0 < rtol <= 1e-3:
        raise ValueError(f"project: rtol must be in (0, 1e-3], got {rtol}")
    if max_iter < 1:
        raise ValueError(f"project: max_iter must be at least 1, got {max_iter}")
    if not verify_tol >= 0.0:
        raise ValueError(f"project: verify_tol must be non-negative, got {verify_tol}")
    shape = mu_b.shape
    out_dtype = _promoted(mu_b, std_b, mu_t, std_t)
    log_alpha = _log_alpha(alpha, shape[:-1], mu_b.device)
    use = _resolve_backend(backend, mu_b.device, out_dtype)
    params = (mu_b, std_b, mu_t, std_t)
    if len(shape) != 2:  # the solvers work on [n, d]; reshaping costs microseconds, so only when needed
        params = tuple(t.reshape(-1, shape[-1]) for t in params)
    alpha_grad = isinstance(log_alpha, torch.Tensor) and log_alpha.requires_grad
    if differentiable and (alpha_grad or any(t.requires_grad for t in params)):
        from sport_projection.implicit import ImplicitProjection

        if not isinstance(log_alpha, torch.Tensor):
            log_alpha = torch.tensor([log_alpha], dtype=torch.float64, device=mu_b.device)
        m, s, status, lam, stats = ImplicitProjection.apply(
            *params, log_alpha, use, out_dtype, rtol, max_iter, verify_tol
        )
        iterations, fallbacks = (int(v) for v in stats)
    else:
        if alpha_grad:
            log_alpha = log_alpha.detach()
        m, s, status, lam, iterations, fallbacks = solve_flat(
            *params, log_alpha, use, out_dtype, rtol, max_iter, verify_tol
        )
    if len(shape) != 2:
        m, s = m.reshape(shape), s.reshape(shape)
    if not return_info:
        return m, s
    batch_shape = shape[:-1]
    info = ProjectionInfo(status.reshape(batch_shape), lam.reshape(batch_shape), iterations, use, fallbacks)
    return m, s, info


def solve_flat(mb, sb, mt, st, log_alpha, backend, out_dtype, rtol, max_iter, verify_tol):
    """Run a solver on ``[n, d]`` parameters; ``log_alpha`` is a number or a float64 tensor (one element or n).

    Returns ``(m, s, status, lam, iterations, fallbacks)``: tensors on the inputs' device (``m``, ``s`` in
    ``out_dtype``) and two ints. No validation: :func:`project` has done it.
    """
    n = mb.shape[0]
    if backend == "numba":
        from sport_projection import kernel

        la = _numpy64(log_alpha.reshape(-1)) if isinstance(log_alpha, torch.Tensor) else np.array([log_alpha])
        mb_, sb_, mt_, st_ = _numpy64(mb), _numpy64(sb), _numpy64(mt), _numpy64(st)
        np_dtype = np.float32 if out_dtype == torch.float32 else np.float64
        out_m = np.empty(mb_.shape, dtype=np_dtype)
        out_s = np.empty(mb_.shape, dtype=np_dtype)
        status = np.empty(n, dtype=np.int8)
        lam = np.empty(n, dtype=np.float64)
        iterations, fallbacks = kernel.project_rows(
            mb_, sb_, mt_, st_, la, out_m, out_s, status, lam, rtol, max_iter, verify_tol
        )
        return (
            torch.from_numpy(out_m),
            torch.from_numpy(out_s),
            torch.from_numpy(status),
            torch.from_numpy(lam),
            int(iterations),
            int(fallbacks),
        )
    f64 = [t.detach().to(torch.float64) for t in (mb, sb, mt, st)]
    if isinstance(log_alpha, torch.Tensor):
        L = log_alpha.detach().to(torch.float64).reshape(-1).expand(n)
    else:
        L = torch.full((n,), log_alpha, dtype=torch.float64, device=mb.device)
    with torch.no_grad():
        m, s, status, lam, iterations = solver_torch.solve(*f64, L, out_dtype, rtol, max_iter, verify_tol)
    fallbacks = int((status >= min(FALLBACK_CODES)).sum())
    return m, s, status, lam, iterations, fallbacks


def _numpy64(t: torch.Tensor) -> np.ndarray:
    """A C-contiguous float64 numpy view (or copy) of a CPU tensor."""
    if t.dtype != torch.float64:
        t = t.to(torch.float64)
    a = t.detach().numpy()
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _check_shapes(where: str, **tensors: torch.Tensor) -> None:
    names = list(tensors)
    first = tensors[names[0]]
    fine = isinstance(first, torch.Tensor) and first.dim() >= 1 and first.shape[-1] >= 1
    for t in tensors.values():  # the fast path: one cheap pass; the slow one below finds the culprit
        fine = fine and isinstance(t, torch.Tensor) and t.is_floating_point() and t.shape == first.shape
        fine = fine and t.device == first.device
    if fine:
        return
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{where}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{where}: {name} must be a floating-point tensor, got {t.dtype}")
        if t.dim() < 1 or t.shape[-1] < 1:
            raise ValueError(f"{where}: {name} must have shape [..., d] with d ≥ 1, got {tuple(t.shape)}")
        if t.shape != first.shape:
            raise ValueError(
                f"{where}: {name} has shape {tuple(t.shape)} but {names[0]} has shape {tuple(first.shape)}; "
                "all parameter tensors must have the same shape [..., d]"
            )
        if t.device != first.device:
            raise ValueError(f"{where}: {name} is on {t.device} but {names[0]} is on {first.device}")


def _promoted(*tensors: torch.Tensor) -> torch.dtype:
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        if t.dtype != dtype:
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _log_alpha(
    alpha: float | torch.Tensor, batch_shape: torch.Size, device: torch.device, where: str = "project"
) -> float | torch.Tensor:
    """log α: a float for a number, else a float64 tensor (one element, or the flattened batch; keeps autograd)."""
    if isinstance(alpha, torch.Tensor):
        if alpha.is_complex() or alpha.dtype == torch.bool:
            raise ValueError(f"{where}: alpha must be a real number or tensor, got dtype {alpha.dtype}")
        a = alpha.to(device=device, dtype=torch.float64)
        if a.numel() == 1:
            a = a.reshape(1)
        else:
            try:
                a = torch.broadcast_to(a, batch_shape).reshape(-1)
            except RuntimeError:
                raise ValueError(
                    f"{where}: alpha has shape {tuple(alpha.shape)}, which does not match the batch shape "
                    f"{tuple(batch_shape)}"
                ) from None
        if a.numel():
            lo, hi = (float(v) for v in torch.aminmax(a.detach()))
            if not (lo >= 1.0 and math.isfinite(hi)) or math.isnan(lo):
                raise ValueError(f"{where}: alpha must be finite and ≥ 1, got values from {lo} to {hi}")
        return torch.log(a)
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: alpha must be a number ≥ 1 or a tensor, got {alpha!r}") from None
    if not (math.isfinite(value) and value >= 1.0):
        raise ValueError(f"{where}: alpha must be finite and ≥ 1, got {alpha!r}")
    return math.log(value)


_NUMBA_OK: bool | None = None


def numba_available() -> bool:
    """Whether the compiled kernel can be used (numba importable)."""
    global _NUMBA_OK
    if _NUMBA_OK is None:
        try:
            import numba  # noqa: F401

            _NUMBA_OK = True
        except ImportError:
            _NUMBA_OK = False
    return _NUMBA_OK


def _resolve_backend(backend: str, device: torch.device, out_dtype: torch.dtype) -> str:
    if backend not in ("auto", "numba", "torch"):
        raise ValueError(f"project: backend must be 'auto', 'numba' or 'torch', got {backend!r}")
    cpu_ok = device.type == "cpu" and out_dtype in (torch.float32, torch.float64)
    if backend == "numba":
        if not cpu_ok:
            raise ValueError(f"project: backend 'numba' needs float32/float64 CPU tensors, got {out_dtype} on {device}")
        if not numba_available():
            raise ValueError("project: backend 'numba' needs the numba package; install it or use 'torch'")
        return "numba"
    if backend == "auto" and cpu_ok and numba_available():
        return "numba"
    return "torch"
