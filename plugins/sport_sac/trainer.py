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

import logging
import time
import zlib
from pathlib import Path
from typing import Any

import attrs
import gymnasium as gym
import numpy as np
import torch

from sport_core.artifacts import atomic_write_json
from sport_core.collect import outcome_of
from sport_core.config import structure, unstructure
from sport_core.errors import SportError
from sport_core.progress import progress_bar
from sport_core.seeding import episode_seed
from sport_core.weights import ModelCard, save_policy
from sport_sac.checkpoint import clear_checkpoints, latest_checkpoint, load_checkpoint, save_checkpoint
from sport_sac.config import SACConfig
from sport_sac.critics import TwinCritic
from sport_sac.curriculum import Curriculum
from sport_sac.learner import LearnerParams, SACLearner, UpdateStats
from sport_sac.replay import PrioritizedReplayBuffer, ReplayBuffer

log = logging.getLogger("sport.sac")


@attrs.frozen
class Seeds:
    """Independent seeds of one SAC stage, derived from the run seed and the stage name."""

    init: int
    act: int
    update: int
    replay: int
    env: int

    @classmethod
    def derive(cls, run_seed: int, stage: str) -> Seeds:
        ss = np.random.SeedSequence(entropy=run_seed, spawn_key=(zlib.crc32(stage.encode()),))
        words = ss.generate_state(5, np.uint64) >> np.uint64(1)
        return cls(*(int(w) for w in words))


class _Window:
    """Metrics summed over one logging window (episodes finished and updates done in it)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.steps = 0
        self.episodes = self.successes = self.violations = 0
        self.ret = self.length = 0.0
        self.updates = self.actor_steps = 0
        self.critic_loss = self.q_mean = self.actor_loss = self.entropy = self.alpha_loss = 0.0

    def add_update(self, s: UpdateStats) -> None:
        self.updates += 1
        self.critic_loss += s.critic_loss
        self.q_mean += s.q_mean
        self.actor_steps += s.actor_steps
        self.actor_loss += s.actor_loss
        self.entropy += s.entropy
        self.alpha_loss += s.alpha_loss

    def scalars(self) -> dict[str, float]:
        seconds = max(time.perf_counter() - self.start, 1e-9)
        out = {"perf/steps_per_s": self.steps / seconds}
        if self.episodes:
            n = self.episodes
            out.update({"train/episodes": n, "train/return": self.ret / n, "train/length": self.length / n,
                        "train/success_rate": self.successes / n, "train/violation_rate": self.violations / n})
        if self.updates:
            out.update({"loss/critic": self.critic_loss / self.updates, "q/mean": self.q_mean / self.updates})
        if self.actor_steps:
            k = self.actor_steps
            out.update({"loss/actor": self.actor_loss / k, "train/entropy": self.entropy / k,
                        "loss/alpha": self.alpha_loss / k})
        return out


class SACTrainer:
    """Stage component ``sac`` (see :class:`sport_sac.config.SACConfig`)."""

    needs_env = True

    def __init__(self, config: SACConfig) -> None:
        self.config = config

    # -- construction -----------------------------------------------------------------------------

    def _level_maker(self, ctx: Any, curriculum: Curriculum) -> Any:
        if not curriculum.values:
            return ctx.env
        if ctx.env_ref is None:
            raise SportError(f"stage {ctx.name!r}: a curriculum needs the stage's env as a recipe [env] table")
        try:
            config = curriculum.env_config(ctx.env_ref.config)
        except ValueError as exc:
            raise SportError(f"stage {ctx.name!r}: {exc}") from exc
        return ctx.registry.get("env", ctx.env_ref.name).build(config)

    def _build_policy(self, ctx: Any, obs_dim: int, act_dim: int, scale: np.ndarray, bias: np.ndarray):
        cfg = self.config
        component = ctx.registry.get("policy", cfg.policy)
        pconf = structure(component.config_cls, dict(cfg.policy_config), f"stages.{ctx.name}.config.policy_config")
        actor = component.build(pconf)(obs_dim, act_dim, tuple(scale.tolist()), tuple(bias.tolist()))
        return actor, pconf

    def _learner(self, actor: torch.nn.Module, obs_dim: int, act_dim: int, seeds: Seeds) -> SACLearner:
        cfg = self.config
        critic = TwinCritic(obs_dim, act_dim, cfg.critic_hidden, cfg.critic_activation)
        params = LearnerParams(
            gamma=cfg.gamma, tau=cfg.tau, actor_lr=cfg.actor_lr, critic_lr=cfg.critic_lr, alpha_lr=cfg.alpha_lr,
            initial_alpha=cfg.initial_alpha, autotune_alpha=cfg.autotune_alpha, target_entropy=cfg.target_entropy,
            policy_delay=cfg.policy_delay,
        )
        generator = torch.Generator().manual_seed(seeds.update)
        return SACLearner(actor, critic, params, generator, cfg.engine, cfg.matmul)

    def _replay(self, obs_dim: int, act_dim: int) -> ReplayBuffer:
        cfg = self.config
        if cfg.prioritized_replay:
            return PrioritizedReplayBuffer(cfg.buffer_size, obs_dim, act_dim, cfg.per_alpha, cfg.per_eps)
        return ReplayBuffer(cfg.buffer_size, obs_dim, act_dim)

    # -- the stage --------------------------------------------------------------------------------

    def run(self, ctx: Any) -> dict[str, Path]:
        cfg = self.config
        torch.set_num_threads(cfg.torch_threads)
        seeds = Seeds.derive(ctx.seed, ctx.name)
        curriculum = Curriculum(cfg.curriculum_key, cfg.curriculum, cfg.curriculum_threshold, cfg.curriculum_window)
        maker = self._level_maker(ctx, curriculum)
        env = maker.make()
        obs_space, act_space = env.observation_space, env.action_space
        if not isinstance(act_space, gym.spaces.Box) or not np.all(np.isfinite(act_space.low)) or not np.all(
            np.isfinite(act_space.high)
        ):
            raise SportError(f"stage {ctx.name!r}: sac needs a bounded Box action space, got {act_space}")
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            raise SportError(f"stage {ctx.name!r}: sac needs a flat Box observation space, got {obs_space}")
        obs_dim, act_dim = int(obs_space.shape[0]), int(act_space.shape[0])
        low, high = act_space.low.astype(np.float64), act_space.high.astype(np.float64)
        scale, bias = (high - low) / 2.0, (high + low) / 2.0

        torch.manual_seed(seeds.init)
        actor, pconf = self._build_policy(ctx, obs_dim, act_dim, scale, bias)
        learner = self._learner(actor, obs_dim, act_dim, seeds)
        replay = self._replay(obs_dim, act_dim)
        act_gen = torch.Generator().manual_seed(seeds.act)
        replay_rng = np.random.Generator(np.random.PCG64(seeds.replay))
        step = episode = 0
        elapsed = 0.0

        folder = latest_checkpoint(ctx.checkpoint_dir) if ctx.resumed else None
        if folder is not None:
            torch_state, replay_state, state = load_checkpoint(folder)
            learner.load_state_dict(torch_state["learner"])
            act_gen.set_state(torch_state["act_generator"])
            replay.load_state_dict(replay_state)
            replay_rng.bit_generator.state = state["replay_rng"]
            level_before = curriculum.level
            curriculum.load_state_dict(state["curriculum"])
            step, episode, elapsed = int(state["step"]), int(state["episode"]), float(state["elapsed"])
            if curriculum.level != level_before:
                env.close()
                maker = self._level_maker(ctx, curriculum)
                env = maker.make()
            log.info("stage %s: resumed from %s (step %d, episode %d, level %d)",
                     ctx.name, folder.name, step, episode, curriculum.level + 1)
        else:
            clear_checkpoints(ctx.checkpoint_dir)

        def checkpoint() -> None:
            state = {"step": step, "episode": episode, "elapsed": elapsed + (time.perf_counter() - t_start),
                     "curriculum": curriculum.state_dict(), "replay_rng": replay_rng.bit_generator.state}
            save_checkpoint(ctx.checkpoint_dir, step, {"learner": learner.state_dict(), "act_generator":
                                                        act_gen.get_state()}, replay.state_dict(), state)

        t_start = time.perf_counter()
        window = _Window()
        last_checkpoint = step
        total, starts, batch_size = cfg.total_steps, cfg.learning_starts, cfg.batch_size
        beta_span = cfg.per_beta_end - cfg.per_beta_start
        low_t, span_t = torch.from_numpy(low), torch.from_numpy(high - low)
        obs, _ = env.reset(seed=episode_seed(seeds.env, episode, "env"))
        ep_ret, ep_len, goal_step, violation_step = 0.0, 0, -1, -1
        with progress_bar(total, f"{ctx.name}: env steps", completed=step) as advance:
            while step < total:
                if step < starts:
                    action = (low_t + span_t * torch.rand(act_dim, generator=act_gen, dtype=torch.float64)).numpy()
                else:
                    x = torch.from_numpy(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
                    action = actor.act(x, generator=act_gen)[0].to(torch.float64).numpy()
                next_obs, reward, terminated, truncated, info = env.step(action)
                replay.add(obs, action, reward, next_obs, terminated)
                step += 1
                window.steps += 1
                ep_ret += float(reward)
                ep_len += 1
                if goal_step < 0 and info.get("goal_met", False):
                    goal_step = ep_len
                if violation_step < 0 and info.get("constraint_violated", False):
                    violation_step = ep_len
                if step >= starts:
                    beta = cfg.per_beta_start + beta_span * step / total
                    b = replay.sample(batch_size, replay_rng, beta)
                    stats = learner.update(b.obs, b.act, b.rew, b.next_obs, b.done, b.weights)
                    replay.update_priorities(b.index, stats.td_abs)
                    window.add_update(stats)
                if terminated or truncated:
                    outcome = outcome_of(goal_step, violation_step)
                    window.episodes += 1
                    window.ret += ep_ret
                    window.length += ep_len
                    window.successes += outcome == "goal"
                    window.violations += outcome == "violation"
                    episode += 1
                    if curriculum.record(outcome == "goal"):
                        log.info("stage %s: curriculum level %d reached at step %d",
                                 ctx.name, curriculum.level + 1, step)
                        ctx.log.scalars(step, {"curriculum/level": curriculum.level + 1})
                        env.close()
                        maker = self._level_maker(ctx, curriculum)
                        env = maker.make()
                        if not cfg.curriculum_keep_buffer:
                            replay.clear()
                    if step - last_checkpoint >= cfg.checkpoint_every and step < total:
                        checkpoint()
                        last_checkpoint = step
                    obs, _ = env.reset(seed=episode_seed(seeds.env, episode, "env"))
                    ep_ret, ep_len, goal_step, violation_step = 0.0, 0, -1, -1
                else:
                    obs = next_obs
                if step % cfg.log_every == 0 or step == total:
                    scalars = window.scalars()
                    scalars.update({"curriculum/level": curriculum.level + 1,
                                    "curriculum/success_rate": curriculum.success_rate(), "alpha": learner.alpha})
                    if cfg.prioritized_replay:
                        scalars["per/beta"] = cfg.per_beta_start + beta_span * step / total
                    ctx.log.scalars(step, scalars)
                    advance(window.steps)
                    window = _Window()
        env.close()
        elapsed += time.perf_counter() - t_start
        return self._export(ctx, actor, pconf, obs_dim, act_dim, scale, bias, maker, curriculum, episode, elapsed)

    def _export(self, ctx, actor, pconf, obs_dim, act_dim, scale, bias, maker, curriculum, episodes, elapsed):
        cfg = self.config
        summary = {
            "trainer": "sac", "env_id": getattr(maker, "env_id", "?"), "steps": cfg.total_steps,
            "episodes": episodes, "curriculum_level": curriculum.level + 1, "curriculum_levels": curriculum.n_levels,
            "curriculum_success_rate": curriculum.success_rate(), "wall_seconds": round(elapsed, 1),
            "engine": cfg.engine,
        }
        card = ModelCard(
            policy=cfg.policy, config=unstructure(pconf), obs_dim=obs_dim, act_dim=act_dim,
            action_scale=tuple(float(s) for s in scale), action_bias=tuple(float(b) for b in bias), extra=summary,
        )
        ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        path = save_policy(ctx.stage_dir / "policy.safetensors", actor, card)
        atomic_write_json(ctx.stage_dir / "train_summary.json", summary)
        log.info("stage %s: %d steps, %d episodes, final curriculum level %d/%d, %.0f s",
                 ctx.name, cfg.total_steps, episodes, curriculum.level + 1, curriculum.n_levels, elapsed)
        return {"policy": path}
