"""The ``csv`` logger: one ``stage,step,tag,value`` row per scalar in ``<run_dir>/<filename>``.

This package is shaped exactly like a built-in plugin: an attrs config, a class implementing the event
hook ``sport_log_scalars``, and a registration hook. Its ``pyproject.toml`` declares::

    [project.entry-points.sport]
    example = "sport_example_plugin.plugin"
"""

from __future__ import annotations

import csv
from pathlib import Path

import attrs

from sport_core import Component, hookimpl


@attrs.frozen
class CsvConfig:
    filename: str = "scalars.csv"


class CsvLogger:
    def __init__(self, config: CsvConfig) -> None:
        self.config = config

    @hookimpl
    def sport_log_scalars(self, run_dir: Path, stage: str, step: int, scalars: dict) -> None:
        path = Path(run_dir) / self.config.filename
        new = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(["stage", "step", "tag", "value"])
            for tag, value in scalars.items():
                writer.writerow([stage, step, tag, float(value)])


@hookimpl
def sport_register_loggers():
    return [Component("csv", CsvLogger, CsvConfig, "scalars as CSV rows (example third-party plugin)")]
