"""Episode collection on the real safety-gymnasium env is reproducible whatever the number of workers.

Episode i resets with its own env seed and samples with its own policy stream, so 40 episodes collected by a
pool of one worker and by a pool of two (different chunking, different env instances reused across
episodes through the fast reset) give identical records, trajectories included. The env maker and the actor
travel to the spawned workers by pickle; the workers import safety-gymnasium through the plugin's shim.
"""

from __future__ import annotations

import collections

import pytest

# No skip when safety-gymnasium is missing: ./install.sh always installs it, so its absence is a failure.
import sport_safety_gym as sgm
from sport_core.collect import collect
from sport_safety_gym.scripted import LidarGoalSeeker

pytestmark = [pytest.mark.safety, pytest.mark.slow]

EPISODES = 40


@pytest.fixture(scope="module")
def pools():
    """Process pools of the ``process`` executor with one and with two workers (spawned once per module)."""
    from sport_core.plugins import load_plugin_manager

    component = load_plugin_manager(autoload=False).registry.get("executor", "process")
    executors = {n: component.build(component.config_cls(workers=n)) for n in (1, 2)}
    yield executors
    for executor in executors.values():
        executor.close()


def test_one_worker_and_two_workers_give_identical_records(pools):
    maker = sgm.SafetyGymMaker(sgm.SafetyGymConfig())  # level 5, 5 Hz, a new layout every episode
    actor = LidarGoalSeeker(noise_std=0.2)
    one = collect(actor, maker, EPISODES, 3, pools[1], trajectory=True)
    two = collect(actor, maker, EPISODES, 3, pools[2], trajectory=True)
    assert pools[1].workers == 1 and pools[2].workers == 2
    assert [r.index for r in one] == list(range(EPISODES))
    assert one == two
    outcomes = collections.Counter(r.outcome for r in one)
    assert outcomes["goal"] > 0 and sum(outcomes.values()) == EPISODES
    # the records are real episodes: trajectories start at the agent's start and have one row per step
    assert all(r.trajectory.shape == (r.length + 1, 2) for r in one)
    assert len({tuple(r.trajectory[0]) for r in one}) == EPISODES  # a new layout (start) per episode


def test_a_fixed_layout_varies_only_through_the_policy(pools):
    maker = sgm.SafetyGymMaker(sgm.SafetyGymConfig(layout="paper"))
    records = collect(LidarGoalSeeker(noise_std=0.2), maker, EPISODES, 11, pools[2], trajectory=True)
    starts = {tuple(r.trajectory[0]) for r in records}
    assert len(starts) == 1
    assert starts.pop() == pytest.approx(sgm.PAPER_LAYOUT["agent_xy"], abs=1e-9)
    assert len({r.trajectory[-1].tobytes() for r in records}) > 1  # the noise makes paths differ
