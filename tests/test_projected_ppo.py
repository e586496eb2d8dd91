"""Projected PPO through the real runner on the point mass: the α sweep as one stage (inline = process
executor, per-α resume after a kill), α = "certificate", the policy set it makes, and its evaluation.

The base is the hand-set goal-seeking policy of ``tests/support/hand_policy.py`` (σ = 1), certified with
200 episodes on the fixed layout 8; the fine-tunings are tiny (a few rollouts) so the file stays fast.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from sport_core.artifacts import sha256_file
from sport_core.errors import RecipeError
from sport_core.plugins import load_plugin_manager
from sport_core.policyset import alpha_tag, read_policy_set
from sport_core.recipe import validate
from sport_core.runner import Runner
from sport_ppo.envpool import EnvPool
from tests.support.hand_policy import HandPolicyPlugin

FIXED_ENV = {"kind": "pointmass", "layout_seed": 8, "max_steps": 25}
FINETUNE = {
    "alphas": [1.0, 1.5],
    "total_steps": 512,
    "warmup_steps": 128,
    "num_envs": 2,
    "num_steps": 64,
    "checkpoint_every": 128,
    "critic_hidden": [16, 16],
}


@pytest.fixture
def hpm(monkeypatch):
    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    return load_plugin_manager(extra=[("hand_policy", HandPolicyPlugin())])


def recipe(executor="inline", evaluate=False, **finetune) -> dict:
    stages = [
        {"name": "base", "evaluator": "hand-policy"},
        {"name": "certify", "certifier": "scenario", "inputs": {"policy": "base"}, "config": {"episodes": 200}},
        {
            "name": "finetune",
            "trainer": "projected-ppo",
            "inputs": {"base": "base", "certificate": "certify"},
            "config": {**FINETUNE, **finetune},
        },
    ]
    if evaluate:
        stages.append(
            {
                "name": "evaluate",
                "evaluator": "projected-sweep",
                "inputs": {"certificate": "certify", "base": "base", "task": "finetune:policies"},
                "config": {"alphas": finetune.get("alphas", FINETUNE["alphas"]), "episodes": 40},
            }
        )
    return {
        "run": {"name": "pppo", "seed": 1},
        "env": FIXED_ENV,
        "executor": {"kind": executor, **({"workers": 2} if executor == "process" else {})},
        "loggers": [{"kind": "jsonl"}],
        "stages": stages,
    }


def run(pm, path, data):
    runner = Runner.create(validate(data, pm.registry), pm, path)
    assert runner.run() == "completed"
    return runner.run_dir


def alpha_metrics(run_dir, alpha):
    """The scalars the trainer logged for one α (its series, labelled {"alpha": α})."""
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [line["scalars"] for line in lines if line.get("labels") == {"alpha": alpha}]


def digests(run_dir, alphas=(1.0, 1.5)):
    return {a: sha256_file(run_dir / "finetune" / "policies" / alpha_tag(a) / "policy.safetensors") for a in alphas}


def test_a_sweep_through_the_process_executor_equals_the_inline_one(hpm, tmp_path):
    inline = run(hpm, tmp_path / "inline", recipe("inline", evaluate=True))
    pooled = run(hpm, tmp_path / "process", recipe("process"))
    assert digests(inline) == digests(pooled)
    # the policy set: one policy per α with its training outcomes; the evaluation reads it per α
    entries = read_policy_set(inline / "finetune" / "policies")
    assert sorted(entries) == [1.0, 1.5]
    training = json.loads((inline / "finetune" / "training.json").read_text())
    assert [r["alpha"] for r in training["rows"]] == [1.0, 1.5]
    for row in training["rows"]:
        assert row["episodes"] == row["goal"] + row["violation"] + row["timeout"] > 10
        assert 0 < row["warmup_episodes"] < row["episodes"]  # the critic warm-up's episodes count too
        assert 0 <= row["failure_rate"] <= 1 and row["projection_fallbacks"] == 0
        assert row["prior_bound"] == pytest.approx(min(1.0, row["alpha"] ** row["horizon"] * training["epsilon_base"]))
    sweep = json.loads((inline / "evaluate" / "sweep.json").read_text())
    assert sweep["task_policy"]["policy_set"].endswith("finetune/policies/policies.json")
    for row in sweep["rows"]:
        assert row["training"]["episodes"] == entries[row["alpha"]].extra["training"]["episodes"]
        assert row["episodes"] == 40 and row["fallbacks"] == 0
    card = json.loads((inline / "finetune" / "policies" / alpha_tag(1.5) / "policy.json").read_text())
    assert card["extra"]["alpha"] == 1.5 and card["extra"]["projection"]["name"] == "gaussian-kl"
    assert card["extra"]["base_sha256"] == sha256_file(inline / "base" / "policy.safetensors")


def test_alpha_one_acts_exactly_as_the_base_and_its_training_changes_nothing_it_does(hpm, tmp_path):
    run_dir = run(hpm, tmp_path, recipe(alphas=[1.0], num_envs=1))
    metrics = alpha_metrics(run_dir, 1.0)
    ratios = [m["projection/projected_max_log_ratio"] for m in metrics if "train/warmup" in m]
    assert ratios and all(r == 0.0 for r in ratios)
    # the training episodes are the base policy's own episodes under the stage's episode streams
    from sport_core.actors import PolicyActor, ProjectedActor
    from sport_core.collect import collect
    from sport_core.episodes import read_episodes
    from sport_core.seeding import stage_seeds
    from sport_core.weights import load_policy
    from sport_executors.executors import InlineExecutor
    from sport_pointmass import PointMassConfig, PointMassMaker

    base = load_policy(run_dir / "base" / "policy.safetensors", hpm.registry)
    trained = load_policy(run_dir / "finetune" / "policies" / "alpha-1.0" / "policy.safetensors", hpm.registry)
    played = read_episodes(run_dir / "finetune" / "policies" / "alpha-1.0" / "training.bin").episode_records()
    seed = stage_seeds(1, "finetune", ("init", "update", "episodes"))["episodes"]
    maker = PointMassMaker(PointMassConfig(layout_seed=8, max_steps=25))
    own = collect(PolicyActor(base), maker, len(played), seed, InlineExecutor())
    assert played == own
    # training moved the task policy, yet its projection at α = 1 is the base, bitwise
    obs = torch.randn(64, 7, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(trained(obs)[0], base(obs)[0])
    projection = hpm.registry.get("projection", "gaussian-kl").build(
        hpm.registry.get("projection", "gaussian-kl").config_cls()
    )
    mu, std = ProjectedActor(base, trained, projection, 1.0).distribution(obs)
    assert torch.equal(mu, base(obs)[0]) and torch.equal(std, base(obs)[1])


def test_a_killed_sweep_redoes_only_the_unfinished_alpha_and_resumes_it_exactly(hpm, tmp_path, monkeypatch):
    straight = run(hpm, tmp_path / "straight", recipe())
    original, calls = EnvPool.step, {"n": 0}

    def crashing(pool, actions):
        calls["n"] += 1
        if calls["n"] == 320 + 200:  # α = 1 done (320 steps); inside α = 1.5, after three checkpoints
            raise KeyboardInterrupt("simulated kill")
        return original(pool, actions)

    monkeypatch.setattr(EnvPool, "step", crashing)
    killed = Runner.create(validate(recipe(), hpm.registry), hpm, tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    monkeypatch.setattr(EnvPool, "step", original)
    done = killed.run_dir / "finetune" / "policies" / "alpha-1.0" / "summary.json"
    assert done.is_file()
    before = done.stat().st_mtime_ns
    pointer = json.loads((killed.run_dir / "finetune" / "checkpoints" / "alpha-1.5" / "latest.json").read_text())
    assert pointer["step"] >= 256
    calls["n"] = 0
    monkeypatch.setattr(EnvPool, "step", lambda pool, a: (calls.__setitem__("n", calls["n"] + 1), original(pool, a))[1])
    assert Runner.resume(killed.run_dir, hpm).run() == "completed"
    assert done.stat().st_mtime_ns == before  # α = 1 was not trained again
    assert calls["n"] < 320 - pointer["step"] // 2 + 100  # α = 1.5 continued from its checkpoint (+ replays)
    assert digests(straight) == digests(killed.run_dir)
    # the α's own live metrics file holds every rollout once, as in the uninterrupted run
    steps = [
        [
            json.loads(line)["step"]
            for line in (r / "finetune/policies/alpha-1.5/metrics.jsonl").read_text().splitlines()
        ]
        for r in (straight, killed.run_dir)
    ]
    assert steps[0] == steps[1] == sorted(set(steps[0])) and len(steps[0]) == 1 + 512 // 128


def test_alpha_certificate_is_the_certified_alpha_star_and_bad_alphas_name_the_key(hpm, tmp_path):
    run_dir = run(hpm, tmp_path, recipe(alphas=["certificate"], bound=1.0))
    cert = json.loads((run_dir / "certify" / "certificate.json").read_text())
    star = next(b["alpha_star"] for b in cert["bounds"] if b["bound"] == 1.0)
    assert sorted(read_policy_set(run_dir / "finetune" / "policies")) == [star]
    with pytest.raises(RecipeError, match=r"stages\[2\]\.config\.alphas: must be ratio bounds"):
        validate(recipe(alphas=[0.5]), hpm.registry)
    with pytest.raises(RecipeError, match=r'stages\[2\]\.config\.alphas: an alpha is a number >= 1 or "certificate"'):
        validate(recipe(alphas=["alpha-star"]), hpm.registry)


def test_through_projection_trains_with_gradients_through_the_projection(hpm, tmp_path):
    run_dir = run(hpm, tmp_path, recipe(alphas=[1.5], through_projection=True, learning_rate=1e-3))
    trained = [m for m in alpha_metrics(run_dir, 1.5) if m.get("train/warmup") == 0.0]
    assert trained and all(math.isfinite(m["loss/policy"]) for m in trained)
    assert all(m["projection/projected_max_log_ratio"] <= math.log(1.5) + 1e-9 for m in trained)
    assert any(m["policy/approx_kl"] > 0 for m in trained)


def test_at_a_given_horizon_the_training_table_has_no_bound_and_running_episodes_are_reported(hpm, tmp_path):
    run_dir = run(hpm, tmp_path, recipe(alphas=[2.0], horizon=10))
    training = json.loads((run_dir / "finetune" / "training.json").read_text())
    assert training["bound"] is None and training["horizon"] == 10
    (row,) = training["rows"]
    summary = json.loads((run_dir / "finetune" / "policies" / "alpha-2.0" / "summary.json").read_text())
    assert summary["training"]["running_at_end"] == 2  # one episode in flight per env when the budget ends
    assert 0 <= summary["training"]["running_failed_by_horizon"] <= 2
    assert row["prior_bound"] == pytest.approx(min(1.0, 2.0**10 * training["epsilon_base"]))


def test_recipe_mistakes_are_one_line_errors(hpm, tmp_path):
    with pytest.raises(RecipeError, match="minibatches of at least 2"):
        validate(recipe(num_steps=2, num_envs=2, num_minibatches=4), hpm.registry)
    data = recipe()
    data["stages"][2]["env"] = {"kind": "pointmass"}
    runner = Runner.create(validate(data, hpm.registry), hpm, tmp_path)
    with pytest.raises(RecipeError, match=r"stages\.finetune\.env: projected-ppo trains on the certificate's"):
        runner.run()
