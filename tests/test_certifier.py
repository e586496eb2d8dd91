"""The ``scenario`` / ``scenario-uniform`` certifiers and ``certified-eval``, through the real runner.

The base policy is a small gaussian-mlp whose weights are set by hand so that it heads for the goal with
noisy actions: on the fixed point-mass layout 8 (the hazard sits near the way) it reaches the goal in 12-27
steps mostly, sometimes hits the hazard and sometimes runs out of its 25 steps, which gives a k(T) curve with
some shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sport_core.actors import PolicyActor
from sport_core.artifacts import sha256_file
from sport_core.bounds import epsilon_curve, optimal_horizon
from sport_core.certificates import CERTIFICATE_FORMAT
from sport_core.collect import EpisodeRecord, collect
from sport_core.config import unstructure
from sport_core.episodes import HEADER_SIZE, RECORD_SIZE, read_episodes
from sport_core.errors import RecipeError
from sport_core.evaluation import evaluate_policy_records
from sport_core.plugins import load_plugin_manager
from sport_core.recipe import validate
from sport_core.runner import Runner
from sport_core.weights import load_policy
from sport_pointmass import PointMassConfig, PointMassMaker
from tests.support.hand_policy import HandPolicyPlugin, goal_seeking_policy

PAPER_BOUNDS = [1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.025]

FIXED_ENV = {"kind": "pointmass", "layout_seed": 8, "max_steps": 25}


def plugin_manager():
    return load_plugin_manager(extra=[("hand_policy", HandPolicyPlugin())])


@pytest.fixture
def spm(monkeypatch):
    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    return plugin_manager()


def recipe(certifier: str = "scenario", env: dict | None = None, stages: list | None = None, **config) -> dict:
    return {
        "run": {"name": "cert", "seed": 3},
        "env": env or FIXED_ENV,
        "executor": {"kind": "inline"},
        "loggers": [],
        "stages": [
            {"name": "base", "evaluator": "hand-policy"},
            {
                "name": "certify",
                "certifier": certifier,
                "inputs": {"policy": "base"},
                "config": {"episodes": 200, **config},
            },
            *(stages or []),
        ],
    }


def certify(pm, tmp_path: Path, data: dict) -> Path:
    """Run the recipe; returns the run directory."""
    runner = Runner.create(validate(data, pm.registry), pm, tmp_path)
    assert runner.run() == "completed"
    return runner.run_dir


def certified_run(pm, tmp_path: Path, **config) -> Path:
    """A finished certification (used by the verify tests too); returns the certificate's path."""
    return certify(pm, tmp_path, recipe(**config)) / "certify" / "certificate.json"


def base_records(n: int = 200, seed: int = 3) -> list[EpisodeRecord]:
    """The same episodes collected directly, without the runner."""
    maker = PointMassMaker(PointMassConfig(layout_seed=8, max_steps=25))
    actor = PolicyActor(goal_seeking_policy(7))
    from sport_executors.executors import InlineExecutor

    return collect(actor, maker, n, seed, InlineExecutor())


def test_the_certificate_states_everything_the_issue_lists(spm, tmp_path):
    run_dir = certify(spm, tmp_path, recipe())
    cert_path = run_dir / "certify" / "certificate.json"
    cert = json.loads(cert_path.read_text())
    assert cert["format"] == CERTIFICATE_FORMAT and cert["method"] == "scenario"
    assert (cert["beta"], cert["episodes"], cert["bonferroni"]) == (1e-7, 200, False)
    assert cert["t_max"] == 25  # the env's episode limit
    assert cert["env"]["id"] == "PointMass-v0" and cert["env"]["layout_seed"] == 8
    assert cert["env"]["config"] == {"kind": "pointmass", **unstructure(PointMassConfig(layout_seed=8, max_steps=25))}
    assert "fixed layout" in cert["scenario"] and "policy" in cert["scenario"]
    assert "same step count as a failure" in cert["failure_definition"]
    assert cert["seed"] == 3
    weights = run_dir / "base" / "policy.safetensors"
    assert cert["base_policy"]["weights"] == "../base/policy.safetensors"
    assert cert["base_policy"]["weights_sha256"] == sha256_file(weights)
    store = run_dir / "certify" / "episodes.bin"
    assert cert["episode_store"]["path"] == "episodes.bin"
    assert cert["episode_store"]["sha256"] == sha256_file(store)
    assert store.stat().st_size == HEADER_SIZE + 200 * RECORD_SIZE
    assert {"python", "sport", "numpy", "scipy", "torch", "plugins"} <= set(cert["versions"])

    # The numbers: k(T) from the episodes, ε(T) at β, (T*, α*) for each of the paper's bounds.
    records = base_records()
    assert read_episodes(store).episode_records() == records  # the store holds exactly these episodes
    k = [sum(r.failed_by(T) for r in records) for T in range(1, 26)]
    assert cert["failures"] == k
    assert k[0] == 200 and 0 < k[-1] < 30  # some shape: nobody succeeds at once, most do eventually
    np.testing.assert_allclose(cert["epsilon"], epsilon_curve(k, 200, 1e-7), rtol=1e-15)
    assert [b["bound"] for b in cert["bounds"]] == PAPER_BOUNDS
    for row in cert["bounds"]:
        t_star, alpha_star = optimal_horizon(cert["epsilon"], row["bound"])
        assert (row["T_star"], row["alpha_star"]) == (t_star, alpha_star)
        assert row["failures_at_T_star"] == k[t_star - 1]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert set(manifest["stages"]["certify"]["outputs"]) == {"certificate", "episodes"}


def test_scenario_uniform_swaps_in_and_bounds_all_horizons_at_once(spm, tmp_path):
    plain = json.loads(certified_run(spm, tmp_path / "a").read_text())
    joint = json.loads(certified_run(spm, tmp_path / "b", certifier="scenario-uniform").read_text())
    assert joint["method"] == "scenario-uniform" and joint["bonferroni"] is True
    assert joint["beta_per_horizon"] == pytest.approx(1e-7 / 25)
    assert joint["failures"] == plain["failures"]  # the same episodes
    k = np.array(joint["failures"])
    assert np.all(np.array(joint["epsilon"])[k < 200] > np.array(plain["epsilon"])[k < 200])
    assert "all horizons" in joint["statement"] and "fixed in advance" in plain["statement"]


def test_the_bonferroni_flag_of_scenario_and_beta_or_confidence(spm, tmp_path):
    cert = json.loads(certified_run(spm, tmp_path, bonferroni=True, confidence=0.99, bounds=[0.5]).read_text())
    assert cert["bonferroni"] is True and cert["beta"] == pytest.approx(0.01)
    assert cert["beta_per_horizon"] == pytest.approx(0.01 / 25)
    assert [b["bound"] for b in cert["bounds"]] == [0.5]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"beta": 1e-7, "confidence": 0.99}, "not both"),
        ({"bounds": [1.5]}, "bounds"),
        ({"beta": 0.0}, "beta"),
        ({"episodes": 0}, "episodes"),
        ({"t_max": 0}, "t_max"),
    ],
)
def test_bad_certifier_settings_are_recipe_errors(spm, config, message):
    with pytest.raises(RecipeError, match=message):
        validate(recipe(**config), spm.registry)


def test_an_env_with_random_layouts_is_refused(spm, tmp_path):
    runner = Runner.create(validate(recipe(env={"kind": "pointmass"}), spm.registry), spm, tmp_path)
    with pytest.raises(RecipeError, match="fixed-layout env"):
        runner.run()


def test_a_killed_certification_resumes_at_the_missing_episodes(spm, tmp_path, monkeypatch):
    import sport_core.collect as certifier  # collect_into_store's collection loop

    expected = base_records()  # before the collection loop is patched
    real = certifier.iter_collect
    asked: list[list[int]] = []

    def dies_after_70(actor, env, indices, *args, **kwargs):
        asked.append(list(indices))
        for n, rec in enumerate(real(actor, env, indices, *args, **kwargs)):
            if n == 70:
                raise KeyboardInterrupt("killed")
            yield rec

    monkeypatch.setattr(certifier, "iter_collect", dies_after_70)
    runner = Runner.create(validate(recipe(), spm.registry), spm, tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    store = runner.run_dir / "certify" / "episodes.bin"
    assert len(read_episodes(store)) == 70
    with open(store, "ab") as fh:
        fh.write(b"\x01" * 11)  # and the kill tore the record being written

    def records_what_it_is_asked(actor, env, indices, *args, **kwargs):
        asked.append(list(indices))
        yield from real(actor, env, indices, *args, **kwargs)

    monkeypatch.setattr(certifier, "iter_collect", records_what_it_is_asked)
    assert Runner.resume(runner.run_dir, spm).run() == "completed"
    assert asked == [list(range(200)), list(range(70, 200))]
    resumed = json.loads((runner.run_dir / "certify" / "certificate.json").read_text())
    uninterrupted = json.loads(certified_run(spm, tmp_path / "whole").read_text())
    for key in ("failures", "epsilon", "bounds"):
        assert resumed[key] == uninterrupted[key]
    assert read_episodes(store, strict=True).episode_records() == expected


def test_certified_eval_compares_a_policy_with_the_prior_bound(spm, tmp_path):
    evaluate = {
        "name": "eval",
        "evaluator": "certified-eval",
        "inputs": {"certificate": "certify", "policy": "base"},
        "config": {"alpha": 1.5, "episodes": 120},
    }
    # The run's env has random layouts; the certifier gets the fixed one, and the evaluation uses the
    # certificate's env whatever its own.
    data = recipe(env={"kind": "pointmass", "max_steps": 25}, stages=[evaluate])
    data["stages"][1]["env"] = FIXED_ENV
    run_dir = certify(spm, tmp_path, data)
    cert = json.loads((run_dir / "certify" / "certificate.json").read_text())
    result = json.loads((run_dir / "eval" / "evaluation.json").read_text())
    t_star = cert["bounds"][0]["T_star"]  # the largest bound, B = 1
    assert result["horizon"] == t_star and result["bound"] == 1.0 and result["beta"] == 1e-7
    (row,) = result["rows"]
    records = base_records(120)  # same policy, same env, same seed: the first 120 certification episodes
    k = sum(r.failed_by(t_star) for r in records)
    assert (row["alpha"], row["episodes"], row["failures"]) == (1.5, 120, k)
    assert row["failure_rate"] == k / 120
    assert row["cp_lower"] <= row["failure_rate"] <= row["cp_upper"]
    eps = cert["epsilon"][t_star - 1]
    assert row["prior_bound"] == pytest.approx(min(1.0, 1.5**t_star * eps))
    assert row["contradicts_prior"] is False
    lengths = [r.goal_step for r in records if r.outcome == "goal" and r.goal_step <= t_star]
    assert row["success_length_mean"] == pytest.approx(np.mean(lengths))
    assert result["certificate"]["sha256"] == sha256_file(run_dir / "certify" / "certificate.json")


def test_evaluation_rows_per_alpha_from_any_records():
    cert = {
        "beta": 1e-7,
        "t_max": 30,
        "epsilon": list(np.linspace(1.0, 0.01, 30)),
        "bounds": [{"bound": 1.0, "T_star": 20}, {"bound": 0.1, "T_star": 25}],
    }
    good = [EpisodeRecord(i, 0, "goal", 10, -1, 10, 1.0) for i in range(99)] + [
        EpisodeRecord(99, 0, "violation", -1, 4, 4, 0.0)
    ]
    bad = [EpisodeRecord(i, 0, "violation", -1, 3, 3, 0.0) for i in range(100)]
    out = evaluate_policy_records(cert, {1.0: good, 1.01: bad})
    assert out["horizon"] == 20 and out["bound"] == 1.0
    assert [r["alpha"] for r in out["rows"]] == [1.0, 1.01]
    low, high = out["rows"]
    assert (low["failures"], low["failure_rate"], low["success_length_mean"]) == (1, 0.01, 10.0)
    assert low["prior_bound"] == pytest.approx(cert["epsilon"][19])
    assert high["failure_rate"] == 1.0 and high["success_length_mean"] is None
    assert high["contradicts_prior"] is True  # every episode failed: far above 1.01^20·ε(20)
    assert evaluate_policy_records(cert, {1.0: good}, bound=0.1)["horizon"] == 25
    assert evaluate_policy_records(cert, {1.0: good}, horizon=5)["rows"][0]["failures"] == 100
    with pytest.raises(ValueError, match="not in the certificate"):
        evaluate_policy_records(cert, {1.0: good}, bound=0.5)
    with pytest.raises(ValueError, match="at least 1"):
        evaluate_policy_records(cert, {0.5: good})


def test_the_hand_set_policy_is_the_policy_saved(spm, tmp_path):
    weights = certified_run(spm, tmp_path).parent.parent / "base" / "policy.safetensors"
    policy = load_policy(weights, spm.registry)
    obs = torch.tensor([[0.3, -0.2, 0, 0, 0, 0, 0]])
    mu, std = policy(obs)
    torch.testing.assert_close(mu, torch.tensor([[0.6, -0.4]]))
    torch.testing.assert_close(std, torch.tensor([[1.0, 1.0]]))
