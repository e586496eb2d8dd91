"""Closed-form pieces of the Gaussian ratio projection shared by the numba kernel and the torch solver.

Each function is plain arithmetic, valid for Python floats (compiled by numba in :mod:`.kernel`) and for
torch tensors (used elementwise in :mod:`.solver_torch`).
"""

from __future__ import annotations


def slope_at_base(lam, Sb, St, D):
    """dc/dλ of one dimension as λ ↑ λ* (where it reaches the base, w = w0 = λSt/K); ≤ 0."""
    K = Sb + lam * St
    w = lam * St / K
    gam = (Sb - St) / K
    dlt = lam * D * St / (K * K)
    v = Sb / K  # 1 − w without cancellation when λSt ≫ Sb
    dc_dw = 0.5 / v + 0.5 * D * lam * St / (K * K * w * w * w)
    dc_dl = -0.5 * St / K - 0.5 * D * St * Sb / (w * w * K * K * K)
    g_w = (2.0 * gam - 3.0 * w) * w - dlt
    g_l = -w * w * gam * St / K + v * D * St * (Sb - lam * St) / (K * K * K)
    return dc_dl - dc_dw * g_l / g_w
