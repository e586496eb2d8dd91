"""Benchmark: SAC training speed (env steps per second, updates included) against Stable-Baselines3's SAC.

Same env (the level-5 5 Hz reach-avoid task with the base reward, model-reusing resets), same networks
(actor and twin critics 256×256 ReLU), batch 512, buffer 10⁵, one critic and one actor gradient step per env
step, one torch thread, all in this process. Both first fill the buffer with ``--warmup`` uniform random
steps (not timed), then ``--steps`` steps with learning are timed:

* ours: the real ``sac`` stage through the runner (env stepping, acting, replay, updates, curriculum and
  metric bookkeeping); its ``perf/steps_per_s`` over the timed window. Variants: the fused engine with the
  best matmul backend on uniform replay and SB3's schedule (actor every step: ``policy_delay = 1``, the
  like-for-like comparison), the paper's settings (``policy_delay = 2``, prioritized replay), the fused
  engine on the BLAS backend, the fused engine with public torch operators only (``private_ops = false``:
  BLAS products and ``Optimizer.step()``, no ``torch.ops.mkldnn`` or ``torch._fused_adam_``), and the plain
  autograd engine.
* SB3 2.3.2: ``SAC("MlpPolicy", ...)`` with ``train_freq = 1, gradient_steps = 1``; wall time of the timed
  steps measured by a callback.

Pairing: the shared machine's speed swings by tens of percent within seconds (a noisy neighbour), so a
sequential "ours, then SB3" run compares two different machines. ``--pairing concurrent`` (the default where
two cores are usable) runs ours and SB3 at the same time, each in its own process pinned to its own core, over
overlapping timed windows, twice with the cores swapped; the line gives each pair (rates, cores, the windows'
overlap) and the geometric mean of the pairs' ratios. ``--pairing sequential`` runs SB3, ours, SB3 one after
the other and divides by the faster SB3 run.

Then ``update_ms``: milliseconds per gradient update alone (critic + actor + α + targets) at batch 512 on
random data, ours per engine against SB3's ``train(gradient_steps=…)`` on its filled buffer, interleaved in
blocks of 5 updates (ours, SB3, ours, ...) in one process: medians of each side's block times and of the
blocks' ratios.

``--isa avx2`` measures an AVX2-only CPU on an AVX-512 one: the script restarts itself (once parsed) with
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2`` and numba's
``NUMBA_CPU_NAME=haswell NUMBA_CPU_FEATURES=+avx2,+fma`` (read when torch and its
libraries load; each line's ``isa_env`` shows them, its machine record ``torch_cpu_capability: AVX2``).

Each measurement prints one JSON line with ours, the SB3 baseline of the same run, the speed-up and the machine
record (``benchmarks/machine.py``), and appends it to ``benchmarks/results/sac.jsonl`` (``$SPORT_BENCH_RESULTS``
names another folder; ``-``: print only).
Run: ``.venv/bin/python benchmarks/sac.py [--quick] [--steps 1500] [--warmup 1000] [--env pointmass] [--isa avx2]
[--pairing concurrent|sequential]``. The machine is shared: the numbers are only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from queue import Empty

os.environ.setdefault("SPORT_NO_PROGRESS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from machine import cap_isa, emit, isa_caps

from sport_core.plugins import load_plugin_manager
from sport_core.recipe import validate
from sport_core.runner import Runner

ENVS = {
    "safety-gym": {
        "kind": "safety-gym",
        "id": "SafetyPointReachAvoidLowFreqCurriculum5-v0",
        "dense_reward": False,
        "goal_reward": 1.0,
        "violation_reward": -0.25,
        "fast_reset": True,
    },
    "pointmass": {"kind": "pointmass"},
}
VARIANTS = {
    "fused, uniform replay, actor every step (SB3's schedule)": {"prioritized_replay": False, "policy_delay": 1},
    "fused, prioritized replay, policy_delay 2 (the paper's)": {"prioritized_replay": True, "policy_delay": 2},
    "fused on the BLAS backend, uniform, actor every step": {
        "prioritized_replay": False,
        "policy_delay": 1,
        "matmul": "blas",
    },
    "fused with public torch operators only (BLAS, Optimizer.step()), uniform, actor every step": {
        "prioritized_replay": False,
        "policy_delay": 1,
        "private_ops": False,
    },
    "autograd engine, uniform, actor every step": {
        "prioritized_replay": False,
        "policy_delay": 1,
        "engine": "autograd",
    },
}


def ours_steps_per_s(pm, env: dict, warmup: int, steps: int, variant: dict, out: Path) -> float:
    """The ``sac`` stage's own steps/s over the ``steps`` env steps that follow ``warmup`` random ones."""
    return ours_timed(pm, env, warmup, steps, variant, out)[0]


def ours_timed(pm, env: dict, warmup: int, steps: int, variant: dict, out: Path) -> tuple[float, float, float]:
    """(steps/s, wall-clock start, end of the timed window) of the ``sac`` stage, as :func:`ours_steps_per_s`."""
    config = {
        "total_steps": warmup + steps,
        "learning_starts": warmup,
        "batch_size": 512,
        "buffer_size": 100_000,
        "log_every": math.gcd(warmup, steps),
        "checkpoint_every": 10**9,
        **variant,
    }
    data = {
        "run": {"name": "bench-sac", "seed": 0},
        "env": env,
        "executor": {"kind": "inline"},
        "loggers": [{"kind": "jsonl"}],
        "stages": [{"name": "sac", "trainer": "sac", "config": config}],
    }
    runner = Runner.create(validate(data, pm.registry), pm, out)
    runner.run()
    records = [json.loads(line) for line in (runner.run_dir / "metrics.jsonl").read_text().splitlines()]
    window = config["log_every"]
    timed = [
        r["scalars"]["perf/steps_per_s"] for r in records if r["step"] > warmup and "perf/steps_per_s" in r["scalars"]
    ]
    # each window has `window` steps; the harmonic mean of equal-length windows is the overall rate
    rate = len(timed) / sum(1.0 / s for s in timed) if timed and window else float("nan")
    start = next((r["time"] for r in records if r["step"] == warmup), records[0]["time"])
    return rate, start, records[-1]["time"]


def sb3_model(make_env, warmup: int, total: int):
    from stable_baselines3 import SAC

    return SAC(
        "MlpPolicy",
        make_env(),
        learning_rate=3e-4,
        buffer_size=100_000,
        learning_starts=warmup,
        batch_size=512,
        tau=0.005,
        gamma=0.99,
        train_freq=1,
        gradient_steps=1,
        ent_coef="auto_0.1",
        target_entropy=0.0,
        policy_kwargs={"net_arch": [256, 256]},
        device="cpu",
        seed=0,
        verbose=0,
    )


def sb3_steps_per_s(make_env, warmup: int, steps: int) -> tuple[float, object]:
    rate, _, _, model = sb3_timed(make_env, warmup, steps)
    return rate, model


def sb3_timed(make_env, warmup: int, steps: int) -> tuple[float, float, float, object]:
    """(steps/s, wall-clock start, end of the timed window, the trained model) of SB3's SAC."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Clock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.t0 = self.t1 = self.wall0 = self.wall1 = None

        def _on_step(self) -> bool:
            if self.num_timesteps == warmup:
                self.t0, self.wall0 = time.perf_counter(), time.time()
            elif self.num_timesteps == warmup + steps:
                self.t1, self.wall1 = time.perf_counter(), time.time()
            return True

    model = sb3_model(make_env, warmup, warmup + steps)
    clock = Clock()
    model.learn(total_timesteps=warmup + steps, callback=clock)
    return steps / (clock.t1 - clock.t0), clock.wall0, clock.wall1, model


def _pair_side(side: str, core: int, env_name: str, warmup: int, steps: int, variant: dict, barrier, queue) -> None:
    """One side of a concurrent pair, in its own process pinned to ``core``: build, wait for the other side,
    run, and report ``(side, steps/s, window start, window end)``."""
    os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    pm = load_plugin_manager()
    env_table = ENVS[env_name]
    with tempfile.TemporaryDirectory() as tmp:
        if side == "ours":
            barrier.wait()
            result = ours_timed(pm, env_table, warmup, steps, variant, Path(tmp))
        else:
            maker = env_maker_of(pm, env_table)
            barrier.wait()
            result = sb3_timed(maker.make, warmup, steps)[:3]
    queue.put((side, *result))


def concurrent_pairs(env_name: str, warmup: int, steps: int, variant: dict) -> list[dict]:
    """Ours and SB3 at the same time on two cores, twice with the cores swapped (see the module doc)."""
    cores = sorted(os.sched_getaffinity(0))[:2]
    ctx = multiprocessing.get_context("spawn")
    pairs = []
    for ours_core, sb3_core in (cores, cores[::-1]):
        barrier, queue = ctx.Barrier(2), ctx.Queue()
        procs = [
            ctx.Process(target=_pair_side, args=(side, core, env_name, warmup, steps, variant, barrier, queue))
            for side, core in (("ours", ours_core), ("sb3", sb3_core))
        ]
        for proc in procs:
            proc.start()
        got = _collect(procs, queue)
        (ours, o0, o1), (sb3, s0, s1) = got["ours"], got["sb3"]
        overlap = max(0.0, min(o1, s1) - max(o0, s0)) / max(1e-9, min(o1 - o0, s1 - s0))
        pairs.append(
            {
                "ours": round(ours, 1),
                "sb3": round(sb3, 1),
                "ratio": round(ours / sb3, 3),
                "ours_core": ours_core,
                "sb3_core": sb3_core,
                "overlap": round(overlap, 2),
            }
        )
    return pairs


def _collect(procs: list, queue) -> dict[str, tuple[float, float, float]]:
    """Each side's ``(steps/s, window start, end)`` from ``queue``. A side that dies first would leave the
    other waiting at the barrier for ever: stop both and exit with one line naming it."""
    got: dict[str, tuple[float, float, float]] = {}
    while len(got) < len(procs):
        try:
            side, *result = queue.get(timeout=2.0)
            got[side] = tuple(result)
        except Empty:
            dead = [(side, p.exitcode) for side, p in zip(("ours", "sb3"), procs, strict=True) if p.exitcode]
            if dead:
                for p in procs:
                    p.terminate()
                side, code = dead[0]
                raise SystemExit(
                    f"benchmarks/sac.py: the {side} process failed (exit code {code}); its traceback is above"
                ) from None
    for proc in procs:
        proc.join()
    return got


def env_maker_of(pm, env_table: dict):
    return validate(
        {"run": {"name": "x"}, "env": env_table, "stages": [{"name": "r", "evaluator": "rollout"}]}, pm.registry
    ).env.build(pm.registry)


def update_ms(pm, env_maker, repeats: int, sb3_model_filled) -> list[dict]:
    """ms per gradient update: ours per engine on random data of the env's sizes, SB3 on its filled buffer."""
    from sport_sac.critics import TwinCritic
    from sport_sac.learner import LearnerParams, SACLearner

    env = env_maker.make()
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    g = torch.Generator().manual_seed(0)
    batch = (
        torch.randn(512, obs_dim, generator=g),
        torch.rand(512, act_dim, generator=g) * 2 - 1,
        torch.randn(512, generator=g),
        torch.randn(512, obs_dim, generator=g),
        torch.zeros(512),
        None,
    )
    policy = pm.registry.get("policy", "gaussian-mlp")

    block = 5

    def interleaved(engine: str, matmul: str, private_ops: bool = True) -> tuple[float, float, float]:
        """Medians of ours' and SB3's ms per update and of their ratio, over blocks of ``block`` updates taken
        in turn (ours, SB3, ours, ...) so that both see the same moments of a shared machine."""
        torch.manual_seed(0)
        actor = policy.build()(obs_dim, act_dim, (1.0,) * act_dim, (0.0,) * act_dim)
        learner = SACLearner(
            actor,
            TwinCritic(obs_dim, act_dim),
            LearnerParams(policy_delay=1),
            torch.Generator().manual_seed(1),
            engine,
            matmul,
            private_ops=private_ops,
        )
        for _ in range(10):
            learner.update(*batch)
        sb3_model_filled.train(gradient_steps=10, batch_size=512)
        ours_ms, sb3_ms = [], []
        for _ in range(max(1, repeats // block)):
            t = time.perf_counter()
            for _ in range(block):
                learner.update(*batch)
            t1 = time.perf_counter()
            sb3_model_filled.train(gradient_steps=block, batch_size=512)
            t2 = time.perf_counter()
            ours_ms.append((t1 - t) / block * 1e3)
            sb3_ms.append((t2 - t1) / block * 1e3)
        ratio = statistics.median(b / a for a, b in zip(ours_ms, sb3_ms, strict=True))
        return statistics.median(ours_ms), statistics.median(sb3_ms), ratio

    rows = []
    from sport_sac.kernels import onednn_available

    engines = [("fused", "onednn", True)] if onednn_available() else []
    engines += [("fused", "blas", True), ("fused", "blas", False), ("autograd", "auto", True)]
    for engine, matmul, private_ops in engines:
        a, b, ratio = interleaved(engine, matmul, private_ops)
        name = f"{engine} engine" + (f", {matmul} matmul" if engine == "fused" else "")
        rows.append(
            {
                "benchmark": "sac",
                "measure": "update_ms",
                "batch": 512,
                "ours": round(a, 2),
                "ours_variant": name + ("" if private_ops else ", public torch operators only"),
                "sb3": round(b, 2),
                "speedup": round(ratio, 2),
                "pairing": f"interleaved blocks of {block} updates, medians",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", choices=sorted(ENVS), default="safety-gym")
    parser.add_argument("--warmup", type=int, default=1000, help="random steps before the timed window")
    parser.add_argument("--steps", type=int, default=1500, help="timed env steps with learning")
    parser.add_argument("--update-repeats", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="only the like-for-like variant")
    parser.add_argument("--isa", choices=("default", "avx2"), default="default", help="avx2: cap the ISA (see above)")
    two = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2
    parser.add_argument(
        "--pairing",
        choices=("concurrent", "sequential"),
        default="concurrent" if two else "sequential",
        help="env steps/s: ours and SB3 at the same time on two cores, or one after the other (see above)",
    )
    args = parser.parse_args()
    if args.pairing == "concurrent" and not two:
        parser.error("--pairing concurrent needs two usable cores")
    if args.isa == "avx2":
        cap_isa()
    torch.set_num_threads(1)
    pm = load_plugin_manager()
    env_table = ENVS[args.env]
    env_maker = env_maker_of(pm, env_table)
    variants = dict(list(VARIANTS.items())[:1]) if args.quick else VARIANTS
    isa_env = isa_caps()
    line = {
        "benchmark": "sac",
        "measure": "env_steps_per_s",
        "env": env_maker.env_id,
        "batch": 512,
        "hidden": [256, 256],
        "timed_steps": args.steps,
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.pairing == "concurrent":
            for name, variant in variants.items():
                pairs = concurrent_pairs(args.env, args.warmup, args.steps, variant)
                mean = statistics.geometric_mean(p["ratio"] for p in pairs)
                ours, sb3 = (statistics.fmean(p[k] for p in pairs) for k in ("ours", "sb3"))
                pairing = "concurrent: one core each, cores swapped between the two pairs; speedup = geometric mean"
                emit(
                    "sac",
                    {
                        **line,
                        "ours_variant": name,
                        "ours": round(ours, 1),
                        "sb3": round(sb3, 1),
                        "speedup": round(mean, 2),
                        "pairing": pairing,
                        "pairs": pairs,
                        "isa_env": isa_env,
                    },
                )
            model = sb3_steps_per_s(env_maker.make, args.warmup, 10)[1]  # a filled buffer for update_ms
        else:
            sb3_rate, model = sb3_steps_per_s(env_maker.make, args.warmup, args.steps)
            for name, variant in variants.items():
                ours = ours_steps_per_s(pm, env_table, args.warmup, args.steps, variant, Path(tmp))
                baseline, model = sb3_steps_per_s(env_maker.make, args.warmup, args.steps)
                sb3_rate = max(sb3_rate, baseline)  # the faster SB3 run so far: a conservative speed-up
                emit(
                    "sac",
                    {
                        **line,
                        "ours_variant": name,
                        "ours": round(ours, 1),
                        "sb3": round(sb3_rate, 1),
                        "speedup": round(ours / sb3_rate, 2),
                        "pairing": "sequential: SB3, ours, SB3; speedup against the faster SB3 run",
                        "isa_env": isa_env,
                    },
                )
        for row in update_ms(pm, env_maker, args.update_repeats, model):
            emit("sac", {**row, "isa_env": isa_env})


if __name__ == "__main__":
    main()
