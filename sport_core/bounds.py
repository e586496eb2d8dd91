"""The scenario / ratio mathematics of SPoRt (pure numpy and scipy, every function vectorised).

Notation: N episodes of the base policy, k(T) of them failed by horizon T, confidence 1 − β.

* Scenario bound: ε(T) solves BinomCDF(k(T); N, ε) = β, the one-sided Clopper–Pearson upper limit. With
  probability ≥ 1 − β over the N episodes, the base policy's failure probability at T is at most ε(T).
* Ratio bound: a task policy with π_t(a|s) ≤ α·π_b(a|s) everywhere fails by T with probability at most
  min(1, α^T · ε(T)) (a change of measure over length-T trajectories; see FACTS §1).
* Choosing the horizon: log α_max(T) = max(0, (ln B − ln ε(T)) / T); T* = argmax, α* = exp(max).
  Choosing T* after seeing the data is a multiple comparison: with ``bonferroni`` every ε(T) is computed at
  β / T_max, so that all T_max bounds hold together with confidence ≥ 1 − β (a union bound).

Failure at horizon T (reach-avoid): the episode did not reach the goal by step T without a hazard violation
at or before the goal step. A goal and a violation in the same step count as a failure (the safe choice; the
reference code counts it as a success). This is :meth:`sport_core.collect.EpisodeRecord.failed_by`; the
outcome field carries it (``outcome == "goal"`` only when no violation happened at or before the goal).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.special import betainccinv, betaincinv

#: Outcome codes of stored episodes: the index in this tuple (the order of ``sport_core.collect.OUTCOMES``).
OUTCOMES: tuple[str, ...] = ("goal", "violation", "timeout")
GOAL_CODE = 0

#: The ratio bounds α of the paper's two experiments (FACTS §7).
PAPER_ALPHAS: tuple[float, ...] = (1.0, 1.05, 1.1, 1.2, 1.35, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def _check_beta(beta: np.ndarray) -> None:
    if not np.all((beta > 0) & (beta < 1)):
        raise ValueError(f"beta (1 − confidence) must lie in (0, 1), got {beta}")


def epsilon_upper(k: Any, n: Any, beta: Any) -> np.ndarray:
    """One-sided Clopper–Pearson upper limit: the ε with BinomCDF(k; n, ε) = β, for arrays of k (and n, β).

    Since BinomCDF(k; n, ε) = 1 − I_ε(k + 1, n − k) (I the regularised incomplete beta function),
    ε = I⁻¹ of the *upper* tail: ``scipy.special.betainccinv(k + 1, n − k, β)``; this keeps full relative
    precision for tiny β (``scipy.stats.beta.ppf(1 − β, …)`` cannot: 1 − β rounds away below 1e-16).
    Special cases: k = n gives 1; k = 0 gives 1 − β^(1/n), evaluated as −expm1(ln β / n).
    Broadcasts ``k``, ``n`` and ``beta``; returns float64 (a 0-d array for scalar input).
    """
    k_arr = np.asarray(k)
    n_arr = np.asarray(n)
    beta_arr = np.asarray(beta, dtype=np.float64)
    if not (np.all(np.mod(k_arr, 1) == 0) and np.all(np.mod(n_arr, 1) == 0)):
        raise ValueError("k and n must be integers (failure and episode counts)")
    k_arr, n_arr, beta_arr = np.broadcast_arrays(k_arr.astype(np.int64), n_arr.astype(np.int64), beta_arr)
    if np.any(n_arr < 1):
        raise ValueError(f"n (episodes) must be at least 1, got {n_arr.min()}")
    if np.any((k_arr < 0) | (k_arr > n_arr)):
        raise ValueError(f"k (failures) must lie in 0..n, got k in [{k_arr.min()}, {k_arr.max()}]")
    _check_beta(beta_arr)
    out = np.ones(k_arr.shape, dtype=np.float64)
    inner = (k_arr > 0) & (k_arr < n_arr)
    out[inner] = betainccinv(k_arr[inner] + 1.0, (n_arr - k_arr)[inner].astype(np.float64), beta_arr[inner])
    zero = k_arr == 0
    out[zero] = -np.expm1(np.log(beta_arr[zero]) / n_arr[zero])
    return out


def epsilon_lower(k: Any, n: Any, beta: Any) -> np.ndarray:
    """One-sided Clopper–Pearson lower limit: the ε with P(X ≥ k; n, ε) = β, i.e. I_ε(k, n − k + 1) = β,
    ``scipy.special.betaincinv(k, n − k + 1, β)``; 0 for k = 0. With confidence ≥ 1 − β the true
    probability is at least this (it tells whether evaluation data contradict a prior bound)."""
    # Validates k, n and beta the same way as the upper limit.
    shape = epsilon_upper(k, n, beta).shape
    k_arr, n_arr, beta_arr = (np.broadcast_to(np.asarray(a), shape) for a in (k, n, beta))
    out = np.zeros(shape, dtype=np.float64)
    some = k_arr > 0
    out[some] = betaincinv(
        k_arr[some].astype(np.float64), (n_arr - k_arr + 1)[some].astype(np.float64), beta_arr[some].astype(np.float64)
    )
    return out


def horizon_beta(beta: float, t_max: int, bonferroni: bool) -> float:
    """The β each horizon's bound is computed at: β, or β / T_max when the bounds must hold simultaneously."""
    _check_beta(np.asarray(beta))
    if t_max < 1:
        raise ValueError(f"t_max must be at least 1, got {t_max}")
    return beta / t_max if bonferroni else beta


def _field(records: Any, name: str) -> np.ndarray | None:
    if isinstance(records, np.ndarray) and records.dtype.names and name in records.dtype.names:
        return np.asarray(records[name])
    if isinstance(records, dict) and name in records:
        return np.asarray(records[name])
    return None


def success_steps(records: Any) -> np.ndarray:
    """Per episode, the step at which it *succeeded* (reached the goal with no earlier or simultaneous
    violation), or 0 if it never did: ``goal_step if outcome == "goal" else 0``.

    ``records`` is a sequence of :class:`~sport_core.collect.EpisodeRecord` (anything with ``outcome`` and
    ``goal_step``), or a structured array / dict of arrays with fields ``outcome`` (strings, or codes in the
    order of :data:`OUTCOMES`) and ``goal_step``.
    """
    outcome = _field(records, "outcome")
    goal_step = _field(records, "goal_step")
    if outcome is None or goal_step is None:
        seq = list(records)
        outcome = np.array([r.outcome for r in seq], dtype=object)
        goal_step = np.array([r.goal_step for r in seq], dtype=np.int64)
    reached = outcome == "goal" if outcome.dtype.kind in "OUS" else outcome == GOAL_CODE
    reached = np.asarray(reached, dtype=bool)
    goal_step = np.asarray(goal_step, dtype=np.int64)
    if np.any(reached & (goal_step < 1)):
        raise ValueError("an episode with outcome 'goal' has no goal step (goal_step < 1)")
    return np.where(reached, goal_step, 0)


def failures_by_horizon(records: Any, t_max: int) -> np.ndarray:
    """k(T) for T = 1..t_max (``out[T − 1]``): the number of episodes that failed by horizon T.

    An episode fails by T unless it succeeded at a step s ≤ T (see :func:`success_steps`), so
    k(T) = N − #{s: 1 ≤ s ≤ T}: one histogram of success steps and a cumulative sum, O(N + T_max).
    k is non-increasing in T.
    """
    if t_max < 1:
        raise ValueError(f"t_max must be at least 1, got {t_max}")
    steps = success_steps(records)
    counts = np.bincount(np.minimum(steps, t_max + 1), minlength=t_max + 2)
    return steps.size - np.cumsum(counts[1 : t_max + 1])


def epsilon_curve(failures: Any, n: int, beta: float, bonferroni: bool = False) -> np.ndarray:
    """ε(T) for every horizon of a k(T) curve (``failures[T − 1]``), at β or (``bonferroni``) β / T_max."""
    failures = np.asarray(failures)
    return epsilon_upper(failures, n, horizon_beta(beta, failures.shape[-1], bonferroni))


def _horizons(eps: np.ndarray) -> np.ndarray:
    return np.arange(1, eps.shape[-1] + 1, dtype=np.float64)


def _check_bound(bound: np.ndarray) -> None:
    if not np.all((bound > 0) & (bound <= 1)):
        raise ValueError(f"a target bound B on a failure probability must lie in (0, 1], got {bound}")


def max_log_alpha(eps: Any, bound: Any) -> np.ndarray:
    """log α_max(T) = max(0, (ln B − ln ε(T)) / T) for T = 1..len(eps): the largest log α whose prior bound
    α^T·ε(T) stays ≤ B (0 where even α = 1 does not reach B). Shape: ``bound.shape + eps.shape``."""
    eps = np.asarray(eps, dtype=np.float64)
    bound = np.asarray(bound, dtype=np.float64)
    _check_bound(bound)
    if np.any((eps <= 0) | (eps > 1)):
        raise ValueError("epsilon values must lie in (0, 1]")
    return np.maximum(0.0, (np.log(bound)[..., None] - np.log(eps)) / _horizons(eps))


def optimal_horizon(eps: Any, bound: Any) -> tuple[Any, Any]:
    """(T*, α*) for target bound(s) B: T* = argmax_T log α_max(T) (the smallest T on ties), α* = exp(max).

    ``eps[i]`` is ε for horizon T = i + 1. For an array of bounds both results have the bounds' shape; where
    no horizon permits α > 1, T* is the first horizon with log α_max = 0 and α* = 1.
    """
    log_alpha = max_log_alpha(eps, bound)
    best = np.argmax(log_alpha, axis=-1)
    peak = np.take_along_axis(log_alpha, best[..., None], axis=-1)[..., 0]
    return (best + 1)[()], np.exp(peak)[()]


def alpha_for_bound(eps_T: Any, T: Any, bound: Any) -> np.ndarray:
    """α(B) = (B / ε(T))^(1/T) at a fixed horizon T (broadcast over all three). Below 1 means that even the
    base policy's bound ε(T) exceeds B there."""
    eps_T = np.asarray(eps_T, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    bound = np.asarray(bound, dtype=np.float64)
    _check_bound(bound)
    if np.any(T < 1):
        raise ValueError("horizons T must be at least 1")
    return np.exp((np.log(bound) - np.log(eps_T)) / T)


def prior_bound(eps: Any, alpha: Any) -> np.ndarray:
    """min(1, α^T · ε(T)) for every horizon T = 1..len(eps) and every α (≥ 1): the bound on a task policy's
    failure probability by T before it is evaluated, computed in log space. Shape: ``alpha.shape + eps.shape``."""
    eps = np.asarray(eps, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    if np.any(alpha < 1):
        raise ValueError(f"the ratio bound alpha must be at least 1, got {alpha}")
    return np.exp(np.minimum(0.0, np.log(alpha)[..., None] * _horizons(eps) + np.log(eps)))


def scenario_certificate(
    failures: Sequence[int] | np.ndarray,
    n: int,
    beta: float,
    bounds: Iterable[float],
    bonferroni: bool,
) -> dict[str, Any]:
    """Every number of a scenario certificate, as plain JSON data, from the failure curve k(1..T_max).

    Keys: ``beta``, ``confidence``, ``bonferroni``, ``beta_per_horizon``, ``episodes``, ``t_max``,
    ``failures`` (k(T)), ``epsilon`` (ε(T)) and ``bounds`` (per target B: ``bound``, ``T_star``,
    ``alpha_star``, ``log_alpha_star``, ``epsilon_at_T_star``, ``failures_at_T_star`` and ``feasible``, whether
    α*^T*·ε(T*) ≤ B). The certifier writes this and ``sport verify`` recomputes it from the episode store.
    """
    failures = np.asarray(failures, dtype=np.int64)
    t_max = int(failures.shape[-1])
    beta_t = horizon_beta(beta, t_max, bonferroni)
    eps = epsilon_upper(failures, n, beta_t)
    return {
        "beta": float(beta),
        "confidence": 1.0 - float(beta),
        "bonferroni": bool(bonferroni),
        "beta_per_horizon": float(beta_t),
        "episodes": int(n),
        "t_max": t_max,
        "failures": [int(x) for x in failures],
        "epsilon": [float(x) for x in eps],
        "bounds": ratio_bounds(eps, bounds, failures),
    }


def ratio_bounds(eps: Any, bounds: Iterable[float], failures: Any = None) -> list[dict[str, Any]]:
    """The certificate's ``bounds`` rows from any failure-probability bound curve ε(1..T_max), whatever the
    method that gave it: per target B, ``bound``, ``T_star`` and ``alpha_star`` (:func:`optimal_horizon`:
    α* = max_T (B / ε(T))^(1/T), at least 1), ``log_alpha_star``, ``epsilon_at_T_star``, ``feasible`` (whether
    α*^T*·ε(T*) ≤ B) and, given the failure counts k(T), ``failures_at_T_star``."""
    eps = np.asarray(eps, dtype=np.float64)
    rows: list[dict[str, Any]] = []
    bound_list = [float(b) for b in bounds]
    if not bound_list:
        return rows
    t_star, alpha_star = optimal_horizon(eps, np.array(bound_list))
    for b, t, a in zip(bound_list, np.atleast_1d(t_star), np.atleast_1d(alpha_star), strict=True):
        e = float(eps[t - 1])
        row: dict[str, Any] = {
            "bound": b,
            "T_star": int(t),
            "alpha_star": float(a),
            "log_alpha_star": float(np.log(a)),
            "epsilon_at_T_star": e,
        }
        if failures is not None:
            row["failures_at_T_star"] = int(np.asarray(failures)[t - 1])
        # By construction α*^T*·ε(T*) = B when α* > 1; with α* = 1 the base alone may miss B.
        row["feasible"] = bool(np.log(e) + int(t) * np.log(a) <= np.log(b) + 1e-12)
        rows.append(row)
    return rows
