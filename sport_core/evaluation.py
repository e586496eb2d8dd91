"""Task policies against a certificate: the numbers both built-in evaluators (``certified-eval`` and
``projected-sweep``) report, and the helpers any evaluator of a certificate needs.

At a horizon T (T* of a target bound B, or a given T), for each ratio bound α a task policy is claimed to
satisfy (π ≤ α·π_base): its empirical failure rate k/N by T, the Clopper–Pearson limits of that rate at the
certificate's β, and the bound min(1, α^T·ε(T)) the certificate implies *before* any task episode is seen
(the "prior bound", in the sense of prior to the task's data). The result states the certificate's guarantee
kind (:func:`sport_core.certificates.guarantee_label`): a bound from a Bayesian certificate is a credible
bound, never a confidence bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sport_core.artifacts import sha256_file
from sport_core.bounds import epsilon_lower, epsilon_upper, failures_by_horizon, success_steps
from sport_core.certificates import FAILURE_DEFINITION, guarantee_label, read_certificate
from sport_core.errors import RecipeError
from sport_core.weights import policy_files

EVALUATION_FORMAT = "sport-certified-evaluation-v1"


def certified_base_input(ctx: Any, cert: Mapping[str, Any], role: str = "base") -> Path:
    """The weights a stage gets as input ``role``, refused unless they are the certificate's base policy
    (the bound α^T·ε(T) holds only for policies within α of the certified base)."""
    weights, _ = policy_files(ctx.policy_input(role))
    certified = cert["base_policy"].get("weights_sha256")
    actual = sha256_file(weights)
    if actual != certified:
        raise RecipeError(
            f"stages.{ctx.name}.inputs.{role}: {weights} is not the certificate's base policy (SHA-256 "
            f"{actual[:12]}…, certified {str(certified)[:12]}…); the bound holds only for "
            "projections onto the certified base"
        )
    return weights


def certificate_horizon(
    cert: Mapping[str, Any], bound: float | None = None, horizon: int | None = None
) -> tuple[int, float]:
    """(T, B) to evaluate at: ``horizon`` if given, else T* of ``bound`` (default: the largest certified B)."""
    rows = cert["bounds"]
    if horizon is not None:
        if not 1 <= horizon <= cert["t_max"]:
            raise ValueError(f"horizon {horizon} is outside the certified 1..{cert['t_max']}")
        return int(horizon), float(bound) if bound is not None else math.nan
    if not rows:
        raise ValueError("the certificate lists no target bounds; give a horizon")
    if bound is None:
        row = max(rows, key=lambda r: r["bound"])
    else:
        matches = [r for r in rows if math.isclose(r["bound"], bound, rel_tol=1e-12)]
        if not matches:
            known = ", ".join(str(r["bound"]) for r in rows)
            raise ValueError(f"bound {bound} is not in the certificate (certified bounds: {known})")
        row = matches[0]
    return int(row["T_star"]), float(row["bound"])


def stage_certificate(
    ctx: Any, bound: float | None = None, horizon: int | None = None
) -> tuple[Path, dict[str, Any], int, float]:
    """(path, certificate, T, B) of a stage's ``certificate`` input, T and B as :func:`certificate_horizon`
    gives them; a bound or horizon the certificate does not have is a recipe error naming the stage."""
    path = ctx.input("certificate", "certificate")
    cert = read_certificate(path)
    try:
        horizon, bound = certificate_horizon(cert, bound, horizon)
    except ValueError as exc:
        raise RecipeError(f"stages.{ctx.name}.config: {exc}") from exc
    return Path(path), cert, horizon, bound


def evaluate_policy_records(
    cert: Mapping[str, Any],
    runs: Mapping[float, Any],
    *,
    bound: float | None = None,
    horizon: int | None = None,
) -> dict[str, Any]:
    """Compare episodes of task policies with a certificate, one row per α.

    ``runs`` maps each ratio bound α (≥ 1) the policy is claimed to satisfy to its episodes (anything
    :func:`sport_core.bounds.failures_by_horizon` accepts). At T (:func:`certificate_horizon`), each row holds
    the failures k_t of N_t episodes, the empirical rate k_t/N_t, the Clopper–Pearson upper and lower limits
    at the certificate's β, the prior bound min(1, α^T·ε(T)), whether the data contradict it (lower limit
    above the prior bound), and the mean/std length of the episodes that succeeded by T. ``guarantee`` states
    what kind of bound the prior bound is (the certificate's ``guarantee.kind``, its label and method).
    """
    T, B = certificate_horizon(cert, bound, horizon)
    beta = float(cert["beta"])
    eps_T = float(cert["epsilon"][T - 1])
    rows = []
    for alpha in sorted(runs):
        records = runs[alpha]
        steps = success_steps(records)
        n_t = int(steps.size)
        if n_t == 0:
            raise ValueError(f"alpha {alpha}: no episodes to evaluate")
        k_t = int(failures_by_horizon(records, T)[T - 1])
        lengths = steps[(steps > 0) & (steps <= T)].astype(np.float64)
        if alpha < 1:
            raise ValueError(f"the ratio bound alpha must be at least 1, got {alpha}")
        prior = float(np.exp(min(0.0, T * math.log(alpha) + math.log(eps_T))))  # min(1, α^T ε(T))
        lower = float(epsilon_lower(k_t, n_t, beta))
        rows.append(
            {
                "alpha": float(alpha),
                "episodes": n_t,
                "failures": k_t,
                "failure_rate": k_t / n_t,
                "cp_upper": float(epsilon_upper(k_t, n_t, beta)),
                "cp_lower": lower,
                "prior_bound": prior,
                "contradicts_prior": lower > prior,
                "success_length_mean": float(lengths.mean()) if lengths.size else None,
                "success_length_std": float(lengths.std()) if lengths.size else None,
            }
        )
    return {
        "format": EVALUATION_FORMAT,
        "guarantee": {
            "kind": cert.get("guarantee", {}).get("kind", "unspecified"),
            "label": guarantee_label(cert),
            "method": cert.get("method"),
        },
        "horizon": T,
        "bound": None if math.isnan(B) else B,
        "beta": beta,
        "epsilon_base": eps_T,
        "failure_definition": FAILURE_DEFINITION,
        "rows": rows,
    }


# -- the `sport verify` command -----------------------------------------------------------------------------
