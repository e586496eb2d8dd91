"""Benchmark: what filming an episode costs per frame, against the same episode unfilmed, in the same run.

On the paper's env (``SafetyPointReachAvoidLowFreqCurriculum5-v0``, the paper's fixed layout, 5 Hz, 100-step
episodes) with random actions, one process:

* ``plain``: reset + steps, no filming (the baseline);
* ``camera``: the same episodes through :class:`sport_core.filming.EpisodeCamera` with MuJoCo's offscreen
  renderer (camera ``fixedfar``) at each size, through the OpenGL backend
  :func:`sport_safety_gym.rendering.ensure_gl_backend` picks (recorded in the row);
* ``topdown``: the same with the top-down drawing (:mod:`sport_core.drawing`, no OpenGL);
* ``encode``: writing the frames as H.264 MP4 (:func:`sport_core.video.write_video`).

Per-frame cost = (filmed seconds − plain seconds) / frames, so the env's own stepping is not counted. The env
compile and the GL context creation happen in a warm-up episode before timing. Each measurement prints a
JSON line with the machine record (``benchmarks/machine.py``) and appends it to
``benchmarks/results/video.jsonl``. Run: ``.venv/bin/python benchmarks/video.py [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from machine import emit

from sport_core.filming import EpisodeCamera, filming_env
from sport_core.video import VideoConfig, write_video
from sport_safety_gym.maker import SafetyGymConfig, SafetyGymMaker
from sport_safety_gym.rendering import ensure_gl_backend

ENV_ID = "SafetyPointReachAvoidLowFreqCurriculum5-v0"


def episodes(env, n: int, film: bool) -> tuple[float, int, list[np.ndarray]]:
    """Seconds for ``n`` random-action episodes, frames taken, and the last episode's frames."""
    rng = np.random.default_rng(0)
    frames_total, last = 0, None
    start = time.perf_counter()
    for i in range(n):
        if film:
            env.arm()
        env.reset(seed=i)
        while True:
            _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 2))
            if terminated or truncated:
                break
        if film:
            last = env.take()
            frames_total += len(last)
    return time.perf_counter() - start, frames_total, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 episodes per path instead of 6")
    args = parser.parse_args()
    n = 2 if args.quick else 6
    backend = ensure_gl_backend()
    maker = SafetyGymMaker(SafetyGymConfig(id=ENV_ID, layout="paper"))
    plain_env = maker.make()
    episodes(plain_env, 1, False)
    plain_s, _, _ = episodes(plain_env, n, False)
    plain_steps = n * 100
    common = {"env": ENV_ID, "episodes": n, "gl_backend": backend, "mujoco_gl": os.environ.get("MUJOCO_GL")}
    for source, sizes in (("camera", [(256, 256), (640, 480)]), ("topdown", [(256, 256), (640, 480)])):
        for size in sizes:
            config = VideoConfig(every=1, source=source, size=size)
            env = EpisodeCamera(filming_env(maker, config), config)
            episodes(env, 1, True)  # compile, GL context
            filmed_s, frames, last = episodes(env, n, True)
            per_frame = (filmed_s - plain_s * frames / (plain_steps + n)) / frames
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                write_video(Path(tmp) / "v.mp4", last, fps=5)
                encode = (time.perf_counter() - t0) / len(last)
            emit(
                "video",
                {
                    **common,
                    "source": source,
                    "size": list(size),
                    "frames": frames,
                    "plain_step_ms": round(1000 * plain_s / plain_steps, 4),
                    "frame_ms": round(1000 * per_frame, 3),
                    "encode_frame_ms": round(1000 * encode, 3),
                    "slowdown_when_every_episode_is_filmed": round(filmed_s / plain_s, 2),
                },
            )
            env.close()


if __name__ == "__main__":
    main()
