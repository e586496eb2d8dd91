"""The ``sac`` trainer stage: the training loop, curriculum, metrics, checkpoints and the exported policy.

Loop: one env (seeded per episode: episode i resets with ``episode_seed(stage seed, i, "env")``), uniform
random actions for the first ``learning_starts`` steps, then the policy's sampled actions; every
transition goes to the replay buffer and, from ``learning_starts`` stored transitions on, each env step is
followed by one :meth:`SACLearner.update`. Terminations stop bootstrapping, truncations do not.

Randomness: network initialisation, acting, the update's noise, replay sampling and env resets each have
their own stream derived from the run seed and the stage name, so the run is reproducible on one machine.

Checkpoints are taken at the first episode end after every ``checkpoint_every`` steps; since resets are
seeded by episode index, the loop state at an episode end is exactly (learner, buffer, counters,
curriculum, generator states), and a resumed stage continues bit-for-bit where the checkpoint left off.

Output: ``policy`` (safetensors + JSON model card, via :func:`sport_core.weights.save_policy`).
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import torch

from sport_core.artifacts import atomic_write_json
from sport_core.checkpoint import clear_checkpoints, resume_checkpoint, save_checkpoint
from sport_core.config import configured_component, unstructure
from sport_core.devices import resolve_device
from sport_core.errors import SportError
from sport_core.filming import TrainingCamera
from sport_core.finite import check_finite, check_parameters, stopped_hint
from sport_core.metrics import MetricsWindow
from sport_core.progress import progress_bar
from sport_core.seeding import episode_seed, stage_seeds
from sport_core.spaces import BoxSpaces, box_spaces
from sport_core.stages import StageInput
from sport_core.tracking import EpisodeTracker
from sport_core.video import VideoSink
from sport_core.weights import ModelCard, save_policy
from sport_sac.config import SACConfig
from sport_sac.critics import TwinCritic
from sport_sac.curriculum import Curriculum
from sport_sac.learner import LearnerParams, SACLearner, UpdateStats
from sport_sac.replay import PrioritizedReplayBuffer, ReplayBuffer

log = logging.getLogger("sport.sac")


#: The independent random streams of one SAC stage (:func:`sport_core.seeding.stage_seeds`).
SEED_NAMES = ("init", "act", "update", "replay", "env")


def _window_add_update(window: MetricsWindow, s: UpdateStats) -> None:
    """Critic metrics are means over updates; actor metrics means over actor steps."""
    window.add("loss/critic", s.critic_loss)
    window.add("q/mean", s.q_mean)
    window.add("loss/actor", s.actor_loss, s.actor_steps)
    window.add("train/entropy", s.entropy, s.actor_steps)
    window.add("loss/entropy_coef", s.alpha_loss, s.actor_steps)


@attrs.define(eq=False)
class TrainState:
    """Everything the loop carries from one episode to the next, i.e. what a checkpoint restores.

    At an episode end (before the next, seeded reset) the env holds no state of its own, so these
    counters, the learner (networks, optimisers, α, update generator), the replay buffer with priorities,
    the curriculum and the acting and replay generators determine the rest of the run exactly.
    """

    learner: SACLearner
    replay: ReplayBuffer
    curriculum: Curriculum
    act_gen: torch.Generator
    replay_rng: np.random.Generator
    step: int = 0
    episode: int = 0
    elapsed: float = 0.0  # wall seconds of training before this attempt

    def save(self, directory: Path, elapsed: float) -> None:
        loop = {
            "step": self.step,
            "episode": self.episode,
            "elapsed": elapsed,
            "curriculum": self.curriculum.state_dict(),
            "replay_rng": self.replay_rng.bit_generator.state,
        }
        tensors = {"learner": self.learner.state_dict(), "act_generator": self.act_gen.get_state()}
        save_checkpoint(directory, self.step, tensors, self.replay.state_dict(), loop)

    def restore(self, loaded: tuple[dict, dict, dict]) -> None:
        """Continue from a loaded checkpoint (:func:`sport_core.checkpoint.resume_checkpoint`)."""
        tensors, replay, loop = loaded
        self.learner.load_state_dict(tensors["learner"])
        self.act_gen.set_state(tensors["act_generator"])
        self.replay.load_state_dict(replay)
        self.replay_rng.bit_generator.state = loop["replay_rng"]
        self.curriculum.load_state_dict(loop["curriculum"])
        self.step, self.episode, self.elapsed = int(loop["step"]), int(loop["episode"]), float(loop["elapsed"])


class SACTrainer:
    """Stage component ``sac`` (see :class:`sport_sac.config.SACConfig`)."""

    needs_env = True
    films = True  # every ctx.video.every-th training episode, into videos/
    inputs: ClassVar[dict[str, StageInput]] = {}
    outputs = ("policy",)

    def __init__(self, config: SACConfig) -> None:
        self.config = config

    # -- construction -----------------------------------------------------------------------------

    def _level_maker(self, ctx: Any, curriculum: Curriculum) -> Any:
        """The env maker of the curriculum's current level (the stage's own env without a curriculum)."""
        if not curriculum.values:
            return ctx.env
        if ctx.env_ref is None:
            raise SportError(f"stage {ctx.name!r}: a curriculum needs the stage's env as a recipe [env] table")
        try:
            config = curriculum.env_config(ctx.env_ref.config)
        except ValueError as exc:
            raise SportError(f"stage {ctx.name!r}: {exc}") from exc
        return ctx.registry.get("env", ctx.env_ref.name).build(config)

    def _build_policy(self, ctx: Any, sp: BoxSpaces):
        cfg = self.config
        component, pconf = configured_component(cfg, "policy", ctx.registry, ctx.name)
        actor = component.build(pconf)(sp.obs_dim, sp.act_dim, sp.action_scale, sp.action_bias)
        return actor, pconf

    def _engine(self, ctx: Any, device: torch.device) -> str:
        """The update engine for ``device``: the fused engine's kernels are CPU-only."""
        cfg = self.config
        if device.type == "cpu" or cfg.engine == "autograd":
            return cfg.engine
        if cfg.device == "auto":
            log.info("stage %s: learner on %s, so the autograd engine (the fused one is CPU-only)", ctx.name, device)
            return "autograd"
        raise SportError(
            f"stages.{ctx.name}.config.engine: the fused engine is CPU-only (hand-written CPU kernels); with device = "
            f'"{cfg.device}" set engine = "autograd" (or device = "auto", which picks it on a GPU)'
        )

    def _state(
        self, ctx: Any, actor: torch.nn.Module, obs_dim: int, act_dim: int, seeds: dict[str, int], device: Any
    ) -> TrainState:
        cfg = self.config
        critic = TwinCritic(obs_dim, act_dim, cfg.critic_hidden, cfg.critic_activation)
        params = LearnerParams(
            gamma=cfg.gamma,
            tau=cfg.tau,
            actor_lr=cfg.actor_lr,
            critic_lr=cfg.critic_lr,
            alpha_lr=cfg.alpha_lr,
            initial_alpha=cfg.initial_alpha,
            autotune_alpha=cfg.autotune_alpha,
            target_entropy=cfg.target_entropy,
            policy_delay=cfg.policy_delay,
        )
        # the update's noise is drawn on the learner's device, so its generator lives there too
        update_gen = torch.Generator(device).manual_seed(seeds["update"])
        engine = self._engine(ctx, device)
        learner = SACLearner(
            actor.to(device), critic.to(device), params, update_gen, engine, cfg.matmul, cfg.passes, cfg.private_ops
        )
        if cfg.prioritized_replay:
            replay = PrioritizedReplayBuffer(cfg.buffer_size, obs_dim, act_dim, cfg.per_alpha, cfg.per_eps)
        else:
            replay = ReplayBuffer(cfg.buffer_size, obs_dim, act_dim)
        curriculum = Curriculum(cfg.curriculum_key, cfg.curriculum, cfg.curriculum_threshold, cfg.curriculum_window)
        return TrainState(
            learner,
            replay,
            curriculum,
            torch.Generator().manual_seed(seeds["act"]),
            np.random.Generator(np.random.PCG64(seeds["replay"])),
        )

    # -- the stage --------------------------------------------------------------------------------

    def run(self, ctx: Any) -> dict[str, Path]:
        cfg = self.config
        torch.set_num_threads(cfg.torch_threads)
        seeds = stage_seeds(ctx.seed, ctx.name, SEED_NAMES)
        probe = Curriculum(cfg.curriculum_key, cfg.curriculum, cfg.curriculum_threshold, cfg.curriculum_window)
        env = self._level_maker(ctx, probe).make()  # every level has the same spaces
        sp = box_spaces(env, ctx.name, "sac")
        obs_dim, act_dim = sp.obs_dim, sp.act_dim
        scale, bias = np.asarray(sp.action_scale), np.asarray(sp.action_bias)
        with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching the caller's RNG
            torch.manual_seed(seeds["init"])
            actor, pconf = self._build_policy(ctx, sp)
            state = self._state(ctx, actor, obs_dim, act_dim, seeds, resolve_device(cfg.device, ctx.name))
        found = resume_checkpoint(ctx.checkpoint_dir, f"stage {ctx.name}") if ctx.resumed else None
        if found is not None:
            folder, loaded = found
            state.restore(loaded)
            log.info(
                "stage %s: resumed from %s (step %d, episode %d, level %d)",
                ctx.name,
                folder.name,
                state.step,
                state.episode,
                state.curriculum.level + 1,
            )
        else:
            clear_checkpoints(ctx.checkpoint_dir)
        if state.curriculum.level != probe.level:
            env.close()
            env = None
        maker = self._train(ctx, state, seeds, scale, bias, env)
        return self._export(ctx, actor.to("cpu"), pconf, obs_dim, act_dim, scale, bias, maker, state)

    def _train(
        self, ctx: Any, s: TrainState, seeds: dict[str, int], scale: np.ndarray, bias: np.ndarray, env: Any
    ) -> Any:
        """Run the loop from ``s`` to ``total_steps`` (``env``: one of the current level, or None to build it);
        returns the env maker of the last level."""
        cfg = self.config
        learner, replay, curriculum = s.learner, s.replay, s.curriculum
        device = learner.log_alpha.device
        # Acting stays on the CPU (the episode's random numbers too): a GPU learner is mirrored after updates.
        actor = learner.actor if device.type == "cpu" else copy.deepcopy(learner.actor).to("cpu")
        t_start = time.perf_counter()
        window = MetricsWindow()
        last_checkpoint = s.step
        total, starts, batch_size = cfg.total_steps, cfg.learning_starts, cfg.batch_size
        beta_span = cfg.per_beta_end - cfg.per_beta_start
        low_t, span_t = torch.from_numpy(bias - scale), torch.from_numpy(2.0 * scale)
        act_dim = len(scale)
        where = f"stage {ctx.name!r}"
        saved_at = s.step if s.step else None  # the checkpoint this attempt resumed from (None: a fresh start)
        maker = self._level_maker(ctx, curriculum)
        camera = TrainingCamera(ctx.video, VideoSink(ctx.stage_dir, ctx.log))
        if env is None or camera.video is not None:
            if env is not None:
                env.close()
            env = camera.make(maker)
        obs, _ = camera.reset(env, s.episode, seed=episode_seed(seeds["env"], s.episode, "env"))
        episode = EpisodeTracker()
        with progress_bar(total, f"{ctx.name}: env steps", completed=s.step) as advance:
            while s.step < total:
                if s.step < starts:
                    action = (low_t + span_t * torch.rand(act_dim, generator=s.act_gen, dtype=torch.float64)).numpy()
                else:
                    x = torch.from_numpy(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
                    action = actor.act(x, generator=s.act_gen)[0].to(torch.float64).numpy()
                    check_finite(where, s.step + 1, {"the policy's action": action}, stopped_hint(saved_at))
                next_obs, reward, terminated, truncated, info = env.step(action)
                check_finite(where, s.step + 1, {"reward": reward, "observation": next_obs}, stopped_hint(saved_at))
                replay.add(obs, action, reward, next_obs, terminated)
                s.step += 1
                window.steps += 1
                episode.step(reward, info)
                if s.step >= starts:
                    beta = cfg.per_beta_start + beta_span * s.step / total
                    b = replay.sample(batch_size, s.replay_rng, beta)
                    if device.type == "cpu":
                        stats = learner.update(b.obs, b.act, b.rew, b.next_obs, b.done, b.weights)
                    else:
                        on = [t if t is None else t.to(device) for t in (b.obs, b.act, b.rew, b.next_obs, b.done)]
                        w = None if b.weights is None else b.weights.to(device)
                        stats = learner.update(*on, w)
                        actor.load_state_dict(learner.actor.state_dict())
                    check_finite(
                        where,
                        s.step,
                        {
                            "loss/critic": stats.critic_loss,
                            "loss/actor": stats.actor_loss,
                            "loss/entropy_coef": stats.alpha_loss,
                            "the TD errors": stats.td_abs,
                        },
                        stopped_hint(saved_at),
                    )
                    replay.update_priorities(b.index, stats.td_abs)
                    _window_add_update(window, stats)
                if terminated or truncated:
                    outcome = episode.outcome
                    window.add_episode(outcome, episode.ret, episode.length)
                    camera.finish(env, s.episode)
                    s.episode += 1
                    if curriculum.record(outcome == "goal"):
                        log.info(
                            "stage %s: curriculum level %d reached at step %d", ctx.name, curriculum.level + 1, s.step
                        )
                        ctx.log.scalars(s.step, {"curriculum/level": curriculum.level + 1})
                        env.close()
                        maker = self._level_maker(ctx, curriculum)
                        env = camera.make(maker)
                        if not cfg.curriculum_keep_buffer:
                            replay.clear()
                    if s.step - last_checkpoint >= cfg.checkpoint_every and s.step < total:
                        nets = {"actor": learner.actor, "critic": learner.critic}
                        check_parameters(where, s.step, nets, stopped_hint(saved_at))  # never save poisoned weights
                        s.save(ctx.checkpoint_dir, s.elapsed + time.perf_counter() - t_start)
                        last_checkpoint = saved_at = s.step
                    obs, _ = camera.reset(env, s.episode, seed=episode_seed(seeds["env"], s.episode, "env"))
                    episode.reset()
                else:
                    obs = next_obs
                if s.step % cfg.log_every == 0 or s.step == total:
                    scalars = window.scalars()
                    scalars.update(
                        {
                            "curriculum/level": curriculum.level + 1,
                            "curriculum/success_rate": curriculum.success_rate(),
                            "train/entropy_coef": learner.alpha,
                        }
                    )
                    if cfg.prioritized_replay:
                        scalars["per/beta"] = cfg.per_beta_start + beta_span * s.step / total
                    ctx.log.scalars(s.step, scalars)
                    advance(window.steps)
                    window = MetricsWindow()
        env.close()
        check_parameters(where, s.step, {"actor": learner.actor, "critic": learner.critic}, stopped_hint(saved_at))
        s.elapsed += time.perf_counter() - t_start
        return maker

    def _export(self, ctx, actor, pconf, obs_dim, act_dim, scale, bias, maker, s: TrainState) -> dict[str, Path]:
        cfg, curriculum = self.config, s.curriculum
        summary = {
            "trainer": "sac",
            "env_id": getattr(maker, "env_id", "?"),
            "steps": cfg.total_steps,
            "episodes": s.episode,
            "curriculum_level": curriculum.level + 1,
            "curriculum_levels": curriculum.n_levels,
            "curriculum_success_rate": curriculum.success_rate(),
            "wall_seconds": round(s.elapsed, 1),
            "engine": cfg.engine,
        }
        card = ModelCard(
            policy=cfg.policy,
            config=unstructure(pconf),
            obs_dim=obs_dim,
            act_dim=act_dim,
            action_scale=tuple(float(x) for x in scale),
            action_bias=tuple(float(x) for x in bias),
            extra=summary,
        )
        ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        path = save_policy(ctx.stage_dir / "policy.safetensors", actor, card)
        atomic_write_json(ctx.stage_dir / "train_summary.json", summary)
        log.info(
            "stage %s: %d steps, %d episodes, final curriculum level %d/%d, %.0f s",
            ctx.name,
            cfg.total_steps,
            s.episode,
            curriculum.level + 1,
            curriculum.n_levels,
            s.elapsed,
        )
        return {"policy": path}
