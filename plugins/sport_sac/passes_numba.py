"""The numba kernels behind :class:`sport_sac.passes.NumbaPasses` (imported only when numba is used).

They are module-level functions, not closures: numba keys its on-disk cache on a function's closure too, and a
closure over another compiled function hashes differently in every process, so the cache would never hit.

No ``fastmath``: each element gets torch's own operations in torch's order (``g·(1 − v·v)`` as a product and
a difference, no fused multiply-add; the ReLU mask ``0 if v ≤ 0 else g`` passes a NaN output's gradient
through, as ``threshold_backward`` does). The loops still vectorise: the inner loops run over independent
columns, and the column sums go to fresh arrays the compiler knows alias nothing. Only the order in which
the column sums add the rows can differ from torch's.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


def _jit(function):
    """``njit`` with numba's on-disk cache where it can write one (a read-only install cannot: then no cache)."""
    try:
        return njit(cache=True, error_model="numpy", boundscheck=False)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return njit(cache=False, error_model="numpy", boundscheck=False)(function)


@njit(inline="always")
def back(g, v, relu):
    """The activation's backward for gradient g at output v: g·[v > 0] (ReLU) or g·(1 − v²) (tanh)."""
    if relu:
        return _ZERO if v <= _ZERO else g
    return g * (_ONE - v * v)


@_jit
def top(dq, w, h, dz, gw, gb, relu):
    n, m = h.shape
    aw = np.zeros(m, np.float32)
    ab = np.zeros(m, np.float32)
    for b in range(n):
        d = dq[b]
        for j in range(m):
            v = h[b, j]
            aw[j] += v * d
            g = back(d * w[j], v, relu)
            dz[b, j] = g
            ab[j] += g
    gw[:] = aw
    gb[:] = ab


@_jit
def backward_sum(dz, h, gb, relu):
    n, m = h.shape
    ab = np.zeros(m, np.float32)
    for b in range(n):
        for j in range(m):
            g = back(dz[b, j], h[b, j], relu)
            dz[b, j] = g
            ab[j] += g
    gb[:] = ab


@_jit
def gather_top(w, h, rows, dz, relu):
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(h.shape[1]):
            dz[i, j] = back(w[j], h[r, j], relu)


@_jit
def gather_backward(dz, h, rows, relu):
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(h.shape[1]):
            dz[i, j] = back(dz[i, j], h[r, j], relu)


KERNELS = {"top": top, "backward_sum": backward_sum, "gather_top": gather_top, "gather_backward": gather_backward}
