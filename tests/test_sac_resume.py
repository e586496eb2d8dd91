"""A SAC stage killed mid-run and resumed ends with exactly the parameters of an uninterrupted run.

The kill is real as far as the stage can tell: the env raises KeyboardInterrupt (what SIGTERM becomes in
``sport run``) in the middle of an episode, long after the last checkpoint; the run is then continued with
``Runner.resume`` as ``sport run --resume`` does. Determinism is on CPU with one torch thread.
"""

from __future__ import annotations

import json

import pytest

from sport_core.artifacts import sha256_file
from sport_core.recipe import validate
from sport_core.runner import Runner
from sport_core.weights import load_policy
from sport_pointmass.env import PointMassEnv

CONFIG = {
    "total_steps": 900,
    "learning_starts": 100,
    "batch_size": 64,
    "critic_hidden": [32, 32],
    "policy_config": {"hidden": [32, 32]},
    "checkpoint_every": 150,
    "log_every": 100,
    # two levels (hazard radius 0.2 then 0.3) that switch after 3 episodes, so the resumed run must also
    # rebuild the right env
    "curriculum_key": "hazard_radius",
    "curriculum": [0.2, 0.3],
    "curriculum_threshold": 0.0,
    "curriculum_window": 3,
}


def recipe(registry, **overrides):
    data = {
        "run": {"name": "resume", "seed": 3},
        "env": {"kind": "pointmass", "max_steps": 40},
        "executor": {"kind": "inline"},
        "stages": [{"name": "base", "trainer": "sac", "config": {**CONFIG, **overrides}}],
    }
    return validate(data, registry)


def crashing_step(at: int):
    """A replacement for PointMassEnv.step that raises KeyboardInterrupt at its ``at``-th call."""
    original = PointMassEnv.step
    calls = 0

    def step(env, action):
        nonlocal calls
        calls += 1
        if calls == at:
            raise KeyboardInterrupt("simulated kill")
        return original(env, action)

    return step


@pytest.mark.parametrize(
    "overrides",
    [{}, {"prioritized_replay": False, "curriculum_keep_buffer": False}],
    ids=["per", "uniform-reset-buffer"],
)
def test_resume_after_kill_gives_the_uninterrupted_parameters(pm, tmp_path, monkeypatch, overrides):
    straight = Runner.create(recipe(pm.registry, **overrides), pm, tmp_path / "straight")
    assert straight.run() == "completed"

    original = PointMassEnv.step
    monkeypatch.setattr(PointMassEnv, "step", crashing_step(at=620))
    killed = Runner.create(recipe(pm.registry, **overrides), pm, tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    monkeypatch.setattr(PointMassEnv, "step", original)
    pointer = json.loads((killed.run_dir / "base" / "checkpoints" / "latest.json").read_text())
    assert 450 <= pointer["step"] < 620  # resumes from a checkpoint well before the kill, not from scratch
    assert killed.read_manifest()["stages"]["base"]["status"] == "interrupted"

    resumed = Runner.resume(killed.run_dir, pm)
    assert resumed.run() == "completed"
    a, b = straight.run_dir / "base" / "policy.safetensors", killed.run_dir / "base" / "policy.safetensors"
    assert sha256_file(a) == sha256_file(b)
    summary = json.loads((killed.run_dir / "base" / "train_summary.json").read_text())
    assert summary["curriculum_level"] == 2 and summary["steps"] == 900
    load_policy(b, pm.registry)  # the exported policy is a valid, loadable artifact
