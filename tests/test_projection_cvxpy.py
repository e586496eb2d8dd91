"""Cross-check against CVXPY: on 1200 random instances (d = 1..6, α from 1.0001 to 100, task stds below and
above the base's) our KL is never worse than the conic solver's and our constraint always holds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sport_projection import max_log_ratio, project
from sport_projection.cvxpy_reference import CvxpyGaussianProjection, gaussian_kl

pytest.importorskip("cvxpy")

ROWS_PER_DIM = 200


def instances(d: int, n: int, seed: int):
    rng = np.random.default_rng(seed)
    mb = rng.normal(size=(n, d))
    sb = np.exp(0.5 * rng.normal(size=(n, d)))
    mt = mb + sb * rng.normal(size=(n, d)) * np.exp(rng.uniform(-2, 1, size=(n, 1)))
    st = sb * np.exp(0.6 * rng.normal(size=(n, d)))  # about half the task stds exceed the base's
    alpha = np.exp(rng.uniform(math.log(1.0001), math.log(100), size=n))
    return mb, sb, mt, st, alpha


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Solution may be inaccurate")
@pytest.mark.parametrize("d", range(1, 7))
def test_never_worse_than_cvxpy(d):
    mb, sb, mt, st, alpha = instances(d, ROWS_PER_DIM, seed=100 + d)
    assert (st > sb).mean() > 0.3 and (st < sb).mean() > 0.3
    tensors = [torch.from_numpy(a) for a in (mb, sb, mt, st)]
    mu, std = project(*tensors, torch.from_numpy(alpha))
    ours = gaussian_kl(mu.numpy(), std.numpy(), mt, st)
    excess = (max_log_ratio(mu, std, tensors[0], tensors[1]) - torch.log(torch.from_numpy(alpha))).numpy()
    assert excess.max() <= 1e-9

    reference = CvxpyGaussianProjection(d)
    theirs = np.empty(ROWS_PER_DIM)
    for i in range(ROWS_PER_DIM):
        cm, cs = reference.solve(mb[i], sb[i], mt[i], st[i], alpha[i])
        theirs[i] = gaussian_kl(cm, cs, mt[i], st[i])
    assert (ours <= theirs + 1e-6).all(), f"worst excess {np.max(ours - theirs):.3g}"
