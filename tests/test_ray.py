"""The ``ray`` executor runs the same episodes as the inline one, on a real (local, 2-CPU) Ray cluster.

One cluster is started per module by the ``ray`` executor itself and shut down at the end. Episode records
depend only on (actor, env, seed, index), so collecting on Ray workers, with their own chunking and their own
env instances reused across episodes, must give exactly the inline records: on the point mass, on the real
safety-gymnasium env through its fast reset, and through a whole recipe run by the Runner.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import ray
import torch

from sport_core.actors import PolicyActor
from sport_core.collect import collect
from sport_core.plugins import load_plugin_manager
from sport_core.protocols import Executor
from sport_core.recipe import load_recipe, validate
from sport_core.runner import Runner
from sport_ray import RayConfig, RayExecutor, RayExecutorError

pytestmark = [pytest.mark.ray]

SMOKE = Path(__file__).resolve().parents[1] / "recipes" / "quick" / "smoke.toml"


@pytest.fixture(scope="module")
def components():
    """The registry of the built-in plugins (module-scoped, unlike conftest's ``registry``)."""
    return load_plugin_manager(autoload=False).registry


@pytest.fixture(scope="module")
def cluster(components):
    """The ``ray`` executor with a local 2-CPU cluster that it started (and shuts down on close)."""
    assert not ray.is_initialized()
    component = components.get("executor", "ray")
    executor = component.build(component.config_cls(num_cpus=2))
    yield executor
    executor.close()
    assert not ray.is_initialized()


@pytest.fixture(scope="module")
def inline(components):
    return components.get("executor", "inline").build()


def random_policy_actor(components, env_maker, seed: int) -> PolicyActor:
    """A ``gaussian-mlp`` policy with random weights (drawn from ``seed``) for the env's spaces."""
    env = env_maker.make()
    obs_dim, (act_dim,) = env.observation_space.shape[0], env.action_space.shape
    low, high = env.action_space.low, env.action_space.high
    env.close()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        policy = components.get("policy", "gaussian-mlp").build()(obs_dim, act_dim, (high - low) / 2, (high + low) / 2)
    return PolicyActor(policy)


def test_the_executor_spans_the_cluster(cluster):
    assert isinstance(cluster, Executor)
    assert cluster.workers == 2  # the cluster's CPUs
    assert ray.cluster_resources().get("GPU", 0) == 0


def test_map_yields_every_result(cluster):
    assert sorted(cluster.map(math.factorial, range(30))) == [math.factorial(n) for n in range(30)]
    assert list(cluster.map(math.factorial, [])) == []


def test_only_max_in_flight_tasks_are_taken_from_the_stream(cluster):
    pulled = []

    def tasks():
        for n in range(100):
            pulled.append(n)
            yield n

    executor = RayExecutor(RayConfig(max_in_flight=3))  # joins the module's cluster
    results = executor.map(math.factorial, tasks())
    next(results)
    assert len(pulled) == 3  # a long stream is not materialised
    results.close()  # stopping early cancels what is in flight
    assert len(pulled) == 3
    executor.close()
    assert ray.is_initialized()  # it joined the cluster, so it leaves it running


def test_tasks_run_on_one_torch_thread_and_no_gpu(cluster):
    def worker_state(_):  # nested, so it travels by value (a worker cannot import the test module)
        import os

        import torch

        return torch.get_num_threads(), os.environ.get("CUDA_VISIBLE_DEVICES"), os.getpid()

    states = list(cluster.map(worker_state, range(4)))
    assert {(threads, gpus) for threads, gpus, _ in states} == {(1, "")}


def test_a_runtime_env_reaches_the_tasks(cluster):
    def probe(name):
        import os

        return os.environ.get(name)

    executor = RayExecutor(RayConfig(runtime_env={"env_vars": {"SPORT_RAY_PROBE": "on"}}))
    assert list(executor.map(probe, ["SPORT_RAY_PROBE"])) == ["on"]
    assert list(cluster.map(probe, ["SPORT_RAY_PROBE"])) == [None]


def test_a_task_error_reaches_the_caller_as_itself(cluster):
    with pytest.raises(ValueError, match="negative"):
        list(cluster.map(math.factorial, [3, -1, 4]))


def test_pointmass_records_equal_inline_records(components, cluster, inline):
    from sport_pointmass.env import PointMassConfig, PointMassMaker

    maker = PointMassMaker(PointMassConfig(layout_seed=5, max_steps=40))
    actor = random_policy_actor(components, maker, seed=1)
    on_ray = collect(actor, maker, 120, 7, cluster, trajectory=True)
    here = collect(actor, maker, 120, 7, inline, trajectory=True)
    assert [r.index for r in on_ray] == list(range(120))
    assert on_ray == here
    assert len({r.trajectory.tobytes() for r in here}) == 120  # every episode its own (policy noise)


def test_safety_gym_fast_reset_works_in_ray_workers(components, cluster, inline):
    import sport_safety_gym as sgm

    maker = sgm.SafetyGymMaker(sgm.SafetyGymConfig(id="SafetyPointReachAvoidLowFreqCurriculum5-v0", layout="paper"))
    assert maker.config.fast_reset
    actor = random_policy_actor(components, maker, seed=2)
    # one episode per chunk: each worker resets its one (cached) env several times through the fast reset
    on_ray = collect(actor, maker, 8, 3, cluster, trajectory=True, chunk_size=1)
    here = collect(actor, maker, 8, 3, inline, trajectory=True)
    assert on_ray == here
    starts = {tuple(r.trajectory[0]) for r in here}
    assert len(starts) == 1 and starts.pop() == pytest.approx(sgm.PAPER_LAYOUT["agent_xy"], abs=1e-9)
    assert len({r.trajectory[-1].tobytes() for r in here}) == 8  # the episodes really differ


def run_smoke(pm, out: Path, executor: str) -> Path:
    recipe = load_recipe(SMOKE, pm.registry, [f"executor={executor}"])
    runner = Runner.create(recipe, pm, out)
    assert runner.run() == "completed"
    return runner.run_dir


def test_the_smoke_recipe_gives_the_same_results_on_ray(pm, cluster, tmp_path):
    on_ray = run_smoke(pm, tmp_path / "ray", "{kind='ray', num_cpus=2}")
    here = run_smoke(pm, tmp_path / "inline", "{kind='inline'}")
    assert 'kind = "ray"' in (on_ray / "recipe.resolved.toml").read_text()
    for stage in ("random", "random-fixed"):
        assert json.loads((on_ray / stage / "summary.json").read_text()) == json.loads(
            (here / stage / "summary.json").read_text()
        )
        lines = (on_ray / stage / "episodes.jsonl").read_text().splitlines()
        by_index = sorted(lines, key=lambda line: json.loads(line)["index"])
        assert by_index == (here / stage / "episodes.jsonl").read_text().splitlines()
    assert ray.is_initialized()  # the recipe's executor joined the module's cluster and left it running


def test_an_unreachable_address_is_a_one_line_error():
    with pytest.raises(RayExecutorError, match=r"cannot reach a Ray cluster at address '127\.0\.0\.1:1'") as info:
        RayExecutor(RayConfig(address="127.0.0.1:1"))
    assert "\n" not in str(info.value)
    with pytest.raises(RayExecutorError, match="ray://127"):
        RayExecutor(RayConfig(address="ray://127.0.0.1:1"))


def test_a_local_cluster_size_with_an_address_is_rejected():
    with pytest.raises(ValueError, match="num_cpus"):
        RayConfig(address="auto", num_cpus=2)


def test_without_ray_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    with pytest.raises(RayExecutorError, match=r"pip install 'sport\[ray\]'"):
        RayExecutor(RayConfig())


def test_a_projected_ppo_alpha_sweep_on_ray_equals_the_inline_one(cluster, tmp_path, monkeypatch):
    """Each α is one Ray task (its job pickled with the policies and the projection); same weights as inline."""
    from tests.support.hand_policy import HandPolicyPlugin
    from tests.test_projected_ppo import digests, recipe

    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    hpm = load_plugin_manager(extra=[("hand_policy", HandPolicyPlugin())])
    runs = {}
    for kind in ("inline", "ray"):
        data = recipe()
        data["executor"] = {"kind": kind, **({"num_cpus": 2} if kind == "ray" else {})}
        runner = Runner.create(validate(data, hpm.registry), hpm, tmp_path / kind)
        assert runner.run() == "completed"
        runs[kind] = runner.run_dir
    assert digests(runs["ray"]) == digests(runs["inline"])
