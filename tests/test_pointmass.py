"""The pure-numpy point mass: the same info contract as the safety-gymnasium tasks."""

from __future__ import annotations

import numpy as np
import pytest

from sport_pointmass.env import PointMassConfig, PointMassEnv, PointMassMaker, sample_layouts, step_batch


def test_info_contract_and_spaces():
    env = PointMassEnv()
    obs, info = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (7,)
    assert env.action_space.shape == (2,)
    assert set(info) >= {"goal_met", "constraint_violated", "cost", "agent_pos"}
    obs, reward, _terminated, _truncated, info = env.step(np.zeros(2))
    assert info["agent_pos"].shape == (2,) and isinstance(reward, float)


def test_driving_into_the_hazard_is_a_violation_that_ends_or_continues_the_episode():
    for mode, ends in (("terminate", True), ("continue", False)):
        env = PointMassEnv(PointMassConfig(on_violation=mode, layout_seed=3, accel=5.0))
        env.reset()
        for _ in range(60):
            direction = env._hazard[0] - env._pos[0]
            _, _, terminated, truncated, info = env.step(direction / np.linalg.norm(direction))
            if info["constraint_violated"]:
                break
        assert info["constraint_violated"] and info["cost"] == 1.0
        assert terminated is ends and not truncated


def test_fixed_layouts_ignore_the_reset_seed_and_random_layouts_follow_it():
    fixed = PointMassEnv(PointMassConfig(layout_seed=7))
    assert np.array_equal(fixed.reset(seed=1)[0], fixed.reset(seed=2)[0])
    free = PointMassEnv()
    assert not np.array_equal(free.reset(seed=1)[0], free.reset(seed=2)[0])
    assert np.array_equal(free.reset(seed=5)[0], PointMassEnv().reset(seed=5)[0])
    assert PointMassMaker(PointMassConfig(layout_seed=7)).fixed_layout
    assert "fixed layout" in PointMassMaker(PointMassConfig(layout_seed=7)).scenario


def test_the_batched_step_matches_the_single_env():
    cfg = PointMassConfig()
    rng = np.random.default_rng(0)
    layouts = sample_layouts(rng, 64)
    pos, vel = layouts["agent"], np.zeros((64, 2))
    actions = rng.uniform(-1, 1, (64, 2))
    new_pos, _, reward, _goal_met, _violated = step_batch(cfg, pos, vel, actions, layouts["goal"], layouts["hazard"])
    env = PointMassEnv(cfg)
    env.reset(seed=0)
    env._pos, env._vel, env._goal, env._hazard = pos[3:4], vel[3:4], layouts["goal"][3:4], layouts["hazard"][3:4]
    _, r, *_ = env.step(actions[3])
    assert r == pytest.approx(reward[3]) and np.allclose(env._pos[0], new_pos[3])


def test_timeout_truncates():
    env = PointMassEnv(PointMassConfig(max_steps=5, layout_seed=0))
    env.reset()
    endings = [env.step(np.zeros(2))[2:4] for _ in range(5)]
    assert endings == [(False, False)] * 4 + [(False, True)]
