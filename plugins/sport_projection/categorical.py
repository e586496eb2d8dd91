"""The policy-ratio projection for categorical (discrete-action) policies.

Parameters are *logits* ``[..., n]``: unnormalised log-probabilities (any additive constant; −inf marks an
impossible action). For p, b on n actions, sup_a p(a)/b(a) = max_i p_i/b_i, so the projection

    minimise KL(p ‖ t) = Σ_i p_i log(p_i/t_i)  subject to  p_i ≤ α·b_i, Σ_i p_i = 1

has the exact water-filling solution p_i = min(c·t_i, α·b_i), with the scalar c ≥ 1 fixed by Σ_i p_i = 1
(stationarity: log(p_i/t_i) is the same constant on every uncapped action). Sorting the breakpoints
r_i = log(α b_i / t_i) gives c in closed form per row: with the k smallest breakpoints capped,
c = (1 − α Σ_capped b) / Σ_uncapped t, where k is the first breakpoint at which the mass reaches 1. A solution
with finite KL exists iff α·b(supp t) ≥ 1; a row without one falls back to the base (status ``INVALID``).
Outputs are normalised log-probabilities; they are verified like the Gaussian ones, and the whole
computation is differentiable by ordinary autograd (the active set is locally constant).
"""

from __future__ import annotations

import math

import torch

from sport_projection.gaussian import ProjectionInfo, _check_shapes, _log_alpha, _promoted
from sport_projection.status import BASE, FALLBACK_CODES, INVALID, MARGINS, PROJECTED, TASK, UNVERIFIED


def categorical_max_log_ratio(logits_p: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """log max_i p_i/b_i per row (−inf-probability actions of p are ignored; +inf where p_i > 0 = b_i).

    Computed in float64 from the normalised logits, returned in the inputs' (promoted) dtype.
    """
    _check_shapes("categorical_max_log_ratio", logits_p=logits_p, logits_b=logits_b)
    dtype = _promoted(logits_p, logits_b)
    return _log_ratio(torch.log_softmax(logits_p.double(), -1), torch.log_softmax(logits_b.double(), -1)).to(dtype)


def _log_ratio(lp: torch.Tensor, lb: torch.Tensor) -> torch.Tensor:
    """max_i (lp_i − lb_i) over the support of p, for normalised log-probabilities."""
    in_support = lp > -math.inf
    diff = torch.where(in_support, lp - torch.where(in_support, lb, torch.zeros_like(lb)), -math.inf)
    return diff.max(-1).values


def project_categorical(
    logits_b: torch.Tensor,
    logits_t: torch.Tensor,
    alpha: float | torch.Tensor,
    *,
    differentiable: bool = False,
    return_info: bool = False,
    verify_tol: float = 0.0,
):
    """The categorical p closest to the task (min KL(p ‖ t)) with p_i ≤ α·b_i for every action, per row.

    ``logits_b``, ``logits_t``: ``[..., n]``; ``alpha`` ≥ 1, a number or a tensor of the batch shape. Returns
    the projected logits (normalised log-probabilities; α = 1 returns the base logits and a feasible task the
    task logits, bitwise) and, with ``return_info``, a :class:`ProjectionInfo`. Rows with NaN/+inf logits, no
    possible action, or no feasible p with finite KL fall back to the base. ``differentiable`` keeps the
    autograd graph (gradients to both logits and a tensor ``alpha``).
    """
    _check_shapes("project_categorical", logits_b=logits_b, logits_t=logits_t)
    if not verify_tol >= 0.0:
        raise ValueError(f"project_categorical: verify_tol must be non-negative, got {verify_tol}")
    batch_shape, n = logits_b.shape[:-1], logits_b.shape[-1]
    out_dtype = _promoted(logits_b, logits_t)
    log_alpha = _log_alpha(alpha, batch_shape, logits_b.device, "project_categorical")
    if not isinstance(log_alpha, torch.Tensor):
        log_alpha = torch.tensor([log_alpha], dtype=torch.float64, device=logits_b.device)
    grad = differentiable and (logits_b.requires_grad or logits_t.requires_grad or log_alpha.requires_grad)
    with torch.set_grad_enabled(grad):
        out, status = _solve(logits_b.reshape(-1, n), logits_t.reshape(-1, n), log_alpha, out_dtype, verify_tol)
    if not grad:
        out = out.detach()
    out = out.reshape(logits_b.shape)
    if not return_info:
        return out
    zeros = torch.zeros(status.shape, dtype=torch.float64, device=status.device)
    fallbacks = int((status >= min(FALLBACK_CODES)).sum())
    return out, ProjectionInfo(status.reshape(batch_shape), zeros.reshape(batch_shape), 0, "torch", fallbacks)


def _solve(xb: torch.Tensor, xt: torch.Tensor, log_alpha: torch.Tensor, out_dtype: torch.dtype, verify_tol: float):
    rows, n = xb.shape
    L = log_alpha.reshape(-1).expand(rows)
    lb = torch.log_softmax(xb.double(), -1)
    lt = torch.log_softmax(xt.double(), -1)
    bad_input = lambda x: (torch.isnan(x) | (x == math.inf)).any(-1) | (x == -math.inf).all(-1)  # noqa: E731
    valid = ~(bad_input(xb) | bad_input(xt))
    status = torch.full((rows,), BASE, dtype=torch.int8, device=xb.device)
    status[~valid] = INVALID
    is_task = valid & (L > 0) & (_log_ratio(lt, lb) <= L)
    status[is_task] = TASK

    # Water-filling: breakpoints r_i = L + lb_i − lt_i in log c; actions with t_i = 0 never cap (r = +inf).
    r = torch.where(lt > -math.inf, L.unsqueeze(-1) + lb - lt, math.inf)
    r = torch.where(torch.isnan(r), math.inf, r)
    order = torch.argsort(r.detach(), dim=-1)
    r_s = r.gather(-1, order)
    b_s = torch.exp(L.unsqueeze(-1) + lb.gather(-1, order))  # α·b in breakpoint order
    t_s = torch.exp(lt.gather(-1, order))
    capped_mass = torch.cumsum(b_s, -1) - b_s  # α·b of the actions before breakpoint k
    t_rest = torch.flip(torch.cumsum(torch.flip(t_s, [-1]), -1), [-1])  # t of breakpoint k and after
    at_k = torch.where(t_rest > 0, capped_mass + torch.exp(torch.clamp(r_s, max=700.0)) * t_rest, capped_mass)
    k = (at_k.detach() < 1.0).sum(-1, keepdim=True).clamp(max=n - 1)
    feasible = (L + torch.logsumexp(torch.where(lt > -math.inf, lb, -math.inf), -1)) >= 0
    rank = torch.empty_like(order).scatter_(-1, order, torch.arange(n, device=xb.device).expand(rows, n))
    capped = rank < k
    log_capped = L + torch.logsumexp(torch.where(capped, lb, -math.inf), -1)
    log_rest = torch.logsumexp(torch.where(capped, -math.inf, lt), -1)
    log_c = torch.log(-torch.expm1(torch.clamp(log_capped, max=-1e-300))) - log_rest
    lp = torch.minimum(log_c.unsqueeze(-1) + lt, L.unsqueeze(-1) + lb)

    solve = valid & (L > 0) & ~is_task
    status[solve & ~feasible] = INVALID
    solve = solve & feasible
    out, ok = _finish(lp, lb, L, solve, out_dtype, verify_tol)
    status[solve & ok] = PROJECTED
    status[solve & ~ok] = UNVERIFIED
    rows_to = lambda mask: mask.unsqueeze(-1)  # noqa: E731
    result = torch.where(rows_to(solve & ok), out, xb.to(out_dtype))
    result = torch.where(rows_to(is_task), xt.to(out_dtype), result)
    return result, status


def _finish(lp, lb, L, rows, out_dtype, verify_tol):
    """Mix the ``rows`` toward the base until the output, rounded to ``out_dtype``, verifies: ratio ≤ α with
    p = b + θ(p − b) needs θ ≤ (α − 1)/(R − 1) where R = max p/b, since the ratio is affine in θ."""
    theta = torch.ones(lp.shape[0], dtype=torch.float64, device=lp.device)
    pending = rows.clone()
    ok = torch.zeros_like(pending)
    out = lp.to(out_dtype)
    for k in range(len(MARGINS) + 1):
        t = theta.detach().unsqueeze(-1)
        mixed = torch.logaddexp(torch.log1p(-t) + lb, torch.log(t) + lp)
        cand = torch.where(t == 1.0, lp, mixed).to(out_dtype)
        out = torch.where(pending.unsqueeze(-1), cand, out)
        C = _log_ratio(torch.log_softmax(out.detach().double(), -1), lb.detach())
        good = pending & torch.isfinite(out.detach()).any(-1) & (L.detach() + verify_tol >= C)
        ok = ok | good
        pending = pending & ~good
        if k == len(MARGINS) or not bool(pending.any()):
            break
        R = torch.exp(C)
        target = torch.expm1(L.detach() * (1.0 - MARGINS[k]))
        theta = torch.where(pending & (R > 1), theta * target / torch.expm1(C).clamp(min=1e-300), theta)
        theta = torch.where(torch.isfinite(R), theta, torch.zeros_like(theta))
    return out, ok
