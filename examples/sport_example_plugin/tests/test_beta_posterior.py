"""The example ``beta-posterior`` certifier: its certificate follows the schema, says it is Bayesian, is
re-checked by its own verifier through ``sport verify``, and both built-in evaluators consume it and print
its kind. Uses the fixtures of ``sport_core.testing`` (installed with sport as a pytest plugin)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from sport_core.certificates import CERTIFICATE_FORMAT, read_certificate
from sport_core.cli import main
from sport_core.testing import pointmass_recipe
from sport_core.verification import verify_certificate
from sport_example_plugin.certifier import posterior_numbers

PLUGIN = ("example", "sport_example_plugin.plugin")


def stages(**certify_config):
    return [
        {"name": "base", "evaluator": "goal-seeker"},
        {
            "name": "certify",
            "certifier": "beta-posterior",
            "inputs": {"policy": "base"},
            "config": {"episodes": 300, "bounds": [1.0, 0.5], **certify_config},
        },
    ]


@pytest.fixture
def certified(sport_plugin_manager, sport_run):
    pm = sport_plugin_manager(PLUGIN)
    run_dir = sport_run(pm, pointmass_recipe(stages()))
    return pm, run_dir


def test_the_certificate_is_a_schema_valid_bayesian_certificate(certified):
    _, run_dir = certified
    cert = read_certificate(run_dir / "certify" / "certificate.json")  # checks the schema
    assert cert["format"] == CERTIFICATE_FORMAT and cert["method"] == "beta-posterior"
    assert cert["guarantee"] == {
        "kind": "bayesian",
        "level": pytest.approx(1 - 1e-7),
        "simultaneous": False,
        "description": "Beta posterior quantile",
        "prior": "Beta(1, 1)",
    }
    k, n = np.array(cert["failures"]), cert["episodes"]
    assert 0 < k[-1] < n  # the goal-seeker fails sometimes, not always
    # epsilon(T) is the (1 - beta) quantile of the Beta(1 + k, 1 + n - k) posterior
    np.testing.assert_allclose(cert["epsilon"], stats.beta.ppf(1 - 1e-7, 1 + k, 1 + n - k), rtol=1e-12)
    top = cert["bounds"][0]
    assert top["alpha_star"] ** top["T_star"] * top["epsilon_at_T_star"] == pytest.approx(1.0)


def test_sport_verify_uses_the_plugins_own_verifier(certified, capsys):
    _, run_dir = certified
    path = run_dir / "certify" / "certificate.json"
    assert main(["verify", str(path), "--replay", "3"]) == 0
    out = capsys.readouterr().out
    assert "OK (beta-posterior, 300 episodes, 3 episodes replayed" in out
    assert "guarantee: bayesian (Beta(1, 1) prior, Beta posterior quantile" in out and "not a confidence" in out
    cert = json.loads(path.read_text())
    cert["epsilon"][4] *= 0.99
    path.write_text(json.dumps(cert))
    assert main(["verify", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sport verify: MISMATCH:") and "epsilon[4]: certificate says" in err


def test_a_changed_prior_is_caught_by_the_recomputed_numbers(certified):
    pm, run_dir = certified
    path = run_dir / "certify" / "certificate.json"
    cert = json.loads(path.read_text())
    cert["prior"]["a"] = 0.5
    path.write_text(json.dumps(cert))
    with pytest.raises(Exception, match="epsilon"):
        verify_certificate(path, registry=pm.registry)


def test_both_evaluators_consume_it_and_say_what_kind_of_bound_it_is(sport_plugin_manager, sport_run):
    pm = sport_plugin_manager(PLUGIN)
    data = pointmass_recipe(
        [
            *stages(),
            {"name": "task", "evaluator": "goal-seeker", "config": {"gain": 4.0}},
            {
                "name": "eval",
                "evaluator": "certified-eval",
                "inputs": {"certificate": "certify", "policy": "task"},
                "config": {"alpha": 2.0, "episodes": 50},
            },
            {
                "name": "sweep",
                "evaluator": "projected-sweep",
                "inputs": {"certificate": "certify", "base": "base", "task": "task"},
                "config": {"alphas": [1.0, 2.0], "episodes": 50},
            },
        ]
    )
    run_dir = sport_run(pm, data)
    for result in (run_dir / "eval" / "evaluation.json", run_dir / "sweep" / "sweep.json"):
        guarantee = json.loads(result.read_text())["guarantee"]
        assert guarantee["kind"] == "bayesian" and guarantee["method"] == "beta-posterior"
        assert "not a confidence bound" in guarantee["label"]
    assert main(["report", str(run_dir), "--format", "png"]) == 0
    report = (run_dir / "report" / "report.md").read_text()
    assert "| prior bound (bayesian) |" in report


def test_the_posterior_bound_sits_just_below_clopper_pearson_for_the_uniform_prior():
    """For Beta(1, 1) the posterior is Beta(k + 1, n − k + 1), the CP upper limit's Beta(k + 1, n − k) with one
    pseudo-success more: a slightly smaller bound, at the same level."""
    from sport_core.bounds import epsilon_upper

    k = np.array([40, 20, 5, 0])
    numbers = posterior_numbers(k, 1000, 1e-3, (1.0, 1.0), False, [1.0])
    cp = epsilon_upper(k, 1000, 1e-3)
    assert np.all(np.array(numbers["epsilon"]) < cp)
    assert numbers["guarantee"]["kind"] == "bayesian"


def test_the_recipe_that_swaps_the_certifier_is_valid(sport_plugin_manager):
    from pathlib import Path

    from sport_core.recipe import load_recipe

    root = Path(__file__).resolve().parents[3]
    recipe = load_recipe(root / "recipes" / "certify-bayesian.toml", sport_plugin_manager(PLUGIN).registry)
    assert recipe.stage("certify-base").component.name == "beta-posterior"
