"""A plugin used by the core tests: stages that count their attempts and can be made to stop.

``counting`` writes ``out.json`` with a value derived from its input (so hashes chain through stages) and
appends one line per call to ``<stage_dir>/calls.log``; with ``block_file`` set it waits until that file
exists before finishing (so a test can kill the run mid-stage), and with ``interrupt = true`` it raises
KeyboardInterrupt once, as Ctrl-C would; with ``fail = true`` it raises RuntimeError after its wait.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import attrs

from sport_core import Component, hookimpl
from sport_core.artifacts import atomic_write_json


@attrs.frozen
class CountingConfig:
    value: int = 1
    block_file: str = ""
    interrupt: bool = False
    fail: bool = False


class CountingStage:
    def __init__(self, config: CountingConfig) -> None:
        self.config = config

    def run(self, ctx) -> dict[str, Path]:
        ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        with open(ctx.stage_dir / "calls.log", "a") as fh:
            fh.write(f"resumed={ctx.resumed}\n")
        total = self.config.value
        if "previous" in ctx.inputs:
            total += json.loads(ctx.input("previous").read_text())["total"]
        marker = ctx.checkpoint_dir / "interrupted-once"
        if self.config.interrupt and not marker.exists():
            marker.write_text("x")
            raise KeyboardInterrupt
        if self.config.block_file:
            while not Path(self.config.block_file).exists():
                time.sleep(0.05)
        if self.config.fail:
            raise RuntimeError(f"counting stage {ctx.stage.name} was told to fail")
        ctx.log.scalars(total, {"test/total": total})
        return {"out": atomic_write_json(ctx.stage_dir / "out.json", {"total": total})}


@hookimpl
def sport_register_evaluators():
    return [Component("counting", CountingStage, CountingConfig, "test stage")]
