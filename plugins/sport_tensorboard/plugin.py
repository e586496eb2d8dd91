"""TensorBoard logging through the event hooks.

One ``SummaryWriter`` per (run, stage), writing to ``<run_dir>/<subdir>/<stage>``, so that
``tensorboard --logdir runs/`` shows every run and stage side by side. Scalars, histograms, figures and text
are written as they arrive and flushed every ``flush_secs`` and at the end of each stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np

from sport_core import Component, hookimpl


@attrs.frozen
class TensorBoardConfig:
    """``subdir`` of the run directory for event files; ``flush_secs`` between flushes."""

    subdir: str = "tb"
    flush_secs: int = attrs.field(default=10, validator=attrs.validators.gt(0))


class TensorBoardLogger:
    def __init__(self, config: TensorBoardConfig) -> None:
        self.config = config
        self._writers: dict[tuple[Path, str], Any] = {}

    def _writer(self, run_dir: Path, stage: str) -> Any:
        key = (Path(run_dir), stage)
        if key not in self._writers:
            from torch.utils.tensorboard import SummaryWriter  # imported lazily: it pulls in tensorboard

            logdir = Path(run_dir) / self.config.subdir / stage
            self._writers[key] = SummaryWriter(log_dir=str(logdir), flush_secs=self.config.flush_secs)
        return self._writers[key]

    @hookimpl
    def sport_log_scalars(self, run_dir: Path, stage: str, step: int, scalars: dict) -> None:
        writer = self._writer(run_dir, stage)
        for tag, value in scalars.items():
            writer.add_scalar(tag, float(value), global_step=step)

    @hookimpl
    def sport_log_histogram(self, run_dir: Path, stage: str, step: int, tag: str, values: Any) -> None:
        self._writer(run_dir, stage).add_histogram(tag, np.asarray(values), global_step=step)

    @hookimpl
    def sport_log_figure(self, run_dir: Path, stage: str, step: int, tag: str, figure: Any) -> None:
        self._writer(run_dir, stage).add_figure(tag, figure, global_step=step, close=False)

    @hookimpl
    def sport_log_text(self, run_dir: Path, stage: str, step: int, tag: str, text: str) -> None:
        self._writer(run_dir, stage).add_text(tag, text, global_step=step)

    @hookimpl
    def sport_stage_finished(self, run_dir: Path, stage: str) -> None:
        writer = self._writers.get((Path(run_dir), stage))
        if writer is not None:
            writer.flush()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


@hookimpl
def sport_register_loggers():
    return [Component("tensorboard", TensorBoardLogger, TensorBoardConfig, "TensorBoard event files in <run>/tb/")]
