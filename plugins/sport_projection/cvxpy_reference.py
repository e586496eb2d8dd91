"""A reference solver for cross-checks and benchmarks: the projection as a CVXPY problem, one row at a time.

This is how the SPoRt reference code projects (a parametrised conic problem re-solved for every state), in
our own formulation: variables m, s; minimise 2·KL(p ‖ t) up to constants,
Σ[−2 log s + (s/τ)² + (m/τ − μt/τ)²], subject to s ≤ σb and
−Σ log s + ½ Σ quad_over_lin(m − μb, σb² − s²) ≤ log α − Σ log σb. The problem is built once per dimension
(with ``cvxpy.Parameter``s, DPP-compliant, so re-solving skips the canonicalisation) and re-solved per row
with CVXPY's default solver (Clarabel here).
Needs cvxpy (the ``dev`` extra); never used by the projection itself.
"""

from __future__ import annotations

import math

import numpy as np


class CvxpyGaussianProjection:
    """``solve(mu_b, std_b, mu_t, std_t, alpha) -> (mu, std)`` for one row of dimension ``d`` (numpy)."""

    def __init__(self, d: int, solver: str | None = None) -> None:
        import cvxpy as cp

        self.d = d
        self.solver = solver
        self.m = cp.Variable(d)
        self.s = cp.Variable(d, pos=True)
        self.mu_b = cp.Parameter(d)
        self.std_b = cp.Parameter(d, pos=True)
        self.var_b = cp.Parameter(d, pos=True)
        self.inv_t = cp.Parameter(d, pos=True)
        self.mu_t_scaled = cp.Parameter(d)
        self.budget = cp.Parameter()  # log α − Σ log σb
        objective = cp.Minimize(
            -2 * cp.sum(cp.log(self.s))
            + cp.sum_squares(cp.multiply(self.s, self.inv_t))
            + cp.sum_squares(cp.multiply(self.m, self.inv_t) - self.mu_t_scaled)
        )
        # DPP forbids a parameter in quad_over_lin's denominator: route σb² through a variable pinned to it.
        var_b = cp.Variable(d)
        ratio = -cp.sum(cp.log(self.s)) + 0.5 * sum(
            cp.quad_over_lin(self.m[i] - self.mu_b[i], var_b[i] - cp.square(self.s[i])) for i in range(d)
        )
        constraints = [self.s <= self.std_b, var_b == self.var_b, ratio <= self.budget]
        self.problem = cp.Problem(objective, constraints)
        assert self.problem.is_dpp()

    def solve(self, mu_b, std_b, mu_t, std_t, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        mu_b, std_b, mu_t, std_t = (np.asarray(a, dtype=np.float64) for a in (mu_b, std_b, mu_t, std_t))
        self.mu_b.value = mu_b
        self.std_b.value = std_b
        self.var_b.value = std_b**2
        self.inv_t.value = 1.0 / std_t
        self.mu_t_scaled.value = mu_t / std_t
        self.budget.value = math.log(alpha) - float(np.log(std_b).sum())
        self.problem.solve(solver=self.solver)
        return np.asarray(self.m.value, dtype=np.float64), np.asarray(self.s.value, dtype=np.float64)


def gaussian_kl(mu_p, std_p, mu_t, std_t) -> np.ndarray:
    """KL(p ‖ t) of diagonal Gaussians, summed over the last axis (numpy, float64)."""
    mu_p, std_p, mu_t, std_t = (np.asarray(a, dtype=np.float64) for a in (mu_p, std_p, mu_t, std_t))
    return (np.log(std_t / std_p) + (std_p**2 + (mu_p - mu_t) ** 2) / (2 * std_t**2) - 0.5).sum(-1)
