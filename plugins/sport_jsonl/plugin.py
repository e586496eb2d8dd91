"""The ``jsonl`` logger: ``{"stage", "step", "time", "scalars"}`` per line (plus ``"labels"`` for a labelled
series, e.g. ``{"alpha": 1.5}``), flushed as it goes."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import IO

import attrs

from sport_core import Component, hookimpl
from sport_core.artifacts import writing


@attrs.frozen
class JsonlConfig:
    """``filename`` is relative to the run directory."""

    filename: str = "metrics.jsonl"


class JsonlLogger:
    def __init__(self, config: JsonlConfig) -> None:
        self.config = config
        self._files: dict[Path, IO[str]] = {}

    def _file(self, run_dir: Path) -> IO[str]:
        path = Path(run_dir) / self.config.filename
        if path not in self._files:
            self._files[path] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across events
        return self._files[path]

    @hookimpl
    def sport_log_scalars(self, run_dir: Path, stage: str, step: int, scalars: dict, labels: dict) -> None:
        clean = {k: float(v) for k, v in scalars.items() if math.isfinite(float(v))}
        line = {"stage": stage, "step": step, "time": round(time.time(), 3), "scalars": clean}
        if labels:
            line["labels"] = labels
        path = Path(run_dir) / self.config.filename
        with writing(path):  # a full disk is a one-line error naming the file
            fh = self._file(run_dir)
            fh.write(json.dumps(line) + "\n")
            fh.flush()

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()


@hookimpl
def sport_register_loggers():
    return [Component("jsonl", JsonlLogger, JsonlConfig, "scalars as JSON lines in the run directory")]
