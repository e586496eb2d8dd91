"""TensorBoard logging through the event hooks.

One ``SummaryWriter`` per (run, stage, series), writing to ``<run_dir>/<subdir>/<stage>`` and, for a labelled
series (``labels`` of the ``sport_log_*`` hooks, e.g. one α), to ``<run_dir>/<subdir>/<stage>/alpha=1.5``, so
that ``tensorboard --logdir runs/`` shows every run, stage and series side by side (series of one stage
overlay in the same charts). Scalars, histograms, figures, text and videos are written as they arrive and
flushed every ``flush_secs`` and at the end of each stage.

Videos are TensorBoard image summaries holding an animated GIF (what ``SummaryWriter.add_video`` writes,
without its moviepy dependency), shown in the Images tab; a long clip keeps at most ``video_max_frames``
evenly spaced frames (same duration), and the MP4 beside it keeps every frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np

from sport_core import Component, hookimpl
from sport_core.context import series_name
from sport_core.video import gif_bytes


@attrs.frozen
class TensorBoardConfig:
    """``subdir`` of the run directory for event files; ``flush_secs`` between flushes."""

    subdir: str = "tb"
    flush_secs: int = attrs.field(default=10, validator=attrs.validators.gt(0))
    video_max_frames: int = attrs.field(default=300, validator=attrs.validators.gt(0))


def gif_summary(tag: str, frames: np.ndarray, fps: float, max_frames: int) -> Any:
    """A TensorBoard image summary whose picture is an animated GIF of ``frames`` (uint8 (T, H, W, 3)) at
    ``fps`` (:func:`sport_core.video.gif_bytes`, at most ``max_frames`` frames)."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    height, width = np.shape(frames)[1:3]
    encoded = gif_bytes(frames, fps, max_frames)
    image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=encoded)
    return Summary(value=[Summary.Value(tag=tag, image=image)])


class TensorBoardLogger:
    def __init__(self, config: TensorBoardConfig) -> None:
        self.config = config
        self._writers: dict[tuple[Path, str, str], Any] = {}

    def _writer(self, run_dir: Path, stage: str, labels: dict | None = None) -> Any:
        key = (Path(run_dir), stage, series_name(labels or {}))
        if key not in self._writers:
            from torch.utils.tensorboard import SummaryWriter  # imported lazily: it pulls in tensorboard

            logdir = Path(run_dir) / self.config.subdir / stage / key[2]
            self._writers[key] = SummaryWriter(log_dir=str(logdir), flush_secs=self.config.flush_secs)
        return self._writers[key]

    @hookimpl
    def sport_log_scalars(self, run_dir: Path, stage: str, step: int, scalars: dict, labels: dict) -> None:
        writer = self._writer(run_dir, stage, labels)
        for tag, value in scalars.items():
            writer.add_scalar(tag, float(value), global_step=step)

    @hookimpl
    def sport_log_histogram(self, run_dir: Path, stage: str, step: int, tag: str, values: Any, labels: dict) -> None:
        self._writer(run_dir, stage, labels).add_histogram(tag, np.asarray(values), global_step=step)

    @hookimpl
    def sport_log_figure(self, run_dir: Path, stage: str, step: int, tag: str, figure: Any, labels: dict) -> None:
        self._writer(run_dir, stage, labels).add_figure(tag, figure, global_step=step, close=False)

    @hookimpl
    def sport_log_text(self, run_dir: Path, stage: str, step: int, tag: str, text: str, labels: dict) -> None:
        self._writer(run_dir, stage, labels).add_text(tag, text, global_step=step)

    @hookimpl
    def sport_log_video(
        self, run_dir: Path, stage: str, step: int, tag: str, frames: Any, fps: float, labels: dict
    ) -> None:
        summary = gif_summary(tag, frames, fps, self.config.video_max_frames)
        self._writer(run_dir, stage, labels).file_writer.add_summary(summary, global_step=step)

    @hookimpl
    def sport_stage_finished(self, run_dir: Path, stage: str) -> None:
        for key, writer in self._writers.items():
            if key[:2] == (Path(run_dir), stage):
                writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


@hookimpl
def sport_register_loggers():
    return [Component("tensorboard", TensorBoardLogger, TensorBoardConfig, "TensorBoard event files in <run>/tb/")]
