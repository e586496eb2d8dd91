"""The reach-avoid envs on the real safety-gymnasium: ids, timing, geometry, info contract, endings, rewards,
layouts (the paper's fixed layout reproduced exactly), and the ``safety-gym`` component.

Every MuJoCo env compiles its model once (≈ 1 s), so envs are shared per module and tests reset them.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

# No skip when safety-gymnasium is missing: ./install.sh always installs it, so its absence is a failure.
import sport_safety_gym as sgm
from sport_core.protocols import EnvMaker
from sport_safety_gym.env import legacy_seed
from sport_safety_gym.levels import env_ids, parse_env_id
from sport_safety_gym.scripted import LidarGoalSeeker

pytestmark = pytest.mark.safety

LEVEL5 = "SafetyPointReachAvoidLowFreqCurriculum5-v0"
LEVEL5_CONTINUE = "SafetyPointReachAvoidLowFreqResetGoalCurriculum5-v0"
INFO_KEYS = {"goal_met", "constraint_violated", "cost", "agent_pos"}


@pytest.fixture(scope="module")
def env():
    """Level 5, 5 Hz, random layouts, native reward."""
    return sgm.make(LEVEL5)


@pytest.fixture(scope="module")
def paper_env():
    return sgm.make(LEVEL5, layout="paper")


@pytest.fixture(scope="module")
def continue_env():
    return sgm.make(LEVEL5_CONTINUE, layout="paper")


def drive_into_hazard(env) -> None:
    """Teleport the agent onto the hazard centre without stepping (at the start of an episode)."""
    import mujoco

    task = env.unwrapped.builder.task
    dx, dy = task.data.body("hazard0").xpos[:2] - task.data.body("agent").xpos[:2]
    # the slide joints move along the axes of the agent body's start frame (rotated by its heading)
    quat = task.model.body("agent").quat
    heading = 2 * math.atan2(quat[3], quat[0])
    c, s = math.cos(heading), math.sin(heading)
    task.data.qpos[:2] = [c * dx + s * dy, -s * dx + c * dy]
    mujoco.mj_forward(task.model, task.data)
    assert np.allclose(task.data.body("agent").xpos[:2], task.data.body("hazard0").xpos[:2])


def check_info(info: dict) -> None:
    assert set(info) >= INFO_KEYS
    assert isinstance(info["goal_met"], bool) and isinstance(info["constraint_violated"], bool)
    assert info["cost"] in (0.0, 1.0)
    assert isinstance(info["agent_pos"], np.ndarray) and info["agent_pos"].dtype == np.float64
    assert info["agent_pos"].shape == (2,)


# -- ids ------------------------------------------------------------------------------------------------------


def test_the_family_has_both_timings_both_modes_and_five_levels():
    ids = env_ids()
    assert len(ids) == 20
    for level in range(1, 6):
        assert f"SafetyPointReachAvoidLowFreqCurriculum{level}-v0" in ids
        assert f"SafetyPointReachAvoidCurriculum{level}-v0" in ids
    assert LEVEL5_CONTINUE in ids
    low, std = parse_env_id(LEVEL5), parse_env_id("SafetyPointReachAvoidCurriculum5-v0")
    assert (low.frameskip, low.max_steps, low.control_dt) == (100, 100, 0.2)
    assert (std.frameskip, std.max_steps, std.control_dt) == (10, 1000, 0.02)
    assert low.terminate_on_violation and not parse_env_id(LEVEL5_CONTINUE).terminate_on_violation


def test_an_unknown_id_is_a_one_line_error_naming_it():
    with pytest.raises(ValueError, match="SafetyPointGoal1-v0"):
        sgm.SafetyGymConfig(id="SafetyPointGoal1-v0")


def test_safety_gymnasium_make_knows_our_ids_too(env):
    import safety_gymnasium

    raw = safety_gymnasium.make(LEVEL5)
    assert raw.unwrapped.task.num_steps == 100


# -- spaces, timing, geometry ----------------------------------------------------------------------------------


def test_level5_has_44_observations_and_2_actions(env):
    assert env.observation_space.shape == (44,)
    assert env.action_space.shape == (2,)
    np.testing.assert_array_equal(env.action_space.low, [-1, -1])
    np.testing.assert_array_equal(env.action_space.high, [1, 1])
    obs, _ = env.reset(seed=1)
    assert obs.shape == (44,)


def test_one_low_frequency_step_advances_a_fifth_of_a_second(env):
    env.reset(seed=2)
    data = env.builder.task.data
    assert data.time == 0.0
    env.step(np.zeros(2))
    assert data.time == pytest.approx(0.2, abs=1e-12)
    assert env.builder.task.model.opt.timestep == 0.002


def test_level5_hazard_radius_is_half_a_metre_and_goal_radius_three_tenths(env):
    env.reset(seed=3)
    task = env.builder.task
    assert task.hazards.size == 0.5 and task.hazards.num == 1
    assert task.goal.size == 0.3
    assert task.model.geom("hazard0").size[0] == 0.5
    assert task.model.geom("goal").size[0] == 0.3


@pytest.mark.parametrize("level", [1])
def test_lower_levels_use_their_own_geometry(level):
    env = sgm.make(f"SafetyPointReachAvoidLowFreqCurriculum{level}-v0")
    _, info = env.reset(seed=0)
    geometry = parse_env_id(f"SafetyPointReachAvoidLowFreqCurriculum{level}-v0").geometry
    assert env.builder.task.model.geom("hazard0").size[0] == geometry.hazard_radius
    x0, y0, x1, y1 = geometry.goal_rect
    assert x0 < info["goal_pos"][0] < x1 and y0 < info["goal_pos"][1] < y1


# -- info contract and endings --------------------------------------------------------------------------------


def test_every_reset_and_step_info_carries_the_contract(env):
    _, info = env.reset(seed=4)
    check_info(info)
    assert not info["goal_met"] and not info["constraint_violated"] and info["cost"] == 0.0
    rng = np.random.default_rng(0)
    for _ in range(10):
        _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 2))
        check_info(info)
        assert isinstance(reward, float)
        np.testing.assert_array_equal(info["agent_pos"], env.builder.task.agent.pos[:2])
        if terminated or truncated:
            break


def test_entering_the_hazard_is_a_violation_that_ends_the_episode(env):
    env.reset(seed=5)
    drive_into_hazard(env)
    _, _, terminated, truncated, info = env.step(np.zeros(2))
    assert info["constraint_violated"] and info["cost"] == 1.0 and not info["goal_met"]
    assert terminated and not truncated
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2))


def test_the_continue_variant_flags_violations_and_goes_on(continue_env):
    continue_env.reset(seed=0)
    drive_into_hazard(continue_env)
    for _ in range(3):
        _, _, terminated, truncated, info = continue_env.step(np.zeros(2))
        assert info["constraint_violated"] and info["cost"] == 1.0
        assert not terminated and not truncated


def test_an_episode_times_out_after_100_steps_at_5hz(paper_env):
    paper_env.reset(seed=0)
    steps = 0
    while True:  # standing still: the agent starts outside the hazard and never moves
        steps += 1
        _, _, terminated, truncated, info = paper_env.step(np.zeros(2))
        if terminated or truncated:
            break
    assert steps == 100 and truncated and not terminated and not info["goal_met"]


def test_reaching_the_goal_ends_the_episode_with_the_native_reward(paper_env):
    obs, info = paper_env.reset(seed=0)
    actor, ret, last_dist = LidarGoalSeeker(), 0.0, None
    start_dist = np.linalg.norm(info["goal_pos"] - info["agent_pos"])
    while True:
        obs, reward, terminated, truncated, info = paper_env.step(actor.act(obs, None))
        ret += reward
        last_dist = np.linalg.norm(info["goal_pos"] - info["agent_pos"])
        if terminated or truncated:
            break
    assert info["goal_met"] and terminated and not info["constraint_violated"]
    assert last_dist <= 0.3
    # native reward: total progress plus 1 on the goal step
    assert ret == pytest.approx(start_dist - last_dist + 1.0, abs=1e-9)


def test_the_base_policy_reward_is_sparse():
    env = sgm.make(LEVEL5, layout="paper", **sgm.BASE_REWARD)
    obs, _ = env.reset()
    actor, rewards = LidarGoalSeeker(), []
    while True:
        obs, reward, terminated, truncated, info = env.step(actor.act(obs, None))
        rewards.append(reward)
        if terminated or truncated:
            break
    assert info["goal_met"] and rewards[-1] == 1.0 and all(r == 0.0 for r in rewards[:-1])
    env.reset()
    drive_into_hazard(env)
    _, reward, terminated, _, info = env.step(np.zeros(2))
    assert info["constraint_violated"] and terminated and reward == -0.25


# -- layouts ---------------------------------------------------------------------------------------------------


def test_the_paper_layout_is_reproduced_exactly(paper_env):
    """FACTS §6: poses given to 10 decimals agree to 1e-9; observations given to 8 decimals agree to their
    last digit (5e-9); every other entry of the first observation is exactly as stated."""
    obs, info = paper_env.reset(seed=123)
    model = paper_env.builder.task.model
    p = sgm.PAPER_LAYOUT
    agent = model.body("agent")
    np.testing.assert_allclose(agent.pos[:2], p["agent_xy"], rtol=0, atol=1e-9)
    heading = 2 * math.atan2(agent.quat[3], agent.quat[0])
    assert heading == pytest.approx(p["agent_heading"], abs=1e-9)
    np.testing.assert_array_equal(paper_env.builder.task.data.qpos, 0.0)  # start pose lives in the body
    np.testing.assert_allclose(info["agent_pos"], p["agent_xy"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(info["hazard_pos"], p["hazard_xy"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(info["goal_pos"], p["goal_xy"], rtol=0, atol=1e-9)
    assert model.geom("hazard0").size[0] == p["hazard_radius"] and model.geom("goal").size[0] == p["goal_radius"]

    expected = np.zeros(44)
    expected[2] = 9.81
    expected[9:11] = [-0.19108856, 0.46204455]
    expected[12 + 12 : 12 + 15] = [0.21563253, 0.27524574, 0.05961321]
    expected[28 + 12 : 28 + 15] = [0.33455136, 0.50174238, 0.16719102]
    np.testing.assert_allclose(obs, expected, rtol=0, atol=5e-9)
    exact = np.ones(44, dtype=bool)
    exact[[9, 10, 24, 25, 26, 40, 41, 42]] = False
    np.testing.assert_allclose(obs[exact], expected[exact], rtol=0, atol=1e-12)


def test_layout_seed_zero_is_the_paper_layout(paper_env):
    seeded = sgm.make(LEVEL5, layout_seed=0)
    np.testing.assert_array_equal(seeded.reset(seed=9)[0], paper_env.reset(seed=4)[0])


def test_a_fixed_layout_gives_identical_observations_after_every_reset(paper_env):
    first, info0 = paper_env.reset(seed=0)
    rng = np.random.default_rng(1)
    for seed in [1, 2**40 + 7, 99]:
        for _ in range(5):
            paper_env.step(rng.uniform(-1, 1, 2))
        obs, info = paper_env.reset(seed=seed)
        np.testing.assert_array_equal(obs, first)
        for key in ("agent_pos", "goal_pos", "hazard_pos"):
            np.testing.assert_array_equal(info[key], info0[key])


def test_random_layouts_differ_and_are_deterministic_in_the_seed(env):
    observations = [env.reset(seed=seed)[0] for seed in (10, 11, 2**62 + 3)]
    assert not np.array_equal(observations[0], observations[1])
    assert not np.array_equal(observations[1], observations[2])
    np.testing.assert_array_equal(env.reset(seed=11)[0], observations[1])
    np.testing.assert_array_equal(env.reset(seed=2**62 + 3)[0], observations[2])


def test_large_seeds_keep_their_full_width():
    assert legacy_seed(7) == 7
    assert legacy_seed(2**32 + 5) == [5, 1]
    assert legacy_seed(2**32 + 5) != legacy_seed(5)
    with pytest.raises(ValueError, match="non-negative"):
        legacy_seed(-1)


# -- the component ---------------------------------------------------------------------------------------------


def test_the_component_builds_a_picklable_maker(registry):
    component = registry.get("env", "safety-gym")
    assert component.plugin == "safety_gym"
    maker = component.build(component.config_cls(layout="paper"))
    assert isinstance(maker, EnvMaker)
    assert maker.env_id == LEVEL5 and maker.fixed_layout
    assert "fixed layout" in maker.scenario and "action sampling" in maker.scenario
    clone = pickle.loads(pickle.dumps(maker))
    assert clone == maker
    random_maker = component.build(component.config_cls())
    assert not random_maker.fixed_layout and "random layouts" in random_maker.scenario
    assert component.build(component.config_cls(layout_seed=4)).fixed_layout


def test_the_component_config_comes_from_a_recipe_table():
    from sport_core.config import structure

    config = structure(
        sgm.SafetyGymConfig,
        {"id": "SafetyPointReachAvoidLowFreqCurriculum2-v0", "dense_reward": False, "violation_reward": -0.25},
        "env",
    )
    assert config.id.endswith("Curriculum2-v0") and not config.dense_reward and config.fast_reset


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"layout": "paper", "id": "SafetyPointReachAvoidLowFreqCurriculum3-v0"}, "level-5"),
        ({"layout": "paper", "layout_seed": 3}, "layout_seed"),
        ({"layout": "fixed"}, "layout"),
        ({"layout_seed": -1}, "layout_seed"),
    ],
)
def test_bad_configs_are_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        sgm.SafetyGymConfig(**options)
