"""``num_envs`` environments stepped together, each episode seeded by its own index.

Episodes are numbered in the order they start (slots 0..n−1 start episodes 0..n−1; afterwards, whenever
episodes end in a step, the slots that ended take the next indices in slot order). Episode i resets with
``episode_seed(seed, i, "env")`` and draws its action noise from ``torch_generator(seed, i, "policy")``.

A pool can be checkpointed between any two steps without the envs' internal state: :meth:`EnvPool.state`
keeps, per slot, the episode index, the generator state and the actions taken so far; :meth:`restore`
resets each env with its episode's seed and replays those actions. Reset and step are deterministic
functions of (seed, actions) for the envs sport builds (the safety-gym fast reset is bit-identical to the
stock one), so the replayed env is bit for bit the one that was checkpointed.

Filming (``camera``, a :class:`sport_core.filming.TrainingCamera`): an episode whose index the video table
wants is filmed in its slot and handed over when it ends; a restored slot re-films its episode from the
start as it replays it.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch

from sport_core.errors import ArtifactError
from sport_core.filming import TrainingCamera
from sport_core.seeding import episode_seed, torch_generator
from sport_core.tracking import EpisodeRecord, EpisodeTracker


@attrs.define(eq=False)
class StepResult:
    """One pool step: ``reward``, ``terminated``, ``truncated`` [n]; ``final_obs`` for every slot whose
    episode ended (the observation *before* the reset that follows); ``finished`` records in slot order."""

    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    final_obs: dict[int, np.ndarray]
    finished: list[EpisodeRecord]


class EnvPool:
    """The envs of one learner (see the module docstring); ``obs`` [n, obs_dim] is each slot's observation."""

    def __init__(self, env_maker: Any, num_envs: int, seed: int, camera: TrainingCamera | None = None) -> None:
        self.camera = camera if camera is not None else TrainingCamera(None, None)
        self.envs = [self.camera.make(env_maker) for _ in range(num_envs)]
        self.seed = seed
        self.next_episode = 0
        n = num_envs
        self.index = [-1] * n
        self.trackers = [EpisodeTracker() for _ in range(n)]
        self.generators: list[torch.Generator] = [torch.Generator() for _ in range(n)]
        self.actions: list[list[np.ndarray]] = [[] for _ in range(n)]
        obs_dim = int(np.prod(self.envs[0].observation_space.shape))
        self.obs = np.zeros((n, obs_dim), dtype=np.float64)

    def __len__(self) -> int:
        return len(self.envs)

    def start(self) -> None:
        """Start an episode in every slot (a fresh pool)."""
        for j in range(len(self)):
            self._begin(j, self.next_episode)
            self.next_episode += 1

    def _begin(self, j: int, index: int) -> None:
        self.index[j] = index
        self.generators[j] = torch_generator(self.seed, index, "policy")
        obs, _ = self.camera.reset(self.envs[j], index, seed=episode_seed(self.seed, index, "env"))
        self.trackers[j].reset()
        self.actions[j] = []
        self.obs[j] = obs

    def step(self, actions: np.ndarray) -> StepResult:
        """Step every slot with its row of ``actions`` (float64 env actions); ended episodes restart."""
        n = len(self)
        reward, terminated, truncated = np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        final_obs: dict[int, np.ndarray] = {}
        finished: list[EpisodeRecord] = []
        for j, env in enumerate(self.envs):
            action = np.array(actions[j], dtype=np.float64)
            obs, r, term, trunc, info = env.step(action)
            self.actions[j].append(action)
            self.trackers[j].step(r, info)
            reward[j], terminated[j], truncated[j] = r, term, trunc
            if term or trunc:
                final_obs[j] = np.asarray(obs, dtype=np.float64)
                finished.append(self.trackers[j].record(self.index[j], self.seed))
                self.camera.finish(env, self.index[j])
                self._begin(j, self.next_episode)
                self.next_episode += 1
            else:
                self.obs[j] = obs
        return StepResult(reward, terminated, truncated, final_obs, finished)

    # -- checkpoints ---------------------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray], list[torch.Tensor]]:
        """(JSON state, arrays, generator states) that :meth:`restore` needs."""
        lengths = [len(a) for a in self.actions]
        flat = [a for acts in self.actions for a in acts]
        act_dim = int(np.prod(self.envs[0].action_space.shape))
        actions = np.stack(flat) if flat else np.zeros((0, act_dim))
        json_state = {"next_episode": self.next_episode, "index": list(self.index), "lengths": lengths}
        return json_state, {"pool_actions": actions}, [g.get_state() for g in self.generators]

    def restore(self, json_state: dict[str, Any], arrays: dict[str, np.ndarray], generators: list) -> None:
        """Rebuild every slot's env by replaying its episode's actions from the seeded reset."""
        if len(json_state["index"]) != len(self):
            raise ArtifactError(
                f"checkpoint has {len(json_state['index'])} env slots, the config asks for {len(self)} (num_envs "
                "changed: start the stage afresh)"
            )
        offsets = np.cumsum([0, *json_state["lengths"]])
        for j in range(len(self)):
            self._begin(j, int(json_state["index"][j]))
            for action in arrays["pool_actions"][offsets[j] : offsets[j + 1]]:
                obs, r, term, trunc, info = self.envs[j].step(np.array(action, dtype=np.float64))
                self.actions[j].append(np.array(action, dtype=np.float64))
                self.trackers[j].step(r, info)
                if term or trunc:
                    raise ArtifactError("replaying a checkpointed episode ended it early: the env is not deterministic")
                self.obs[j] = obs
            self.generators[j].set_state(generators[j])
        self.next_episode = int(json_state["next_episode"])

    def close(self) -> None:
        for env in self.envs:
            env.close()
