"""Benchmark: episode collection on the level-5 5 Hz safety-gymnasium env, baselines in the same run.

1. ``single_env``: env steps/s of one 5 Hz env, stepping only (the continue-on-violation variant from the
   paper layout with zero actions, so every episode runs its 100 steps; resets are not timed), our step vs
   safety-gymnasium's own (``fast_step=False``).
2. ``collect_scaling``: :func:`sport_core.collect.collect` with the ``process`` executor, 1 worker vs every
   core, same episodes (fixed paper layout, a noisy scripted lidar controller): env steps/s and speed-up
   (issue 4's target: ≥ 1.7× on 2 cores). Pools are started and their envs compiled before timing. As a
   baseline of what the machine gives at that moment, the same pools also run a pure-Python CPU loop
   (``cpu_baseline_speedup``): on a shared machine the two numbers should be read together.
3. ``certification``: the wall time of a certification-like collection, ``--episodes`` (1000) episodes of
   the fixed paper layout on every core, with our reset and step vs safety-gymnasium's own. The stock reset
   recompiles the model every episode (≈ 1 s), so it is timed on ``--stock-episodes`` episodes and
   extrapolated linearly (the output says so); both are extrapolated to 10 001 episodes (the paper's N).

Each measurement prints one JSON line, with the machine record (``benchmarks/machine.py``: cores, load average
now and at start, ...), and appends it to ``benchmarks/results/collect.jsonl`` (``$SPORT_BENCH_RESULTS`` names
another folder; ``-``: print only). Run: ``.venv/bin/python benchmarks/collect.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from machine import emit

import sport_safety_gym as sgm
from sport_core.collect import collect
from sport_executors.executors import ProcessConfig, ProcessExecutor
from sport_safety_gym.scripted import LidarGoalSeeker

ENV_ID = "SafetyPointReachAvoidLowFreqCurriculum5-v0"
PAPER_EPISODES = 10_001


def actor() -> LidarGoalSeeker:
    """≈ 16-step episodes on the paper layout, mostly goals (a stand-in for a trained base policy)."""
    return LidarGoalSeeker(noise_std=0.1)


def maker(fast: bool = True) -> sgm.SafetyGymMaker:
    """The paper's certification env; ``fast=False`` is safety-gymnasium's own reset and step."""
    return sgm.SafetyGymMaker(sgm.SafetyGymConfig(id=ENV_ID, layout="paper", fast_reset=fast, fast_step=fast))


def steps_per_second(env, steps: int) -> float:
    action = np.zeros(2)
    env.reset()
    elapsed, done = 0.0, 0
    while done < steps:
        start = time.perf_counter()
        for _ in range(100):
            env.step(action)
        elapsed += time.perf_counter() - start
        done += 100
        env.reset()
    return done / elapsed


def bench_single_env(steps: int) -> dict:
    env_id = "SafetyPointReachAvoidLowFreqResetGoalCurriculum5-v0"
    fast = steps_per_second(sgm.make(env_id, layout="paper"), steps)
    stock = steps_per_second(sgm.make(env_id, layout="paper", fast_step=False), steps)
    return {
        "benchmark": "single_env",
        "env": env_id,
        "env_steps_per_s": fast,
        "stock_step_env_steps_per_s": stock,
        "speedup": fast / stock,
        "steps_timed": steps,
        "note": "5 Hz: 100 physics steps of 0.002 s per env step; resets excluded",
    }


def warm(executor: ProcessExecutor, env_maker: sgm.SafetyGymMaker) -> float:
    """Start the pool and build (compile) the env in every worker; returns the seconds it took."""
    start = time.perf_counter()
    collect(actor(), env_maker, range(10**6, 10**6 + 4 * executor.workers), 0, executor, chunk_size=1)
    return time.perf_counter() - start


def spin(n: int) -> int:
    """Pure-Python CPU work (the machine-capacity baseline)."""
    total = 0
    for i in range(n):
        total += i
    return total


def timed_spin(executor: ProcessExecutor, tasks: int = 8, n: int = 5_000_000) -> float:
    start = time.perf_counter()
    list(executor.map(spin, [n] * tasks))
    return time.perf_counter() - start


def timed_collect(executor: ProcessExecutor, env_maker: sgm.SafetyGymMaker, episodes: int, seed: int):
    start = time.perf_counter()
    records = collect(actor(), env_maker, episodes, seed, executor)
    return time.perf_counter() - start, records


def bench_scaling(episodes: int) -> dict:
    result = {"benchmark": "collect_scaling", "env": ENV_ID, "layout": "paper", "episodes": episodes}
    steps, spins = {}, {}
    for workers in (1, os.cpu_count() or 1):
        executor = ProcessExecutor(ProcessConfig(workers=workers))
        try:
            startup = warm(executor, maker())
            wall, records = timed_collect(executor, maker(), episodes, seed=0)
            spins[workers] = timed_spin(executor)
        finally:
            executor.close()
        steps[workers] = sum(r.length for r in records) / wall
        result[f"workers_{workers}_env_steps_per_s"] = steps[workers]
        result[f"workers_{workers}_episodes_per_s"] = episodes / wall
        result[f"workers_{workers}_startup_s"] = startup
    result["speedup"] = steps[max(steps)] / steps[1]
    result["target_speedup"] = 1.7
    result["cpu_baseline_speedup"] = spins[1] / spins[max(spins)]
    return result


def bench_certification(episodes: int, stock_episodes: int) -> dict:
    workers = os.cpu_count() or 1
    out = {"benchmark": "certification", "env": ENV_ID, "layout": "paper", "workers": workers}
    for name, fast_reset, n in (("fast", True, episodes), ("stock", False, stock_episodes)):
        executor = ProcessExecutor(ProcessConfig(workers=workers))
        try:
            startup = warm(executor, maker(fast_reset))
            wall, records = timed_collect(executor, maker(fast_reset), n, seed=0)
        finally:
            executor.close()
        lengths = [r.length for r in records]
        out[f"{name}_episodes_timed"] = n
        out[f"{name}_wall_s"] = wall
        out[f"{name}_startup_s"] = startup
        out[f"{name}_mean_episode_length"] = statistics.fmean(lengths)
        out[f"{name}_goal_fraction"] = sum(r.outcome == "goal" for r in records) / n
        out[f"{name}_wall_s_for_{episodes}_episodes"] = wall * episodes / n
        out[f"{name}_wall_s_for_{PAPER_EPISODES}_episodes"] = wall * PAPER_EPISODES / n
    out["stock_extrapolated_from"] = f"{stock_episodes} measured episodes (linear in the episode count)"
    out["fast_extrapolated_to_10001_from"] = f"{episodes} measured episodes"
    out["speedup"] = out[f"stock_wall_s_for_{episodes}_episodes"] / out["fast_wall_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--episodes", type=int, default=1000, help="certification episodes with our reset")
    parser.add_argument("--stock-episodes", type=int, default=60, help="certification episodes, stock reset")
    parser.add_argument("--scaling-episodes", type=int, default=600)
    parser.add_argument(
        "--only", default="single_env,collect_scaling,certification", help="comma-separated measurements to run"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    if args.quick:
        args.episodes, args.stock_episodes, args.scaling_episodes = 100, 6, 100
    if "single_env" in only:
        emit("collect", bench_single_env(2000 if args.quick else 20_000))
    if "collect_scaling" in only:
        emit("collect", bench_scaling(args.scaling_episodes))
    if "certification" in only:
        emit("collect", bench_certification(args.episodes, args.stock_episodes))


if __name__ == "__main__":
    main()
