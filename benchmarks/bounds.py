"""Benchmark: the ε(T) curve and the episode store, each against a baseline in the same run.

1. ``epsilon_curve``: ε(T) for T = 1..1000 from N = 10⁶ episodes (β = 1e-7), vectorised Clopper–Pearson
   (:func:`sport_core.bounds.epsilon_curve`) against the reference code's method: for each distinct k,
   bisection on ε ∈ [0, 1] until the bracket is narrower than 1e-5, evaluating BinomCDF(k; N, ε) as a sum of
   exp(log C(N, i) + i log ε + (N − i) log(1 − ε)) over i = 0..k, and returning the bracket's upper end.
   (Our baseline computes the log-binomial coefficients with ``gammaln``, far faster than the reference's
   Python loops, so its time is a lower bound on the reference's serial time; the reference spreads the k
   values over a process pool, which divides it by at most the core count.) Bisecting every k would take
   minutes, so a systematic sample of the distinct k values is bisected and the total is extrapolated from
   the per-k times (the sample's k spread like the curve's); the output says how many were timed.
2. ``episode_store``: 10⁶ episodes appended one at a time to :class:`sport_core.episodes.EpisodeStore`
   (bytes per episode, append rate, read-back time), against one JSON line per episode (the rollout
   evaluator's format so far) and the reference's pickled dense N × (T + 1) boolean matrix (size measured on
   10⁴ rows with T = 1000 and scaled: it is written once at the end, so it has no append rate).

Each measurement prints one JSON line, with the machine record (``benchmarks/machine.py``), and appends it to
``benchmarks/results/bounds.jsonl`` (``$SPORT_BENCH_RESULTS`` names another folder; ``-``: print only).
Run: ``.venv/bin/python benchmarks/bounds.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from machine import emit
from scipy.special import gammaln

from sport_core.bounds import epsilon_curve, failures_by_horizon
from sport_core.collect import EpisodeRecord, outcome_of
from sport_core.episodes import EpisodeStore, read_episodes


def bisection_epsilon(k: int, n: int, beta: float, tol: float = 1e-5, it_max: int = 100) -> float:
    """The reference's method (re-implemented): bisection on log-space binomial sums; upper bracket end."""
    if k == 0:
        return 1.0 - beta ** (1.0 / n)
    if k == n:
        return 1.0
    i = np.arange(k + 1, dtype=np.float64)
    log_binom = gammaln(n + 1.0) - gammaln(i + 1.0) - gammaln(n - i + 1.0)
    lo, hi = 0.0, 1.0
    for _ in range(it_max):
        mid = 0.5 * (lo + hi)
        cdf = np.exp(log_binom + i * np.log(mid) + (n - i) * np.log1p(-mid)).sum()
        if cdf <= beta:
            hi = mid
        else:
            lo = mid
        if hi - lo <= tol:
            break
    return hi


def failure_curve(n: int, t_max: int) -> np.ndarray:
    """A k(T) curve with a distinct k at almost every T (the hard case for per-k methods): a slow decay."""
    return np.round(n * np.exp(-np.arange(1, t_max + 1) / 200.0)).astype(np.int64)


def bench_epsilon(n: int, t_max: int, beta: float, sample: int) -> dict:
    k = failure_curve(n, t_max)
    epsilon_curve(k, n, beta)  # warm-up
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        eps = epsilon_curve(k, n, beta)
        times.append(time.perf_counter() - t0)
    ours = float(np.median(times))

    unique = np.unique(k)
    picks = unique[np.linspace(0, unique.size - 1, min(sample, unique.size)).round().astype(int)]
    picks = np.unique(picks)
    lookup = dict(zip(k.tolist(), eps.tolist(), strict=False))
    per_k, diffs = [], []
    for kk in picks.tolist():
        t0 = time.perf_counter()
        value = bisection_epsilon(kk, n, beta)
        per_k.append(time.perf_counter() - t0)
        diffs.append(abs(value - lookup[kk]))
    baseline = float(np.mean(per_k) * unique.size)
    return {
        "benchmark": "epsilon_curve",
        "n": n,
        "t_max": t_max,
        "beta": beta,
        "ours_seconds": ours,
        "baseline": "per-k bisection on log-space binomial sums to tol 1e-5 (reference method), serial",
        "baseline_seconds": baseline,
        "baseline_extrapolated": bool(picks.size < unique.size),
        "baseline_timed_k": int(picks.size),
        "distinct_k": int(unique.size),
        "speedup": baseline / ours,
        "max_abs_difference": float(max(diffs)),
        "target": "speedup >= 100, max_abs_difference <= 2e-5",
    }


def _records(start: int, stop: int) -> list[EpisodeRecord]:
    out = []
    for i in range(start, stop):
        g = 10 + i % 9 if i % 23 else -1
        v = -1 if i % 17 else 5 + i % 4
        out.append(EpisodeRecord(i, 0, outcome_of(g, v), g, v, max(g, v, 30), 0.25 * (i % 7)))
    return out


def bench_store(n: int, directory: Path) -> dict:
    store_path = directory / "episodes.bin"
    jsonl_path = directory / "episodes.jsonl"
    append_s = jsonl_s = 0.0
    block = 100_000
    with EpisodeStore.open(store_path, seed=0, context="benchmark") as store, open(jsonl_path, "a") as fh:
        for start in range(0, n, block):
            records = _records(start, min(n, start + block))
            t0 = time.perf_counter()
            for r in records:
                store.append(r)
            append_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            for r in records:  # as the rollout evaluator wrote them: one flushed JSON line each
                fh.write(
                    json.dumps(
                        {
                            "index": r.index,
                            "seed": r.seed,
                            "outcome": r.outcome,
                            "goal_step": r.goal_step,
                            "violation_step": r.violation_step,
                            "length": r.length,
                            "ret": r.ret,
                        }
                    )
                    + "\n"
                )
                fh.flush()
            jsonl_s += time.perf_counter() - t0
    t0 = time.perf_counter()
    back = read_episodes(store_path, strict=True)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    failures_by_horizon(back.records, 1000)
    k_s = time.perf_counter() - t0
    assert len(back) == n

    # The reference's database: a dense boolean matrix N × (T + 1) plus int64 times, pickled; linear in N.
    rows, t_max = 10_000, 1000
    dense = {"scenario_data": np.zeros((rows, t_max + 1), dtype=bool), "times_taken": np.zeros(rows, dtype=int)}
    dense_bytes_per_episode = len(pickle.dumps(dense, pickle.HIGHEST_PROTOCOL)) / rows
    result = {
        "benchmark": "episode_store",
        "episodes": n,
        "ours_bytes_per_episode": store_path.stat().st_size / n,
        "ours_total_mb": store_path.stat().st_size / 2**20,
        "ours_append_per_second": n / append_s,
        "ours_read_seconds": read_s,
        "failures_by_horizon_seconds": k_s,
        "baseline_jsonl_bytes_per_episode": jsonl_path.stat().st_size / n,
        "baseline_jsonl_append_per_second": n / jsonl_s,
        "baseline_reference_pickle_bytes_per_episode_t1000": dense_bytes_per_episode,
        "target": "<= 32 bytes per episode, 10^6 episodes well under 50 MB",
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--sample", type=int, default=40, help="distinct k values to bisect for the baseline")
    args = parser.parse_args()
    n = 10_000 if args.quick else 1_000_000
    emit("bounds", bench_epsilon(n, 1000, 1e-7, 10 if args.quick else args.sample))
    with tempfile.TemporaryDirectory(prefix="sport-bench-") as tmp:
        emit("bounds", bench_store(n, Path(tmp)))


if __name__ == "__main__":
    main()
