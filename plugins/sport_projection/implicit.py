"""Gradients of the Gaussian projection by implicit differentiation of its optimality conditions.

Per row, z = (m, s, λ) solves F(z, θ) = 0 with θ = (μb, σb, μt, τ, log α), where for a projected row and a
dimension strictly inside the base (s < σb), with Sb = σb², St = τ²,

    F_m = (m − μt)/St + λ(m − μb)/(Sb − s²)                       (∂/∂m of the Lagrangian)
    F_s = −(1 + λ)/s + s/St + λ·s·(m − μb)²/(Sb − s²)²            (∂/∂s of the Lagrangian)
    F_λ = Σ_inside [log(σb/s) + (m − μb)²/(2(Sb − s²))] − log α    (the active ratio constraint),

a dimension at the base is pinned by m − μb = 0, s − σb = 0, an inactive constraint (λ = 0) by F_λ = λ, and a
row returned as the task (or the base) by z − task (z − base). The implicit function theorem gives
dz/dθ = −(∂F/∂z)⁻¹ ∂F/∂θ, so the backward pass solves (∂F/∂z)ᵀ y = ∂ℓ/∂z per row and returns −(∂F/∂θ)ᵀ y.
Gradients are exact for the mathematical solution; they are piecewise (a dimension reaching the base, or
the task becoming feasible, switches the branch), as for any projection.
"""

from __future__ import annotations

import torch
from torch.func import jacrev, vjp, vmap

from sport_projection.status import PROJECTED, TASK


def _residual(z: torch.Tensor, th: torch.Tensor, kind: torch.Tensor, inside: torch.Tensor, active: torch.Tensor):
    """F(z, θ) of one row (see the module docstring); ``kind`` 2 = projected, 1 = task, 0 = base."""
    d = inside.shape[-1]
    m, s, lam = z[:d], z[d : 2 * d], z[2 * d]
    mb, sb, mt, st, L = th[:d], th[d : 2 * d], th[2 * d : 3 * d], th[3 * d : 4 * d], th[4 * d]
    kkt = (kind == 2) & inside
    one = torch.ones_like(s)
    Sb, St = sb * sb, st * st
    # Safe values in the lanes torch.where discards, so that their derivatives are finite (no 0·inf).
    den = torch.where(kkt, Sb - s * s, one)
    s_in = torch.where(kkt, s, one)
    dmb = m - mb
    f_m = (m - mt) / St + lam * dmb / den
    f_s = -(1.0 + lam) / s_in + s_in / St + lam * s_in * dmb * dmb / (den * den)
    to_task = kind == 1
    F_m = torch.where(kkt, f_m, torch.where(to_task, m - mt, m - mb))
    F_s = torch.where(kkt, f_s, torch.where(to_task, s - st, s - sb))
    c = torch.where(kkt, torch.log(torch.where(kkt, sb, one) / s_in) + dmb * dmb / (2.0 * den), 0.0).sum()
    F_l = torch.where((kind == 2) & active, c - L, lam)
    return torch.cat([F_m, F_s, F_l.reshape(1)])


def implicit_vjp(mb, sb, mt, st, L, m, s, status, lam, grad_m, grad_s):
    """Vector-Jacobian product of the projection: gradients for (μb, σb, μt, τ, log α) per row, float64."""
    f64 = lambda t: t.detach().to(torch.float64)  # noqa: E731
    mb, sb, mt, st, L, m, s, lam = map(f64, (mb, sb, mt, st, L, m, s, lam))
    n, d = mb.shape
    kind = torch.where(status == PROJECTED, 2, torch.where(status == TASK, 1, 0))
    inside = s < sb
    active = lam > 0
    z = torch.cat([m, s, lam.unsqueeze(-1)], dim=-1)
    th = torch.cat([mb, sb, mt, st, L.unsqueeze(-1)], dim=-1)
    J = vmap(jacrev(_residual, argnums=0))(z, th, kind, inside, active)
    v = torch.cat([f64(grad_m), f64(grad_s), torch.zeros(n, 1, dtype=torch.float64, device=mb.device)], dim=-1)
    y, info = torch.linalg.solve_ex(J.mT, v.unsqueeze(-1))
    y = y.squeeze(-1)
    bad = info != 0
    if bool(bad.any()):  # a singular system (degenerate row): least-norm solution instead
        y[bad] = (torch.linalg.pinv(J[bad].mT) @ v[bad].unsqueeze(-1)).squeeze(-1)
    _, pullback = vjp(lambda t: vmap(_residual)(z, t, kind, inside, active), th)
    (g,) = pullback(y)
    g = -g
    return g[:, :d], g[:, d : 2 * d], g[:, 2 * d : 3 * d], g[:, 3 * d : 4 * d], g[:, 4 * d]


class ImplicitProjection(torch.autograd.Function):
    """``apply(mb, sb, mt, st, log_alpha, backend, out_dtype, rtol, max_iter, verify_tol)`` on ``[n, d]`` inputs
    -> ``(m, s, status, lam, stats)`` with stats = (iterations, fallbacks); differentiable in the first five
    arguments."""

    @staticmethod
    def forward(ctx, mb, sb, mt, st, log_alpha, backend, out_dtype, rtol, max_iter, verify_tol):
        from sport_projection.gaussian import solve_flat

        with torch.no_grad():
            m, s, status, lam, iterations, fallbacks = solve_flat(
                mb, sb, mt, st, log_alpha, backend, out_dtype, rtol, max_iter, verify_tol
            )
        stats = torch.tensor([iterations, fallbacks])
        ctx.save_for_backward(mb, sb, mt, st, log_alpha, m, s, status, lam)
        ctx.mark_non_differentiable(status, lam, stats)
        return m, s, status, lam, stats

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_m, grad_s, _g_status, _g_lam, _g_stats):
        mb, sb, mt, st, log_alpha, m, s, status, lam = ctx.saved_tensors
        L = log_alpha.to(torch.float64).reshape(-1).expand(mb.shape[0])
        if grad_m is None:
            grad_m = torch.zeros_like(m)
        if grad_s is None:
            grad_s = torch.zeros_like(s)
        g_mb, g_sb, g_mt, g_st, g_L = implicit_vjp(mb, sb, mt, st, L, m, s, status, lam, grad_m, grad_s)
        g_la = g_L.sum().reshape(log_alpha.shape) if log_alpha.numel() == 1 else g_L.reshape(log_alpha.shape)
        return (
            g_mb.to(mb.dtype),
            g_sb.to(sb.dtype),
            g_mt.to(mt.dtype),
            g_st.to(st.dtype),
            g_la.to(log_alpha.dtype),
            None,
            None,
            None,
            None,
            None,
        )
