"""The ``projected-sweep`` evaluator and :class:`ProjectedActor`, through the real runner on the point mass.

Base and task are hand-set gaussian-mlp policies that head for the goal, μ = 2·(goal − position): the base
with σ = 1, the task with σ = 0.5 (so sup p_t/p_b = 2 per action dimension, 4 in all: the task meets every
bound α ≥ 4 and the projection leaves it untouched there). The base is certified on the fixed layout 8 with
200 episodes, then the sweep rolls out the projected task for a few α.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest
import torch

from sport_core import Component, hookimpl
from sport_core import paths as paths_module
from sport_core.actors import PolicyActor, ProjectedActor
from sport_core.collect import collect
from sport_core.config import unstructure
from sport_core.episodes import read_episodes
from sport_core.errors import ArtifactError, RecipeError
from sport_core.paths import read_paths
from sport_core.plugins import load_plugin_manager
from sport_core.recipe import validate
from sport_core.runner import Runner
from sport_executors.executors import InlineExecutor
from sport_pointmass import PointMassConfig, PointMassMaker
from sport_policies.gaussian import GaussianMLPPolicy
from sport_scenario import sweep as sweep_module
from sport_scenario.sweep import PAPER_ALPHAS, alpha_tag
from tests.support.hand_policy import HandPolicyPlugin, goal_seeking_policy

FIXED_ENV = {"kind": "pointmass", "layout_seed": 8, "max_steps": 25}
SEED = 3


@attrs.frozen
class AlwaysBaseConfig:
    pass


class AlwaysBaseProjection:
    """A third-party projection that gives up on every row: returns the base and counts a fallback."""

    def __init__(self, config: AlwaysBaseConfig) -> None:
        self.fallbacks = 0

    def project(self, base: tuple, task: tuple, alpha: Any) -> tuple:
        self.fallbacks += base[0].shape[0]
        return base

    def max_log_ratio(self, p: tuple, b: tuple) -> torch.Tensor:
        return torch.zeros(p[0].shape[0])


class TestPlugin:
    @hookimpl
    def sport_register_projections(self):
        return [Component("always-base", AlwaysBaseProjection, AlwaysBaseConfig, "falls back on every row")]


@pytest.fixture
def spm(monkeypatch):
    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    return load_plugin_manager(extra=[("hand_policy", HandPolicyPlugin()), ("projected_eval_test", TestPlugin())])


def recipe(task: str = "task", **sweep_config) -> dict:
    return {
        "run": {"name": "sweep", "seed": SEED},
        "env": FIXED_ENV,
        "executor": {"kind": "inline"},
        "loggers": [{"kind": "jsonl"}],
        "stages": [
            {"name": "base", "evaluator": "hand-policy"},
            {"name": "task", "evaluator": "hand-policy", "config": {"std": 0.5}},
            {"name": "certify", "certifier": "scenario", "inputs": {"policy": "base"}, "config": {"episodes": 200}},
            {
                "name": "sweep",
                "evaluator": "projected-sweep",
                "inputs": {"certificate": "certify", "base": "base", "task": task},
                "config": {"alphas": [1.0, 1.5, 10.0], "episodes": 100, **sweep_config},
            },
        ],
    }


def run(pm, tmp_path: Path, data: dict) -> Path:
    runner = Runner.create(validate(data, pm.registry), pm, tmp_path)
    assert runner.run() == "completed"
    return runner.run_dir


def stored(run_dir: Path, alpha: float) -> list:
    return read_episodes(run_dir / "sweep" / "alphas" / f"{alpha_tag(alpha)}.bin", strict=True).episode_records()


def own_records(policy: GaussianMLPPolicy, n: int = 100) -> list:
    """The policy's own episodes, collected directly with the run's seed."""
    maker = PointMassMaker(PointMassConfig(layout_seed=8, max_steps=25))
    return collect(PolicyActor(policy), maker, n, SEED, InlineExecutor())


def test_alpha_one_replays_the_base_and_a_large_alpha_replays_the_task(spm, tmp_path):
    run_dir = run(spm, tmp_path, recipe())
    certified = read_episodes(run_dir / "certify" / "episodes.bin").episode_records()
    base_eps, task_eps = certified[:100], own_records(goal_seeking_policy(std=0.5))
    assert own_records(goal_seeking_policy()) == base_eps
    # Common random numbers: episode i under α = 1 is the base's episode i, exactly.
    assert stored(run_dir, 1.0) == base_eps
    # At α = 10 the task (ratio 4) is feasible, so the projection returns it and the episodes are the task's.
    assert stored(run_dir, 10.0) == task_eps
    # In between the projected policy is neither: as α grows the episodes move from the base's to the task's.
    middle = stored(run_dir, 1.5)
    same_as_task = [sum(a == b for a, b in zip(stored(run_dir, x), task_eps, strict=True)) for x in (1.0, 1.5, 10.0)]
    assert same_as_task[0] < 5 and same_as_task[2] == 100
    assert sum(a == b for a, b in zip(middle, base_eps, strict=True)) < 5


def test_the_sweep_json_sets_each_alpha_next_to_its_prior_bound(spm, tmp_path):
    run_dir = run(spm, tmp_path, recipe())
    cert = json.loads((run_dir / "certify" / "certificate.json").read_text())
    sweep = json.loads((run_dir / "sweep" / "sweep.json").read_text())
    top = max(cert["bounds"], key=lambda r: r["bound"])
    t_star, eps = top["T_star"], cert["epsilon"][top["T_star"] - 1]
    assert sweep["format"] == "sport-projected-sweep-v1"
    assert (sweep["horizon"], sweep["bound"], sweep["epsilon_base"], sweep["beta"]) == (t_star, 1.0, eps, 1e-7)
    assert sweep["alpha_star"] == top["alpha_star"]
    assert sweep["projection"] == {
        "name": "gaussian-kl",
        "config": unstructure(spm.registry.get("projection", "gaussian-kl").config_cls()),
    }
    assert (
        sweep["episodes"] == 100 and sweep["seed"] == SEED and "common random numbers" in sweep["common_random_numbers"]
    )
    assert sweep["base_policy"]["stage"] == "base" and sweep["task_policy"]["stage"] == "task"
    assert [row["alpha"] for row in sweep["rows"]] == [1.0, 1.5, 10.0]
    for row in sweep["rows"]:
        records = stored(run_dir, row["alpha"])
        k = sum(r.failed_by(t_star) for r in records)
        assert (row["episodes"], row["failures"], row["failure_rate"]) == (100, k, k / 100)
        assert row["prior_bound"] == pytest.approx(min(1.0, row["alpha"] ** t_star * eps), rel=1e-12)
        assert row["cp_lower"] <= row["failure_rate"] <= row["cp_upper"]
        lengths = [r.goal_step for r in records if r.outcome == "goal" and r.goal_step <= t_star]
        assert row["success_length_mean"] == pytest.approx(np.mean(lengths))
        assert row["success_length_std"] == pytest.approx(np.std(lengths))
        assert row["fallbacks"] == 0 and row["projected_steps"] == sum(r.length for r in records)
        per_alpha = json.loads((run_dir / "sweep" / "alphas" / f"{alpha_tag(row['alpha'])}.json").read_text())
        assert per_alpha["row"] == {k: v for k, v in row.items() if k in per_alpha["row"]}
    # One point per α for the loggers (step = position in the sorted α list).
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    points = [line for line in lines if line.get("stage") == "sweep" and "sweep/prior_bound" in line.get("scalars", {})]
    assert [p["step"] for p in points] == [0, 1, 2]
    assert [p["scalars"]["sweep/alpha"] for p in points] == [1.0, 1.5, 10.0]


def test_a_task_equal_to_the_base_acts_as_the_base_at_every_alpha(spm, tmp_path):
    run_dir = run(spm, tmp_path, recipe(task="base", alphas=[1.0, 2.0, 100.0], episodes=60))
    base_eps = read_episodes(run_dir / "certify" / "episodes.bin").episode_records()[:60]
    for alpha in (1.0, 2.0, 100.0):
        assert stored(run_dir, alpha) == base_eps


def test_a_killed_sweep_resumes_at_the_unfinished_alphas(spm, tmp_path, monkeypatch):
    real = sweep_module.run_episode
    rolled: list[float] = []

    def dies_at_alpha_3(actor, env, seed, index, *args, **kwargs):
        if actor.alpha == 3.0:
            raise KeyboardInterrupt("killed")
        rolled.append(actor.alpha)
        return real(actor, env, seed, index, *args, **kwargs)

    for module in (sweep_module, paths_module):  # episodes that keep their path run through sport_core.paths
        monkeypatch.setattr(module, "run_episode", dies_at_alpha_3)
    data = recipe(alphas=[1.0, 1.5, 3.0, 10.0], episodes=40)
    runner = Runner.create(validate(data, spm.registry), spm, tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    alphas_dir = runner.run_dir / "sweep" / "alphas"
    assert sorted(p.name for p in alphas_dir.glob("*.json")) == ["alpha-1.0.json", "alpha-1.5.json"]
    written = {p.name: p.stat().st_mtime_ns for p in alphas_dir.iterdir()}
    assert rolled == [1.0] * 40 + [1.5] * 40

    def counts(actor, env, seed, index, *args, **kwargs):
        rolled.append(actor.alpha)
        return real(actor, env, seed, index, *args, **kwargs)

    for module in (sweep_module, paths_module):
        monkeypatch.setattr(module, "run_episode", counts)
    rolled.clear()
    assert Runner.resume(runner.run_dir, spm).run() == "completed"
    assert rolled == [3.0] * 40 + [10.0] * 40  # the finished alphas were not rolled out again
    for name, mtime in written.items():
        assert (alphas_dir / name).stat().st_mtime_ns == mtime
    resumed = json.loads((runner.run_dir / "sweep" / "sweep.json").read_text())
    whole = json.loads((run(spm, tmp_path / "whole", data) / "sweep" / "sweep.json").read_text())
    assert resumed["rows"] == whole["rows"]


def test_fallbacks_of_a_swapped_in_projection_are_counted(spm, tmp_path):
    run_dir = run(spm, tmp_path, recipe(projection="always-base", alphas=[1.0, 2.0], episodes=30))
    sweep = json.loads((run_dir / "sweep" / "sweep.json").read_text())
    assert sweep["projection"] == {"name": "always-base", "config": {}}
    base_eps = read_episodes(run_dir / "certify" / "episodes.bin").episode_records()[:30]
    for row in sweep["rows"]:
        assert stored(run_dir, row["alpha"]) == base_eps  # the base's actions, every step
        assert row["fallbacks"] == row["projected_steps"] == sum(r.length for r in base_eps)


def test_counts_come_back_from_worker_processes(spm, tmp_path):
    data = recipe(projection="always-base", alphas=[2.0], episodes=16)
    data["executor"] = {"kind": "process", "workers": 2}
    run_dir = run(spm, tmp_path, data)
    (row,) = json.loads((run_dir / "sweep" / "sweep.json").read_text())["rows"]
    base_eps = read_episodes(run_dir / "certify" / "episodes.bin").episode_records()[:16]
    assert stored(run_dir, 2.0) == base_eps
    assert row["fallbacks"] == row["projected_steps"] == sum(r.length for r in base_eps)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"config": {"projection": "categorical-kl"}}, "'categorical-kl' cannot project these policies"),
        ({"inputs": {"base": "task"}}, r"inputs\.base: .* is not the certificate's base policy"),
        ({"config": {"bound": 0.33}}, "bound 0.33 is not in the certificate"),
    ],
)
def test_bad_sweeps_fail_with_one_line_before_any_rollout(spm, tmp_path, monkeypatch, change, message):
    def never(*args, **kwargs):
        raise AssertionError("rolled out an episode")

    monkeypatch.setattr(sweep_module, "run_episode", never)
    data = recipe()
    data["stages"][3]["inputs"].update(change.get("inputs", {}))
    data["stages"][3]["config"].update(change.get("config", {}))
    runner = Runner.create(validate(data, spm.registry), spm, tmp_path)
    with pytest.raises(RecipeError, match=message) as info:
        runner.run()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"projection": "gaussian-kll"},
            r"stages\[3\]\.config\.projection: no projection component named 'gaussian-kll'; did you mean "
            r"'gaussian-kl'\? \(known projections: always-base, categorical-kl, gaussian-kl\)",
        ),
        (
            {"projection_config": {"backend": "gpu"}},
            r"stages\[3\]\.config\.projection_config\.backend: expected one of",
        ),
    ],
)
def test_a_bad_projection_is_caught_when_the_recipe_is_checked(spm, config, message):
    data = recipe()
    data["stages"][3]["config"].update(config)
    with pytest.raises(RecipeError, match=message):
        validate(data, spm.registry)


@pytest.mark.parametrize(
    ("alphas", "message"), [([], "at least one"), ([0.5, 2.0], "finite and >= 1"), ([2.0, 2], "twice")]
)
def test_bad_alphas_are_recipe_errors(spm, alphas, message):
    with pytest.raises(RecipeError, match=rf"stages\[3\]\.config\.alphas: .*{message}"):
        validate(recipe(alphas=alphas), spm.registry)


def test_the_defaults_are_the_papers_sweep():
    config = sweep_module.ProjectedSweepConfig()
    assert config.alphas == PAPER_ALPHAS == (1, 1.05, 1.1, 1.2, 1.35, 1.5, 2, 3, 5, 10, 20, 50, 100)
    assert (config.projection, config.episodes, config.bound, config.horizon) == ("gaussian-kl", 1000, None, None)


def test_projected_actor_pickles_and_keeps_its_contract(registry):
    base, task = goal_seeking_policy(), goal_seeking_policy(gain=4.0, std=0.5)
    projection = registry.get("projection", "gaussian-kl").build()
    obs = np.array([0.3, -0.2, 0.1, 0.4, 0.0, 0.0, 0.2])

    def action(actor, seed=7):
        return actor.act(obs, torch.Generator().manual_seed(seed))

    base_action, task_action = action(PolicyActor(base)), action(PolicyActor(task))
    assert np.array_equal(action(ProjectedActor(base, task, projection, 1.0)), base_action)
    assert np.array_equal(action(ProjectedActor(base, base, projection, 50.0)), base_action)
    between = ProjectedActor(base, task, projection, 1.5)
    first = action(between)
    copy = pickle.loads(pickle.dumps(between))  # what a worker process gets
    assert np.array_equal(action(copy), first) and (between.steps, copy.steps) == (1, 2)
    assert not np.array_equal(first, base_action) and not np.array_equal(first, task_action)
    x = torch.as_tensor(obs, dtype=torch.float32)[None]
    with torch.no_grad():
        ratio = projection.max_log_ratio(between.distribution(x), base(x))
    assert float(ratio) <= math.log(1.5) + 1e-6
    assert between.fallbacks == 0
    with pytest.raises(ValueError, match="alpha must be a finite number >= 1"):
        ProjectedActor(base, task, projection, 0.9)


def test_the_sweep_keeps_the_paths_of_its_first_episodes_without_changing_them(spm, tmp_path):
    """``paths = n`` keeps the x-y path of episodes 0..n-1 of every α (and episode 0's observations) in a
    compact .npz; the episodes are the very ones of a sweep that keeps nothing."""
    kept = run(spm, tmp_path / "kept", recipe(alphas=[1.0, 10.0], episodes=30, paths=12))
    bare = run(spm, tmp_path / "bare", recipe(alphas=[1.0, 10.0], episodes=30, paths=0))
    sweep = json.loads((kept / "sweep" / "sweep.json").read_text())
    for row in sweep["rows"]:
        assert stored(kept, row["alpha"]) == stored(bare, row["alpha"])
        assert row["paths"]["episodes"] == 12 and row["paths"]["path"] == f"alphas/{alpha_tag(row['alpha'])}.paths.npz"
        paths = read_paths(kept / "sweep" / row["paths"]["path"])
        records = stored(kept, row["alpha"])[:12]
        assert paths.episodes.tolist() == list(range(12))
        assert paths.goal_step.tolist() == [r.goal_step for r in records]
        assert paths.violation_step.tolist() == [r.violation_step for r in records]
        assert [len(xy) for xy in paths.xy] == [r.length + 1 for r in records]  # the reset position, then each step
        assert paths.observations.shape == (records[0].length + 1, 7)
        assert paths.layout.goal[2] == 0.3 and len(paths.layout.hazards) == 1
        goal = np.array(paths.layout.goal[:2])
        for xy, r in zip(paths.xy, records, strict=True):  # a goal episode ends inside the goal disc
            if r.outcome == "goal":
                assert np.linalg.norm(xy[-1] - goal) <= 0.3 + 1e-6
    assert "paths" not in json.loads((bare / "sweep" / "sweep.json").read_text())["rows"][0]


def test_results_name_their_inputs_relative_to_the_stage(spm, tmp_path):
    run_dir = run(spm, tmp_path, recipe(alphas=[1.0], episodes=10))
    sweep = json.loads((run_dir / "sweep" / "sweep.json").read_text())
    for ref in (sweep["certificate"]["path"], sweep["base_policy"]["weights"], sweep["task_policy"]["card"]):
        assert not Path(ref).is_absolute() and (run_dir / "sweep" / ref).is_file()


def test_a_damaged_paths_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "alpha-1.0.paths.npz"
    np.savez(path, format=np.array("something-else"))
    with pytest.raises(ArtifactError, match="not a sport-paths-v1 file"):
        read_paths(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(ArtifactError, match="corrupt"):
        read_paths(path)
