"""Benchmark: the Gaussian safety layer against the reference's per-state CVXPY loop, in the same run.

Baseline: the reference projects one state at a time with a parametrised CVXPY problem, built once and
re-solved for every row (:class:`sport_projection.cvxpy_reference.CvxpyGaussianProjection`, CVXPY's default
solver). It is timed on a subsample of rows (``--cvxpy-rows``, after one warm-up solve) and reported per row;
ours is timed on the whole batch. Measurements (one JSON line each):

1. ``batch``: B = 65 536 rows, d = 2 and d = 10: per-row time of :func:`sport_projection.project` with the
   numba kernel and with the batched torch solver (CPU, eager), the CVXPY per-row time, the speed-ups, and
   on the subsample the largest KL excess of ours over CVXPY and our largest constraint excess. Times are
   wall clock; the ``cpu_*`` fields repeat them in process CPU time, which other jobs on a shared machine
   disturb less.
2. ``latency``: one call of ``project`` at B = 1 (the acting path of a rollout step) and at B = 128 / 512
   (PPO minibatches), median over repeated calls, against the CVXPY loop's time for the same rows.

Instances: μb ~ N(0, 1), σb = exp(0.5·N), μt = μb + σb·N·exp(U(−2, 1)), τ = σb·exp(0.6·N) (task stds both
below and above the base's), α log-uniform in [1.0001, 100]. Torch runs with one thread (the two vCPUs of
these machines give one core of throughput). Each line carries the machine record (``benchmarks/machine.py``)
and is appended to ``benchmarks/results/projection.jsonl`` (``$SPORT_BENCH_RESULTS`` names another folder;
``-``: print only). Run: ``.venv/bin/python benchmarks/projection.py [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from machine import emit

from sport_projection import max_log_ratio, project
from sport_projection.cvxpy_reference import CvxpyGaussianProjection, gaussian_kl


def instances(n: int, d: int, seed: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    rng = np.random.default_rng(seed)
    mb = rng.normal(size=(n, d))
    sb = np.exp(0.5 * rng.normal(size=(n, d)))
    mt = mb + sb * rng.normal(size=(n, d)) * np.exp(rng.uniform(-2, 1, size=(n, 1)))
    st = sb * np.exp(0.6 * rng.normal(size=(n, d)))
    alpha = np.exp(rng.uniform(math.log(1.0001), math.log(100), size=n))
    return [torch.from_numpy(a) for a in (mb, sb, mt, st)], torch.from_numpy(alpha)


def best_time(fn, repeats: int) -> tuple[float, float]:
    """Best wall-clock and best CPU (process) seconds over ``repeats`` calls."""
    wall = cpu = math.inf
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


def cvxpy_rows(params, alpha, rows: int) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Wall and CPU seconds per row of the per-state CVXPY loop on the first ``rows`` rows, and its (mu, std)."""
    mb, sb, mt, st = (p[:rows].numpy() for p in params)
    a = alpha[:rows].numpy()
    problem = CvxpyGaussianProjection(mb.shape[1])
    problem.solve(mb[0], sb[0], mt[0], st[0], a[0])  # warm-up: the first solve compiles the problem
    out_m, out_s = np.empty_like(mb), np.empty_like(sb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "solution may be inaccurate" on a few rows
        w0, c0 = time.perf_counter(), time.process_time()
        for i in range(rows):
            out_m[i], out_s[i] = problem.solve(mb[i], sb[i], mt[i], st[i], a[i])
        wall, cpu = (time.perf_counter() - w0) / rows, (time.process_time() - c0) / rows
    return wall, cpu, out_m, out_s


def bench_batch(n: int, d: int, cvxpy_n: int, repeats: int) -> dict:
    params, alpha = instances(n, d, seed=d)
    project(*[p[:8] for p in params], alpha[:8], backend="numba")  # load the compiled kernel
    numba_s, numba_cpu = best_time(lambda: project(*params, alpha, backend="numba"), repeats)
    torch_s, torch_cpu = best_time(lambda: project(*params, alpha, backend="torch"), max(1, repeats // 2))
    mu, std, info = project(*params, alpha, backend="numba", return_info=True)
    cvx_row_s, cvx_row_cpu, cm, cs = cvxpy_rows(params, alpha, cvxpy_n)
    mt, st = params[2][:cvxpy_n].numpy(), params[3][:cvxpy_n].numpy()
    kl_excess = gaussian_kl(mu[:cvxpy_n].numpy(), std[:cvxpy_n].numpy(), mt, st) - gaussian_kl(cm, cs, mt, st)
    excess = max_log_ratio(mu, std, params[0], params[1]) - torch.log(alpha)
    counts = info.counts
    return {
        "benchmark": "projection.batch",
        "B": n,
        "d": d,
        "numba_us_per_row": numba_s / n * 1e6,
        "torch_us_per_row": torch_s / n * 1e6,
        "baseline_cvxpy_ms_per_row": cvx_row_s * 1e3,
        "baseline_cvxpy_rows_timed": cvxpy_n,
        "speedup_numba_vs_cvxpy": cvx_row_s / (numba_s / n),
        "speedup_torch_vs_cvxpy": cvx_row_s / (torch_s / n),
        "cpu_numba_us_per_row": numba_cpu / n * 1e6,
        "cpu_torch_us_per_row": torch_cpu / n * 1e6,
        "cpu_baseline_cvxpy_ms_per_row": cvx_row_cpu * 1e3,
        "cpu_speedup_numba_vs_cvxpy": cvx_row_cpu / (numba_cpu / n),
        "projected_rows": counts["projected"],
        "task_rows": counts["task"],
        "fallbacks": info.fallbacks,
        "mean_newton_iterations": info.iterations / max(1, counts["projected"]),
        "max_constraint_excess": float(excess.max()),
        "max_kl_excess_over_cvxpy": float(kl_excess.max()),
    }


def bench_latency(batch: int, d: int, calls: int, cvxpy_n: int) -> dict:
    params, alpha = instances(max(batch, cvxpy_n), d, seed=100 + batch)
    rows = [p[:batch] for p in params]
    a = float(alpha[0]) if batch == 1 else alpha[:batch]
    result = {"benchmark": "projection.latency", "B": batch, "d": d, "calls": calls}
    for backend in ("numba", "torch"):
        project(*rows, a, backend=backend)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            project(*rows, a, backend=backend)
            times.append(time.perf_counter() - t0)
        result[f"{backend}_median_us"] = statistics.median(times) * 1e6
    cvx_row_s, _, _, _ = cvxpy_rows(params, alpha, cvxpy_n)
    result["baseline_cvxpy_median_us"] = cvx_row_s * batch * 1e6
    result["baseline_cvxpy_rows_timed"] = cvxpy_n
    result["speedup_numba_vs_cvxpy"] = result["baseline_cvxpy_median_us"] / result["numba_median_us"]
    result["speedup_torch_vs_cvxpy"] = result["baseline_cvxpy_median_us"] / result["torch_median_us"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--rows", type=int, default=65_536, help="batch size B of the throughput runs")
    parser.add_argument("--cvxpy-rows", type=int, default=300, help="rows timed in the CVXPY loop")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, cvxpy_n, repeats, calls = (4096, 30, 2, 200) if args.quick else (args.rows, args.cvxpy_rows, 5, 2000)
    for d in (2, 10):
        emit("projection", bench_batch(rows, d, cvxpy_n, repeats))
    for batch in (1, 128, 512):
        n_calls = calls if batch == 1 else max(20, calls // 20)
        emit("projection", bench_latency(batch, 2, n_calls, cvxpy_n))


if __name__ == "__main__":
    main()
