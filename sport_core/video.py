"""Episode videos: which episodes a stage films, how frames are taken, and how they are written and logged.

A recipe asks a stage for videos with a ``video`` table beside its ``config``::

    [[stages]]
    certifier = "scenario"
    video = { every = 1000, source = "camera", camera = "fixedfar", size = [320, 240], fps = 5 }

Episode ``i`` of the stage is filmed when ``i % every == 0`` (episode indices are what the stage counts:
collection indices for certification and evaluation, finished training episodes for trainers), so the
choice is the same whatever the worker count and a resumed run films exactly the episodes it re-runs.

Two sources of frames:

* ``camera``: the env's own renderer (``render_mode="rgb_array"``): the env maker must accept
  ``make(render_mode="rgb_array", width=W, height=H, camera=NAME)`` (the ``safety-gym`` maker does; it picks
  a headless OpenGL backend itself). Filming uses its own env instance, and rendering only reads the
  simulator state: a filmed episode's record is the one it has unfilmed (tested).
* ``topdown``: a drawing of the layout (goal and hazards to scale) and the agent's path so far, from the
  positions in the step ``info`` (:mod:`sport_core.drawing`); needs no OpenGL and works with every env that
  reports ``agent_pos`` (and ``goal_pos``/``hazard_pos`` for the scenery).

Frames are taken by :class:`sport_core.filming.EpisodeCamera`, a gymnasium wrapper. Videos are H.264 MP4
(``yuv420p``, which every browser and player shows) written atomically by
:func:`write_video` with PyAV (the ``video`` extra: ``pip install 'sport[video]'``), under
``<stage>/videos/`` (:func:`video_path`), and sent to every logger through ``ctx.log.video``
(``sport_log_video``).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np

from sport_core.artifacts import atomic_open
from sport_core.errors import ArtifactError, SportError

VIDEO_EXTRA = "pip install 'sport[video]'"


def _size_ok(instance: Any, attribute: attrs.Attribute, value: tuple[int, int]) -> None:
    if len(value) != 2 or not all(isinstance(v, int) and 16 <= v <= 4096 for v in value):
        raise ValueError(f"size must be [width, height] in pixels, each 16..4096; got {list(value)}")


@attrs.frozen
class VideoConfig:
    """A stage's ``video`` table. ``every``: film episodes whose index is a multiple of it (0 films none);
    ``source``: ``"camera"`` (the env's renderer) or ``"topdown"`` (a drawing, no OpenGL); ``camera``: the
    env's camera name (None: the env's default; ``safety-gym``: ``fixedfar``); ``size``: [width, height] in
    pixels; ``fps``: playback rate (None: the env's ``metadata["render_fps"]``, real time for ``safety-gym``)."""

    every: int = attrs.field(default=100, validator=attrs.validators.ge(0))
    source: Literal["camera", "topdown"] = attrs.field(
        default="camera", validator=attrs.validators.in_(("camera", "topdown"))
    )
    camera: str | None = None
    size: tuple[int, int] = attrs.field(default=(256, 256), converter=tuple, validator=_size_ok)
    fps: float | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))

    def wants(self, index: int) -> bool:
        """Whether episode ``index`` is filmed."""
        return self.every > 0 and index % self.every == 0


# -- files --------------------------------------------------------------------------------------------------


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise SportError(f"writing episode videos needs PyAV, which is not installed: {VIDEO_EXTRA}") from None
    return av


def require_video_writer() -> None:
    """Raise the one-line :class:`SportError` naming the ``video`` extra unless videos can be written."""
    _av()


def video_path(stage_dir: Path, index: int, labels: dict[str, Any] | None = None, name: str = "episode") -> Path:
    """Where a stage keeps the video of episode ``index``: ``<stage>/videos[/<k>=<v>…]/<name>-<index:06d>.mp4``."""
    from sport_core.context import series_name

    return Path(stage_dir) / "videos" / series_name(labels or {}) / f"{name}-{int(index):06d}.mp4"


def _check_frames(frames: Any) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0 or frames.dtype != np.uint8:
        raise ValueError(f"video frames must be a non-empty uint8 array (T, H, W, 3); got {frames.dtype}{frames.shape}")
    return frames


def write_video(path: str | os.PathLike, frames: Any, fps: float) -> Path:
    """Write ``frames`` (uint8 (T, H, W, 3)) as an H.264 MP4 at ``fps`` frames a second, atomically (a temporary
    file in the same folder, then a rename). Odd widths or heights are padded by one black pixel row/column
    (``yuv420p`` needs even sizes)."""
    av = _av()
    frames = _check_frames(frames)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    with atomic_open(path, "wb") as fh, av.open(fh, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """The frames (uint8 (T, H, W, 3)) and frame rate of a video file; a file that is not one is refused."""
    av = _av()
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            fps = float(stream.average_rate or stream.base_rate or 0)
    except (av.error.FFmpegError, IndexError) as exc:
        raise ArtifactError(f"{path} is not a readable video ({exc})") from None
    if not frames:
        raise ArtifactError(f"{path} holds no video frames")
    return np.stack(frames), fps


def gif_bytes(frames: Any, fps: float, max_frames: int | None = None) -> bytes:
    """An animated GIF of ``frames`` (uint8 (T, H, W, 3)) played at ``fps``, looping. GIF delays are whole
    hundredths of a second and browsers slow anything under 20 ms down, so a frame lasts at least 20 ms; with
    ``max_frames``, a longer clip keeps that many evenly spaced frames, each shown longer (same duration)."""
    import io

    from PIL import Image

    frames = _check_frames(frames)
    count = len(frames) if max_frames is None else min(len(frames), max_frames)
    keep = np.unique(np.linspace(0, len(frames) - 1, count).round().astype(int))
    delay_ms = 1000.0 * len(frames) / (fps * len(keep))
    images = [Image.fromarray(f) for f in frames[keep]]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=max(20, round(delay_ms)), loop=0
    )
    return buffer.getvalue()


@attrs.frozen(eq=False)
class Film:
    """One filmed episode: its index, its frames (uint8 (T, H, W, 3)) and their playback rate."""

    index: int
    frames: np.ndarray
    fps: float


# -- the stage side -----------------------------------------------------------------------------------------


class VideoSink:
    """What a stage does with a filmed episode: write it to :func:`video_path` and send it to the loggers as
    tag ``video/<name>`` at step = episode index. ``log`` is ``ctx.log`` or one of its series (whose labels
    name the sub-folder), or None to only write the file (in a worker process, say; ``labels`` then names the
    sub-folder)."""

    def __init__(self, stage_dir: Path, log: Any, name: str = "episode", labels: dict | None = None) -> None:
        self.stage_dir = Path(stage_dir)
        self.log = log
        self.name = name
        self.labels = dict(labels if labels is not None else getattr(log, "labels", {}))
        self.written: list[Path] = []

    def __call__(self, film: Film) -> Path:
        path = write_video(video_path(self.stage_dir, film.index, self.labels, self.name), film.frames, film.fps)
        self.written.append(path)
        if self.log is not None:
            self.log.video(film.index, f"video/{self.name}", film.frames, film.fps, path)
        return path


def log_videos(log: Any, stage_dir: Path, labels: dict | None = None, name: str = "episode") -> int:
    """Send the videos a worker wrote under :func:`video_path` (for ``labels``) to the loggers, by episode
    index (frames read back from the MP4s); returns how many."""
    folder = video_path(stage_dir, 0, labels, name).parent
    count = 0
    for path in sorted(folder.glob(f"{name}-*.mp4")):
        frames, fps = read_video(path)
        log.video(int(path.stem.rsplit("-", 1)[1]), f"video/{name}", frames, fps, path)
        count += 1
    return count
