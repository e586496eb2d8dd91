"""Property tests (hypothesis) of the Gaussian projection: feasible, identity at α = 1, identity on feasible
tasks, optimal against feasible candidates, and monotone in α."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sport_projection import max_log_ratio, project
from sport_projection.cvxpy_reference import gaussian_kl

f64 = torch.float64
SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def instances(draw, max_d: int = 4):
    """One row: base and task Gaussians over d dimensions (task stds from 0.1× to 10× the base's)."""
    d = draw(st.integers(1, max_d))
    real = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)  # noqa: E731
    mb = draw(st.lists(real(-3, 3), min_size=d, max_size=d))
    log_sb = draw(st.lists(real(-3, 1.5), min_size=d, max_size=d))
    shift = draw(st.lists(real(-4, 4), min_size=d, max_size=d))
    log_ratio = draw(st.lists(real(-2.3, 2.3), min_size=d, max_size=d))
    sb = np.exp(log_sb)
    params = (mb, sb, np.add(mb, np.multiply(shift, sb)), sb * np.exp(log_ratio))
    return [torch.tensor(np.asarray([p], dtype=np.float64)) for p in params]


alphas = st.one_of(st.just(1.0), st.floats(1.0, 1e4, allow_nan=False))


def kl(p, task) -> float:
    return float(gaussian_kl(p[0], p[1], task[0], task[1])[0])


@SETTINGS
@given(instances(), alphas, st.sampled_from(["numba", "torch"]))
def test_the_output_is_always_feasible(params, alpha, backend):
    mb, sb, mt, stt = params
    mu, std, info = project(mb, sb, mt, stt, alpha, backend=backend, return_info=True)
    assert float(max_log_ratio(mu, std, mb, sb)) <= math.log(alpha)
    assert info.fallbacks == 0


@SETTINGS
@given(instances())
def test_alpha_one_gives_the_base(params):
    mb, sb, mt, stt = params
    mu, std = project(mb, sb, mt, stt, 1.0)
    assert torch.equal(mu, mb) and torch.equal(std, sb)


@SETTINGS
@given(instances(), st.floats(1.0, 2.0))
def test_a_feasible_task_is_left_alone(params, slack):
    mb, sb, mt, stt = params
    stt = torch.minimum(stt, 0.999 * sb)  # finite ratio
    ratio = float(max_log_ratio(mt, stt, mb, sb))
    assume(ratio < 100)
    alpha = math.exp(ratio * slack) * (1 + 1e-12)  # exp∘log may round below the ratio
    mu, std = project(mb, sb, mt, stt, alpha)
    assert torch.equal(mu, mt) and torch.equal(std, stt)


@SETTINGS
@given(instances(), st.floats(1.0001, 1e3), st.floats(0.0, 1.0))
def test_no_feasible_candidate_on_the_segment_to_the_task_does_better(params, alpha, frac):
    """Any feasible point is at least as far (in KL) from the task: here points between base and a clipped task."""
    mb, sb, mt, stt = params
    mu, std = project(mb, sb, mt, stt, alpha)
    ours = kl((mu, std), (mt, stt))
    target = (mt, torch.minimum(stt, 0.999 * sb))
    candidate = (mb + frac * (target[0] - mb), sb + frac * (target[1] - sb))
    if float(max_log_ratio(*candidate, mb, sb)) <= math.log(alpha):
        assert ours <= kl(candidate, (mt, stt)) + 1e-9 * (1 + abs(ours))
    assert ours <= kl((mb, sb), (mt, stt)) + 1e-9 * (1 + abs(ours))  # the base is always feasible


@SETTINGS
@given(instances(), st.floats(1.0, 1e3), st.floats(1.0, 10.0))
def test_a_larger_alpha_never_increases_the_kl(params, alpha, factor):
    mb, sb, mt, stt = params
    small = project(mb, sb, mt, stt, alpha)
    large = project(mb, sb, mt, stt, alpha * factor)
    kl_small, kl_large = kl(small, (mt, stt)), kl(large, (mt, stt))
    assert kl_large <= kl_small + 1e-10 * (1 + abs(kl_small))
