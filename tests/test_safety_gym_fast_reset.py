"""The model-reusing reset reproduces safety-gymnasium's own reset bit for bit (issue 8).

The baseline is safety-gymnasium's own code throughout (``fast_reset=False, fast_step=False``: the stock
reset that recompiles the MJCF, and the stock per-physics-step Python loop). For ≥ 20 random-layout seeds
and the fixed (paper) layout, the compiled model (every array), the first observation and a 100-step
rollout under a fixed action sequence — observations, rewards, costs, flags, positions and the ending
step — are exactly equal (max abs difference 0.0) with either path, after the fast env has first been used
for unrelated layouts. A change of the model's structure recompiles.
"""

from __future__ import annotations

import numpy as np
import pytest

# No skip when safety-gymnasium is missing: ./install.sh always installs it, so its absence is a failure.
import sport_safety_gym as sgm

pytestmark = pytest.mark.safety

LEVEL5 = "SafetyPointReachAvoidLowFreqCurriculum5-v0"
RANDOM_SEEDS = [*range(18), 2**40 + 17, 987_654_321_123]  # 20 layouts, two beyond 32 bits


def actions_for(seed: int, steps: int = 100) -> np.ndarray:
    """A fixed action sequence: forward-biased random driving that crosses the arena."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-0.2, 1.0, steps), rng.uniform(-1.0, 1.0, steps)])


def rollout(env, seed: int, actions: np.ndarray) -> dict[str, np.ndarray]:
    """Everything an episode produces, stacked per step (row 0: the reset)."""
    obs, info = env.reset(seed=seed)
    out = {
        "obs": [obs],
        "reward": [0.0],
        "cost": [info["cost"]],
        "goal": [info["goal_met"]],
        "violated": [info["constraint_violated"]],
        "pos": [info["agent_pos"]],
    }
    ending = (len(actions), False, False)
    for t, action in enumerate(actions, start=1):
        obs, reward, terminated, truncated, info = env.step(action)
        for key, value in zip(
            out,
            (obs, reward, info["cost"], info["goal_met"], info["constraint_violated"], info["agent_pos"]),
            strict=True,
        ):
            out[key].append(value)
        if terminated or truncated:
            ending = (t, terminated, truncated)
            break
    result = {key: np.asarray(values, dtype=np.float64) for key, values in out.items()}
    result["ending"] = np.asarray(ending, dtype=np.float64)
    return result


def assert_identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray], what: str) -> None:
    for key in a:
        assert a[key].shape == b[key].shape, f"{what}: {key} shapes {a[key].shape} vs {b[key].shape}"
        diff = float(np.max(np.abs(a[key] - b[key]))) if a[key].size else 0.0
        assert diff == 0.0, f"{what}: {key} differs, max abs difference {diff}"


def model_arrays(model) -> dict[str, np.ndarray]:
    """Every array of a compiled MjModel, plus the statistics the compiler derives from the layout."""
    arrays = {}
    for name in dir(model):
        if name.startswith("_"):
            continue
        try:
            value = getattr(model, name)
        except Exception:  # some properties need arguments or a renderer
            continue
        if isinstance(value, np.ndarray):
            arrays[name] = value.copy()
    for name in ("meaninertia", "meanmass", "meansize", "extent", "center"):
        arrays[f"stat.{name}"] = np.array(getattr(model.stat, name))
    return arrays


def assert_same_model(stock_env, fast_env, what: str) -> None:
    a, b = model_arrays(stock_env.builder.task.model), model_arrays(fast_env.builder.task.model)
    assert a.keys() == b.keys()
    differing = [k for k in a if a[k].shape != b[k].shape or not np.array_equal(a[k], b[k])]
    assert not differing, f"{what}: model arrays differ: {differing}"


@pytest.fixture(scope="module")
def stock():
    return sgm.make(LEVEL5, fast_reset=False, fast_step=False)


@pytest.fixture(scope="module")
def fast():
    """A fast env already used for unrelated layouts and steps."""
    env = sgm.make(LEVEL5)
    for seed in (10_001, 10_002, 10_003):
        rollout(env, seed, actions_for(seed, 30))
    return env


def test_the_fast_reset_is_the_default_and_compiles_once(fast):
    assert fast.compiles == 1
    assert sgm.make(LEVEL5, fast_reset=False).compiles is None


def test_random_layouts_are_bit_identical_to_the_stock_reset(stock, fast):
    endings = set()
    for seed in RANDOM_SEEDS:
        actions = actions_for(seed)
        expected = rollout(stock, seed, actions)
        stock_model = model_arrays(stock.builder.task.model)
        got = rollout(fast, seed, actions)
        assert_identical(expected, got, f"seed {seed}")
        fast_model = model_arrays(fast.builder.task.model)
        differing = [k for k in stock_model if not np.array_equal(stock_model[k], fast_model[k])]
        assert not differing, f"seed {seed}: model arrays differ: {differing}"
        endings.add(tuple(expected["ending"][1:]))
    assert fast.compiles == 1
    assert len(endings) > 1  # the rollouts end in more than one way (timeouts and goals/violations)


def test_the_paper_layout_is_bit_identical_to_the_stock_reset(fast):
    stock_paper = sgm.make(LEVEL5, layout="paper", fast_reset=False, fast_step=False)
    fast_paper = sgm.make(LEVEL5, layout="paper")
    actions = actions_for(0)
    expected = rollout(stock_paper, 0, actions)
    for seed in (5, 6, 7):  # the first reset compiles, the later ones reuse the model
        assert_identical(expected, rollout(fast_paper, seed, actions), f"paper layout, reset seed {seed}")
        assert_same_model(stock_paper, fast_paper, "paper layout")
    assert fast_paper.compiles == 1
    # the random-layout env, used for many other layouts, gives the same with seed 0 (= layout seed 0)
    assert_identical(expected, rollout(fast, 0, actions), "random env at seed 0")


@pytest.mark.parametrize(
    "env_id", ["SafetyPointReachAvoidCurriculum1-v0", "SafetyPointReachAvoidLowFreqResetGoalCurriculum5-v0"]
)
def test_other_timings_and_modes_are_bit_identical_too(env_id):
    stock_env, fast_env = sgm.make(env_id, fast_reset=False, fast_step=False), sgm.make(env_id)
    rollout(fast_env, 123, actions_for(123, 10))
    actions = actions_for(3)
    assert_identical(rollout(stock_env, 3, actions), rollout(fast_env, 3, actions), env_id)
    assert_same_model(stock_env, fast_env, env_id)
    assert fast_env.compiles == 1


def test_a_change_of_structure_recompiles_and_stays_identical(stock, fast):
    compiles = fast.compiles
    try:
        for env in (stock, fast):
            env.builder.task.hazards.size = 0.4  # a different hazard geom: the model must be rebuilt
        actions = actions_for(77)
        assert_identical(rollout(stock, 77, actions), rollout(fast, 77, actions), "hazard radius 0.4")
        assert_same_model(stock, fast, "hazard radius 0.4")
        assert fast.compiles == compiles + 1
        assert fast.builder.task.model.geom("hazard0").size[0] == 0.4
    finally:
        for env in (stock, fast):
            env.builder.task.hazards.size = 0.5
    assert_identical(rollout(stock, 78, actions), rollout(fast, 78, actions), "back to radius 0.5")
    assert fast.compiles == compiles + 2
