"""Batched torch solver of the Gaussian ratio projection: the GPU path and the fallback without numba.

The same algorithm as :mod:`sport_projection.kernel` (read the mathematics there and in
:mod:`sport_projection.gaussian`), written over whole ``[n, d]`` float64 tensors: every row iterates in
lock-step and a row that has converged keeps its value (masks instead of branches). Loops end when no row is
still working, so the number of host-device synchronisations is the number of iterations.
"""

from __future__ import annotations

import torch

from sport_projection.formulas import slope_at_base as _slope_at_base
from sport_projection.status import BASE, INVALID, MARGINS, PROJECTED, TASK, UNVERIFIED


def dim_log_ratio(m: torch.Tensor, s: torch.Tensor, mb: torch.Tensor, sb: torch.Tensor) -> torch.Tensor:
    """Elementwise log sup_x N(x; m, s²)/N(x; mb, sb²): finite for s < sb, 0 for an identical dimension, else +inf.

    ``log1p((sb − s)/s)`` and ``(sb − s)(sb + s)`` keep full relative precision when s is close to sb. Masked
    lanes use safe denominators so that autograd through this function never meets 0·inf.
    """
    below = s < sb
    gap = torch.where(below, sb - s, torch.ones_like(s))
    s_safe = torch.where(below, s, torch.ones_like(s))
    dm = m - mb
    finite = torch.log1p(gap / s_safe) + dm * dm / (2.0 * gap * (sb + s))
    same = (s == sb) & (m == mb)
    inf = torch.full_like(finite, float("inf"))
    return torch.where(below, finite, torch.where(same, torch.zeros_like(finite), inf))


def _lambda_star(Sb: torch.Tensor, St: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """Positive root of λ² + (1 − Sb/St)λ − D·Sb/St² (0 when D = 0 and St ≥ Sb)."""
    a = (St - Sb) / St
    q = D * Sb / (St * St)
    disc = torch.sqrt(a * a + 4.0 * q)
    root = torch.where(a > 0, 2.0 * q / (a + disc), 0.5 * (disc - a))
    return torch.where(q == 0, torch.clamp(-a, min=0.0), root)


def _solve_wv(gam: torch.Tensor, eps: torch.Tensor, dlt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(w, v = 1 − w) for the root w of (γ − w)w² + δ(1 − w) in [max(γ, 0), 1); ε = 1 − γ computed directly.

    Lanes whose root is at most ½ iterate in w (monotone Newton from an upper bound, the kernel's
    ``solve_w``), the others in v, on (v − ε)(1 − v)² + δv (monotone Newton from below, the kernel's
    ``solve_v``), so that u = Kv keeps full relative precision when s ≪ σb. Both are F = A·B² + δ(1 − B) in
    one variable y with A = σy + a0, B = b0 − σy (σ = −1, a0 = γ, b0 = 0 for w; σ = 1, a0 = −ε, b0 = 1 for
    v), so one loop serves both. The v lanes start from the larger of the lower bounds ε/(1 + 2ε + δ) and
    (for δ ≤ γ³) ε − δ/γ².
    """
    in_v = gam - 0.5 + 2.0 * dlt > 0  # the cubic at w = ½ is positive iff the root is above ½
    small = dlt <= gam.abs() ** 3
    ub_small = torch.where(gam > 0, gam + dlt / (gam * gam), torch.sqrt(dlt / -gam))
    ub_big = torch.clamp(gam, min=0.0) + dlt ** (1.0 / 3.0)
    w0 = torch.clamp(torch.where(small, ub_small, ub_big), max=1.0)
    w0 = torch.where(dlt == 0, torch.clamp(gam, min=0.0), w0)
    v0 = eps / (1.0 + 2.0 * eps + dlt)
    v0 = torch.where((gam > 0) & small, torch.maximum(v0, eps - dlt / (gam * gam)), v0)
    v0 = torch.where(dlt == 0, eps, v0)
    y = torch.where(in_v, v0, w0)
    sig = torch.where(in_v, 1.0, -1.0)
    a0 = torch.where(in_v, -eps, gam)
    b0 = in_v.to(y.dtype)
    active = dlt > 0
    for _ in range(60):
        sy = sig * y
        A = sy + a0
        B = b0 - sy
        BB = B * B
        F = A * BB + dlt * (1.0 - B)
        sFy = BB - 2.0 * A * B + dlt  # σ·dF/dy: the iteration moves y by σ·(positive step)
        step = -F / sFy
        y_new = y + sig * step
        ok = active & (F < 0) & (sFy > 0) & (step > 0)
        y = torch.where(ok, y_new, y)
        active = ok & (step > 1e-8 * y)
        if not bool(active.any()):
            break
    return torch.where(in_v, 1.0 - y, y), torch.where(in_v, y, 1.0 - y), in_v


def _dims_at(lam, Sb, St, D, lstar, iSb):
    """Per-dimension pieces at multiplier ``lam`` ([n, 1]): (inside, λSt, K, 1/K, w, v, u, gap, in_v, γ, δ)."""
    lSt = lam * St
    K = Sb + lSt
    iK = 1.0 / K
    gam = (Sb - St) * iK
    dlt = lSt * D * iK * iK
    w, v, in_v = _solve_wv(gam, (St + lSt) * iK, dlt)
    u = K * v
    gap = torch.where(in_v, Sb - u, K * w - lSt)  # from u where w was solved in v, else exact near the base
    inside = (lam < lstar) & (gap > 0)
    return inside, lSt, K, iK, w, v, u, gap, in_v, gam, dlt


def _eval_lambda(lam, Sb, St, D, iSb, lstar):
    """C(λ) and dC/dλ per row (formulas in :func:`sport_projection.kernel.eval_lambda`)."""
    inside, lSt, K, iK, w, v, u, gap, in_v, gam, dlt = _dims_at(lam, Sb, St, D, lstar, iSb)
    far = in_v & (gap > 0.5 * Sb)  # log(Sb/u) from u when u ≪ Sb, else from the exact gap
    logr = torch.where(far, -torch.log(torch.where(far, u * iSb, 1.0)), -torch.log1p(-gap * iSb))
    Kw = K * w
    iKw = 1.0 / Kw
    q = D * iKw * iKw
    c = 0.5 * (q * gap + logr)
    dc_dw = 0.5 / v + 0.5 * q * (2.0 * lSt - Kw) * (K * iKw)
    dc_dl = 0.5 * St * iK * (q * (2.0 * lSt - K - Kw) - 1.0)
    g_w = (2.0 * gam - 3.0 * w) * w - dlt
    g_l = St * iK * (v * D * (Sb - lSt) * iK * iK - w * w * gam)
    dc = dc_dl - dc_dw * g_l / g_w
    zero = torch.zeros_like(c)
    return torch.where(inside, c, zero).sum(-1), torch.where(inside, dc, zero).sum(-1)


def _find_lambda(L, Sb, St, D, iSb, lstar, c_fin, a_inf, b_inf, rtol, max_iter):
    """λ per row with C(λ) = L: safeguarded Newton in x = λ^(−1/2) (see the kernel's ``find_lambda``)."""
    lam_max, jmax = lstar.max(-1, keepdim=True)
    pick = lambda t: t.gather(-1, jmax)  # noqa: E731
    xl = (1.0 / torch.sqrt(lam_max)).squeeze(-1)
    xh = torch.full_like(xl, float("inf"))
    s0 = (-2.0 * lam_max * torch.sqrt(lam_max) * _slope_at_base(lam_max, pick(Sb), pick(St), pick(D))).squeeze(-1)
    x = torch.where((s0 > 0) & torch.isfinite(s0), xl + L / s0, 2.0 * xl)
    x = torch.where(x > xl, x, 2.0 * xl)
    inf = torch.full_like(x, float("inf"))
    xa = torch.where(a_inf > 0, (L - c_fin) / a_inf, inf)
    xb = torch.where(b_inf > 0, ((L - c_fin) / b_inf) ** 1.5, inf)
    x = torch.where((c_fin < L) & ((a_inf > 0) | (b_inf > 0)), torch.maximum(x, torch.minimum(xa, xb)), x)
    r_prev = L.clone()
    tol = rtol * L
    tol_last = rtol**0.5 * L
    active = torch.ones_like(L, dtype=torch.bool)
    iters = torch.zeros_like(L, dtype=torch.int64)
    for _ in range(max_iter):
        lam = 1.0 / (x * x)
        C, dC = _eval_lambda(lam.unsqueeze(-1), Sb, St, D, iSb, lstar)
        r = C - L
        iters += active.to(torch.int64)
        xh = torch.where(active & (r > 0), x, xh)
        xl = torch.where(active & ~(r > 0), x, xl)
        converged = (r.abs() <= tol) | (xh - xl <= 4e-16 * xl)
        dCdx = -2.0 * lam * torch.sqrt(lam) * dC
        x_newton = torch.where(dCdx > 0, x - r / dCdx, torch.full_like(x, float("nan")))
        inside = (xl < x_newton) & (x_newton < xh)
        newton_ok = (r.abs() <= 0.5 * r_prev.abs()) & inside
        last = newton_ok & (r.abs() <= tol_last) & ((x_newton - x).abs() <= rtol**0.5 * x)  # see the kernel
        grow = torch.where(inside, torch.maximum(x_newton, 4.0 * xl), 4.0 * xl)
        bisect = torch.where(torch.isinf(xh), grow, torch.where(xh > 4.0 * xl, torch.sqrt(xl * xh), 0.5 * (xl + xh)))
        move = active & ~converged
        x = torch.where(move, torch.where(newton_ok, x_newton, bisect), x)
        r_prev = torch.where(move, r, r_prev)
        active = move & ~last
        if not bool(active.any()):
            break
    return 1.0 / (x * x), int(iters.sum())


def _point_at(lam, mb, mt, Sb, St, D, iSb, lstar, sb):
    """The per-dimension minimisers (m, s) at multiplier ``lam`` ([n, 1]) and their exact mean terms
    q = (m − μb)²/(2·gap), u = s² and gap = σb² − u; dimensions past λ* sit at the base (q = gap = 0, u = σb²)."""
    inside, _lSt, K, _iK, w, _v, u, gap, _in_v, _gam, _dlt = _dims_at(lam, Sb, St, D, lstar, iSb)
    Kw = K * w
    m = mb + gap / Kw * (mt - mb)
    q = 0.5 * D * gap / (Kw * Kw)
    zero = torch.zeros_like(q)
    return (
        torch.where(inside, m, mb),
        torch.where(inside, torch.sqrt(u), sb),
        torch.where(inside, q, zero),
        torch.where(inside, u, Sb),
        torch.where(inside, gap, zero),
    )


def _refit_means(mb, sb, pm, ps, pq, pu, pg, out_dtype, budget):
    """Round s to ``out_dtype`` and give each dimension the mean that restores its exact contribution c, unless
    c moved by at most ``budget`` ([n, 1]); see :func:`sport_projection.kernel._refit_means`."""
    s = ps.to(out_dtype).to(torch.float64)
    below = s < sb
    s_in = torch.where(below, s, torch.ones_like(s))
    gs = torch.where(below, (sb - s) * (sb + s), torch.ones_like(s))
    d2 = torch.where(pg <= 0.5 * sb * sb, pg - gs, s_in * s_in - pu)  # s² − u
    dlog = 0.5 * torch.log1p(d2 / (s_in * s_in - d2))
    q = pq + dlog
    dm = pm - mb
    refit = mb + torch.copysign(torch.sqrt(torch.clamp(2.0 * q * gs, min=0.0)), dm)
    m = torch.where((q > 0) & (dm != 0), refit, mb)
    m = torch.where((pq * (pg - gs) / gs - dlog).abs() <= budget, pm, m)
    return torch.where(below, m, mb), torch.where(below, s, sb)


def _finish(L, mb, sb, pm, ps, out_dtype, verify_tol):
    """Shrink toward the base until the output, rounded to ``out_dtype``, verifies (see the kernel's
    ``_finish_row``). Returns (m, s, ok) with the rounded output."""
    n = pm.shape[0]
    theta = torch.ones(n, dtype=torch.float64, device=pm.device)
    pending = torch.ones(n, dtype=torch.bool, device=pm.device)
    success = torch.zeros_like(pending)
    out_m = pm.to(out_dtype)
    out_s = ps.to(out_dtype)
    for k in range(len(MARGINS) + 1):
        t = theta.unsqueeze(-1)
        one = t == 1.0  # mb + (pm − mb) need not round back to pm
        cm = torch.where(one, pm, mb + t * (pm - mb)).to(out_dtype)
        cs = torch.where(one, ps, sb + t * (ps - sb)).to(out_dtype)
        snap = ~(cs.to(torch.float64) < sb)
        cm = torch.where(snap, mb.to(out_dtype), cm)
        cs = torch.where(snap, sb.to(out_dtype), cs)
        upd = pending.unsqueeze(-1)
        out_m = torch.where(upd, cm, out_m)
        out_s = torch.where(upd, cs, out_s)
        m64 = out_m.to(torch.float64)
        s64 = out_s.to(torch.float64)
        sane = (torch.isfinite(m64) & torch.isfinite(s64) & (s64 > 0)).all(-1)
        C = dim_log_ratio(m64, s64, mb, sb).sum(-1)
        good = pending & sane & (L + verify_tol >= C)
        success |= good
        pending = pending & sane & ~good
        if k == len(MARGINS) or not bool(pending.any()):
            break
        theta = torch.where(pending, torch.where(torch.isfinite(C), theta * L * (1.0 - MARGINS[k]) / C, 0.0), theta)
    return out_m, out_s, success


def solve(
    mb: torch.Tensor,
    sb: torch.Tensor,
    mt: torch.Tensor,
    st: torch.Tensor,
    L: torch.Tensor,
    out_dtype: torch.dtype,
    rtol: float,
    max_iter: int,
    verify_tol: float,
):
    """Project rows of float64 ``[n, d]`` parameters with per-row ``L = log α`` ([n]).

    Returns ``(m, s, status, lam, iterations)``: outputs in ``out_dtype``, int8 status codes, the multiplier
    per row (0 where no constraint was active) and the total number of outer iterations.
    """
    n, _ = mb.shape
    dev = mb.device
    out_m = mb.to(out_dtype).clone()
    out_s = sb.to(out_dtype).clone()
    status = torch.full((n,), BASE, dtype=torch.int8, device=dev)
    lam_out = torch.zeros(n, dtype=torch.float64, device=dev)

    finite = torch.isfinite(mb) & torch.isfinite(sb) & torch.isfinite(mt) & torch.isfinite(st)
    valid = (finite & (sb > 0) & (st > 0)).all(-1) & torch.isfinite(L) & (L >= 0)
    status[~valid] = INVALID

    dm = mt - mb
    inside = st < sb
    c_fin = torch.where(inside, dim_log_ratio(mt, st, mb, sb), torch.zeros_like(mt)).sum(-1)
    task_inf = (~inside & ((st > sb) | (dm != 0))).any(-1)
    unbounded_dim = ~inside & (dm != 0)
    unbounded = unbounded_dim.any(-1)
    a_inf_dim = 0.5 * dm.abs() * torch.sqrt(torch.clamp((st - sb) * (st + sb), min=0.0)) / (sb * st)
    a_inf = torch.where(unbounded_dim & (st > sb), a_inf_dim, torch.zeros_like(mt)).sum(-1)
    b_inf_dim = 0.5 * (dm.abs() / sb) ** (4.0 / 3.0)
    b_inf = torch.where(unbounded_dim & (st == sb), b_inf_dim, torch.zeros_like(mt)).sum(-1)

    open_rows = valid & (L > 0)
    is_task = open_rows & ~task_inf & (c_fin <= L)
    out_m = torch.where(is_task.unsqueeze(-1), mt.to(out_dtype), out_m)
    out_s = torch.where(is_task.unsqueeze(-1), st.to(out_dtype), out_s)
    status[is_task] = TASK
    todo = open_rows & ~is_task
    if not bool(todo.any()):
        return out_m, out_s, status, lam_out, 0

    idx = todo.nonzero().squeeze(-1)
    mb_, sb_, mt_, st_, L_ = mb[idx], sb[idx], mt[idx], st[idx], L[idx]
    c_fin_, a_inf_, b_inf_ = c_fin[idx], a_inf[idx], b_inf[idx]
    clip = ~unbounded[idx] & (c_fin_ <= L_)
    # The λ ↓ 0 limit is optimal when it is feasible: task inside σb, base where τ ≥ σb (and μt = μb there).
    inside_ = inside[idx]
    pm = torch.where(inside_, mt_, mb_)
    ps = torch.where(inside_, st_, sb_)
    lam_ = torch.zeros_like(L_)
    iterations = 0
    solve_rows = ~clip
    if bool(solve_rows.any()):
        j = solve_rows.nonzero().squeeze(-1)
        Sb, St = sb_[j] ** 2, st_[j] ** 2
        D = (mt_[j] - mb_[j]) ** 2
        lstar = _lambda_star(Sb, St, D)
        iSb = 1.0 / Sb
        lam_j, iterations = _find_lambda(
            L_[j] * (1.0 - 2.0 * rtol), Sb, St, D, iSb, lstar, c_fin_[j], a_inf_[j], b_inf_[j], rtol, max_iter
        )
        pm_j, ps_j, pq_j, pu_j, pg_j = _point_at(lam_j.unsqueeze(-1), mb_[j], mt_[j], Sb, St, D, iSb, lstar, sb_[j])
        budget = (rtol * L_[j] / Sb.shape[-1]).unsqueeze(-1)
        pm_j, ps_j = _refit_means(mb_[j], sb_[j], pm_j, ps_j, pq_j, pu_j, pg_j, out_dtype, budget)
        pm[j], ps[j], lam_[j] = pm_j, ps_j, lam_j
    fm, fs, ok = _finish(L_, mb_, sb_, pm, ps, out_dtype, verify_tol)
    fm = torch.where(ok.unsqueeze(-1), fm, mb_.to(out_dtype))
    fs = torch.where(ok.unsqueeze(-1), fs, sb_.to(out_dtype))
    out_m[idx] = fm
    out_s[idx] = fs
    status[idx] = torch.where(ok, PROJECTED, UNVERIFIED).to(torch.int8)
    lam_out[idx] = torch.where(ok, lam_, torch.zeros_like(lam_))
    return out_m, out_s, status, lam_out, iterations
