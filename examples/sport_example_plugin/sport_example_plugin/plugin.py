"""An example third-party sport plugin: a ``csv`` logger, and the ``beta-posterior`` certifier with its verifier.

* ``csv`` (logger): one ``stage,step,tag,value`` row per scalar in ``<run_dir>/<filename>``; an attrs config
  and a class implementing the event hook ``sport_log_scalars``.
* ``beta-posterior`` (certifier and verifier, :mod:`sport_example_plugin.certifier`): a Bayesian bound on the
  base policy's failure probability, which a recipe can use in place of the built-in ``scenario`` certifier.

The package is shaped exactly like a built-in plugin. Its ``pyproject.toml`` declares::

    [project.entry-points.sport]
    example = "sport_example_plugin.plugin"
"""

from __future__ import annotations

import csv
from pathlib import Path

import attrs

from sport_core import Component, hookimpl
from sport_example_plugin.certifier import (
    METHOD,
    BetaPosteriorCertifier,
    BetaPosteriorConfig,
    BetaPosteriorVerifier,
    BetaPosteriorVerifierConfig,
)


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


@hookimpl
def sport_register_certifiers():
    return [
        Component(
            METHOD,
            BetaPosteriorCertifier,
            BetaPosteriorConfig,
            "Bayesian (Beta posterior quantile) bound on the base policy's failure probability, T* and alpha*",
        )
    ]


@hookimpl
def sport_register_verifiers():
    return [
        Component(METHOD, BetaPosteriorVerifier, BetaPosteriorVerifierConfig, "re-derives beta-posterior certificates")
    ]
