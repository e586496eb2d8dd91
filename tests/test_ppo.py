"""PPO: GAE, the update (warm-up freezes the actor), the env pool (per-episode seeds, restore by replay),
exact resume through the runner, and learning the point mass."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sport_core.actors import PolicyActor
from sport_core.artifacts import sha256_file
from sport_core.collect import collect
from sport_core.recipe import validate
from sport_core.runner import Runner
from sport_executors.executors import InlineExecutor
from sport_pointmass import PointMassConfig, PointMassMaker
from sport_ppo.config import PPOConfig
from sport_ppo.envpool import EnvPool
from sport_ppo.learner import PPOLearner, ValueMLP, gae
from tests.support.hand_policy import goal_seeking_policy

MAKER = PointMassMaker(PointMassConfig(max_steps=30))


def test_gae_matches_the_recursion_written_out_by_hand():
    gamma, lam = 0.9, 0.8
    rewards = np.array([[1.0], [0.0], [2.0]])
    values = np.array([[0.5], [0.4], [0.3]])
    dones = np.array([[0.0], [1.0], [0.0]])  # the episode ends with step 1; step 2 starts a new one
    last = np.array([0.7])
    adv, ret = gae(rewards, values, dones, last, gamma, lam)
    d2 = 2.0 + gamma * 0.7 - 0.3
    d1 = 0.0 - 0.4  # nothing bootstrapped past the end
    d0 = 1.0 + gamma * 0.4 - 0.5
    expected = np.array([[d0 + gamma * lam * d1], [d1], [d2]])
    np.testing.assert_allclose(adv, expected, rtol=1e-12)
    np.testing.assert_allclose(ret, expected + values, rtol=1e-12)


def _learner(**config):
    cfg = PPOConfig(total_steps=128, num_steps=16, num_envs=2, num_minibatches=2, **config)
    actor = goal_seeking_policy(std=0.5)
    critic = ValueMLP(7, (16,), "tanh")
    return PPOLearner(actor, critic, cfg, torch.Generator().manual_seed(0), torch.device("cpu"))


def _batch(n=32, seed=0):
    g = np.random.default_rng(seed)
    return {
        "obs": g.normal(size=(n, 7)),
        "x": g.normal(size=(n, 2)),
        "logp": g.normal(size=n) - 2,
        "adv": g.normal(size=n),
        "ret": g.normal(size=n) + 3,
        "values": g.normal(size=n),
    }


def test_warmup_trains_the_critic_only_and_lowers_its_loss():
    learner = _learner(warmup_lr=1e-2)
    actor_before = [p.detach().clone() for p in learner.actor.parameters()]
    batch = _batch()
    first = learner.update(batch, warmup=True)
    for _ in range(20):
        last = learner.update(batch, warmup=True)
    assert all(torch.equal(a, b) for a, b in zip(actor_before, learner.actor.parameters(), strict=True))
    assert last["loss/value"] < 0.5 * first["loss/value"]
    assert "loss/policy" not in last
    stats = learner.update(batch, warmup=False)
    assert not all(torch.equal(a, b) for a, b in zip(actor_before, learner.actor.parameters(), strict=True))
    assert {"loss/policy", "policy/approx_kl", "policy/clip_fraction", "value/explained_variance"} <= set(stats)


def test_a_zero_advantage_keeps_the_policy_while_the_ratio_is_one():
    """With behaviour log-densities equal to the policy's own, r = 1 and a zero advantage gives no policy
    gradient: only the critic moves (the clipped surrogate's fixed point)."""
    learner = _learner()
    batch = _batch()
    obs, x = torch.as_tensor(batch["obs"], dtype=torch.float32), torch.as_tensor(batch["x"], dtype=torch.float32)
    with torch.no_grad():
        batch["logp"] = learner.actor.log_prob(obs, x).double().numpy()
    batch["adv"] = np.zeros(32)
    before = [p.detach().clone() for p in learner.actor.parameters()]
    stats = learner.update(batch, warmup=False)
    assert stats["policy/approx_kl"] == pytest.approx(0.0, abs=1e-6) and stats["policy/clip_fraction"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, learner.actor.parameters(), strict=True))


def _play(pool: EnvPool, policy, steps: int) -> list:
    records = []
    for _ in range(steps):
        obs = torch.from_numpy(pool.obs.astype(np.float32))
        # one row at a time, as a lone episode acts (a batched matmul may round differently)
        action = torch.cat([policy.act(obs[j : j + 1], generator=pool.generators[j]) for j in range(len(pool))])
        records += pool.step(action.to(torch.float64).numpy()).finished
    return records


def test_an_episode_depends_on_its_index_not_on_the_env_slot_that_plays_it():
    policy = goal_seeking_policy(std=0.7)
    alone = {r.index: r for r in collect(PolicyActor(policy), MAKER, 12, 5, InlineExecutor())}
    for n in (1, 3):
        pool = EnvPool(MAKER, n, 5)
        pool.start()
        played = {r.index: r for r in _play(pool, policy, 200)}
        shared = sorted(set(played) & set(alone))
        assert len(shared) >= 6
        assert all(played[i] == alone[i] for i in shared)


def test_a_restored_pool_continues_exactly_where_the_checkpointed_one_was():
    policy = goal_seeking_policy(std=0.7)
    pool = EnvPool(MAKER, 3, 9)
    pool.start()
    _play(pool, policy, 37)  # mid-episode in every slot
    json_state, arrays, generators = pool.state()
    json_state = json.loads(json.dumps(json_state))
    copy = EnvPool(MAKER, 3, 9)
    copy.restore(json_state, arrays, generators)
    assert np.array_equal(copy.obs, pool.obs) and copy.index == pool.index
    assert _play(copy, policy, 60) == _play(pool, policy, 60)


def ppo_recipe(registry, **config):
    stage = {
        "total_steps": 2048,
        "num_envs": 2,
        "num_steps": 64,
        "policy_config": {"hidden": [32, 32]},
        "critic_hidden": [32, 32],
        "warmup_steps": 256,
        "checkpoint_every": 256,
        **config,
    }
    data = {
        "run": {"name": "ppo", "seed": 2},
        "env": {"kind": "pointmass", "max_steps": 40},
        "executor": {"kind": "inline"},
        "loggers": [{"kind": "jsonl"}],
        "stages": [{"name": "ppo", "trainer": "ppo", "config": stage}],
    }
    return validate(data, registry)


def test_ppo_killed_mid_run_resumes_to_the_uninterrupted_weights(pm, tmp_path, monkeypatch):
    straight = Runner.create(ppo_recipe(pm.registry), pm, tmp_path / "straight")
    assert straight.run() == "completed"

    original, calls = EnvPool.step, {"n": 0}

    def crashing(pool, actions):
        calls["n"] += 1
        if calls["n"] == 700:  # inside rollout 11 of 20, three checkpoints later
            raise KeyboardInterrupt("simulated kill")
        return original(pool, actions)

    monkeypatch.setattr(EnvPool, "step", crashing)
    killed = Runner.create(ppo_recipe(pm.registry), pm, tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    monkeypatch.setattr(EnvPool, "step", original)
    pointer = json.loads((killed.run_dir / "ppo" / "checkpoints" / "latest.json").read_text())
    assert 1024 <= pointer["step"] < 1400
    assert Runner.resume(killed.run_dir, pm).run() == "completed"
    a, b = straight.run_dir / "ppo" / "policy.safetensors", killed.run_dir / "ppo" / "policy.safetensors"
    assert sha256_file(a) == sha256_file(b)
    sa = json.loads((straight.run_dir / "ppo" / "summary.json").read_text())
    sb = json.loads((killed.run_dir / "ppo" / "summary.json").read_text())
    assert sa["training"] == sb["training"]  # no episode lost or counted twice
    assert sha256_file(straight.run_dir / "ppo" / "training.bin") == sha256_file(
        killed.run_dir / "ppo" / "training.bin"
    )
    metrics = [json.loads(line) for line in (straight.run_dir / "metrics.jsonl").read_text().splitlines()]
    warm = [m["scalars"] for m in metrics if m["scalars"].get("train/warmup") == 1.0]
    assert len(warm) == 2 and all("loss/policy" not in m for m in warm)
    assert len(metrics) == 2 + 2048 // 128


@pytest.mark.slow
def test_ppo_learns_the_point_mass(pm, tmp_path):
    """100 000 steps, 8 envs × 128 (≈ 12 s on one core): ≥ 90% goals on random layouts without a violation
    (measured 97% at run seed 0 with 200 evaluation episodes)."""
    data = {
        "run": {"name": "ppo", "seed": 0},
        "env": {"kind": "pointmass", "violation_reward": -1.0},
        "executor": {"kind": "inline"},
        "stages": [
            {
                "name": "ppo",
                "trainer": "ppo",
                "config": {
                    "total_steps": 100_000,
                    "num_envs": 8,
                    "num_steps": 128,
                    "learning_rate": 1e-3,
                    "policy_config": {"hidden": [64, 64]},
                    "critic_hidden": [64, 64],
                },
            },
            {"name": "eval", "evaluator": "rollout", "inputs": {"policy": "ppo"}, "config": {"episodes": 200}},
        ],
    }
    runner = Runner.create(validate(data, pm.registry), pm, tmp_path)
    assert runner.run() == "completed"
    summary = json.loads((runner.run_dir / "eval" / "summary.json").read_text())
    assert summary["goal_rate"] >= 0.9, summary
