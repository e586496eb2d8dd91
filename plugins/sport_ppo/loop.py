"""One PPO training job: rollouts, updates, checkpoints, metrics and the exported policy.

A job is everything one fine-tuning needs, picklable (pickled by the parent process, never read from a
file), so the ``projected-ppo`` α sweep sends one job per α through any executor (inline, process pool,
Ray) and the ``ppo`` trainer runs its single job in-process.

Loop: ``warmup_rollouts = ceil(warmup_steps / R)`` critic warm-up rollouts (actor frozen) then
``total_steps // R`` training rollouts, R = num_steps × num_envs. Each rollout acts with the job's actor
on the CPU — the task policy itself (``ppo``), or its projection onto the α-ratio set of the base, one
batched projection call per env step (``projected-ppo``) — storing obs, the pre-tanh sample x and its
behaviour log-density; then GAE and one :meth:`PPOLearner.update`.

Checkpoints (between updates, every ``checkpoint_every`` env steps) hold the learner (networks,
optimisers, shuffling generator), the env pool (episode indices, generator states, actions so far: the
envs are rebuilt by replay), the finished episodes and the metrics so far: a resumed job continues bit
for bit (CPU, one thread) and exports the same weights as an uninterrupted one.

Outputs in ``out_dir``: ``metrics.jsonl`` (one line per rollout, as it happens), ``policy.safetensors`` + model
card, ``training.bin`` (every finished training
episode, :mod:`sport_core.episodes` format) and, last and atomically, ``summary.json`` (the job's
``context``: an α whose summary matches is not trained again).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from sport_core.actors import ProjectedActor, sample_policy
from sport_core.artifacts import atomic_write_json, atomic_write_text, sha256_file
from sport_core.bounds import failures_by_horizon
from sport_core.checkpoint import clear_checkpoints, resume_checkpoint, save_checkpoint
from sport_core.devices import resolve_device
from sport_core.episodes import EpisodeStore
from sport_core.filming import TrainingCamera
from sport_core.finite import check_finite, check_parameters, stopped_hint
from sport_core.metrics import MetricsWindow
from sport_core.progress import progress_bar
from sport_core.tracking import OUTCOMES, EpisodeRecord
from sport_core.video import VideoConfig, VideoSink
from sport_core.weights import ModelCard, save_policy
from sport_ppo.envpool import EnvPool
from sport_ppo.learner import PPOLearner, ProjectedLogProb, ValueMLP, gae, task_log_prob

log = logging.getLogger("sport.ppo")
SUMMARY_FORMAT = "sport-ppo-job-v1"
#: What each array of a rollout batch is, as non-finite-number errors name it (sport_core.finite).
ROLLOUT_NAMES = {
    "obs": "an observation",
    "x": "the policy's action (pre-tanh sample)",
    "logp": "the policy's log-density",
    "adv": "an advantage (from rewards and values)",
    "ret": "a return (from rewards)",
    "values": "the critic's value",
}


@attrs.frozen(eq=False)
class Job:
    """One training run. ``alpha``/``base``/``projection`` are None for plain PPO. ``seeds`` has ``init``
    (critic initialisation), ``update`` (minibatch shuffling) and ``episodes`` (the episode streams).
    ``horizon``: count training failures by this T (None: do not). ``context``: what identifies the result."""

    stage: str
    tag: str
    config: Any
    env_maker: Any
    actor: torch.nn.Module
    card: ModelCard
    seeds: dict[str, int]
    checkpoint_dir: Path
    out_dir: Path
    resume: bool
    context: dict[str, Any]
    alpha: float | None = None
    base: torch.nn.Module | None = None
    projection: Any = None
    horizon: int | None = None
    video: VideoConfig | None = None  # film these training episodes (sport_core.video) into video_dir
    video_dir: Path | None = None  # the stage folder: videos go to <video_dir>/videos/<labels>/
    video_labels: dict[str, Any] = attrs.Factory(dict)  # the series they belong to (e.g. {"alpha": 1.5})


@attrs.frozen
class JobResult:
    """What a job sends back: its summary (also in ``summary.json``) and its metric records."""

    tag: str
    alpha: float | None
    summary: dict[str, Any]
    metrics: list[tuple[int, dict[str, float]]]


def finished_summary(out_dir: Path, context: dict[str, Any]) -> dict[str, Any] | None:
    """The summary of a job that already finished with this very ``context`` (its policy intact), else None."""
    path = Path(out_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("format") != SUMMARY_FORMAT or summary.get("context") != context:
        return None
    weights = Path(out_dir) / "policy.safetensors"
    if not weights.is_file() or sha256_file(weights) != summary.get("policy_sha256"):
        return None
    return summary


def _records_arrays(records: list[EpisodeRecord]) -> dict[str, np.ndarray]:
    return {
        "ep_index": np.array([r.index for r in records], dtype=np.int64),
        "ep_goal": np.array([r.goal_step for r in records], dtype=np.int64),
        "ep_violation": np.array([r.violation_step for r in records], dtype=np.int64),
        "ep_length": np.array([r.length for r in records], dtype=np.int64),
        "ep_return": np.array([r.ret for r in records], dtype=np.float64),
        "ep_outcome": np.array([OUTCOMES.index(r.outcome) for r in records], dtype=np.int64),
    }


def _records_from(arrays: dict[str, np.ndarray], seed: int) -> list[EpisodeRecord]:
    return [
        EpisodeRecord(int(i), seed, OUTCOMES[int(o)], int(g), int(v), int(n), float(r))
        for i, g, v, n, r, o in zip(
            arrays["ep_index"],
            arrays["ep_goal"],
            arrays["ep_violation"],
            arrays["ep_length"],
            arrays["ep_return"],
            arrays["ep_outcome"],
            strict=True,
        )
    ]


@attrs.define(eq=False)
class _Loop:
    """The loop state a checkpoint restores (besides learner and pool)."""

    step: int = 0
    rollouts: int = 0
    elapsed: float = 0.0
    records: list[EpisodeRecord] = attrs.Factory(list)
    metrics: list[tuple[int, dict[str, float]]] = attrs.Factory(list)
    fallbacks: int = 0
    warmup_episodes: int = 0  # episodes finished during the critic warm-up (acting with the initial actor)


def run_job(
    job: Job, log_scalars: Callable[[int, dict[str, float]], None] | None = None, events: Any = None
) -> JobResult:
    """Train (or resume) ``job`` to completion; ``log_scalars(step, scalars)`` sees each rollout's metrics
    as they come (in a worker process there is none: the parent logs :attr:`JobResult.metrics`). Filmed
    episodes are written under ``<stage>/videos/`` (:func:`sport_core.video.video_path` with the job's
    ``video_labels``) and, when ``events`` (``ctx.log``) is given, logged as they come; otherwise the parent logs
    them with :func:`sport_core.video.log_videos`."""
    cfg = job.config
    torch.set_num_threads(cfg.torch_threads)
    device = resolve_device(cfg.device, job.stage)
    obs_dim = job.card.obs_dim
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(job.seeds["init"])
        critic = ValueMLP(obs_dim, tuple(cfg.critic_hidden), cfg.critic_activation)
    actor = job.actor
    projected = job.alpha is not None
    if projected and cfg.through_projection:  # the learner's projection is a copy: fallbacks count acting only
        base_dev = copy.deepcopy(job.base).to(device).requires_grad_(False)
        log_prob = ProjectedLogProb(base_dev, copy.deepcopy(job.projection), job.alpha)
    else:
        log_prob = task_log_prob
    learner = PPOLearner(actor, critic, cfg, torch.Generator().manual_seed(job.seeds["update"]), device, log_prob)
    # Acting happens on the CPU: on another device the learner's actor is mirrored into a CPU copy.
    acting = learner.actor if device.type == "cpu" else copy.deepcopy(learner.actor).to("cpu")
    acting_projection = job.projection if projected else None
    sampler = ProjectedActor(job.base, acting, acting_projection, job.alpha) if projected else None

    sink = VideoSink(job.video_dir, events, labels=job.video_labels) if job.video is not None else None
    pool = EnvPool(job.env_maker, cfg.num_envs, job.seeds["episodes"], TrainingCamera(job.video, sink))
    s = _Loop()
    found = resume_checkpoint(job.checkpoint_dir, f"stage {job.stage} {job.tag}".strip()) if job.resume else None
    if found is not None:
        folder, (tensors, arrays, state) = found
        learner.load_state_dict(tensors["learner"])
        if acting is not learner.actor:
            acting.load_state_dict(learner.actor.state_dict())
        pool.restore(state["pool"], arrays, tensors["pool_generators"])
        s.step, s.rollouts, s.elapsed = int(state["step"]), int(state["rollouts"]), float(state["elapsed"])
        s.records = _records_from(arrays, job.seeds["episodes"])
        # as they were logged: JSON keeps ints (an episode count) apart from floats; "inf"/"nan" strings are floats
        s.metrics = [
            (int(step), {k: v if isinstance(v, (int, float)) else float(v) for k, v in scalars.items()})
            for step, scalars in state["metrics"]
        ]
        s.fallbacks = int(state["fallbacks"])
        s.warmup_episodes = int(state["warmup_episodes"])
        log.info("stage %s %s: resumed from %s (step %d)", job.stage, job.tag, folder.name, s.step)
    else:
        clear_checkpoints(job.checkpoint_dir)
        pool.start()
    if acting_projection is not None:
        acting_projection.fallbacks = s.fallbacks

    live = _LiveMetrics(Path(job.out_dir) / "metrics.jsonl", s.metrics)
    per_rollout = cfg.num_steps * cfg.num_envs
    warmup_rollouts = math.ceil(cfg.warmup_steps / per_rollout)
    total_rollouts = warmup_rollouts + cfg.total_steps // per_rollout
    t_start = time.perf_counter()
    last_checkpoint = s.step
    where = f"stage {job.stage!r}" + (f" (alpha {job.alpha:g})" if job.alpha is not None else "")
    saved_at = s.step if s.step else None
    description = f"{job.stage} {job.tag}".strip() + ": env steps"
    with progress_bar(total_rollouts * per_rollout, description, completed=s.step) as advance:
        while s.rollouts < total_rollouts:
            warmup = s.rollouts < warmup_rollouts
            window = MetricsWindow()
            batch, ratios = _rollout(cfg, pool, acting, sampler, learner, window, s)
            rollout_end = s.step + per_rollout
            check_finite(where, rollout_end, {ROLLOUT_NAMES[k]: v for k, v in batch.items()}, stopped_hint(saved_at))
            stats = learner.update(batch, warmup)
            check_finite(
                where, rollout_end, {k: v for k, v in stats.items() if k.startswith("loss/")}, stopped_hint(saved_at)
            )
            if acting is not learner.actor:
                acting.load_state_dict(learner.actor.state_dict())
            s.rollouts += 1
            s.step += per_rollout
            if s.rollouts == warmup_rollouts:
                s.warmup_episodes = len(s.records)
            scalars = window.scalars()
            scalars.update(stats)
            scalars.update(ratios)
            scalars["train/warmup"] = float(warmup)
            scalars["train/episodes_total"] = len(s.records)
            if sampler is not None:
                s.fallbacks = int(acting_projection.fallbacks)
                scalars["projection/fallbacks"] = s.fallbacks
                scalars["projection/log_alpha"] = math.log(job.alpha)
            s.metrics.append((s.step, scalars))
            live.write(s.step, scalars)
            if log_scalars is not None:
                log_scalars(s.step, scalars)
            advance(per_rollout)
            if s.step - last_checkpoint >= cfg.checkpoint_every and s.rollouts < total_rollouts:
                nets = {"actor": learner.actor, "critic": learner.critic}
                check_parameters(where, s.step, nets, stopped_hint(saved_at))  # never save poisoned weights
                _save(job, learner, pool, s, s.elapsed + time.perf_counter() - t_start)
                last_checkpoint = saved_at = s.step
    s.elapsed += time.perf_counter() - t_start
    running = [pool.trackers[j].record(pool.index[j], pool.seed) for j in range(len(pool))]
    pool.close()
    return _export(job, learner.actor.to("cpu"), s, warmup_rollouts * per_rollout, running)


def _json_scalars(scalars: dict[str, float]) -> dict[str, float | str]:
    """JSON has no inf/nan (a task log-ratio is +inf where its σ exceeds the base's): those are written as
    strings ("inf", "nan"), which ``float()`` reads back exactly."""
    return {k: v if math.isfinite(v) else str(v) for k, v in scalars.items()}


class _LiveMetrics:
    """``metrics.jsonl`` in the job's folder, one line per rollout as it happens, for a person to follow a job
    running in a worker (the loggers get its metrics when it returns). Rewritten from the checkpointed
    metrics on resume, so it never holds a rollout twice."""

    def __init__(self, path: Path, restored: list[tuple[int, dict[str, float]]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "".join(self._line(step, m) for step, m in restored))
        self.path = path

    @staticmethod
    def _line(step: int, scalars: dict[str, float]) -> str:
        return json.dumps({"step": step, "scalars": _json_scalars(scalars)}) + "\n"

    def write(self, step: int, scalars: dict[str, float]) -> None:
        with self.path.open("a") as fh:
            fh.write(self._line(step, scalars))


def _rollout(cfg, pool: EnvPool, acting, sampler, learner: PPOLearner, window: MetricsWindow, s: _Loop):
    """Play ``num_steps`` steps in every env; returns the flattened batch for the update and ratio stats."""
    steps, n = cfg.num_steps, len(pool)
    obs_buf = np.zeros((steps, n, pool.obs.shape[1]), dtype=np.float32)
    x_buf = logp_buf = None
    rew = np.zeros((steps, n))
    done = np.zeros((steps, n))
    truncated_at: list[tuple[int, int, np.ndarray]] = []
    dists: list[tuple] = []  # (task, projected, base) parameters per step, checked once per rollout
    for t in range(steps):
        obs = torch.from_numpy(pool.obs.astype(np.float32))
        obs_buf[t] = obs.numpy()
        if sampler is not None:
            sample = sampler.sample(obs, pool.generators)
            dists.append((sample.task, (sample.mu, sample.std), sample.base))
        else:
            sample = sample_policy(acting, obs, pool.generators)
        if x_buf is None:
            x_buf = np.zeros((steps, n, sample.x.shape[1]), dtype=np.float32)
            logp_buf = np.zeros((steps, n), dtype=np.float32)
        x_buf[t] = sample.x.numpy()
        logp_buf[t] = sample.log_prob.numpy()
        result = pool.step(sample.action.to(torch.float64).numpy())
        window.steps += n
        rew[t] = result.reward
        done[t] = result.terminated | result.truncated
        for j, final in result.final_obs.items():
            if result.truncated[j] and not result.terminated[j]:
                truncated_at.append((t, j, final))
        for record in result.finished:
            window.add_episode(record.outcome, record.ret, record.length)
            s.records.append(record)
    values = learner.values(obs_buf)
    last_values = learner.values(pool.obs)
    if cfg.bootstrap_truncated and truncated_at:
        finals = learner.values(np.stack([f for _, _, f in truncated_at]))
        for (t, j, _), v in zip(truncated_at, finals, strict=True):
            rew[t, j] += cfg.gamma * v
    adv, ret = gae(rew, values, done, last_values, cfg.gamma, cfg.gae_lambda)
    flat = {
        "obs": obs_buf.reshape(steps * n, -1),
        "x": x_buf.reshape(steps * n, -1),
        "logp": logp_buf.reshape(-1),
        "adv": adv.reshape(-1),
        "ret": ret.reshape(-1),
        "values": values.reshape(-1),
    }
    ratios = {}
    if sampler is not None:
        task, proj, base = (_stack([d[k] for d in dists]) for k in range(3))
        ratios = {
            "projection/task_max_log_ratio": _max_log_ratio(sampler.projection, task, base),
            "projection/projected_max_log_ratio": _max_log_ratio(sampler.projection, proj, base),
        }
    return flat, ratios


def _stack(params: list[tuple]) -> tuple:
    """[(μ, σ) per step] → (μ of all rows, σ of all rows)."""
    return tuple(torch.cat(parts) for parts in zip(*params, strict=True))


def _max_log_ratio(projection: Any, p: tuple, b: tuple) -> float:
    """max over all rows (every env at every step of the rollout) of log sup p/b, in float64 on the
    parameters exactly as used (float32 arithmetic would round the ratio itself by ≈ 1e-7, far more than
    the projection's own margin)."""
    as64 = tuple(t.double() for t in p), tuple(t.double() for t in b)
    return float(projection.max_log_ratio(*as64).max())


def _save(job: Job, learner: PPOLearner, pool: EnvPool, s: _Loop, elapsed: float) -> None:
    pool_json, pool_arrays, generators = pool.state()
    state = {
        "step": s.step,
        "rollouts": s.rollouts,
        "elapsed": elapsed,
        "pool": pool_json,
        "metrics": [(step, _json_scalars(m)) for step, m in s.metrics],
        "fallbacks": s.fallbacks,
        "warmup_episodes": s.warmup_episodes,
    }
    tensors = {"learner": learner.state_dict(), "pool_generators": generators}
    save_checkpoint(job.checkpoint_dir, s.step, tensors, {**pool_arrays, **_records_arrays(s.records)}, state)


def training_outcomes(records: list[EpisodeRecord], horizon: int | None) -> dict[str, Any]:
    """Counts of finished training episodes by outcome, and failures by ``horizon`` (when given).

    Every episode that finished during the job counts, the critic warm-up's included (its actor is the
    initial one: for Projected PPO the base itself, inside every ratio bound); episodes still running when
    the step budget ends are not counted here (the job's summary gives how many, and how many of those had
    already failed by the horizon)."""
    counts = {o: sum(r.outcome == o for r in records) for o in OUTCOMES}
    out: dict[str, Any] = {"episodes": len(records), **counts}
    if horizon is not None and records:
        k = int(failures_by_horizon(records, horizon)[horizon - 1])
        out.update({"horizon": horizon, "failures": k, "failure_rate": k / len(records)})
    lengths = [r.goal_step for r in records if r.outcome == "goal"]
    out["success_length_mean"] = float(np.mean(lengths)) if lengths else None
    return out


def _export(job: Job, actor: torch.nn.Module, s: _Loop, warmup_steps: int, running: list[EpisodeRecord]) -> JobResult:
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = sorted(s.records, key=lambda r: r.index)
    store = out / "training.bin"
    store.unlink(missing_ok=True)
    with EpisodeStore.open(store, job.seeds["episodes"], json.dumps(job.context, sort_keys=True)) as st:
        st.extend(records)
    training = training_outcomes(records, job.horizon)
    training["warmup_episodes"] = s.warmup_episodes
    training["running_at_end"] = len(running)
    if job.horizon is not None:  # already failed by T, though not finished: past T without the goal, or violated
        failed = [r for r in running if r.length >= job.horizon or r.violation_step > 0]
        training["running_failed_by_horizon"] = len(failed)
    summary = {
        "format": SUMMARY_FORMAT,
        "context": job.context,
        "alpha": job.alpha,
        "steps": s.step,
        "warmup_steps": warmup_steps,
        "rollouts": s.rollouts,
        "wall_seconds": round(s.elapsed, 1),
        "training": training,
        "projection_fallbacks": s.fallbacks if job.alpha is not None else None,
    }
    card = attrs.evolve(job.card, extra={**job.card.extra, "training": training, "alpha": job.alpha})
    weights = save_policy(out / "policy.safetensors", actor, card)
    summary["policy_sha256"] = sha256_file(weights)
    summary["training_store_sha256"] = sha256_file(store)
    atomic_write_json(out / "summary.json", summary)
    return JobResult(job.tag, job.alpha, summary, s.metrics)
