"""Taking an episode's frames: :class:`EpisodeCamera` (a gymnasium wrapper) and the env it films
(:func:`filming_env`); what is filmed and where it goes is :mod:`sport_core.video`."""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym
import numpy as np

from sport_core.errors import SportError
from sport_core.video import Film, VideoConfig


def filming_env(env_maker: Any, config: VideoConfig) -> Any:
    """A fresh env of ``env_maker`` that can be filmed with ``config``: for ``camera``, made with
    ``render_mode="rgb_array"`` and the configured size and camera; for ``topdown``, a plain ``make()``.
    An env maker that cannot render is a one-line :class:`SportError` suggesting ``source = "topdown"``."""
    if config.source == "topdown":
        return env_maker.make()
    try:
        params = inspect.signature(env_maker.make).parameters
    except (TypeError, ValueError):
        params = {}
    if not {"render_mode", "width", "height", "camera"} <= set(params):
        raise SportError(
            f"env {getattr(env_maker, 'env_id', type(env_maker).__name__)!r} cannot film episodes with a camera "
            '(its maker has no make(render_mode=, width=, height=, camera=)); use video.source = "topdown"'
        )
    width, height = config.size
    return env_maker.make(render_mode="rgb_array", width=width, height=height, camera=config.camera)


def frame_rate(config: VideoConfig, env: Any) -> float:
    """Playback frames per second: the configured ``fps``, else the env's ``metadata["render_fps"]``, else 30."""
    if config.fps is not None:
        return float(config.fps)
    fps = getattr(env, "metadata", {}).get("render_fps")
    return float(fps) if fps else 30.0


class EpisodeCamera(gym.Wrapper):
    """Films the episodes it is armed for. ``arm()`` before ``reset``: that episode's frames are taken after
    the reset and after every step (a camera frame from ``env.render()``, or the agent's position for a
    top-down drawing), and ``take()`` returns them once it has ended (uint8 array (T, H, W, 3); T = steps + 1).
    Unarmed, it passes everything through untouched. Filming never changes what the env returns."""

    def __init__(self, env: Any, config: VideoConfig) -> None:
        super().__init__(env)
        self.config = config
        self._armed = False
        self._filming = False
        self._frames: list[np.ndarray] = []
        self._xy: list[np.ndarray] = []
        self._layout: Any = None

    def arm(self) -> None:
        self._armed = True

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        self._filming, self._armed = self._armed, False
        self._frames, self._xy = [], []
        if self._filming:
            if self.config.source == "topdown":
                from sport_core.paths import Layout

                self._layout = Layout.from_info(info)
            self._take(info)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self._filming:
            self._take(info)
        return obs, reward, terminated, truncated, info

    def _take(self, info: dict) -> None:
        if self.config.source == "topdown":
            if "agent_pos" not in info:
                raise SportError(
                    f"top-down videos need the agent's position in the step info ('agent_pos'); env "
                    f"{getattr(self.env, 'env_id', type(self.env.unwrapped).__name__)!r} does not report it"
                )
            self._xy.append(np.asarray(info["agent_pos"], dtype=np.float64).reshape(-1)[:2].copy())
        else:
            self._frames.append(np.asarray(self.env.render(), dtype=np.uint8).copy())

    @property
    def filming(self) -> bool:
        return self._filming

    def take(self) -> np.ndarray | None:
        """The frames of the episode filmed last (None if it was not filmed); filming stops."""
        if not self._filming:
            return None
        self._filming = False
        if self.config.source == "topdown":
            from sport_core.drawing import topdown_frames

            return topdown_frames(self._layout, np.stack(self._xy), size=self.config.size)
        return np.stack(self._frames)


class TrainingCamera:
    """Films a trainer's episodes: ``make(maker)`` builds a training env that can be filmed (a plain one
    when ``video`` is None or films nothing), ``reset(env, index, **kw)`` arms it when episode ``index`` is
    wanted and resets it, and ``finish(env, index)`` hands the frames of a filmed episode to ``on_film`` (a
    :class:`sport_core.video.VideoSink`, say). A resumed trainer re-runs, and so re-films, the episode it
    was in, which gives the same video. Filming reads the simulator and never changes training."""

    def __init__(self, video: VideoConfig | None, on_film: Any) -> None:
        self.video = video if video is not None and video.every > 0 else None
        self.on_film = on_film

    def make(self, maker: Any) -> Any:
        if self.video is None:
            return maker.make()
        return EpisodeCamera(filming_env(maker, self.video), self.video)

    def reset(self, env: Any, index: int, **kwargs: Any) -> tuple[Any, dict]:
        if self.video is not None and self.video.wants(index):
            env.arm()
        return env.reset(**kwargs)

    def finish(self, env: Any, index: int) -> None:
        if self.video is None or not env.filming:
            return
        self.on_film(Film(index, env.take(), frame_rate(self.video, env)))
