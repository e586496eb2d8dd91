"""Workers that die mid-collection lose nothing and count nothing twice.

A real collection of point-mass episodes runs on a real spawned process pool and on a real local Ray cluster
(2 CPUs, one per module) with an actor that kills its own worker process (SIGKILL or ``os._exit``) the first
time it acts in one chosen episode: the records must be exactly the inline ones, every episode once. An actor
that kills its worker every time (a poison episode) must end the collection with a one-line error naming the
task, in bounded time; a task's own exception must still reach the caller as itself.
"""

from __future__ import annotations

import logging
import math

import pytest
import ray

from sport_core.actors import PolicyActor
from sport_core.collect import collect
from sport_core.errors import SportError, WorkerDiedError
from sport_executors.executors import InlineExecutor, ProcessConfig, ProcessExecutor
from sport_pointmass.env import PointMassConfig, PointMassMaker
from sport_ray import RayConfig, RayExecutor
from tests.support.faulty import DyingActor
from tests.support.hand_policy import goal_seeking_policy

SEED = 11
EPISODES = 40
CHUNK = 5  # 8 chunks (tasks), at most 4 in flight on 2 workers
DIE_AT = 29  # an episode of task 5: tasks 0-4 have been yielded, or are in flight, when its worker dies


@pytest.fixture(scope="module")
def maker() -> PointMassMaker:
    return PointMassMaker(PointMassConfig(layout_seed=8, max_steps=25))


@pytest.fixture(scope="module")
def actor(maker) -> PolicyActor:
    return PolicyActor(goal_seeking_policy(maker.make().observation_space.shape[0]))


@pytest.fixture(scope="module")
def expected(maker, actor):
    """The records of the same actor, collected inline, without faults."""
    return collect(actor, maker, EPISODES, SEED, InlineExecutor(), trajectory=True)


@pytest.fixture(scope="module")
def process():
    """One 2-worker process executor for the module (it must outlive the pools that break under it)."""
    executor = ProcessExecutor(ProcessConfig(workers=2))
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def cluster():
    """The ``ray`` executor with a local 2-CPU cluster that it started (and shuts down on close)."""
    assert not ray.is_initialized()
    executor = RayExecutor(RayConfig(num_cpus=2))
    yield executor
    executor.close()
    assert not ray.is_initialized()


def assert_complete_and_equal(records, expected) -> None:
    assert [r.index for r in records] == list(range(EPISODES))  # collect sorts: each episode exactly once
    for record, reference in zip(records, expected, strict=True):
        assert record == reference


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["kill", "exit"])
def test_a_worker_dying_mid_collection_costs_a_rerun_not_a_record(
    process, maker, actor, expected, how, tmp_path, caplog
):
    marker = tmp_path / "died"
    dying = DyingActor(actor, SEED, DIE_AT, str(marker), how)
    with caplog.at_level(logging.WARNING, logger="sport"):
        records = collect(dying, maker, EPISODES, SEED, process, trajectory=True, chunk_size=CHUNK)
    assert marker.exists()  # the worker did die
    assert "took down the pool; running the" in caplog.text
    assert_complete_and_equal(records, expected)


@pytest.mark.timeout(120)
def test_an_episode_that_always_kills_its_worker_ends_the_map_with_one_line(process, maker, actor):
    poison = DyingActor(actor, SEED, DIE_AT, None, "kill")
    with pytest.raises(WorkerDiedError) as info:
        collect(poison, maker, EPISODES, SEED, process, chunk_size=CHUNK)
    message = str(info.value)
    assert isinstance(info.value, SportError) and "\n" not in message
    assert message.startswith(
        "process executor: a worker died 3 times running task 5 of this map (exit code -9, signal SIGKILL); giving up"
    )
    assert sorted(process.map(abs, [-1, -2])) == [1, 2]  # the executor serves the next map


def test_a_task_error_is_raised_as_itself_and_not_retried(process, caplog):
    with caplog.at_level(logging.WARNING, logger="sport"), pytest.raises(ValueError, match="negative"):
        list(process.map(math.factorial, [3, -1, 4]))
    assert "worker died" not in caplog.text


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_a_ray_worker_dying_mid_collection_costs_a_rerun_not_a_record(cluster, maker, actor, expected, tmp_path):
    marker = tmp_path / "died"
    dying = DyingActor(actor, SEED, DIE_AT, str(marker), "kill")
    records = collect(dying, maker, EPISODES, SEED, cluster, trajectory=True, chunk_size=CHUNK)
    assert marker.exists()
    assert_complete_and_equal(records, expected)


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_an_episode_that_always_kills_its_ray_worker_ends_the_map_with_one_line(cluster, maker, actor):
    poison = DyingActor(actor, SEED, DIE_AT, None, "kill")
    with pytest.raises(WorkerDiedError) as info:
        collect(poison, maker, EPISODES, SEED, cluster, chunk_size=CHUNK)
    message = str(info.value)
    assert isinstance(info.value, SportError) and "\n" not in message
    assert message.startswith(
        "ray executor: a worker died 3 times running task 5 of this map (WorkerCrashedError: The worker died"
    )
    assert sorted(cluster.map(abs, [-1, -2])) == [1, 2]
