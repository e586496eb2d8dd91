"""Benchmark: Projected PPO against plain PPO, env steps per second in the same run, and the projection's
share of the step time.

Both run :func:`sport_ppo.loop.run_job` in this process on the certified scenario of the committed
Experiment 1 certificate (the paper's layout, 5 Hz, level 5), with the same actor (the certified base's
weights), critic, hyperparameters (the paper's: 128-step rollouts, 4 × 4 minibatch epochs) and episode
seeds; no warm-up. Plain PPO acts with the task policy; Projected PPO projects (base, task) in one batched
``gaussian-kl`` call per env step (α = ``--alpha``) and acts with the projection. The projection's share is
the wall time inside ``project`` over the training loop's time (rollouts and updates), measured with a timing
wrapper around the component's ``project`` in the same run. Set-up (building the envs: each compiles its
MuJoCo model once, ≈ 1 s) is reported apart, and the numba kernel is compiled before timing.

Prints one JSON line per ``num_envs`` with both rates, their ratio, the projection's share, the per-call
projection time, and the machine record (``benchmarks/machine.py``: CPU model, SIMD flags, torch build and
threads, load); also appends them to ``benchmarks/results/ppo.jsonl`` (``$SPORT_BENCH_RESULTS`` names another
folder; ``-``: print only).
Run: ``.venv/bin/python benchmarks/ppo.py [--steps 4096] [--num-envs 1 8]``.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SPORT_NO_PROGRESS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from machine import emit

from sport_core.certificates import env_maker_from_certificate, read_certificate
from sport_core.plugins import load_plugin_manager
from sport_core.seeding import stage_seeds
from sport_core.weights import load_card, load_policy
from sport_ppo.config import ProjectedPPOConfig
from sport_ppo.loop import Job, run_job

ROOT = Path(__file__).resolve().parents[1]
EXP1 = ROOT / "artifacts" / "exp1-seed0"
CERT = EXP1 / "certify-20261125-191746" / "certify-base" / "certificate.json"
BASE = EXP1 / "base-20261125-183948" / "base" / "policy.safetensors"


class TimedProjection:
    """Wraps a projection component; counts calls and the seconds spent in ``project``."""

    def __init__(self, inner) -> None:
        self.inner, self.seconds, self.calls = inner, 0.0, 0

    @property
    def fallbacks(self) -> int:
        return self.inner.fallbacks

    @fallbacks.setter
    def fallbacks(self, value: int) -> None:
        self.inner.fallbacks = value

    @property
    def config(self):
        return self.inner.config

    def project(self, base, task, alpha):
        t = time.perf_counter()
        out = self.inner.project(base, task, alpha)
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return out

    def max_log_ratio(self, p, b):
        return self.inner.max_log_ratio(p, b)


def train(pm, cert, base, config, alpha, projection, tmp: Path) -> tuple[float, float]:
    """(env steps per second over the rollouts and updates, seconds of set-up: envs built, first resets).

    Building an env compiles its MuJoCo model (≈ 1 s each), so set-up is timed apart from the loop; the
    loop's time is the sum of the per-rollout windows (``perf/steps_per_s`` covers a rollout and its update)."""
    job = Job(
        stage="bench",
        tag="",
        config=config,
        env_maker=env_maker_from_certificate(cert, pm.registry),
        actor=copy.deepcopy(base).requires_grad_(True),
        card=load_card(BASE),
        seeds=stage_seeds(0, "bench", ("init", "update", "episodes")),
        checkpoint_dir=tmp / "ck",
        out_dir=tmp / "out",
        resume=False,
        context={},
        alpha=alpha,
        base=base if alpha is not None else None,
        projection=projection,
        horizon=None,
    )
    start = time.perf_counter()
    result = run_job(job)
    total = time.perf_counter() - start
    per_rollout = config.num_steps * config.num_envs
    loop = sum(per_rollout / m["perf/steps_per_s"] for _, m in result.metrics)
    return result.summary["steps"] / loop, total - loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4096, help="env steps per run")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--alpha", type=float, default=1.2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pm = load_plugin_manager()
    cert = read_certificate(CERT)
    base = load_policy(BASE, pm.registry).requires_grad_(False)
    component = pm.registry.get("projection", "gaussian-kl")
    for n in args.num_envs:
        config = ProjectedPPOConfig(total_steps=args.steps, warmup_steps=0, num_envs=n, checkpoint_every=10**9)
        with tempfile.TemporaryDirectory() as tmp:
            plain, plain_setup = train(pm, cert, base, config, None, None, Path(tmp) / "plain")
            timed = TimedProjection(component.build(component.config_cls()))
            with torch.no_grad():  # compile the numba kernel before timing (a one-off ≈ 1 s per process)
                timed.inner.project(base(torch.zeros(n, 44)), base(torch.zeros(n, 44)), args.alpha)
            projected, projected_setup = train(pm, cert, base, config, args.alpha, timed, Path(tmp) / "projected")
        total = args.steps / projected
        row = {
            "benchmark": "ppo",
            "measure": "env_steps_per_s",
            "env": cert["env"]["id"],
            "num_envs": n,
            "steps": args.steps,
            "alpha": args.alpha,
            "ppo": round(plain, 1),
            "projected_ppo": round(projected, 1),
            "ratio": round(projected / plain, 3),
            "projection_share": round(timed.seconds / total, 4),
            "projection_us_per_call": round(1e6 * timed.seconds / max(timed.calls, 1), 1),
            "projection_calls": timed.calls,
            "setup_seconds": {"ppo": round(plain_setup, 1), "projected_ppo": round(projected_setup, 1)},
        }
        emit("ppo", row)


if __name__ == "__main__":
    main()
