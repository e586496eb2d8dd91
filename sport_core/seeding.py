"""Per-episode random streams keyed by (seed, episode index).

Episode ``i`` of a run with seed ``s`` draws all of its randomness from streams derived from ``(s, i)``
with :class:`numpy.random.SeedSequence`, so its outcome does not depend on which worker runs it or on how
many workers there are, and episode ``i`` under every α uses the same random numbers (common random numbers).
A ``purpose`` separates independent streams of one episode (e.g. the env layout and the policy's noise).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch

PURPOSES = {"policy": 0, "env": 1, "other": 2}


def episode_seed(seed: int, index: int, purpose: str = "policy") -> int:
    """A 63-bit integer seed for stream ``purpose`` of episode ``index`` under run seed ``seed``."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and episode index must be non-negative, got seed={seed}, index={index}")
    ss = np.random.SeedSequence(entropy=seed, spawn_key=(index, PURPOSES[purpose]))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def numpy_rng(seed: int, index: int, purpose: str = "policy") -> np.random.Generator:
    """The numpy generator of stream ``purpose`` of episode ``index``."""
    return np.random.Generator(np.random.PCG64(episode_seed(seed, index, purpose)))


def torch_generator(seed: int, index: int, purpose: str = "policy") -> torch.Generator:
    """The (CPU) torch generator of stream ``purpose`` of episode ``index``."""
    g = torch.Generator()
    g.manual_seed(episode_seed(seed, index, purpose))
    return g


def stage_seeds(run_seed: int, stage: str, names: Sequence[str]) -> dict[str, int]:
    """Independent 63-bit seeds ``names`` of one stage, derived from the run seed and the stage's name.

    Word j comes from ``SeedSequence(run_seed, spawn_key=(crc32(stage),)).generate_state(len(names))[j] >> 1``;
    since a SeedSequence's first words do not depend on how many are asked for, adding a name at the end
    leaves the others unchanged. Two stages of one run get unrelated streams; the same stage in two runs
    with the same seed gets the same ones.
    """
    ss = np.random.SeedSequence(entropy=run_seed, spawn_key=(zlib.crc32(stage.encode()),))
    words = ss.generate_state(len(names), np.uint64) >> np.uint64(1)
    return {name: int(w) for name, w in zip(names, words, strict=True)}
