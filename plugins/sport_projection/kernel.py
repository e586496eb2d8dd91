"""Compiled (numba) row kernel of the Gaussian ratio projection: the fast CPU path.

One row at a time, the exact reduction of :mod:`sport_projection.gaussian` (see its docstring for the
mathematics): per dimension the stationarity cubic is solved in ``w = (K − u)/K`` (or in ``v = 1 − w`` where
w > ½), one multiplier λ is found by safeguarded Newton in ``x = λ^(−1/2)``, and the result is shrunk toward
the base, written in the output dtype, read back and verified. :mod:`sport_projection.solver_torch` is the
same algorithm batched in torch.

Rows get the status codes of :mod:`sport_projection.status`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sport_projection import formulas
from sport_projection.status import BASE, INVALID, MARGINS, PROJECTED, TASK, UNVERIFIED

# error_model="numpy": divisions give inf/nan like IEEE instead of a zero-division check per division.
_jit = njit(cache=True, error_model="numpy")
# Inlined at the numba IR level: as an ordinary call (returning a tuple) it cost ≈ 15% of the whole kernel.
_jit_inline = njit(cache=True, error_model="numpy", inline="always")

_MARGINS = np.array(MARGINS)


@_jit
def dim_log_ratio(m: float, s: float, mb: float, sb: float) -> float:
    """log sup_x N(x; m, s²)/N(x; mb, sb²) for one dimension (+inf where unbounded)."""
    if s < sb:
        dm = m - mb
        # log1p and (sb − s)(sb + s) keep full relative precision when s is close to sb.
        return math.log1p((sb - s) / s) + dm * dm / (2.0 * (sb - s) * (sb + s))
    if s == sb and m == mb:
        return 0.0
    return math.inf


@_jit
def row_log_ratio(m, s, mb, sb) -> float:
    total = 0.0
    for i in range(m.shape[0]):
        total += dim_log_ratio(m[i], s[i], mb[i], sb[i])
    return total


@_jit
def lambda_star(Sb: float, St: float, D: float) -> float:
    """Positive root of λ² + (1 − Sb/St)λ − D·Sb/St²: for λ ≥ it the dimension sits at the base."""
    a = (St - Sb) / St
    q = D * Sb / (St * St)
    if q == 0.0:
        return max(-a, 0.0)
    disc = math.sqrt(a * a + 4.0 * q)
    if a > 0.0:
        return 2.0 * q / (a + disc)  # the cancellation-free form of (−a + disc)/2
    return 0.5 * (disc - a)


@_jit
def solve_w(gam: float, dlt: float) -> float:
    """Root of (γ − w)w² + δ(1 − w) in [max(γ, 0), 1) by Newton from an upper bound.

    The cubic is concave and decreasing right of max(γ, 0), so Newton from any point above the root
    decreases monotonically onto it. Upper bounds: γ + min(δ/γ², δ^(1/3)) for γ > 0, and
    min(√(δ/−γ), δ^(1/3)) for γ ≤ 0 (each makes the cubic ≤ 0).
    """
    if dlt == 0.0:
        return max(gam, 0.0)
    # The cube root is only needed when δ > |γ|³ (it is then the smaller bound); pow is slow.
    if dlt <= abs(gam) ** 3:
        w = gam + dlt / (gam * gam) if gam > 0.0 else math.sqrt(dlt / -gam)
    else:
        w = max(gam, 0.0) + dlt ** (1.0 / 3.0)
    w = min(w, 1.0)
    for _ in range(60):
        g = (gam - w) * w * w + dlt * (1.0 - w)
        gw = (2.0 * gam - 3.0 * w) * w - dlt
        if g >= 0.0 or gw >= 0.0:
            break
        step = g / gw
        w_new = w - step
        if not w_new < w:
            break
        w = w_new
        # Quadratic convergence with |w·g''/(2g')| ≤ 2 on this branch: after a step below 1e-8·w the
        # remaining relative error is below ~2e-16, so another step would change nothing.
        if step <= 1e-8 * w:
            break
    return w


@_jit
def solve_v(eps: float, gam: float, dlt: float) -> float:
    """Root of (v − ε)(1 − v)² + δv in (0, min(ε, ½)], for roots w = 1 − v of the cubic above ½.

    This is the cubic of :func:`solve_w` in v = 1 − w (ε = 1 − γ = (1 + λ)St/K, computed without
    cancellation). When σ ≪ σb the root w is 1 − O(s²/K) and 1 − w computed from w keeps only a few digits of
    s² (at τ = 1e-8 σb, α = 1e6 about four), so the solution is solved for v directly. The function is
    increasing and concave on [0, ½], so Newton from any lower bound increases monotonically onto the root.
    Lower bounds: ε/(1 + 2ε + δ) (the first Newton step from 0) and, for δ ≤ γ³, ε − δ/γ² (from the upper
    bound on w in :func:`solve_w`; then v ≥ ε/5, so its rounding is harmless).
    """
    if dlt == 0.0:
        return eps
    v = eps / (1.0 + 2.0 * eps + dlt)
    if gam > 0.0 and dlt <= gam * gam * gam:
        v = max(v, eps - dlt / (gam * gam))
    for _ in range(60):
        om = 1.0 - v
        h = (v - eps) * om * om + dlt * v
        hv = om * (om - 2.0 * (v - eps)) + dlt
        if h >= 0.0 or hv <= 0.0:
            break
        step = -h / hv
        v_new = v + step
        if not v_new > v:
            break
        v = v_new
        if step <= 1e-8 * v:  # quadratic convergence, as in solve_w
            break
    return v


@_jit_inline
def dim_solution(K, iK, lSt, gam, dlt, Sb, St, iSb):
    """The stationary point of one dimension at K = Sb + λSt: (w, v = 1 − w = u/K, gap = Sb − u, log(Sb/u)).

    Solved in w while w ≤ ½ (then gap = Kw − λSt is exact near the base) and in v otherwise (then u = Kv keeps
    full relative precision when s ≪ σb); the cubic at w = ½ is (γ − ½)/4 + δ/2, positive iff the root is above ½.
    """
    if gam - 0.5 + 2.0 * dlt > 0.0:
        v = solve_v((St + lSt) * iK, gam, dlt)
        u = K * v
        gap = Sb - u
        logr = -math.log(u * iSb) if gap > 0.5 * Sb else -math.log1p(-gap * iSb)
        return 1.0 - v, v, gap, logr
    w = solve_w(gam, dlt)
    gap = K * w - lSt
    return w, 1.0 - w, gap, -math.log1p(-gap * iSb)


@_jit
def eval_lambda(lam, Sb, St, D, iSb, lstar, want_grad):
    """C(λ) = Σ_i c_i(λ) and dC/dλ for the per-dimension minimisers at multiplier λ.

    With K = Sb + λSt, w the root of the cubic and gap = Kw − λSt = Sb − u:
    c = −½·log1p(−gap/Sb) + ½·D·gap/(Kw)²; dc/dλ = ∂c/∂λ + ∂c/∂w · dw/dλ with
    dw/dλ = −g_λ/g_w (implicit differentiation of the cubic g). Reciprocals are shared because divisions
    dominate the cost.
    """
    total = 0.0
    grad = 0.0
    for i in range(Sb.shape[0]):
        if lam >= lstar[i]:
            continue
        lSt = lam * St[i]
        K = Sb[i] + lSt
        iK = 1.0 / K
        gam = (Sb[i] - St[i]) * iK
        dlt = lSt * D[i] * iK * iK
        w, v, gap, logr = dim_solution(K, iK, lSt, gam, dlt, Sb[i], St[i], iSb[i])
        if gap <= 0.0:
            continue  # rounding at λ ≈ λ*: the dimension is at the base
        Kw = K * w
        iKw = 1.0 / Kw
        q = D[i] * iKw * iKw
        # log(σb/s) = ½ log(Sb/u), from gap near the base and from u far from it (see dim_solution).
        total += 0.5 * (q * gap + logr)
        if want_grad:
            dc_dw = 0.5 / v + 0.5 * q * (2.0 * lSt - Kw) * (K * iKw)
            dc_dl = 0.5 * St[i] * iK * (q * (2.0 * lSt - K - Kw) - 1.0)
            g_w = (2.0 * gam - 3.0 * w) * w - dlt
            g_l = St[i] * iK * (v * D[i] * (Sb[i] - lSt) * iK * iK - w * w * gam)
            grad += dc_dl - dc_dw * g_l / g_w
    return total, grad


@_jit
def point_at(lam, mb, mt, Sb, St, D, iSb, lstar, sb, out_m, out_s, out_q, out_u, out_g):
    """The per-dimension minimisers (m, s) at multiplier λ, with their exact mean terms q = (m − μb)²/(2·gap),
    u = s² and gap = σb² − u (float64, not rounded through s); dimensions past λ* sit at the base."""
    for i in range(Sb.shape[0]):
        out_m[i] = mb[i]
        out_s[i] = sb[i]
        out_q[i] = 0.0
        out_u[i] = Sb[i]
        out_g[i] = 0.0
        if lam >= lstar[i]:
            continue
        lSt = lam * St[i]
        K = Sb[i] + lSt
        iK = 1.0 / K
        w, v, gap, _logr = dim_solution(K, iK, lSt, (Sb[i] - St[i]) * iK, lSt * D[i] * iK * iK, Sb[i], St[i], iSb[i])
        if gap <= 0.0:
            continue
        Kw = K * w
        out_m[i] = mb[i] + (gap / Kw) * (mt[i] - mb[i])
        out_s[i] = math.sqrt(K * v)
        out_q[i] = 0.5 * D[i] * gap / (Kw * Kw)
        out_u[i] = K * v
        out_g[i] = gap


# The formula is shared with the torch solver (it is plain arithmetic on floats or tensors).
slope_at_base = _jit(formulas.slope_at_base)


@_jit
def find_lambda(L, Sb, St, D, iSb, lstar, jmax, rtol, max_iter, c_fin, a_inf, b_inf):
    """λ in (0, λ*_max) with C(λ) = L by Newton in x = λ^(−1/2), safeguarded by a bracket [xl, xh].

    C(λ) decreases from C(0+) > L to C(λ*_max) = 0; in x it increases and is nearly linear for small λ
    (a dimension with τ > σb has c ≈ a·x, one with τ = σb has c ≈ b·x^(2/3)) and near λ*_max, which is why
    Newton works in x. Start: the larger of Newton from the base end (C = 0, slope from ``slope_at_base``)
    and the small-λ asymptote C ≈ c_fin + a_inf·x + b_inf·x^(2/3). A Newton step is taken when it stays
    inside the bracket and |C − L| halved; otherwise x grows at least 4× while no upper end is known, and the
    bracket is bisected (geometrically while wide) once it is. Once |C − L| ≤ √rtol·L the convergence is
    quadratic and one last Newton step is taken without evaluating it, if that step is
    also below √rtol·x. Returns (λ, evaluations).
    """
    lam_max = lstar[jmax]
    xl = 1.0 / math.sqrt(lam_max)  # C(xl) = 0 < L
    xh = math.inf  # C(∞) = C(0+) > L
    s0 = -2.0 * lam_max * math.sqrt(lam_max) * slope_at_base(lam_max, Sb[jmax], St[jmax], D[jmax])
    x = xl + L / s0 if s0 > 0.0 and math.isfinite(s0) else 2.0 * xl
    if not x > xl:
        x = 2.0 * xl
    if c_fin < L and (a_inf > 0.0 or b_inf > 0.0):
        # Each term alone overestimates the x at which the asymptote reaches L; the smaller one is closer.
        xa = (L - c_fin) / a_inf if a_inf > 0.0 else math.inf
        xb = ((L - c_fin) / b_inf) ** 1.5 if b_inf > 0.0 else math.inf
        x = max(x, min(xa, xb))
    r_prev = L
    tol = rtol * L
    tol_last = math.sqrt(rtol) * L
    step_last = math.sqrt(rtol)
    it = 0
    while it < max_iter:
        it += 1
        lam = 1.0 / (x * x)
        C, dC = eval_lambda(lam, Sb, St, D, iSb, lstar, True)
        r = C - L
        if r > 0.0:
            xh = x
        else:
            xl = x
        if abs(r) <= tol or xh - xl <= 4e-16 * xl:
            break
        dCdx = -2.0 * lam * math.sqrt(lam) * dC
        x_new = x - r / dCdx if dCdx > 0.0 else math.nan
        inside = xl < x_new < xh
        if abs(r) <= 0.5 * abs(r_prev) and inside:
            # Both: |r| small against L alone is not enough when C(0+) − L is itself tiny (C then varies on a
            # scale far below L and Newton is still far from quadratic); a relative step below √rtol is.
            if abs(r) <= tol_last and abs(x_new - x) <= step_last * x:
                x = x_new
                break
        elif xh == math.inf:
            x_new = max(x_new, 4.0 * xl) if inside else 4.0 * xl
        elif xh > 4.0 * xl:
            x_new = math.sqrt(xl * xh)
        else:
            x_new = 0.5 * (xl + xh)
        r_prev = r
        x = x_new
    return 1.0 / (x * x), it


@_jit
def _write_candidate(theta, mb, sb, pm, ps, out_m, out_s):
    """Write base + θ·(p − base) in the output dtype; dimensions that round onto σb snap to the base exactly."""
    for i in range(mb.shape[0]):
        if theta == 1.0:  # mb + (pm − mb) need not round back to pm
            out_m[i] = pm[i]
            out_s[i] = ps[i]
        else:
            out_m[i] = mb[i] + theta * (pm[i] - mb[i])
            out_s[i] = sb[i] + theta * (ps[i] - sb[i])
        if not out_s[i] < sb[i]:
            out_m[i] = mb[i]
            out_s[i] = sb[i]


@_jit
def _refit_means(mb, sb, pm, ps, pq, pu, pg, out_s, budget):
    """Round s to the output dtype, then give each dimension the mean that restores its exact contribution c.

    Near the base (σb − s ≪ σb) rounding s (already the float64 √u, and more so in float32) moves c by far
    more than the solver's tolerance; refitting the mean on the rounded s (a move along the level set of c, so
    second order in KL) fixes that where shrinking the whole row would cost first order in the other
    dimensions. The new mean term is q + ½·log(s²/u), with s² − u taken from the exact gap near the base and
    from the exact u far from it, so no digits of m − μb are lost to the log term (writing it as
    c − log(σb/s) would, when the log dominates c). Still, that costs the last digits of q, which matter when
    q ≪ c and τ is tiny (KL ∝ (m − μt)²/τ²), so a dimension whose c moved by at most ``budget`` (a share of
    the slack the λ search left below log α) keeps its mean.
    """
    for i in range(mb.shape[0]):
        out_s[i] = ps[i]
        s = np.float64(out_s[i])
        if not s < sb[i]:
            pm[i] = mb[i]
            ps[i] = sb[i]
            continue
        ps[i] = s
        gs = (sb[i] - s) * (sb[i] + s)  # σb² − s², as dim_log_ratio sees it
        d2 = pg[i] - gs if pg[i] <= 0.5 * sb[i] * sb[i] else s * s - pu[i]  # s² − u
        dlog = 0.5 * math.log1p(d2 / (s * s - d2))  # ½·log(s²/u): the change of the mean term needed
        dm = pm[i] - mb[i]
        if abs(pq[i] * (pg[i] - gs) / gs - dlog) <= budget:  # c(m, rounded s) − c, to first order
            continue
        q = pq[i] + dlog
        if q <= 0.0 or dm == 0.0:
            pm[i] = mb[i]
        else:
            pm[i] = mb[i] + math.copysign(math.sqrt(2.0 * q * gs), dm)


@_jit
def _finish_row(L, mb, sb, pm, ps, out_m, out_s, verify_tol):
    """Shrink p toward the base until the *written* output verifies; returns True on success.

    C is convex along the segment from the base (where it is 0), so C(θ) ≤ θ·C(1): θ = target/C(1) is feasible
    up to rounding; the rounds use growing margins in case rounding to the output dtype moved the point.
    """
    theta = 1.0
    for k in range(_MARGINS.shape[0] + 1):
        _write_candidate(theta, mb, sb, pm, ps, out_m, out_s)
        Cout = 0.0
        ok = True
        for i in range(mb.shape[0]):
            m = np.float64(out_m[i])
            s = np.float64(out_s[i])
            if not (math.isfinite(m) and s > 0.0 and math.isfinite(s)):
                ok = False
            Cout += dim_log_ratio(m, s, mb[i], sb[i])
        if ok and Cout <= L + verify_tol:
            return True
        if not ok or k == _MARGINS.shape[0]:
            return False
        # C(θ) ≤ θ·C(1) on the segment, so this θ meets the target; an infinite C (a dimension rounded onto
        # σb with m ≠ μb is snapped instead, so only pathological input) goes straight to the base.
        theta = theta * L * (1.0 - _MARGINS[k]) / Cout if math.isfinite(Cout) else 0.0
    return False


@_jit
def project_rows(mb, sb, mt, st, log_alpha, out_m, out_s, status, lam_out, rtol, max_iter, verify_tol):
    """Project every row; fills ``out_m``/``out_s`` (any float dtype), ``status`` and ``lam_out``.

    ``log_alpha`` has one entry per row or a single entry for all. Returns (outer iterations of all rows,
    number of fallback rows).
    """
    B, d = mb.shape
    Sb = np.empty(d)
    St = np.empty(d)
    D = np.empty(d)
    iSb = np.empty(d)
    lstar = np.empty(d)
    pm = np.empty(d)
    ps = np.empty(d)
    pq = np.empty(d)
    pu = np.empty(d)
    pg = np.empty(d)
    total_iter = 0
    fallbacks = 0
    for r in range(B):
        L = log_alpha[r] if log_alpha.shape[0] > 1 else log_alpha[0]
        lam_out[r] = 0.0
        valid = math.isfinite(L) and L >= 0.0
        for i in range(d):
            if not (
                math.isfinite(mb[r, i])
                and math.isfinite(mt[r, i])
                and math.isfinite(sb[r, i])
                and math.isfinite(st[r, i])
                and sb[r, i] > 0.0
                and st[r, i] > 0.0
            ):
                valid = False
        if not valid or L == 0.0:
            for i in range(d):
                out_m[r, i] = mb[r, i]
                out_s[r, i] = sb[r, i]
            status[r] = BASE if valid else INVALID
            fallbacks += 0 if valid else 1
            continue
        # One pass gives C(task) and C(0+), the limit of the solution as λ ↓ 0: dimensions with τ < σb keep
        # the task, those with τ ≥ σb go to the base when μt = μb and make C(0+) = ∞ otherwise.
        c_fin = 0.0
        task_inf = False
        unbounded = False
        a_inf = 0.0  # C ≈ c_fin + a_inf·λ^(−1/2) + b_inf·λ^(−1/3) for small λ
        b_inf = 0.0
        for i in range(d):
            dm = mt[r, i] - mb[r, i]
            if st[r, i] < sb[r, i]:
                c_fin += dim_log_ratio(mt[r, i], st[r, i], mb[r, i], sb[r, i])
            elif st[r, i] > sb[r, i] or dm != 0.0:
                task_inf = True
                if dm != 0.0:
                    unbounded = True
                    if st[r, i] > sb[r, i]:
                        a_inf += (
                            0.5
                            * abs(dm)
                            * math.sqrt((st[r, i] - sb[r, i]) * (st[r, i] + sb[r, i]))
                            / (sb[r, i] * st[r, i])
                        )
                    else:
                        b_inf += 0.5 * (abs(dm) / sb[r, i]) ** (4.0 / 3.0)
        if not task_inf and c_fin <= L:
            for i in range(d):
                out_m[r, i] = mt[r, i]
                out_s[r, i] = st[r, i]
            status[r] = TASK
            continue
        if not unbounded and c_fin <= L:
            lam = 0.0
            for i in range(d):
                inside = st[r, i] < sb[r, i]
                pm[i] = mt[r, i] if inside else mb[r, i]
                ps[i] = st[r, i] if inside else sb[r, i]
        else:
            jmax = 0
            for i in range(d):
                Sb[i] = sb[r, i] * sb[r, i]
                St[i] = st[r, i] * st[r, i]
                iSb[i] = 1.0 / Sb[i]
                dm = mt[r, i] - mb[r, i]
                D[i] = dm * dm
                lstar[i] = lambda_star(Sb[i], St[i], D[i])
                if lstar[i] > lstar[jmax]:
                    jmax = i
            lam, it = find_lambda(
                L * (1.0 - 2.0 * rtol), Sb, St, D, iSb, lstar, jmax, rtol, max_iter, c_fin, a_inf, b_inf
            )
            total_iter += it
            point_at(lam, mb[r], mt[r], Sb, St, D, iSb, lstar, sb[r], pm, ps, pq, pu, pg)
            _refit_means(mb[r], sb[r], pm, ps, pq, pu, pg, out_s[r], rtol * L / d)
        if _finish_row(L, mb[r], sb[r], pm, ps, out_m[r], out_s[r], verify_tol):
            status[r] = PROJECTED
            lam_out[r] = lam
        else:
            for i in range(d):
                out_m[r, i] = mb[r, i]
                out_s[r, i] = sb[r, i]
            status[r] = UNVERIFIED
            fallbacks += 1
    return total_iter, fallbacks
