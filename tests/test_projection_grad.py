"""The differentiable mode: implicit-differentiation gradients checked against finite differences."""

from __future__ import annotations

import pytest
import torch

from sport_projection import GaussianKLConfig, GaussianKLProjection, project, project_categorical
from sport_projection.status import BASE, PROJECTED, TASK

f64 = torch.float64


def mixed_rows():
    """Rows of every kind: projected (α from 1.05 to 1e6, task stds below and above the base's, one row with a
    task std equal to the base's), a feasible task, and α = 1. (The λ ↓ 0 limit needs μt = μb exactly in a
    wider dimension: a kink in μ, so finite differences cannot check it.)"""
    g = torch.Generator().manual_seed(1)
    mb = torch.randn(8, 3, generator=g, dtype=f64)
    sb = torch.exp(0.3 * torch.randn(8, 3, generator=g, dtype=f64))
    mt = mb + sb * torch.randn(8, 3, generator=g, dtype=f64)
    st = sb * torch.exp(0.3 * torch.randn(8, 3, generator=g, dtype=f64))
    mt[0], st[0] = mb[0] + 0.01, 0.99 * sb[0]  # feasible task
    st[6, 0] = sb[6, 0]
    alpha = torch.tensor([1.5, 1.05, 1.3, 2.0, 100.0, 1e6, 1.5, 1.0], dtype=f64)
    return [mb, sb, mt, st], alpha


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_gradcheck_through_every_kind_of_row(backend):
    params, alpha = mixed_rows()
    *_, info = project(*params, alpha, return_info=True)
    assert info.status.tolist() == [TASK, *[PROJECTED] * 6, BASE]

    def f(mb, sb, mt, st, log_alpha_rest):
        # α = 1 in the last row stays exactly 1 (finite differences must not step below it).
        a = torch.cat([torch.exp(log_alpha_rest), alpha[-1:]])
        return project(mb, sb, mt, st, a, differentiable=True, backend=backend)

    inputs = [t.clone().requires_grad_() for t in (*params, torch.log(alpha[:-1]))]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradients_follow_the_row_kind():
    """A feasible task passes gradients to the task only; α = 1 to the base only."""
    params, alpha = mixed_rows()
    leaves = [t.clone().requires_grad_() for t in params]
    mu, std = project(*leaves, alpha, differentiable=True)
    (mu.sum() + std.sum()).backward()
    g_mb, _, g_mt, g_st = (t.grad for t in leaves)
    assert torch.equal(g_mt[0], torch.ones(3, dtype=f64)) and torch.equal(g_mb[0], torch.zeros(3, dtype=f64))
    assert torch.equal(g_mb[7], torch.ones(3, dtype=f64)) and torch.equal(g_st[7], torch.zeros(3, dtype=f64))


def test_float32_gradients_match_float64():
    params, alpha = mixed_rows()
    grads = {}
    for dtype in (torch.float32, f64):
        leaves = [t.to(dtype).requires_grad_() for t in params]
        mu, std = project(*leaves, alpha, differentiable=True)
        (mu.pow(2).sum() + std.sum()).backward()
        grads[dtype] = [t.grad for t in leaves]
        assert all(g.dtype == dtype for g in grads[dtype])
    for a, b in zip(grads[torch.float32], grads[f64], strict=True):
        torch.testing.assert_close(a.double(), b, rtol=1e-3, atol=1e-3)


def test_the_component_option_turns_gradients_on():
    params, alpha = mixed_rows()
    leaves = [t.clone().requires_grad_() for t in params]
    on = GaussianKLProjection(GaussianKLConfig(differentiable=True))
    off = GaussianKLProjection()
    mu, _ = on.project((leaves[0], leaves[1]), (leaves[2], leaves[3]), alpha)
    assert mu.requires_grad
    mu, _ = off.project((leaves[0], leaves[1]), (leaves[2], leaves[3]), alpha)
    assert not mu.requires_grad


def test_categorical_gradcheck():
    g = torch.Generator().manual_seed(2)
    xb = torch.randn(5, 4, generator=g, dtype=f64)
    xt = xb + 2.0 * torch.randn(5, 4, generator=g, dtype=f64)
    log_alpha = torch.tensor([0.05, 0.2, 0.5, 1.0, 3.0], dtype=f64)

    def f(xb, xt, la):
        return project_categorical(xb, xt, torch.exp(la), differentiable=True)

    inputs = [t.clone().requires_grad_() for t in (xb, xt, log_alpha)]
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
