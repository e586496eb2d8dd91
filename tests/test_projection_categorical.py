"""The categorical projection: closed-form water-filling, checked by hand, against CVXPY and on its contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sport_projection import categorical_max_log_ratio, project_categorical
from sport_projection.status import BASE, INVALID, PROJECTED, TASK

f64 = torch.float64


def logits(probs) -> torch.Tensor:
    return torch.log(torch.tensor(probs, dtype=f64))


def random_rows(n_rows: int, n: int, seed: int, dtype=f64):
    g = torch.Generator().manual_seed(seed)
    xb = torch.randn(n_rows, n, generator=g, dtype=f64)
    xt = xb + 2.0 * torch.randn(n_rows, n, generator=g, dtype=f64)
    alpha = torch.exp(torch.rand(n_rows, generator=g, dtype=f64) * math.log(20.0))
    return xb.to(dtype), xt.to(dtype), alpha


def kl(lp: torch.Tensor, lt: torch.Tensor) -> torch.Tensor:
    p = lp.exp()
    return torch.where(p > 0, p * (lp - lt), 0.0).sum(-1)


def test_a_hand_computed_example():
    """b = (.5, .3, .2), t = (.1, .1, .8), α = 2: the third action caps at 0.4, the others share 0.6 as 3·t."""
    out, info = project_categorical(logits([0.5, 0.3, 0.2]), logits([0.1, 0.1, 0.8]), 2.0, return_info=True)
    torch.testing.assert_close(out.exp(), torch.tensor([0.3, 0.3, 0.4], dtype=f64), rtol=0, atol=1e-15)
    assert info.status.tolist() == PROJECTED


def test_never_worse_than_cvxpy():
    cp = pytest.importorskip("cvxpy")
    for n in (2, 3, 5, 8):
        xb, xt, alpha = random_rows(40, n, seed=n)
        out = project_categorical(xb, xt, alpha)
        b, t = torch.softmax(xb, -1).numpy(), torch.softmax(xt, -1).numpy()
        p = cp.Variable(n, nonneg=True)
        cap, pt = cp.Parameter(n, nonneg=True), cp.Parameter(n, pos=True)
        problem = cp.Problem(cp.Minimize(cp.sum(cp.kl_div(p, pt))), [cp.sum(p) == 1, p <= cap])
        for i in range(40):
            cap.value, pt.value = float(alpha[i]) * b[i], t[i]
            problem.solve()
            theirs = float(np.sum(p.value * np.log(np.maximum(p.value, 1e-300) / t[i])))
            ours = float(kl(torch.log_softmax(out[i], -1), torch.log_softmax(xt[i], -1)))
            assert ours <= theirs + 1e-7
    ratio = categorical_max_log_ratio(out, xb)
    assert float((ratio - torch.log(alpha)).max()) <= 0.0


@pytest.mark.parametrize("dtype", [torch.float32, f64])
def test_alpha_one_and_feasible_tasks_come_back_bitwise(dtype):
    xb, xt, _ = random_rows(32, 4, seed=1, dtype=dtype)
    out, info = project_categorical(xb, xt, 1.0, return_info=True)
    assert torch.equal(out, xb) and (info.status == BASE).all()
    near = xb + 0.01 * xt
    alpha = torch.exp(categorical_max_log_ratio(near, xb).double() * 1.01)
    out, info = project_categorical(xb, near, alpha, return_info=True)
    assert torch.equal(out, near) and (info.status == TASK).all()


@pytest.mark.parametrize("dtype", [torch.float32, f64])
def test_every_row_meets_the_bound_and_sums_to_one(dtype):
    xb, xt, alpha = random_rows(500, 6, seed=2, dtype=dtype)
    out, info = project_categorical(xb, xt, alpha, return_info=True)
    assert out.dtype == dtype and info.fallbacks == 0
    ratio = categorical_max_log_ratio(out.double(), xb.double())
    assert float((ratio - torch.log(alpha)).max()) <= 0.0
    projected = info.status == PROJECTED
    torch.testing.assert_close(out[projected].double().exp().sum(-1), torch.ones(int(projected.sum()), dtype=f64))


def test_a_larger_alpha_never_increases_the_kl():
    xb, xt, _ = random_rows(200, 5, seed=3)
    lt = torch.log_softmax(xt, -1)
    previous = None
    for alpha in (1.0, 1.1, 1.5, 2.0, 5.0, 50.0):
        current = kl(torch.log_softmax(project_categorical(xb, xt, alpha), -1), lt)
        if previous is not None:
            assert (current <= previous + 1e-12).all()
        previous = current


def test_impossible_actions():
    """t_i = 0 stays 0; b_i = 0 forces p_i = 0; without enough base mass on the task's support (α·b(supp t) < 1:
    every feasible p has infinite KL), fall back to the base."""
    inf = math.inf
    xb = torch.tensor([[0.0, 1.0, 1.0], [0.0, -inf, 0.0], [math.log(0.9), math.log(0.1), -inf]], dtype=f64)
    xt = torch.tensor([[-inf, 0.0, 2.0], [0.0, 3.0, 0.0], [-inf, 0.0, 0.0]], dtype=f64)
    out, info = project_categorical(xb, xt, 1.2, return_info=True)
    p = out.exp()
    assert p[0, 0] == 0 and p[1, 1] == 0
    assert info.status.tolist() == [PROJECTED, PROJECTED, INVALID] and info.fallbacks == 1
    assert torch.equal(out[2], xb[2])
    assert float((categorical_max_log_ratio(out[:2], xb[:2]) - math.log(1.2)).max()) <= 0.0


def test_bad_rows_and_bad_arguments():
    xb, xt, _ = random_rows(3, 4, seed=4)
    xt[1, 2] = math.nan
    out, info = project_categorical(xb, xt, 1.5, return_info=True)
    assert info.status[1] == INVALID and torch.equal(out[1], xb[1])
    with pytest.raises(ValueError, match="alpha must be finite and ≥ 1"):
        project_categorical(xb, xt, 0.5)
    with pytest.raises(ValueError, match="logits_t has shape"):
        project_categorical(xb, xt[:, :3], 1.5)


def test_the_component_takes_logit_tuples(registry):
    proj = registry.get("projection", "categorical-kl").build()
    xb, xt, alpha = random_rows(16, 3, seed=5)
    (out,) = proj.project((xb,), (xt,), alpha)
    assert float((proj.max_log_ratio((out,), (xb,)) - torch.log(alpha)).max()) <= 0.0
    assert proj.rows == 16 and proj.fallbacks == 0
