"""Benchmark: where one SAC update's time goes, against the machine's own matmul rate, in the same run.

One gradient update (twin critics, actor, entropy coefficient, target critics) at batch 512 with the paper's
256×256 networks, one torch thread, on random data, for the ``fused`` and ``autograd`` engines
(``plugins/sport_sac/learner.py``):

* ``update_ms``: milliseconds per update (mean of ``--repeats`` after 10 warm-up updates);
* ``gflop``: floating-point operations of one update, counted by torch's profiler on the autograd engine's
  matrix products (``aten::mm``/``addmm``/``bmm``/``baddbmm``); the fused engine computes the same products;
* ``matmul_gflops``: this machine's rate for a 512×256 by 256×256 product (the update's dominant shape), the
  baseline; ``limit_ms = gflop / matmul_gflops`` is the update's time if it were all matmul at that rate,
  and ``of_limit = limit_ms / update_ms`` how close the update comes to it;
* ``own_gflop``, ``own_limit_ms``, ``own_of_limit``: the same for the products the engine itself computes
  (counted at its matmul calls: the fused engine forms no unused gradient, so it needs fewer FLOPs);
* ``top``: the operators with the most self time (``torch.profiler``), as percentages of the torch operators'
  time (the fused engine's numba passes, ``sport_sac.passes``, are not torch operators: the profiler does not
  see them).

``--isa avx2`` measures an AVX2-only CPU on an AVX-512 one: the script restarts itself (once parsed) with
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2`` and numba's
``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=+avx2,+fma`` (read when torch and its
libraries load; the machine record then shows ``torch_cpu_capability: AVX2`` and ``isa_env`` all five). Each
engine prints one JSON line with the machine record (``benchmarks/machine.py``) and appends it to
``benchmarks/results/sac_profile.jsonl``. Timings are wall clock: read them with the load average.
Run: ``.venv/bin/python benchmarks/sac_profile.py [--repeats 40] [--isa avx2]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("SPORT_NO_PROGRESS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from machine import cap_isa, emit, isa_caps

from sport_core.plugins import load_plugin_manager
from sport_sac.critics import TwinCritic
from sport_sac.learner import LearnerParams, SACLearner

BATCH = 512
OBS_DIM, ACT_DIM = 34, 2  # the paper env's sizes (SafetyPointReachAvoidLowFreqCurriculum5-v0)
MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def learner(pm, engine: str) -> SACLearner:
    torch.manual_seed(0)
    policy = pm.registry.get("policy", "gaussian-mlp").build()  # 256×256, as the benchmarks of sac.py
    actor = policy(OBS_DIM, ACT_DIM, (1.0,) * ACT_DIM, (0.0,) * ACT_DIM)
    params = LearnerParams(policy_delay=1)  # SB3's schedule: the actor every update
    return SACLearner(actor, TwinCritic(OBS_DIM, ACT_DIM), params, torch.Generator().manual_seed(1), engine)


def batch() -> tuple:
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(BATCH, OBS_DIM, generator=g),
        torch.rand(BATCH, ACT_DIM, generator=g) * 2 - 1,
        torch.randn(BATCH, generator=g),
        torch.randn(BATCH, OBS_DIM, generator=g),
        torch.zeros(BATCH),
        None,
    )


def own_flop(lrn: SACLearner, data: tuple) -> float:
    """FLOPs of the matrix products of one fused update, counted at its product calls (2·m·k·n each)."""
    count, in_linear = [0.0], [False]
    inner, torch_mm = lrn._fused.linear, torch.mm

    def linear(a, w, *args, **kwargs):  # a [m, k] @ wᵀ, w [n, k]
        count[0] += 2.0 * a.shape[0] * a.shape[1] * w.shape[0]
        in_linear[0] = True  # linear may itself call torch.mm (products without activation): count them once
        try:
            return inner(a, w, *args, **kwargs)
        finally:
            in_linear[0] = False

    def blas_mm(a, b, **kwargs):
        if not in_linear[0]:
            count[0] += 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
        return torch_mm(a, b, **kwargs)

    lrn._fused.linear, torch.mm = linear, blas_mm
    try:
        lrn.update(*data)
    finally:
        lrn._fused.linear, torch.mm = inner, torch_mm
    return count[0]


def matmul_gflops(repeats: int = 500) -> float:
    a, b = torch.randn(BATCH, 256), torch.randn(256, 256)
    for _ in range(20):
        a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * BATCH * 256 * 256 * repeats / (time.perf_counter() - t) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--isa", choices=("default", "avx2"), default="default", help="avx2: cap the ISA (see above)")
    args = parser.parse_args()
    if args.isa == "avx2":
        cap_isa()
    torch.set_num_threads(1)
    pm = load_plugin_manager()
    data = batch()
    flop = None
    rate = matmul_gflops()
    for engine in ("autograd", "fused"):  # autograd first: its profile counts the FLOPs
        lrn = learner(pm, engine)
        for _ in range(10):
            lrn.update(*data)
        t = time.perf_counter()
        for _ in range(args.repeats):
            lrn.update(*data)
        ms = 1000 * (time.perf_counter() - t) / args.repeats
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], with_flops=True) as prof:
            for _ in range(10):
                lrn.update(*data)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events) or 1
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:6]
        if engine == "autograd":
            flop = sum(e.flops for e in events if e.key in MATMUL_OPS) / 10
        own = flop if engine == "autograd" else own_flop(lrn, data)
        limit_ms, own_limit_ms = 1000 * flop / (rate * 1e9), 1000 * own / (rate * 1e9)
        emit(
            "sac_profile",
            {
                "engine": engine,
                "batch": BATCH,
                "hidden": [256, 256],
                "update_ms": round(ms, 2),
                "gflop": round(flop / 1e9, 3),
                "matmul_gflops": round(rate, 1),
                "limit_ms": round(limit_ms, 2),
                "of_limit": round(limit_ms / ms, 2),
                "own_gflop": round(own / 1e9, 3),
                "own_limit_ms": round(own_limit_ms, 2),
                "own_of_limit": round(own_limit_ms / ms, 2),
                "top": {e.key: round(100 * e.self_cpu_time_total / total, 1) for e in top},
                "isa_env": isa_caps(),
            },
        )


if __name__ == "__main__":
    main()
