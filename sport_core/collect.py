"""Episode collection: one small record per episode, reproducible whatever the number of workers.

Episode ``i`` resets its env with seed ``episode_seed(seed, i, "env")`` (fixed-layout envs give the same
layout whatever the seed) and samples actions with ``torch_generator(seed, i, "policy")``: its record
depends only on (actor, env, seed, i). Episodes are sent to the executor in chunks; records come back as
chunks finish and are handed to ``on_record`` at once, so a kill loses only the chunks in flight.

Filming (``video``, :mod:`sport_core.video`): the episodes the stage's ``video`` table asks for run in the
worker on a second, filmable env (:func:`worker_camera`) with the same seeds, so their records are the ones
they would have unfilmed; their frames come back with the chunk and are handed to ``on_film`` (e.g. a
:class:`sport_core.video.VideoSink`, which writes the MP4 and logs it) *before* the chunk's records, so a
kill never leaves a stored episode whose video is missing.

Outcome and event steps follow :mod:`sport_core.tracking` (the same bookkeeping trainers use): steps count
from 1; a goal and a violation in the same step count as a violation (the safe choice).
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from sport_core.errors import ArtifactError
from sport_core.seeding import episode_seed, torch_generator
from sport_core.tracking import OUTCOMES, EpisodeRecord, EpisodeTracker, outcome_of
from sport_core.video import Film, VideoConfig

log = logging.getLogger("sport")

__all__ = [
    "OUTCOMES",
    "EpisodeRecord",
    "collect",
    "collect_into_store",
    "episode_limit",
    "iter_collect",
    "outcome_of",
    "run_episode",
    "run_filmed",
    "worker_camera",
    "worker_env",
]


def run_episode(actor: Any, env: Any, seed: int, index: int, trajectory: bool = False) -> EpisodeRecord:
    """Roll out one episode of ``actor`` in ``env`` with the random streams of episode ``index``."""
    env_seed = episode_seed(seed, index, "env")
    generator = torch_generator(seed, index, "policy")
    obs, info = env.reset(seed=env_seed)
    actor.reset()
    tracker = EpisodeTracker()
    path = [np.asarray(info["agent_pos"], dtype=np.float64)[:2]] if trajectory else None
    while True:
        action = actor.act(np.asarray(obs), generator)
        obs, reward, terminated, truncated, info = env.step(action)
        tracker.step(reward, info)
        if path is not None:
            path.append(np.asarray(info["agent_pos"], dtype=np.float64)[:2])
        if terminated or truncated:
            break
    return tracker.record(index, seed, trajectory=np.stack(path) if path is not None else None)


# Per-process caches so that a worker builds (and, for MuJoCo, compiles) its env and actor once.
_ENV_CACHE: dict[str, Any] = {}
_CAMERA_CACHE: dict[str, Any] = {}
_ACTOR_CACHE: dict[str, Any] = {}


def _cached(cache: dict[str, Any], blob: bytes, build: Callable[[Any], Any]) -> Any:
    key = hashlib.sha256(blob).hexdigest()
    if key not in cache:
        if len(cache) >= 4:
            old = cache.pop(next(iter(cache)))
            close = getattr(old, "close", None)
            if close is not None:
                close()
        cache[key] = build(pickle.loads(blob))  # our own bytes from the parent process, never a user file
    return cache[key]


@attrs.frozen
class _Chunk:
    actor: bytes
    env_maker: bytes
    seed: int
    indices: tuple[int, ...]
    trajectory: bool
    video: VideoConfig | None = None


@attrs.frozen
class _ChunkResult:
    records: list[EpisodeRecord]
    films: list[Film]


def worker_env(env_maker_blob: bytes) -> Any:
    """The env of a pickled env maker, built once per process (a MuJoCo env compiles its model on build)."""
    return _cached(_ENV_CACHE, env_maker_blob, lambda maker: maker.make())


def worker_camera(env_maker_blob: bytes, video: VideoConfig) -> Any:
    """A filmable env of a pickled env maker (:class:`sport_core.filming.EpisodeCamera` around
    :func:`sport_core.filming.filming_env`), built once per process and video table."""
    from sport_core.filming import EpisodeCamera, filming_env

    def build(pair: tuple[bytes, VideoConfig]) -> Any:
        maker = pickle.loads(pair[0])  # our own bytes from the parent process, never a user file
        return EpisodeCamera(filming_env(maker, pair[1]), pair[1])

    return _cached(_CAMERA_CACHE, pickle.dumps((env_maker_blob, video)), build)


def run_filmed(
    run: Callable[[Any], EpisodeRecord | Any], env_maker_blob: bytes, video: VideoConfig | None, index: int
) -> tuple[Any, Film | None]:
    """``run(env)`` (episode ``index``, e.g. ``lambda env: run_episode(actor, env, seed, index)``) in a worker:
    filmed on the filmable env when ``video`` asks for ``index``, giving what ``run`` returned and the
    episode's :class:`~sport_core.video.Film`; otherwise on the worker's plain env (:func:`worker_env`), with
    no film."""
    from sport_core.filming import frame_rate

    if video is None or not video.wants(index):
        return run(worker_env(env_maker_blob)), None
    camera = worker_camera(env_maker_blob, video)
    camera.arm()
    result = run(camera)
    frames = camera.take()
    if frames is None:
        raise RuntimeError(f"episode {index} was to be filmed, but its env was never reset")
    return result, Film(index, frames, frame_rate(video, camera))


def _run_chunk(chunk: _Chunk) -> _ChunkResult:
    actor = _cached(_ACTOR_CACHE, chunk.actor, lambda a: a)
    records, films = [], []
    for i in chunk.indices:
        record, film = run_filmed(
            lambda e, i=i: run_episode(actor, e, chunk.seed, i, chunk.trajectory), chunk.env_maker, chunk.video, i
        )
        records.append(record)
        if film is not None:
            films.append(film)
    return _ChunkResult(records, films)


def iter_collect(
    actor: Any,
    env_maker: Any,
    indices: Iterable[int] | int,
    seed: int,
    executor: Any,
    *,
    trajectory: bool = False,
    chunk_size: int | None = None,
    video: VideoConfig | None = None,
    on_film: Callable[[Film], Any] | None = None,
) -> Iterator[EpisodeRecord]:
    """Yield the records of episodes ``indices`` (an int n means ``range(n)``) as their chunks finish; with
    ``video``, the episodes it asks for are filmed and each :class:`~sport_core.video.Film` goes to ``on_film``
    before the records of its chunk are yielded."""
    if video is not None and (video.every == 0 or on_film is None):
        video = None
    todo: Sequence[int] = range(indices) if isinstance(indices, int) else list(indices)
    if not todo:
        return
    workers = max(1, getattr(executor, "workers", 1))
    if chunk_size is None:
        if getattr(executor, "in_process", False):
            chunk_size = 1  # nothing to amortise in-process; an interruption then loses no finished episode
        else:  # enough chunks to balance the load, few enough to amortise shipping the actor
            chunk_size = max(1, min(64, math.ceil(len(todo) / (4 * workers))))
    actor_blob = pickle.dumps(actor)
    env_blob = pickle.dumps(env_maker)
    chunks = [
        _Chunk(actor_blob, env_blob, seed, tuple(todo[i : i + chunk_size]), trajectory, video)
        for i in range(0, len(todo), chunk_size)
    ]
    for result in executor.map(_run_chunk, chunks):
        for film in result.films:
            on_film(film)
        yield from result.records


def collect(
    actor: Any,
    env_maker: Any,
    indices: Iterable[int] | int,
    seed: int,
    executor: Any,
    *,
    trajectory: bool = False,
    on_record: Callable[[EpisodeRecord], None] | None = None,
    progress: Any = None,
    chunk_size: int | None = None,
    video: VideoConfig | None = None,
    on_film: Callable[[Film], Any] | None = None,
) -> list[EpisodeRecord]:
    """Collect episodes and return their records sorted by index.

    ``on_record`` sees each record as soon as its chunk finishes (append it to a store there);
    ``progress``, if given, is called with the number of newly finished episodes; ``video`` and ``on_film``
    as in :func:`iter_collect`.
    """
    records = []
    for record in iter_collect(
        actor,
        env_maker,
        indices,
        seed,
        executor,
        trajectory=trajectory,
        chunk_size=chunk_size,
        video=video,
        on_film=on_film,
    ):
        if on_record is not None:
            on_record(record)
        if progress is not None:
            progress(1)
        records.append(record)
    return sorted(records, key=lambda r: r.index)


def episode_limit(env_maker: Any) -> int | None:
    """The env's episode limit if it tells: an attribute of the maker or of its config, else the made env's
    ``spec.max_episode_steps`` (gymnasium's TimeLimit)."""
    sources = [env_maker, getattr(env_maker, "config", None)]
    for source in sources:
        for name in ("max_episode_steps", "max_steps", "num_steps"):
            value = getattr(source, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    env = env_maker.make()
    try:
        spec = getattr(env, "spec", None)
        steps = getattr(spec, "max_episode_steps", None)
        return int(steps) if steps else None
    finally:
        close = getattr(env, "close", None)
        if close is not None:
            close()


def collect_into_store(ctx: Any, actor: Any, env_maker: Any, path: Path, context: str, episodes: int) -> Any:
    """Collect episodes 0..episodes−1 of ``actor`` on ``env_maker`` through ``ctx.executor`` into the episode
    store at ``path`` (:mod:`sport_core.episodes`), one record appended as each arrives: when ``ctx.resumed``
    the store is continued (only missing indices are collected), else it starts over. ``context`` is what the
    episodes are episodes *of* (e.g. :func:`sport_core.certificates.store_context`); a store written for
    another context is refused. The episodes the stage's ``video`` table (``ctx.video``) asks for are filmed
    into ``<stage>/videos/`` and logged (:class:`sport_core.video.VideoSink`). Shows a progress bar; returns
    the finished store (:class:`sport_core.episodes.EpisodeFile`), read back strictly."""
    if not ctx.resumed and path.exists():
        path.unlink()  # a fresh attempt never mixes with leftovers of an earlier configuration
    from sport_core.episodes import EpisodeStore, sort_store
    from sport_core.progress import progress_bar
    from sport_core.video import VideoSink

    video = getattr(ctx, "video", None)
    sink = VideoSink(ctx.stage_dir, ctx.log) if video is not None else None

    with EpisodeStore.open(path, ctx.seed, context) as store:
        todo = store.missing(episodes)
        if len(todo) < episodes:
            log.info(
                "stage %s: %d of %d episodes already stored; collecting the rest",
                ctx.name,
                episodes - len(todo),
                episodes,
            )
        with progress_bar(episodes, f"{ctx.name}: episodes", episodes - len(todo)) as advance:
            for record in iter_collect(actor, env_maker, todo, ctx.seed, ctx.executor, video=video, on_film=sink):
                store.append(record)
                advance(1)
    stored = sort_store(path)  # its bytes (and hash) then do not depend on the order the workers finished in
    if len(stored) != episodes:
        raise ArtifactError(f"{path} holds {len(stored)} episodes, expected {episodes}; delete it and re-run")
    return stored
