"""Replay buffers: uniform, and prioritized (Schaul et al., 2016) on a sum-tree.

Transitions live in preallocated float32 torch tensors (a ring of ``capacity`` slots); a sampled batch is
gathered with ``index_select`` into preallocated batch tensors, so sampling allocates nothing per step.

Prioritized replay: transition i has priority p_i = |δ_i| + ε (δ its latest TD error; new transitions get
the largest priority seen so far) and is drawn with probability P(i) = p_i^a / Σ_j p_j^a (exponent a,
``alpha``). Drawing is stratified: the total mass is cut into B equal segments and one point is drawn
uniformly in each, which keeps the expected count of every transition at B·P(i) with less variance.
The importance weights correct the bias: w_i = (N·P(i))^(−β), divided by the largest weight in the batch so
that they only ever scale updates down (β is annealed towards 1 by the trainer).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch

from sport_sac.sumtree import SumTree


@attrs.define(eq=False)
class Batch:
    """A sampled batch: tensors [B, ...] (float32), the buffer ``index`` of each row and importance
    ``weights`` (None for uniform replay)."""

    obs: torch.Tensor
    act: torch.Tensor
    rew: torch.Tensor
    next_obs: torch.Tensor
    done: torch.Tensor
    index: np.ndarray
    weights: torch.Tensor | None = None


class ReplayBuffer:
    """Uniform replay over the last ``capacity`` transitions."""

    kind = "uniform"

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        if capacity < 1:
            raise ValueError(f"replay capacity must be positive, got {capacity}")
        self.capacity, self.obs_dim, self.act_dim = int(capacity), int(obs_dim), int(act_dim)
        self.obs = torch.zeros(capacity, obs_dim)
        self.next_obs = torch.zeros(capacity, obs_dim)
        self.act = torch.zeros(capacity, act_dim)
        self.rew = torch.zeros(capacity)
        self.done = torch.zeros(capacity)
        self.pos = 0  # next slot to write
        self.size = 0
        self._out: dict[int, Batch] = {}

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, act: np.ndarray, rew: float, next_obs: np.ndarray, done: bool) -> int:
        """Store one transition (overwriting the oldest when full); returns its slot."""
        i = self.pos
        self.obs[i] = torch.from_numpy(np.asarray(obs, dtype=np.float32))
        self.next_obs[i] = torch.from_numpy(np.asarray(next_obs, dtype=np.float32))
        self.act[i] = torch.from_numpy(np.asarray(act, dtype=np.float32))
        self.rew[i] = float(rew)
        self.done[i] = float(done)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        return i

    def clear(self) -> None:
        """Forget every transition (the storage is kept)."""
        self.pos = self.size = 0

    def _draw(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.size, size=batch_size)

    def _gather(self, index: np.ndarray) -> Batch:
        b = len(index)
        out = self._out.get(b)
        if out is None:
            out = self._out[b] = Batch(
                torch.empty(b, self.obs_dim),
                torch.empty(b, self.act_dim),
                torch.empty(b),
                torch.empty(b, self.obs_dim),
                torch.empty(b),
                index,
            )
        idx = torch.from_numpy(index)
        torch.index_select(self.obs, 0, idx, out=out.obs)
        torch.index_select(self.act, 0, idx, out=out.act)
        torch.index_select(self.rew, 0, idx, out=out.rew)
        torch.index_select(self.next_obs, 0, idx, out=out.next_obs)
        torch.index_select(self.done, 0, idx, out=out.done)
        out.index = index
        out.weights = None
        return out

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 1.0) -> Batch:
        """A batch of ``batch_size`` transitions drawn with ``rng``. The returned tensors are reused by the
        next call with the same batch size: consume them before sampling again."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return self._gather(self._draw(batch_size, rng))

    def update_priorities(self, index: np.ndarray, td_abs: np.ndarray) -> None:
        """Uniform replay ignores priorities."""

    # -- exact save / restore -------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Plain arrays (for an ``.npz``) that restore this buffer exactly."""
        n = self.size
        return {
            "obs": self.obs[:n].numpy(),
            "act": self.act[:n].numpy(),
            "rew": self.rew[:n].numpy(),
            "next_obs": self.next_obs[:n].numpy(),
            "done": self.done[:n].numpy(),
            "pos": np.int64(self.pos),
            "capacity": np.int64(self.capacity),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"replay state has capacity {int(state['capacity'])}, this buffer {self.capacity}")
        n = len(state["rew"])
        for name in ("obs", "act", "rew", "next_obs", "done"):
            target = getattr(self, name)
            if tuple(state[name].shape[1:]) != tuple(target.shape[1:]):
                raise ValueError(
                    f"replay state {name!r} has shape {state[name].shape}, expected [*, {tuple(target.shape[1:])}]"
                )
            target[:n] = torch.from_numpy(np.ascontiguousarray(state[name], dtype=np.float32))
        self.size, self.pos = n, int(state["pos"])


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay: P(i) ∝ p_i^alpha on a :class:`SumTree` (see the module docstring)."""

    kind = "prioritized"

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, alpha: float = 0.6, eps: float = 1e-6) -> None:
        super().__init__(capacity, obs_dim, act_dim)
        if alpha < 0:
            raise ValueError(f"priority exponent alpha must be non-negative, got {alpha}")
        if eps <= 0:
            raise ValueError(f"priority offset eps must be positive, got {eps}")
        self.alpha, self.eps = float(alpha), float(eps)
        self.tree = SumTree(capacity)
        self.max_priority = 1.0

    def add(self, obs: np.ndarray, act: np.ndarray, rew: float, next_obs: np.ndarray, done: bool) -> int:
        i = super().add(obs, act, rew, next_obs, done)
        self.tree.update(np.array([i]), np.array([self.max_priority**self.alpha]))
        return i

    def clear(self) -> None:
        super().clear()
        self.tree.rebuild(np.zeros(self.capacity))
        self.max_priority = 1.0

    def _draw(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        total = self.tree.total
        mass = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        index = self.tree.find(mass)
        # Slots beyond `size` have zero mass and are never found; this guards against a corrupt tree.
        return np.minimum(index, self.size - 1)

    def sample(self, batch_size: int, rng: np.random.Generator, beta: float = 1.0) -> Batch:
        """A stratified prioritized batch with importance weights (N·P(i))^(−β) / max over the batch."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = self._draw(batch_size, rng)
        batch = self._gather(index)
        mass = self.tree.nodes[index + self.tree.n_leaves]
        # (N·P(i))^(−β) / max_j (N·P(j))^(−β) = (p_i / min_j p_j)^(−β): N and Σ cancel.
        batch.weights = torch.from_numpy((mass / mass.min()) ** (-beta)).to(torch.float32)
        return batch

    def update_priorities(self, index: np.ndarray, td_abs: np.ndarray) -> None:
        """Set p_i = |δ_i| + eps for the sampled slots (the last value wins for a repeated slot)."""
        priority = np.asarray(td_abs, dtype=np.float64) + self.eps
        self.max_priority = max(self.max_priority, float(priority.max()))
        self.tree.update(index, priority**self.alpha)

    def probabilities(self) -> np.ndarray:
        """P(i) for every stored transition (for tests and diagnostics)."""
        leaves = np.asarray(self.tree.leaves[: self.size])
        return leaves / leaves.sum()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["priority_mass"] = np.asarray(self.tree.leaves[: self.size]).copy()
        state["max_priority"] = np.float64(self.max_priority)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "priority_mass" not in state:
            raise ValueError("replay state has no priorities; it was saved by a uniform buffer")
        super().load_state_dict(state)
        leaves = np.zeros(self.capacity)
        leaves[: self.size] = state["priority_mass"]
        self.tree.rebuild(leaves)
        self.max_priority = float(state["max_priority"])
