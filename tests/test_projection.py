"""The Gaussian safety layer: the ratio bound, the projection's contract, its two solvers and its component."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sport_core.config import structure
from sport_core.errors import RecipeError
from sport_core.protocols import Projection
from sport_projection import GaussianKLConfig, GaussianKLProjection, max_log_ratio, project
from sport_projection.cvxpy_reference import gaussian_kl
from sport_projection.status import BASE, INVALID, PROJECTED, TASK

BACKENDS = ["numba", "torch"]
f64 = torch.float64

# FACTS §4: the golden example (α = 1.1).
GOLDEN_BASE = ([-0.66178255, 0.49119267], [0.49148991, 0.25500897])
GOLDEN_TASK = ([-0.68317929, 0.45952224], [0.47222406, 0.23724024])
GOLDEN_PROJ = ([-0.666947, 0.471945], [0.485995, 0.241718])


def rows(*values, dtype=f64):
    return [torch.tensor([v], dtype=dtype) for v in values]


def random_instances(n: int, d: int, seed: int, dtype=f64):
    """Base and task Gaussians with task stds both below and above the base's, α log-uniform in [1.0001, 100]."""
    g = torch.Generator().manual_seed(seed)
    mb = torch.randn(n, d, generator=g, dtype=f64)
    sb = torch.exp(0.5 * torch.randn(n, d, generator=g, dtype=f64))
    mt = mb + 2.0 * sb * torch.randn(n, d, generator=g, dtype=f64)
    st = sb * torch.exp(0.5 * torch.randn(n, d, generator=g, dtype=f64))
    alpha = torch.exp(torch.rand(n, generator=g, dtype=f64) * (math.log(100) - math.log(1.0001)) + math.log(1.0001))
    return [t.to(dtype) for t in (mb, sb, mt, st)], alpha


# --------------------------------------------------------------------------------------------------------
# max_log_ratio
# --------------------------------------------------------------------------------------------------------


def test_max_log_ratio_matches_the_supremum_on_a_grid():
    m, s, mb, sb = 0.3, 0.7, -0.2, 1.1
    x = np.linspace(-20, 20, 400_001)
    log_p = -0.5 * ((x - m) / s) ** 2 - math.log(s)
    log_b = -0.5 * ((x - mb) / sb) ** 2 - math.log(sb)
    ours = max_log_ratio(*rows([m], [s], [mb], [sb]))
    assert float(ours) == pytest.approx(float((log_p - log_b).max()), abs=1e-9)


def test_max_log_ratio_is_per_dimension_exact():
    mb, sb = [0.0, 1.0, 2.0], [1.0, 0.5, 2.0]
    # An identical dimension contributes 0 (the reference returns ∞ whenever s == σb: a bug we avoid).
    assert float(max_log_ratio(*rows(mb, sb, mb, sb))) == 0.0
    same_std = max_log_ratio(*rows([0.3, 1.0, 2.0], [0.9, 0.5, 2.0], mb, sb))
    alone = max_log_ratio(*rows([0.3], [0.9], [0.0], [1.0]))
    assert float(same_std) == float(alone) > 0
    # s = σb with a shifted mean, or s > σb: unbounded.
    assert math.isinf(float(max_log_ratio(*rows([0.0, 1.1, 2.0], sb, mb, sb))))
    assert math.isinf(float(max_log_ratio(*rows(mb, [1.0, 0.6, 2.0], mb, sb))))


def test_max_log_ratio_adds_over_dimensions_and_keeps_the_dtype():
    (mp, sp, mb, sb), _ = random_instances(50, 3, seed=0)
    sp = torch.minimum(sp, 0.9 * sb)
    total = max_log_ratio(mp, sp, mb, sb)
    parts = sum(max_log_ratio(mp[:, i : i + 1], sp[:, i : i + 1], mb[:, i : i + 1], sb[:, i : i + 1]) for i in range(3))
    torch.testing.assert_close(total, parts, rtol=1e-13, atol=1e-13)
    assert max_log_ratio(mp.float(), sp.float(), mb.float(), sb.float()).dtype == torch.float32


# --------------------------------------------------------------------------------------------------------
# project: the contract
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_golden_example(backend):
    mb, sb = rows(*GOLDEN_BASE)
    mt, st = rows(*GOLDEN_TASK)
    assert float(max_log_ratio(mt, st, mb, sb)) == pytest.approx(0.18188, abs=1e-5)
    mu, std, info = project(mb, sb, mt, st, 1.1, backend=backend, return_info=True)
    torch.testing.assert_close(mu, torch.tensor([GOLDEN_PROJ[0]], dtype=f64), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, torch.tensor([GOLDEN_PROJ[1]], dtype=f64), atol=1e-5, rtol=0)
    ratio = float(max_log_ratio(mu, std, mb, sb))
    assert math.log(1.1) - 1e-12 <= ratio <= math.log(1.1)  # tight, never above
    assert info.status.tolist() == [PROJECTED] and info.fallbacks == 0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_alpha_one_returns_the_base_bitwise(backend, dtype):
    (mb, sb, mt, st), _ = random_instances(64, 3, seed=1, dtype=dtype)
    mu, std, info = project(mb, sb, mt, st, 1.0, backend=backend, return_info=True)
    assert mu.dtype == dtype and torch.equal(mu, mb) and torch.equal(std, sb)
    assert (info.status == BASE).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_feasible_task_is_returned_bitwise(backend, dtype):
    (mb, sb, _, _), _ = random_instances(64, 2, seed=2, dtype=dtype)
    mt, st = mb + 0.01 * sb, 0.99 * sb
    alpha = torch.exp(max_log_ratio(mt, st, mb, sb).double() * 1.001)
    mu, std, info = project(mb, sb, mt, st, alpha, backend=backend, return_info=True)
    assert torch.equal(mu, mt) and torch.equal(std, st)
    assert (info.status == TASK).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_row_meets_the_bound_tightly(backend):
    (mb, sb, mt, st), alpha = random_instances(2000, 3, seed=3)
    mu, std, info = project(mb, sb, mt, st, alpha, backend=backend, return_info=True)
    excess = max_log_ratio(mu, std, mb, sb) - torch.log(alpha)
    assert float(excess.max()) <= 0.0
    projected = info.status == PROJECTED
    assert projected.sum() > 1900 and info.fallbacks == 0
    # Tight up to the rounding of the stored point: the constraint is active at the optimum.
    rel = excess[projected] / torch.log(alpha[projected])
    assert float(torch.quantile(rel, 0.5)) > -1e-12
    assert (info.multiplier[projected] > 0).all() and (info.multiplier[~projected] == 0).all()


def test_the_two_backends_agree():
    (mb, sb, mt, st), alpha = random_instances(3000, 4, seed=4)
    a = project(mb, sb, mt, st, alpha, backend="numba", return_info=True)
    b = project(mb, sb, mt, st, alpha, backend="torch", return_info=True)
    assert torch.equal(a[2].status, b[2].status)
    kl_a = gaussian_kl(a[0], a[1], mt, st)
    kl_b = gaussian_kl(b[0], b[1], mt, st)
    np.testing.assert_allclose(kl_a, kl_b, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-7)
    torch.testing.assert_close(a[2].multiplier, b[2].multiplier, rtol=1e-8, atol=1e-12)


def test_kkt_stationarity_holds_at_the_solution():
    """∇KL + λ∇C = 0 per dimension at the returned point (strictly inside the base's std)."""
    (mb, sb, mt, st), alpha = random_instances(500, 2, seed=5)
    mu, std, info = project(mb, sb, mt, st, alpha, return_info=True)
    lam = info.multiplier.unsqueeze(-1)
    inside = (info.status == PROJECTED).unsqueeze(-1) & (std < sb * (1 - 1e-6))
    den = sb**2 - std**2
    d_m = (mu - mt) / st**2 + lam * (mu - mb) / den
    d_s = -(1 + lam) / std + std / st**2 + lam * std * (mu - mb) ** 2 / den**2
    scale = 1.0 / std + std / st**2 + (mu - mt).abs() / st**2
    assert float((d_m.abs() / scale)[inside].max()) < 1e-6
    assert float((d_s.abs() / scale)[inside].max()) < 1e-6


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dimension_with_equal_means_and_a_wider_task_goes_to_the_base(backend):
    """τ > σb with μt = μb: the λ ↓ 0 limit (task elsewhere, base std there) can be the exact answer."""
    mb, sb = rows([0.0, 0.0], [1.0, 1.0])
    mt, st = rows([0.0, 0.1], [2.0, 0.95])
    mu, std, info = project(mb, sb, mt, st, 1.2, backend=backend, return_info=True)
    assert mu.tolist() == [[0.0, 0.1]] and std.tolist() == [[1.0, 0.95]]
    assert info.status.tolist() == [PROJECTED]


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_outputs_are_verified_as_returned(backend):
    (mb, sb, mt, st), alpha = random_instances(4000, 2, seed=6, dtype=torch.float32)
    mu, std, info = project(mb, sb, mt, st, alpha, backend=backend, return_info=True)
    assert mu.dtype == std.dtype == torch.float32
    ratio = max_log_ratio(mu.double(), std.double(), mb.double(), sb.double())
    assert float((ratio - torch.log(alpha)).max()) <= 0.0
    assert info.fallbacks == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_extreme_alphas_and_dimensions(backend):
    for d, lo, hi, seed in [(1, 1 + 1e-9, 1 + 1e-6, 7), (10, 1.0001, 100.0, 8), (3, 1e3, 1e6, 9)]:
        (mb, sb, mt, st), _ = random_instances(500, d, seed=seed)
        alpha = torch.exp(torch.linspace(math.log(lo), math.log(hi), 500, dtype=f64))
        mu, std, info = project(mb, sb, mt, st, alpha, backend=backend, return_info=True)
        assert float((max_log_ratio(mu, std, mb, sb) - torch.log(alpha)).max()) <= 0.0
        assert info.fallbacks == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_finite_rows_fall_back_to_the_base_and_are_counted(backend):
    (mb, sb, mt, st), alpha = random_instances(6, 2, seed=10)
    mt[1, 0] = float("nan")
    st[2, 1] = float("inf")
    st[3, 0] = 0.0
    sb[4, 1] = -1.0
    mu, std, info = project(mb, sb, mt, st, alpha, backend=backend, return_info=True)
    assert info.status[1:5].tolist() == [INVALID] * 4 and info.fallbacks == 4
    assert torch.equal(mu[1:5], mb[1:5]) and torch.equal(std[1:5], sb[1:5])
    assert info.counts["invalid"] == 4 and info.counts["projected"] + info.counts["task"] == 2


def test_any_batch_shape_and_per_row_alpha():
    (mb, sb, mt, st), alpha = random_instances(24, 2, seed=11)
    shaped = [t.reshape(4, 6, 2) for t in (mb, sb, mt, st)]
    mu, std, info = project(*shaped, alpha.reshape(4, 6), return_info=True)
    flat_mu, flat_std = project(mb, sb, mt, st, alpha)
    assert mu.shape == (4, 6, 2) and info.status.shape == (4, 6)
    assert torch.equal(mu.reshape(24, 2), flat_mu) and torch.equal(std.reshape(24, 2), flat_std)
    # A one-element tensor α applies to every row.
    a = project(mb, sb, mt, st, torch.tensor(1.5, dtype=f64))
    b = project(mb, sb, mt, st, 1.5)
    assert torch.equal(a[0], b[0])


def test_outputs_carry_no_graph_unless_differentiable():
    (mb, sb, mt, st), _ = random_instances(4, 2, seed=12)
    mt.requires_grad_()
    mu, std = project(mb, sb, mt, st, 1.5)
    assert not mu.requires_grad and not std.requires_grad


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alpha": 0.99}, "alpha must be finite and ≥ 1"),
        ({"alpha": float("nan")}, "alpha must be finite and ≥ 1"),
        ({"alpha": float("inf")}, "alpha must be finite and ≥ 1"),
        ({"alpha": torch.tensor([1.5, 0.5, 2.0])}, "alpha must be finite and ≥ 1"),
        ({"alpha": torch.ones(4)}, "alpha has shape (4,)"),
        ({"alpha": "big"}, "alpha must be a number"),
        ({"mu_t": torch.zeros(3, 1, dtype=f64)}, "mu_t has shape (3, 1) but mu_b has shape (3, 2)"),
        ({"std_b": torch.ones(3, 2, dtype=torch.int64)}, "std_b must be a floating-point tensor"),
        ({"backend": "cuda"}, "backend must be"),
        ({"rtol": 0.0}, "rtol must be in"),
    ],
)
def test_bad_input_raises_a_clear_value_error(change, message):
    (mb, sb, mt, st), _ = random_instances(3, 2, seed=13)
    args = {"mu_b": mb, "std_b": sb, "mu_t": mt, "std_t": st, "alpha": 1.5} | change
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        project(**args)


def test_single_row_acting_path():
    """B = 1, as a rollout step calls it: the same answer as inside a batch."""
    (mb, sb, mt, st), alpha = random_instances(8, 2, seed=14)
    batch = project(mb, sb, mt, st, alpha)
    for i in range(8):
        one = project(mb[i : i + 1], sb[i : i + 1], mt[i : i + 1], st[i : i + 1], float(alpha[i]))
        assert torch.equal(one[0], batch[0][i : i + 1]) and torch.equal(one[1], batch[1][i : i + 1])


# --------------------------------------------------------------------------------------------------------
# The component
# --------------------------------------------------------------------------------------------------------


def test_components_are_registered_and_meet_the_protocol(registry):
    assert {"gaussian-kl", "categorical-kl"} <= set(registry.names("projection"))
    for name in ("gaussian-kl", "categorical-kl"):
        component = registry.get("projection", name)
        assert component.plugin == "projection"
        assert isinstance(component.build(), Projection)


def test_gaussian_component_projects_tuples_and_counts_fallbacks(registry):
    proj = registry.get("projection", "gaussian-kl").build()
    mb, sb = rows(*GOLDEN_BASE)
    mt, st = rows(*GOLDEN_TASK)
    mu, std = proj.project((mb, sb), (mt, st), 1.1)
    assert float(proj.max_log_ratio((mu, std), (mb, sb))) <= math.log(1.1)
    assert proj.fallbacks == 0 and proj.rows == 1
    bad_st = st.clone()
    bad_st[0, 0] = float("nan")
    proj.project((mb, sb), (mt, bad_st), 1.1)
    assert proj.fallbacks == 1 and proj.rows == 2 and proj.last_info.counts["invalid"] == 1
    with pytest.raises(ValueError, match=r"base must be a tuple \(mu, std\)"):
        proj.project(mb, (mt, st), 1.1)


def test_gaussian_config_from_a_recipe_table():
    config = structure(GaussianKLConfig, {"backend": "torch", "differentiable": True}, "projection")
    assert isinstance(GaussianKLProjection(config), Projection)
    with pytest.raises(RecipeError, match=r"projection\.backend: expected one of"):
        structure(GaussianKLConfig, {"backend": "gpu"}, "projection")
    with pytest.raises(RecipeError, match="rtol must be in"):
        structure(GaussianKLConfig, {"rtol": 0.5}, "projection")
