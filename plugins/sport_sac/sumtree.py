"""A sum-tree over non-negative leaf values: O(log N) proportional sampling and O(B log N) batch updates.

The tree is a complete binary heap stored in one float64 array: node 1 is the root, node k has children
2k and 2k+1, and leaf i lives at node ``n + i`` where ``n`` (the capacity rounded up to a power of two) is
the number of leaves. Every internal node holds the sum of its two children, always recomputed from them
(never updated by differences), so no rounding drift accumulates and a tree rebuilt from its leaves is
bitwise identical to one built by updates. All operations are vectorised over a batch of indices with numpy:
one pass per tree level, no Python loop over the batch.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """Leaf values ``v_0 .. v_{capacity-1}`` (initially 0) and their partial sums."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"sum-tree capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.depth = max(0, (self.capacity - 1).bit_length())
        self.n_leaves = 1 << self.depth
        self.nodes = np.zeros(2 * self.n_leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        """Σ of all leaf values."""
        return float(self.nodes[1])

    @property
    def leaves(self) -> np.ndarray:
        """The leaf values (a read-only view)."""
        view = self.nodes[self.n_leaves : self.n_leaves + self.capacity]
        view.flags.writeable = False
        return view

    def update(self, index: np.ndarray, value: np.ndarray) -> None:
        """Set ``v[index] = value`` (where an index repeats, its last value wins) and refresh the sums above."""
        index = np.asarray(index, dtype=np.int64).ravel()
        value = np.broadcast_to(np.asarray(value, dtype=np.float64), index.shape)
        if index.size == 0:
            return
        if index.size == 1:  # the per-step insert: scalar arithmetic beats numpy's per-call overhead
            self._update_one(int(index[0]), float(value[0]))
            return
        if index.min() < 0 or index.max() >= self.capacity:
            raise IndexError(f"sum-tree index out of range [0, {self.capacity})")
        if np.any(value < 0) or not np.all(np.isfinite(value)):
            raise ValueError("sum-tree values must be finite and non-negative")
        # np.unique keeps the first occurrence: reverse so that the last assignment wins, deterministically.
        rev = index[::-1]
        nodes, first = np.unique(rev, return_index=True)
        nodes = nodes + self.n_leaves
        self.nodes[nodes] = value[::-1][first]
        for _ in range(self.depth):
            nodes = nodes >> 1
            # nodes stay sorted, so siblings' shared parent appears in runs: keep one of each
            keep = np.empty(nodes.shape, dtype=bool)
            keep[0] = True
            np.not_equal(nodes[1:], nodes[:-1], out=keep[1:])
            nodes = nodes[keep]
            left = nodes << 1
            self.nodes[nodes] = self.nodes[left] + self.nodes[left + 1]

    def _update_one(self, index: int, value: float) -> None:
        if not 0 <= index < self.capacity:
            raise IndexError(f"sum-tree index {index} out of range [0, {self.capacity})")
        if not (value >= 0.0 and np.isfinite(value)):
            raise ValueError("sum-tree values must be finite and non-negative")
        nodes = self.nodes
        node = index + self.n_leaves
        nodes[node] = value
        for _ in range(self.depth):
            node >>= 1
            # same pairwise sums as the batched path (left + right), so both give identical trees
            nodes[node] = nodes[2 * node] + nodes[2 * node + 1]

    def rebuild(self, leaves: np.ndarray) -> None:
        """Replace every leaf value at once and recompute all sums (O(N))."""
        leaves = np.asarray(leaves, dtype=np.float64)
        if leaves.shape != (self.capacity,):
            raise ValueError(f"expected {self.capacity} leaf values, got shape {leaves.shape}")
        if np.any(leaves < 0) or not np.all(np.isfinite(leaves)):
            raise ValueError("sum-tree values must be finite and non-negative")
        self.nodes[:] = 0.0
        self.nodes[self.n_leaves : self.n_leaves + self.capacity] = leaves
        lo = self.n_leaves
        while lo > 1:
            hi, lo = lo, lo >> 1
            self.nodes[lo:hi] = self.nodes[2 * lo : 2 * hi : 2] + self.nodes[2 * lo + 1 : 2 * hi : 2]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each ``m`` in ``mass`` (0 ≤ m < total), the leaf i with Σ_{j<i} v_j ≤ m < Σ_{j≤i} v_j.

        Descends from the root: go right (and subtract the left sum) when m is not below the left child's
        sum. A leaf of value 0 is never returned, even when rounding puts ``m`` at the very end.
        """
        mass = np.array(mass, dtype=np.float64).ravel()
        node = np.ones(mass.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = node << 1
            left_sum = self.nodes[left]
            right = mass >= left_sum
            # a right child of mass 0 can only be reached through rounding: stay left then
            right &= self.nodes[left + 1] > 0.0
            mass -= np.where(right, left_sum, 0.0)
            node = left + right
        return node - self.n_leaves
