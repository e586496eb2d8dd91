"""The scenario / ratio mathematics: golden values, the defining property of ε, and the paper's numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import bdtr
from scipy.stats import binom

from sport_core import bounds
from sport_core.bounds import (
    alpha_for_bound,
    epsilon_curve,
    epsilon_lower,
    epsilon_upper,
    failures_by_horizon,
    max_log_alpha,
    optimal_horizon,
    prior_bound,
    scenario_certificate,
)
from sport_core.collect import OUTCOMES, EpisodeRecord, outcome_of

# Reference roots of BinomCDF(k; N, ε) = β computed with mpmath at 50-60 significant digits (findroot on the
# exact binomial sum / regularised incomplete beta), rounded to 17 digits: (k, N, β) -> ε.
EXACT = {
    (0, 1000, 1e-7): 0.015988894238866255,
    (1, 1000, 1e-7): 0.018947576875514162,
    (2, 1000, 1e-7): 0.021457065873899591,
    (3, 1000, 1e-7): 0.023736113079340499,
    (4, 1000, 1e-7): 0.025866893069847845,
    (47, 10001, 1e-7): 0.0092838237880925879,
    (9, 10, 0.05): 0.9948838031081763,
    (3, 1000, 0.01): 0.010009791991707747,
    (47, 10001, 1e-12): 0.011352569904976095,
    (0, 1_000_000, 1e-12): 2.7630639382780494e-5,
    (1000, 1_000_000, 1e-12): 0.0012398267372870383,
    (3, 1000, 1e-12): 0.036119914079637523,
    (47, 10001, 1e-20): 0.014214883309752556,
    (3, 1000, 1e-30): 0.077446009089837779,
}

# FACTS §2 as printed (rounded): (k, N, β) -> ε.
FACTS_GOLDEN = {
    (0, 1000, 1e-7): "0.0159889",
    (1, 1000, 1e-7): "0.0189476",
    (2, 1000, 1e-7): "0.0214571",
    (3, 1000, 1e-7): "0.0237361",
    (4, 1000, 1e-7): "0.0258669",
    (47, 10001, 1e-7): "0.0092838",
    (9, 10, 0.05): "0.99488380",
    (3, 1000, 0.01): "0.0100098",
}


@pytest.mark.parametrize(("k", "n", "beta"), list(EXACT))
def test_epsilon_matches_high_precision_roots_to_1e_minus_7_relative(k, n, beta):
    assert epsilon_upper(k, n, beta) == pytest.approx(EXACT[(k, n, beta)], rel=1e-7)
    # In fact it is good to a few ulps, down to β = 1e-30.
    assert epsilon_upper(k, n, beta) == pytest.approx(EXACT[(k, n, beta)], rel=1e-13)


@pytest.mark.parametrize(("k", "n", "beta"), list(FACTS_GOLDEN))
def test_epsilon_rounds_to_the_golden_values_of_the_facts(k, n, beta):
    printed = FACTS_GOLDEN[(k, n, beta)]
    decimals = len(printed.split(".")[1])
    assert f"{float(epsilon_upper(k, n, beta)):.{decimals}f}" == printed


def test_the_golden_curve_in_one_vectorised_call():
    eps = epsilon_upper(np.arange(5), 1000, 1e-7)
    assert eps.shape == (5,)
    np.testing.assert_allclose(eps, [EXACT[(k, 1000, 1e-7)] for k in range(5)], rtol=1e-13)
    # Broadcasting over β as well.
    both = epsilon_upper(3, 1000, np.array([1e-7, 0.01, 1e-12]))
    np.testing.assert_allclose(both, [EXACT[(3, 1000, b)] for b in (1e-7, 0.01, 1e-12)], rtol=1e-13)


def test_beta_ppf_would_lose_the_precision_that_betainccinv_keeps():
    # Why bounds.py uses betainccinv: 1 − β is rounded before beta.ppf sees it.
    from scipy.stats import beta as beta_dist

    k, n = 47, 10001
    ppf = beta_dist.ppf(1 - 1e-20, k + 1, n - k)
    assert abs(ppf / EXACT[(k, n, 1e-20)] - 1) > 0.1
    assert epsilon_upper(k, n, 1e-20) == pytest.approx(EXACT[(k, n, 1e-20)], rel=1e-13)


@pytest.mark.parametrize("n", [1, 7, 10_001, 10**6])
@pytest.mark.parametrize("beta", [0.5, 1e-7, 1e-12])
def test_edge_cases_all_failed_gives_one_and_none_failed_gives_the_closed_form(n, beta):
    assert epsilon_upper(n, n, beta) == 1.0
    assert epsilon_upper(0, n, beta) == pytest.approx(1 - beta ** (1 / n), rel=1e-12)
    assert epsilon_upper(0, n, beta) == pytest.approx(-math.expm1(math.log(beta) / n), rel=1e-15)


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 10**6),
    frac=st.floats(0, 1),
    log10_beta=st.floats(-12, math.log10(0.5)),
)
def test_epsilon_solves_binomcdf_equal_to_beta(n, frac, log10_beta):
    k = min(n - 1, int(frac * n))
    beta = 10.0**log10_beta
    eps = float(epsilon_upper(k, n, beta))
    assert 0 < eps <= 1  # k = n − 1 with tiny β: ε = (1 − β)^(1/n) may round to 1
    # ε is the root: the CDF (decreasing in ε) brackets β within a relative step of 1e-9 on either side.
    assert bdtr(k, n, eps * (1 - 1e-9)) >= beta >= bdtr(k, n, min(1.0, eps * (1 + 1e-9)))
    if eps * (1 + 1e-9) < 1:
        assert bdtr(k, n, eps) == pytest.approx(beta, rel=1e-6)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 10**5), frac=st.floats(0, 1), log10_beta=st.floats(-12, -1))
def test_the_lower_limit_solves_the_upper_tail_equal_to_beta(n, frac, log10_beta):
    k = max(1, int(frac * n))
    beta = 10.0**log10_beta
    low = float(epsilon_lower(k, n, beta))
    assert binom.sf(k - 1, n, low) == pytest.approx(beta, rel=1e-6)  # P(X >= k; n, low) = β
    assert low <= k / n <= float(epsilon_upper(k, n, beta))
    assert epsilon_lower(0, n, beta) == 0.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 10, 0.1), "0..n"),
        ((11, 10, 0.1), "0..n"),
        ((1, 0, 0.1), "at least 1"),
        ((1, 10, 0.0), "(0, 1)"),
        ((1, 10, 1.0), "(0, 1)"),
        ((1.5, 10, 0.1), "integers"),
    ],
)
def test_bad_counts_and_levels_are_refused(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        epsilon_upper(*args)


def test_outcome_codes_follow_the_collection_order():
    assert bounds.OUTCOMES == OUTCOMES
    assert OUTCOMES[bounds.GOAL_CODE] == "goal"


def _random_records(rng: np.random.Generator, n: int, t_max: int) -> list[EpisodeRecord]:
    records = []
    for i in range(n):
        g = int(rng.integers(-1, t_max + 5))
        g = -1 if g == 0 else g
        v = int(rng.choice([-1, g, int(rng.integers(1, t_max + 5))])) if g != -1 else int(rng.integers(-1, 4))
        v = -1 if v == 0 else v
        records.append(EpisodeRecord(i, 0, outcome_of(g, v), g, v, max(g, v, 1), 0.0))
    return records


def test_failures_by_horizon_agrees_with_the_records_own_failure_definition():
    rng = np.random.default_rng(1)
    records = _random_records(rng, 500, 30)
    assert any(r.goal_step == r.violation_step > 0 for r in records)  # the same-step case is exercised
    k = failures_by_horizon(records, 40)
    assert k.shape == (40,) and k.dtype.kind == "i"
    assert k.tolist() == [sum(r.failed_by(T) for r in records) for T in range(1, 41)]
    assert np.all(np.diff(k) <= 0)


def test_a_goal_and_a_violation_in_the_same_step_is_a_failure_at_every_horizon():
    same_step = EpisodeRecord(0, 0, outcome_of(5, 5), 5, 5, 5, 1.0)
    assert same_step.outcome == "violation"
    assert failures_by_horizon([same_step], 10).tolist() == [1] * 10
    clean = EpisodeRecord(1, 0, outcome_of(5, 6), 5, 6, 6, 1.0)
    assert failures_by_horizon([clean], 6).tolist() == [1, 1, 1, 1, 0, 0]


def test_failures_by_horizon_reads_arrays_with_codes_or_names_alike():
    records = _random_records(np.random.default_rng(2), 200, 20)
    codes = {
        "outcome": np.array([OUTCOMES.index(r.outcome) for r in records], np.uint8),
        "goal_step": np.array([r.goal_step for r in records]),
    }
    names = {"outcome": np.array([r.outcome for r in records]), "goal_step": codes["goal_step"]}
    expected = failures_by_horizon(records, 25)
    np.testing.assert_array_equal(failures_by_horizon(codes, 25), expected)
    np.testing.assert_array_equal(failures_by_horizon(names, 25), expected)
    with pytest.raises(ValueError, match="t_max"):
        failures_by_horizon(records, 0)


def paper_like_curve(n: int = 10_001, t_max: int = 100) -> np.ndarray:
    """k(T) with k(21) = 47 of 10 001 and larger k below 21 (as in the paper's low-frequency env)."""
    k = np.full(t_max, 47)
    k[:14] = n  # nobody reaches the goal within 14 steps
    k[14:20] = [2000, 1200, 700, 400, 250, 150]  # then most do, but not enough to beat T = 21
    k[25:] = 40  # a few late successes
    return k


def test_the_paper_numbers_t_star_21_and_alpha_star_1_2496():
    eps = epsilon_curve(paper_like_curve(), 10_001, 1e-7)
    assert eps[20] == pytest.approx(0.0092838, rel=1e-5)
    t_star, alpha_star = optimal_horizon(eps, 1.0)
    assert t_star == 21
    assert alpha_star == pytest.approx(1.2496, abs=1e-4)
    assert math.log(alpha_star) == pytest.approx(0.2228, abs=1e-4)


def test_alpha_for_each_bound_at_t_21_as_in_the_paper():
    eps21 = epsilon_upper(47, 10_001, 1e-7)
    bs = [0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0]
    paper = [1.0483, 1.0835, 1.1198, 1.1574, 1.1800, 1.1963, 1.2196, 1.2364, 1.2496]
    np.testing.assert_allclose(alpha_for_bound(eps21, 21, bs), paper, atol=1e-4)
    # α(B) hits the bound exactly: α^T ε(T) = B.
    np.testing.assert_allclose(alpha_for_bound(eps21, 21, bs) ** 21 * eps21, bs, rtol=1e-12)


def test_max_log_alpha_is_clipped_at_zero_and_vectorised_over_bounds():
    eps = np.array([1.0, 0.5, 0.1, 0.05])
    la = max_log_alpha(eps, [1.0, 0.2])
    assert la.shape == (2, 4)
    np.testing.assert_allclose(la[0], -np.log(eps) / np.arange(1, 5))
    assert la[1, 0] == la[1, 1] == 0.0  # ε above B: not even α = 1 reaches B there
    t_star, alpha_star = optimal_horizon(eps, [1.0, 0.2])
    for i, b in enumerate([1.0, 0.2]):
        assert (t_star[i], alpha_star[i]) == optimal_horizon(eps, b)
    with pytest.raises(ValueError, match="bound"):
        max_log_alpha(eps, 1.5)


def test_when_no_horizon_permits_alpha_above_one_the_certificate_says_so():
    eps = epsilon_curve(np.full(10, 500), 1000, 1e-7)
    t_star, alpha_star = optimal_horizon(eps, 0.1)
    assert (t_star, alpha_star) == (1, 1.0)
    row = scenario_certificate(np.full(10, 500), 1000, 1e-7, [0.1], False)["bounds"][0]
    assert row["feasible"] is False and row["alpha_star"] == 1.0


def test_prior_bound_is_alpha_to_the_t_times_epsilon_capped_at_one():
    eps = epsilon_curve(paper_like_curve(), 10_001, 1e-7)
    _, alpha_star = optimal_horizon(eps, 1.0)
    alphas = np.array([1.0, alpha_star, 2.0, 100.0])
    prior = prior_bound(eps, alphas)
    assert prior.shape == (4, 100)
    np.testing.assert_allclose(prior[0], eps, rtol=1e-14)
    T = np.arange(1, 101)
    np.testing.assert_allclose(prior[2], np.minimum(1.0, 2.0**T * eps), rtol=1e-12)
    assert prior[1, 20] == pytest.approx(1.0, rel=1e-12)  # α* exhausts B = 1 at T* = 21
    assert np.all(prior[3, 5:] == 1.0) and np.isfinite(prior).all()  # 100^1000 would overflow; logs do not
    with pytest.raises(ValueError, match="at least 1"):
        prior_bound(eps, 0.9)


def test_bonferroni_bounds_every_horizon_at_beta_over_t_max():
    k = paper_like_curve(t_max=50)
    plain = epsilon_curve(k, 10_001, 1e-7)
    joint = epsilon_curve(k, 10_001, 1e-7, bonferroni=True)
    np.testing.assert_array_equal(joint, epsilon_upper(k, 10_001, 1e-7 / 50))
    assert np.all(joint[k < 10_001] > plain[k < 10_001])


def test_scenario_certificate_collects_every_number():
    k = paper_like_curve()
    cert = scenario_certificate(k, 10_001, 1e-7, [1.0, 0.025], bonferroni=False)
    assert cert["episodes"] == 10_001 and cert["t_max"] == 100 and cert["beta_per_horizon"] == 1e-7
    assert cert["failures"] == k.tolist()
    assert cert["epsilon"] == epsilon_curve(k, 10_001, 1e-7).tolist()
    top, low = cert["bounds"]
    assert (top["bound"], top["T_star"], top["failures_at_T_star"], top["feasible"]) == (1.0, 21, 47, True)
    assert top["alpha_star"] == pytest.approx(1.2496, abs=1e-4)
    assert low["alpha_star"] < top["alpha_star"]
    joint = scenario_certificate(k, 10_001, 1e-7, [1.0], bonferroni=True)
    assert joint["beta_per_horizon"] == pytest.approx(1e-9) and joint["bounds"][0]["alpha_star"] < top["alpha_star"]
