"""Replay buffers: the sum-tree, prioritized sampling proportions, importance weights, exact save/restore."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from sport_sac.replay import PrioritizedReplayBuffer, ReplayBuffer
from sport_sac.sumtree import SumTree


def fill(buffer: ReplayBuffer, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        obs, next_obs = rng.normal(size=buffer.obs_dim), rng.normal(size=buffer.obs_dim)
        buffer.add(obs, rng.uniform(-1, 1, buffer.act_dim), float(i), next_obs, i % 7 == 0)


# -- sum-tree --------------------------------------------------------------------------------------


def test_sumtree_partial_sums_and_search():
    tree = SumTree(5)  # padded to 8 leaves
    tree.update(np.arange(5), np.array([1.0, 0.0, 2.0, 3.0, 4.0]))
    assert tree.total == 10.0
    # leaf i covers [Σ_{j<i} v_j, Σ_{j≤i} v_j); the zero leaf 1 owns no mass
    mass = np.array([0.0, 0.999, 1.0, 2.5, 3.0, 5.99, 6.0, 9.999])
    assert tree.find(mass).tolist() == [0, 0, 2, 2, 3, 3, 4, 4]


def test_sumtree_never_returns_empty_leaves_even_at_the_upper_edge():
    tree = SumTree(3)
    tree.update(np.arange(3), np.array([0.1, 0.2, 0.3]))
    assert tree.find(np.array([tree.total, np.nextafter(tree.total, 0)])).tolist() == [2, 2]


def test_sumtree_repeated_index_takes_the_last_value():
    tree = SumTree(4)
    tree.update(np.array([2, 1, 2]), np.array([5.0, 1.0, 7.0]))
    assert tree.leaves.tolist() == [0.0, 1.0, 7.0, 0.0]
    assert tree.total == 8.0


def test_sumtree_rebuild_is_bitwise_the_incremental_tree():
    rng = np.random.default_rng(1)
    tree = SumTree(1000)
    for _ in range(50):
        idx = rng.integers(0, 1000, 64)
        tree.update(idx, rng.random(64))
        tree.update(rng.integers(0, 1000, 1), rng.random(1))  # the single-leaf path
    rebuilt = SumTree(1000)
    rebuilt.rebuild(np.asarray(tree.leaves).copy())
    assert np.array_equal(rebuilt.nodes, tree.nodes)


def test_sumtree_rejects_bad_values():
    tree = SumTree(4)
    with pytest.raises(ValueError, match="non-negative"):
        tree.update(np.array([0]), np.array([-1.0]))
    with pytest.raises(IndexError):
        tree.update(np.array([4]), np.array([1.0]))
    with pytest.raises(ValueError, match="capacity"):
        SumTree(0)


# -- prioritized replay -----------------------------------------------------------------------------


def test_prioritized_sampling_follows_p_to_the_alpha():
    """Draw counts match B·P(i), P(i) = p_i^a / Σ p_j^a (chi-square test), and are far from uniform."""
    buffer = PrioritizedReplayBuffer(capacity=20, obs_dim=1, act_dim=1, alpha=0.6)
    fill(buffer, 20)
    priorities = np.linspace(0.05, 3.0, 20)
    buffer.update_priorities(np.arange(20), priorities - buffer.eps)
    expected_p = priorities**0.6 / (priorities**0.6).sum()
    assert np.allclose(buffer.probabilities(), expected_p)

    rng = np.random.default_rng(0)
    counts = np.zeros(20)
    draws = 0
    for _ in range(400):
        batch = buffer.sample(64, rng, beta=0.5)
        counts += np.bincount(batch.index, minlength=20)
        draws += 64
    assert stats.chisquare(counts, draws * expected_p).pvalue > 1e-3
    assert stats.chisquare(counts, np.full(20, draws / 20)).pvalue < 1e-12


def test_importance_weights_are_normalised_inverse_probabilities():
    buffer = PrioritizedReplayBuffer(capacity=50, obs_dim=2, act_dim=1, alpha=0.6)
    fill(buffer, 50)
    rng = np.random.default_rng(3)
    buffer.update_priorities(np.arange(50), rng.uniform(0.0, 2.0, 50))
    beta = 0.4
    batch = buffer.sample(32, rng, beta=beta)
    p = buffer.probabilities()[batch.index]
    w = (50 * p) ** (-beta)
    assert torch.allclose(batch.weights, torch.as_tensor(w / w.max(), dtype=torch.float32))
    assert float(batch.weights.max()) == pytest.approx(1.0)
    # β = 0: no correction at all
    assert torch.all(buffer.sample(32, rng, beta=0.0).weights == 1.0)


def test_new_transitions_get_the_largest_priority_seen():
    buffer = PrioritizedReplayBuffer(capacity=8, obs_dim=1, act_dim=1, alpha=1.0, eps=1e-6)
    fill(buffer, 3)
    buffer.update_priorities(np.array([0, 1]), np.array([5.0, 0.5]))
    fill(buffer, 1)
    assert np.asarray(buffer.tree.leaves)[3] == pytest.approx(5.0 + 1e-6)
    assert np.asarray(buffer.tree.leaves)[1] == pytest.approx(0.5 + 1e-6)


def test_prioritized_state_roundtrip_gives_the_same_future_samples():
    a = PrioritizedReplayBuffer(capacity=64, obs_dim=3, act_dim=2)
    fill(a, 100)  # wraps around the ring
    a.update_priorities(np.arange(0, 64, 3), np.linspace(0.1, 4, 22))
    b = PrioritizedReplayBuffer(capacity=64, obs_dim=3, act_dim=2)
    b.load_state_dict({k: np.array(v) for k, v in a.state_dict().items()})
    assert np.array_equal(a.tree.nodes, b.tree.nodes) and a.pos == b.pos and a.size == b.size
    ra, rb = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(3):
        x, y = a.sample(16, ra, 0.7), b.sample(16, rb, 0.7)
        assert np.array_equal(x.index, y.index)
        for name in ("obs", "act", "rew", "next_obs", "done", "weights"):
            assert torch.equal(getattr(x, name), getattr(y, name))


# -- uniform replay ---------------------------------------------------------------------------------


def test_uniform_buffer_is_a_ring_and_samples_what_it_stored():
    buffer = ReplayBuffer(capacity=10, obs_dim=2, act_dim=1)
    fill(buffer, 15)
    assert len(buffer) == 10 and buffer.pos == 5
    assert sorted(buffer.rew.tolist()) == [float(i) for i in range(5, 15)]
    batch = buffer.sample(200, np.random.default_rng(0))
    assert batch.weights is None
    assert set(batch.index.tolist()) == set(range(10))
    assert torch.equal(batch.obs, buffer.obs[torch.from_numpy(batch.index)])
    assert torch.equal(batch.done, buffer.done[torch.from_numpy(batch.index)])


def test_uniform_state_roundtrip_and_errors():
    a = ReplayBuffer(capacity=10, obs_dim=2, act_dim=1)
    fill(a, 4)
    b = ReplayBuffer(capacity=10, obs_dim=2, act_dim=1)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.obs, b.obs) and b.size == 4
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity=11, obs_dim=2, act_dim=1).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="priorities"):
        PrioritizedReplayBuffer(capacity=10, obs_dim=2, act_dim=1).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(capacity=3, obs_dim=1, act_dim=1).sample(2, np.random.default_rng(0))
