"""Weights & Biases logging through the event hooks.

One W&B run per (sport run, stage, series), started on the series' first logging event and finished when
the stage finishes (exit code 0 when it completed, 1 otherwise). Its ``group`` is the sport run's folder
name, so every stage of one ``sport run`` groups together; its ``job_type`` is the stage name; its name is
``<run>/<stage>``, with ``[alpha=1.5]`` for a labelled series (``labels`` of the ``sport_log_*`` hooks); its
config holds the resolved recipe (``recipe``), ``stage``, ``run_dir``, ``resumed`` and the labels themselves, so that an
α sweep shows as runs with ``alpha`` as a config value in W&B's tables and comparison views.

Steps: every event is logged as its own history row carrying the stage's step as the value ``step``, which
:meth:`wandb.Run.define_metric` makes the x-axis of every chart. W&B's own ``_step`` must only grow, and a
stage may send events out of step order (figures of a finished stage at step 0, an α sweep's rows, a
resumed attempt); a ``step=`` argument would make W&B drop those, the ``step`` value keeps each at its own
place. (``_step`` then counts events, which is what the media panels' slider shows.)

Figures are ``wandb.Image``\\ s, histograms ``wandb.Histogram``\\ s, text ``wandb.Html`` (markdown rendered
when the ``markdown`` package is there), videos ``wandb.Video``\\ s of the MP4 the stage wrote, or, when
there is none, an animated GIF made from the frames (W&B's own encoder needs moviepy). The files go to
``<run_dir>/<dir>/wandb/``; ``mode = "offline"`` keeps them there for ``wandb sync``. W&B's console output
and stdout capture are off: sport's own log is the console.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np

from sport_core import Component, hookimpl
from sport_core.context import series_name
from sport_core.errors import SportError
from sport_core.video import gif_bytes

WANDB_EXTRA = "pip install 'sport[wandb]'"


@attrs.frozen
class WandbConfig:
    """``project`` and ``entity`` (None: your default entity) of the W&B runs; ``mode``: ``online``,
    ``offline`` or ``disabled`` (None: W&B's default, or the ``WANDB_MODE`` environment variable); ``dir``:
    the folder, relative to the run directory, in which W&B makes its ``wandb/`` folder; ``tags`` of every
    run."""

    project: str = "sport"
    entity: str | None = None
    mode: Literal["online", "offline", "disabled"] | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(("online", "offline", "disabled")))
    )
    dir: str = "."
    tags: tuple[str, ...] = ()


def _import_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise SportError(f"the wandb logger needs the wandb package: {WANDB_EXTRA}") from None
    return wandb


def _html(text: str) -> str:
    """``text`` (markdown) as HTML: rendered by the ``markdown`` package if installed, else preformatted."""
    try:
        import markdown
    except ImportError:
        return f"<pre>{html.escape(text)}</pre>"
    return markdown.markdown(text, extensions=["tables", "fenced_code"])


class WandbLogger:
    """The ``wandb`` logger: one live W&B run per (run directory, stage, series), see the module docstring."""

    def __init__(self, config: WandbConfig) -> None:
        self.config = config
        self._wandb = _import_wandb()  # here, so that a recipe naming this logger fails before anything runs
        self._recipes: dict[Path, dict] = {}
        self._resumed: dict[tuple[Path, str], bool] = {}
        self._runs: dict[tuple[Path, str, str], Any] = {}

    def _run(self, run_dir: Path, stage: str, labels: dict | None) -> Any:
        run_dir, labels = Path(run_dir), dict(labels or {})
        series = series_name(labels)
        key = (run_dir, stage, series)
        if key not in self._runs:
            wandb = self._wandb
            config: dict[str, Any] = {"stage": stage, "run_dir": str(run_dir)}
            if run_dir in self._recipes:
                config["recipe"] = self._recipes[run_dir]
            if (run_dir, stage) in self._resumed:
                config["resumed"] = self._resumed[run_dir, stage]
            root = run_dir / self.config.dir
            root.mkdir(parents=True, exist_ok=True)
            run = wandb.init(
                project=self.config.project,
                entity=self.config.entity,
                mode=self.config.mode,
                dir=str(root),
                group=run_dir.name,
                job_type=stage,
                name=f"{run_dir.name}/{stage}" + (f"[{series}]" if series else ""),
                tags=list(self.config.tags),
                config={**config, **labels},
                reinit="create_new",  # one live run per stage and series; never touches wandb.run
                settings=wandb.Settings(silent=True, console="off"),
            )
            run.define_metric("step", hidden=True)
            run.define_metric("*", step_metric="step")
            self._runs[key] = run
        return self._runs[key]

    def _log(self, run_dir: Path, stage: str, step: int, labels: dict, data: dict) -> None:
        self._run(run_dir, stage, labels).log({**data, "step": int(step)})

    def _finish(self, keep: Any, exit_code: int) -> None:
        for key in [k for k in self._runs if not keep(k)]:
            self._runs.pop(key).finish(exit_code=exit_code)

    @hookimpl
    def sport_run_started(self, run_dir: Path, recipe: Any) -> None:
        self._recipes[Path(run_dir)] = recipe.to_dict()

    @hookimpl
    def sport_stage_started(self, run_dir: Path, stage: str, resumed: bool) -> None:
        self._resumed[Path(run_dir), stage] = bool(resumed)

    @hookimpl
    def sport_log_scalars(self, run_dir: Path, stage: str, step: int, scalars: dict, labels: dict) -> None:
        self._log(run_dir, stage, step, labels, {tag: float(value) for tag, value in scalars.items()})

    @hookimpl
    def sport_log_histogram(self, run_dir: Path, stage: str, step: int, tag: str, values: Any, labels: dict) -> None:
        values = np.asarray(values, dtype=float).ravel()
        values = values[np.isfinite(values)]
        if values.size:
            self._log(run_dir, stage, step, labels, {tag: self._wandb.Histogram(values)})

    @hookimpl
    def sport_log_figure(self, run_dir: Path, stage: str, step: int, tag: str, figure: Any, labels: dict) -> None:
        self._log(run_dir, stage, step, labels, {tag: self._wandb.Image(figure)})

    @hookimpl
    def sport_log_text(self, run_dir: Path, stage: str, step: int, tag: str, text: str, labels: dict) -> None:
        self._log(run_dir, stage, step, labels, {tag: self._wandb.Html(_html(text))})

    @hookimpl
    def sport_log_video(
        self, run_dir: Path, stage: str, step: int, tag: str, frames: Any, fps: float, path: Path | None, labels: dict
    ) -> None:
        if path is not None:
            video = self._wandb.Video(str(path), format="mp4")
        else:
            video = self._wandb.Video(io.BytesIO(gif_bytes(frames, fps)), format="gif")
        self._log(run_dir, stage, step, labels, {tag: video})

    @hookimpl
    def sport_stage_finished(self, run_dir: Path, stage: str, status: str) -> None:
        self._finish(lambda key: key[:2] != (Path(run_dir), stage), 0 if status in ("completed", "skipped") else 1)

    @hookimpl
    def sport_run_finished(self, run_dir: Path, status: str) -> None:
        self._finish(lambda key: key[0] != Path(run_dir), 0 if status == "completed" else 1)
        self._recipes.pop(Path(run_dir), None)

    def close(self) -> None:
        self._finish(lambda key: False, 0)


@hookimpl
def sport_register_loggers():
    return [Component("wandb", WandbLogger, WandbConfig, "Weights & Biases runs, one per stage and series")]
