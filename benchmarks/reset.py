"""Benchmark: the model-reusing reset against safety-gymnasium's stock reset, in the same run.

On the level-5 5 Hz env (``SafetyPointReachAvoidLowFreqCurriculum5-v0``), one process, one env per path:

"Stock" is safety-gymnasium's own code (``fast_reset=False, fast_step=False``); "fast" is our default.

1. ``reset``: wall time of one ``reset(seed=i)`` with a new random layout each time, and with the paper's
   fixed layout; stock (recompiles the MJCF every reset) vs ours (compiles once). Each env is reset once
   before timing, so our first-reset compile is not counted (it is the same as one stock reset).
2. ``episodes``: full-episode throughput with 14-step episodes (the length of a good base policy's): reset,
   then 14 steps of a fixed action sequence that neither reaches the goal nor the hazard from the paper
   layout, stock vs ours; episodes/s and env steps/s.

Targets (issue 8): reset ≤ 1 ms, episode throughput ≥ 100× stock. The stock path costs ≈ 1 s per reset, so it
is timed over fewer repetitions (``--stock-n``); the output gives the counts. Each measurement prints one
JSON line, with the machine record (``benchmarks/machine.py``: cores, load average now and at start, ...), and
appends it to ``benchmarks/results/reset.jsonl`` (``$SPORT_BENCH_RESULTS`` names another folder; ``-``: print
only). Run: ``.venv/bin/python benchmarks/reset.py [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from machine import emit

import sport_safety_gym as sgm

ENV_ID = "SafetyPointReachAvoidLowFreqCurriculum5-v0"
EPISODE_STEPS = 14


def time_resets(env, seeds: list[int]) -> float:
    """Mean seconds per reset over ``seeds``."""
    start = time.perf_counter()
    for seed in seeds:
        env.reset(seed=seed)
    return (time.perf_counter() - start) / len(seeds)


def time_episodes(env, n: int, actions: np.ndarray) -> tuple[float, int]:
    """Seconds for ``n`` episodes of ``len(actions)`` steps (fewer if one ends early) and the steps taken."""
    steps = 0
    start = time.perf_counter()
    for i in range(n):
        env.reset(seed=i)
        for action in actions:
            steps += 1
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
    return time.perf_counter() - start, steps


def bench_reset(layout: str, stock_n: int, fast_n: int) -> dict:
    stock = sgm.make(ENV_ID, layout=layout, fast_reset=False, fast_step=False)
    fast = sgm.make(ENV_ID, layout=layout)
    stock.reset(seed=10**6)
    fast.reset(seed=10**6)
    stock_s = time_resets(stock, list(range(stock_n)))
    fast_s = time_resets(fast, list(range(fast_n)))
    return {
        "benchmark": "reset",
        "env": ENV_ID,
        "layout": layout,
        "stock_ms_per_reset": 1e3 * stock_s,
        "fast_ms_per_reset": 1e3 * fast_s,
        "speedup": stock_s / fast_s,
        "stock_resets_timed": stock_n,
        "fast_resets_timed": fast_n,
        "fast_compiles": fast.compiles,
        "target_fast_ms_per_reset": 1.0,
    }


def bench_episodes(stock_n: int, fast_n: int) -> dict:
    # standing still from the paper layout: no goal, no violation, so every episode is exactly 14 steps
    actions = np.zeros((EPISODE_STEPS, 2))
    stock = sgm.make(ENV_ID, layout="paper", fast_reset=False, fast_step=False)
    fast = sgm.make(ENV_ID, layout="paper")
    stock.reset()
    fast.reset()
    stock_s, stock_steps = time_episodes(stock, stock_n, actions)
    fast_s, fast_steps = time_episodes(fast, fast_n, actions)
    assert stock_steps == stock_n * EPISODE_STEPS and fast_steps == fast_n * EPISODE_STEPS
    return {
        "benchmark": "episodes",
        "env": ENV_ID,
        "steps_per_episode": EPISODE_STEPS,
        "stock_episodes_per_s": stock_n / stock_s,
        "fast_episodes_per_s": fast_n / fast_s,
        "stock_env_steps_per_s": stock_steps / stock_s,
        "fast_env_steps_per_s": fast_steps / fast_s,
        "speedup": (fast_n / fast_s) / (stock_n / stock_s),
        "stock_episodes_timed": stock_n,
        "fast_episodes_timed": fast_n,
        "target_speedup": 100.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (a smoke run)")
    parser.add_argument("--stock-n", type=int, default=10, help="stock resets / episodes to time")
    parser.add_argument("--fast-n", type=int, default=2000, help="fast resets / episodes to time")
    args = parser.parse_args()
    stock_n, fast_n = (2, 100) if args.quick else (args.stock_n, args.fast_n)
    for layout in ("random", "paper"):
        emit("reset", bench_reset(layout, stock_n, fast_n))
    emit("reset", bench_episodes(stock_n, fast_n))


if __name__ == "__main__":
    main()
