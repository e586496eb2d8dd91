"""The ``sac`` stage on the real safety-gymnasium task: a two-level curriculum (each level's env built
through the registry), killed mid-episode and resumed to exactly the parameters of an uninterrupted run."""

from __future__ import annotations

import json

import pytest

from sport_core.artifacts import sha256_file
from sport_core.recipe import validate
from sport_core.runner import Runner

# No skip when safety-gymnasium is missing: ./install.sh always installs it, so its absence is a failure.
from sport_safety_gym.env import ReachAvoidEnv

pytestmark = [pytest.mark.safety, pytest.mark.slow]

LEVELS = ["SafetyPointReachAvoidLowFreqCurriculum1-v0", "SafetyPointReachAvoidLowFreqCurriculum2-v0"]


def recipe(registry):
    config = {
        "total_steps": 500,
        "learning_starts": 100,
        "batch_size": 64,
        "critic_hidden": [32, 32],
        "policy_config": {"hidden": [32, 32]},
        "checkpoint_every": 100,
        "log_every": 100,
        "curriculum": LEVELS,
        "curriculum_threshold": 0.0,
        "curriculum_window": 2,
    }
    env = {"kind": "safety-gym", "id": LEVELS[0], "dense_reward": False, "violation_reward": -0.25}
    data = {
        "run": {"name": "sac-sg", "seed": 1},
        "executor": {"kind": "inline"},
        "stages": [{"name": "base", "trainer": "sac", "env": env, "config": config}],
    }
    return validate(data, registry)


def test_sac_on_safety_gym_resumes_exactly(pm, tmp_path, monkeypatch):
    straight = Runner.create(recipe(pm.registry), pm, tmp_path / "straight")
    assert straight.run() == "completed"
    summary = json.loads((straight.run_dir / "base" / "train_summary.json").read_text())
    assert summary["curriculum_level"] == 2 and summary["env_id"] == LEVELS[1]

    original, calls = ReachAvoidEnv.step, 0

    def step(env, action):
        nonlocal calls
        calls += 1
        if calls == 380:
            raise KeyboardInterrupt("simulated kill")
        return original(env, action)

    monkeypatch.setattr(ReachAvoidEnv, "step", step)
    killed = Runner.create(recipe(pm.registry), pm, tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    monkeypatch.setattr(ReachAvoidEnv, "step", original)
    assert json.loads((killed.run_dir / "base" / "checkpoints" / "latest.json").read_text())["step"] >= 200
    assert Runner.resume(killed.run_dir, pm).run() == "completed"
    assert sha256_file(straight.run_dir / "base" / "policy.safetensors") == sha256_file(
        killed.run_dir / "base" / "policy.safetensors"
    )
