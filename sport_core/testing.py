"""Test helpers and pytest fixtures for plugin authors (a pytest plugin, registered as ``sport`` in the
``pytest11`` entry-point group, so the fixtures are available wherever sport is installed).

A plugin's tests run its components through the real runner on the fast, pure-numpy ``pointmass`` env::

    def test_my_certifier(sport_plugin_manager, sport_run):
        pm = sport_plugin_manager(("mine", "my_package.plugin"))  # built-ins + the plugin under test
        run_dir = sport_run(pm, pointmass_recipe([
            {"name": "base", "evaluator": "goal-seeker"},
            {"name": "certify", "certifier": "mine", "inputs": {"policy": "base"}},
        ]))
        assert (run_dir / "certify" / "certificate.json").is_file()

* :func:`pointmass_recipe`: a recipe (as data) with the fixed-layout point mass, the inline executor and no
  loggers, around the given stages;
* the ``goal-seeker`` evaluator stage (:class:`GoalSeekerStage`, in :data:`TESTING_PLUGIN`) saves a hand-set
  policy, μ = gain·(goal − position), that reaches the goal in most episodes and hits the hazard in some: a
  base policy with a failure curve of some shape, made in milliseconds;
* fixtures ``sport_plugin_manager`` (a factory: the built-in plugins, :data:`TESTING_PLUGIN` and the plugins
  you name, with third-party autoload off so that the test sees only what it asks for) and ``sport_run`` (a
  factory that validates and runs a recipe in ``tmp_path`` and returns the run folder, failing the test unless
  the run completed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from sport_core import Component, hookimpl
from sport_core.config import structure, unstructure
from sport_core.stages import StageInput

POINTMASS_ENV: dict[str, Any] = {"kind": "pointmass", "layout_seed": 8, "max_steps": 25}


def pointmass_recipe(stages: list[dict[str, Any]], *, seed: int = 3, name: str = "test", **tables: Any) -> dict:
    """Recipe data for ``stages`` on the fixed-layout point mass (:data:`POINTMASS_ENV`), inline executor, no
    loggers; ``tables`` replace any top-level table (``loggers=[{"kind": "jsonl"}]``)."""
    data: dict[str, Any] = {
        "run": {"name": name, "seed": seed},
        "env": dict(POINTMASS_ENV),
        "executor": {"kind": "inline"},
        "loggers": [],
        "stages": stages,
    }
    data.update(tables)
    return data


def goal_seeking_policy(registry: Any, obs_dim: int, gain: float = 2.0, std: float = 1.0) -> Any:
    """A ``gaussian-mlp`` policy (built through ``registry``) with μ = gain·(goal − position) on the point mass
    (whose first two observations are goal − position) and σ = std, set through its
    :class:`sport_core.protocols.GaussianMLPLayout`."""
    import torch

    component = registry.get("policy", "gaussian-mlp")
    config = structure(component.config_cls, {"hidden": [4]}, "gaussian-mlp")
    policy = component.build(config)(obs_dim, 2, (1.0, 1.0), (0.0, 0.0))
    layout = policy.mlp_layout()
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
        w = torch.zeros(4, obs_dim)
        w[0, 0], w[1, 1], w[2, 0], w[3, 1] = 1.0, 1.0, -1.0, -1.0
        layout.trunk[0].weight.copy_(w)
        layout.mu_head.weight.copy_(gain * torch.tensor([[1.0, 0, -1, 0], [0, 1, 0, -1]]))
        u = (math.log(std) - layout.log_std_min) / (layout.log_std_max - layout.log_std_min) * 2 - 1
        layout.log_std_head.bias.fill_(math.atanh(u))
    return policy


@attrs.frozen
class GoalSeekerConfig:
    """``gain`` of μ = gain·(goal − position) and the policy's ``std``."""

    gain: float = 2.0
    std: float = 1.0


class GoalSeekerStage:
    """The ``goal-seeker`` evaluator: saves :func:`goal_seeking_policy` for the stage's env as ``policy``."""

    needs_env = True
    inputs: ClassVar[dict[str, StageInput]] = {}
    outputs = ("policy",)

    def __init__(self, config: GoalSeekerConfig) -> None:
        self.config = config

    def run(self, ctx: Any) -> dict[str, Path]:
        from sport_core.weights import ModelCard, save_policy

        env = ctx.env.make()
        obs_dim = int(env.observation_space.shape[0])
        env.close()
        policy = goal_seeking_policy(ctx.registry, obs_dim, self.config.gain, self.config.std)
        card = ModelCard("gaussian-mlp", unstructure(policy.config), obs_dim, 2, (1.0, 1.0), (0.0, 0.0))
        return {"policy": save_policy(ctx.stage_dir / "policy", policy, card)}


class _TestingPlugin:
    @hookimpl
    def sport_register_evaluators(self) -> list[Component]:
        return [Component("goal-seeker", GoalSeekerStage, GoalSeekerConfig, "a hand-set goal-seeking policy (tests)")]


#: The plugin that adds the ``goal-seeker`` stage; pass it to ``load_plugin_manager(extra=[...])``.
TESTING_PLUGIN = ("sport-testing", _TestingPlugin())


def plugin_manager(*plugins: tuple[str, object | str]) -> Any:
    """A plugin manager with the built-ins, :data:`TESTING_PLUGIN` and ``plugins`` ((name, module, object or
    module path) pairs), without third-party autoload."""
    from sport_core.plugins import load_plugin_manager

    return load_plugin_manager(autoload=False, extra=[TESTING_PLUGIN, *plugins])


def run_recipe(pm: Any, data: dict | str | Path, out: Path, overrides: Iterable[str] = ()) -> Path:
    """Validate ``data`` (recipe data, or a recipe file with ``overrides``), run it under ``out``; returns the run
    folder. Raises AssertionError unless the run completed."""
    from sport_core.recipe import load_recipe, validate
    from sport_core.runner import Runner

    recipe = validate(data, pm.registry) if isinstance(data, dict) else load_recipe(data, pm.registry, list(overrides))
    runner = Runner.create(recipe, pm, out)
    status = runner.run()
    assert status == "completed", f"run {runner.run_dir} ended {status}"
    return runner.run_dir


@pytest.fixture
def sport_plugin_manager(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``sport_plugin_manager(*plugins)``: :func:`plugin_manager`, with ``SPORT_PLUGINS`` and
    ``SPORT_DISABLE_PLUGINS`` cleared so that the environment does not change what the test loads."""
    monkeypatch.delenv("SPORT_PLUGINS", raising=False)
    monkeypatch.delenv("SPORT_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("SPORT_NO_PROGRESS", "1")
    return plugin_manager


@pytest.fixture
def sport_run(tmp_path: Path) -> Callable[..., Path]:
    """``sport_run(pm, recipe, overrides=())``: :func:`run_recipe` into the test's ``tmp_path``."""

    def run(pm: Any, data: dict | str | Path, overrides: Iterable[str] = ()) -> Path:
        return run_recipe(pm, data, tmp_path / "runs", overrides)

    return run
