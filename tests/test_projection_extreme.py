"""The Gaussian projection at extreme std ratios (τ/σb down to 1e-8, α up to 1e6), against exact optima.

With μt = μb the optimum is closed form: for one dimension the bound reads σb/s ≤ α and KL(p ‖ t) grows in s
above τ, so s* = max(τ, σb/α) (capped at σb) and m* = μb. With μt ≠ μb the reference minimises KL over the
boundary of the feasible set in mpmath (40 digits): at s = σb·exp(−t·log α) the largest mean move toward μt
that keeps the bound tight is √(2(log α − log(σb/s))(σb² − s²)) (clipped at μt); the optimum lies on that
curve, and a golden-section search in t finds it.
"""

from __future__ import annotations

import math

import mpmath as mp
import pytest
import torch

from sport_projection import max_log_ratio, project
from sport_projection.status import PROJECTED

BACKENDS = ["numba", "torch"]
MB, SB = -0.7, 2.5  # a base off the origin and off unit scale, so nothing is exact by accident


def one_row(*values):
    return [torch.tensor([[v]], dtype=torch.float64) for v in values]


def kl_mp(m, s, mt, st):
    """KL(N(m, s²) ‖ N(mt, st²)) of the float64 values, in 40 digits (its terms cancel to ~1e-13 here)."""
    with mp.workdps(40):
        m, s, mt, st = (mp.mpf(float(v)) for v in (m, s, mt, st))
        return mp.log(st / s) + (s * s + (m - mt) ** 2) / (2 * st * st) - mp.mpf(1) / 2


def reference_kl(mb, sb, mt, st, alpha):
    """min KL(p ‖ t) over one-dimensional p with log(σb/s) + (m − μb)²/(2(σb² − s²)) ≤ log α (task infeasible)."""
    with mp.workdps(40):
        mb, sb, mt, st = (mp.mpf(v) for v in (mb, sb, mt, st))
        big_l = mp.log(mp.mpf(alpha))
        dm = mt - mb

        def on_boundary(t):
            s = sb * mp.exp(-big_l * t)
            room = 2 * (big_l - mp.log(sb / s)) * (sb - s) * (sb + s)
            m = mb + mp.sign(dm) * min(abs(dm), mp.sqrt(max(room, 0)))
            return mp.log(st / s) + (s * s + (m - mt) ** 2) / (2 * st * st) - mp.mpf(1) / 2

        grid = [mp.mpf(i) / 400 for i in range(401)]
        values = [on_boundary(t) for t in grid]
        k = min(range(len(grid)), key=values.__getitem__)
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
        g = (mp.sqrt(5) - 1) / 2
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        fa, fb = on_boundary(a), on_boundary(b)
        for _ in range(150):
            if fa < fb:
                hi, b, fb = b, a, fa
                a = hi - g * (hi - lo)
                fa = on_boundary(a)
            else:
                lo, a, fa = a, b, fb
                b = lo + g * (hi - lo)
                fb = on_boundary(b)
        return min(fa, fb, values[k])


EQUAL_MEANS = [(r, a) for r in (1e-8, 1e-6, 1e-5, 1e-3) for a in (1e2, 1e4, 1e6) if r < 1.0 / a]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("ratio", "alpha"), EQUAL_MEANS)
def test_equal_means_give_the_closed_form_std(backend, ratio, alpha):
    mb, sb, mt, st = one_row(MB, SB, MB, ratio * SB)
    m, s, info = project(mb, sb, mt, st, alpha, backend=backend, return_info=True)
    assert int(info.status) == PROJECTED
    exact = max(ratio * SB, SB / alpha)
    assert float(m) == MB
    assert float(s) == pytest.approx(exact, rel=1e-12)  # the slack the λ search leaves: 2·rtol·log α
    log_a = math.log(alpha)
    assert 0.0 <= log_a - float(max_log_ratio(m, s, mb, sb)) <= 1e-12 * log_a  # the bound is tight
    kl_exact = kl_mp(MB, exact, MB, ratio * SB)
    assert float(abs(kl_mp(m, s, MB, ratio * SB) - kl_exact)) <= 1e-9 * float(kl_exact)


# (τ/σb, α, (μt − μb)/σb): tiny task stds with mean moves small and large, and tasks barely infeasible
# (τ = σb/α, where the whole excess over log α is the mean term and λ is ~1e-6).
DISTINCT_MEANS = [
    (1e-8, 1e6, 0.3),
    (1e-8, 1e6, 5.0),
    (1e-8, 1e4, 1e-3),
    (1e-6, 1e6, 0.3),
    (1e-6, 1e6, 1e-3),
    (1e-5, 1e4, 0.3),
    (1e-4, 1e4, 1e-3),
    (1e-4, 1e2, 2.0),
    (1e-2, 1e2, 1e-3),
    (1e-2, 1.5, 0.3),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("ratio", "alpha", "shift"), DISTINCT_MEANS)
def test_distinct_means_match_a_high_precision_reference(backend, ratio, alpha, shift):
    mt_v, st_v = MB + shift * SB, ratio * SB
    mb, sb, mt, st = one_row(MB, SB, mt_v, st_v)
    m, s, info = project(mb, sb, mt, st, alpha, backend=backend, return_info=True)
    assert int(info.status) == PROJECTED
    log_a = math.log(alpha)
    assert 0.0 <= log_a - float(max_log_ratio(m, s, mb, sb)) <= 1e-12 * log_a
    ref = reference_kl(MB, SB, mt_v, st_v, alpha)
    ours = kl_mp(m, s, mt_v, st_v)
    # 1e-9 relative, or the first-order KL price (λ·slack) of the 2·rtol·log α the λ search leaves unused.
    allowed = 1e-9 * ref + float(info.multiplier) * 3e-14 * log_a
    assert float(abs(ours - ref)) <= float(allowed)


@pytest.mark.parametrize("backend", BACKENDS)
def test_extreme_rows_in_a_batch_with_ordinary_ones(backend):
    """Batching does not change the extreme rows: each row equals its single-row projection."""
    ratios = torch.tensor([1e-8, 1e-6, 0.5, 1e-5, 2.0], dtype=torch.float64)
    alphas = torch.tensor([1e6, 1e4, 1.1, 1e4, 3.0], dtype=torch.float64)
    mb = torch.full((5, 2), MB, dtype=torch.float64)
    sb = torch.full((5, 2), SB, dtype=torch.float64)
    mt = mb + torch.tensor([[0.0, 0.3]], dtype=torch.float64) * SB
    st = sb * ratios.unsqueeze(-1)
    m, s = project(mb, sb, mt, st, alphas, backend=backend)
    for i in range(5):
        mi, si = project(mb[i : i + 1], sb[i : i + 1], mt[i : i + 1], st[i : i + 1], alphas[i], backend=backend)
        torch.testing.assert_close(m[i : i + 1], mi, rtol=1e-13, atol=0.0)
        torch.testing.assert_close(s[i : i + 1], si, rtol=1e-13, atol=0.0)
    assert bool((max_log_ratio(m, s, mb, sb) <= torch.log(alphas)).all())
