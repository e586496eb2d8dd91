"""What a stage gets from the runner: :class:`StageContext`, and :class:`Events` to reach the loggers.

A stage's ``run(ctx)`` reads everything through the context — its inputs (artifacts of earlier stages, or
files named in the recipe), its env maker, the executor for parallel work, the registry to build other
components, its folders — and emits log events through ``ctx.log``. See ``docs/plugin-api.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from sport_core.artifacts import relative_path
from sport_core.errors import ArtifactError, SportError


def series_name(labels: Mapping[str, Any]) -> str:
    """A series' name for folders and titles: ``alpha=1.5`` (several labels joined by ``,``); ``""`` for none."""
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in labels.items())


class Events:
    """What a stage uses to emit log events; every registered logger receives them (see the ``sport_log_*``
    hooks). Steps are integers the stage counts (env steps, episodes, α indices). ``labels`` names the series
    the events belong to (``{}`` for the stage as a whole); :meth:`series` gives an emitter for one series."""

    def __init__(self, pm: Any, run_dir: Path, stage: str, labels: Mapping[str, Any] | None = None) -> None:
        self._pm = pm
        self._hook = pm.hook
        self._run_dir = run_dir
        self._stage = stage
        self.labels: dict[str, Any] = dict(labels or {})

    def series(self, **labels: Any) -> Events:
        """An emitter for one series of this stage, e.g. ``ctx.log.series(alpha=1.5).scalars(step, {...})``:
        loggers keep it apart from the stage's other series (labels are flat: str, int, float or bool)."""
        bad = {k: v for k, v in labels.items() if not isinstance(v, (str, int, float, bool))}
        if bad:
            raise TypeError(f"series labels must be str, int, float or bool; got {bad!r}")
        return Events(self._pm, self._run_dir, self._stage, {**self.labels, **labels})

    def _emit(self, hook: str, **kwargs: Any) -> None:
        getattr(self._hook, hook)(run_dir=self._run_dir, stage=self._stage, labels=dict(self.labels), **kwargs)

    def scalars(self, step: int, scalars: dict[str, float]) -> None:
        self._emit("sport_log_scalars", step=int(step), scalars=scalars)

    def histogram(self, step: int, tag: str, values: Any) -> None:
        self._emit("sport_log_histogram", step=int(step), tag=tag, values=values)

    def figure(self, step: int, tag: str, figure: Any) -> None:
        self._emit("sport_log_figure", step=int(step), tag=tag, figure=figure)

    def text(self, step: int, tag: str, text: str) -> None:
        self._emit("sport_log_text", step=int(step), tag=tag, text=text)

    def video(self, step: int, tag: str, frames: Any, fps: float, path: Path | None = None) -> None:
        """An episode video (uint8 frames (T, H, W, 3)); write the MP4 first with
        :func:`sport_core.video.write_video` and pass its ``path``."""
        self._emit("sport_log_video", step=int(step), tag=tag, frames=frames, fps=float(fps), path=path)


class MissingEnv:
    """``ctx.env`` of a stage that has no env (the recipe gives none): falsy, and any use of it is a one-line
    error saying to declare ``needs_env = True`` (then ``sport check`` asks the recipe for an env)."""

    def __init__(self, stage: str, component: str) -> None:
        self._stage = stage
        self._component = component

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise SportError(
            f"stage {self._stage!r} ({self._component}) used ctx.env.{name}, but the recipe gives it no env; a "
            "stage that uses an env declares needs_env = True (then `sport check` requires [env] or [stages.env])"
        )

    def __repr__(self) -> str:
        return f"<no env for stage {self._stage!r}>"


@attrs.define
class StageContext:
    """Everything a stage gets from the runner.

    * ``run_dir``: the run folder; ``stage``: the recipe's :class:`~sport_core.recipe.StageSpec` (name,
      component and config, inputs, own env); ``stage_dir``: the stage's folder (its outputs go here);
      ``checkpoint_dir``: ``stage_dir/checkpoints``, kept across interruptions; ``resumed``: True when an
      earlier attempt of this stage with the same inputs was interrupted (continue, do not start over).
    * ``seed``: the run's master seed (derive streams with :mod:`sport_core.seeding`).
    * ``env``: the env maker (:class:`~sport_core.protocols.EnvMaker`) built from the stage's ``env`` table or
      the recipe's ``[env]``; a :class:`MissingEnv` when there is none. ``env_ref``: the recipe's component
      reference for it (name and config; ``env_ref.to_table()`` is the table certificates record), or None.
    * ``executor``: runs independent tasks (:class:`~sport_core.protocols.Executor`).
    * ``registry``: every registered component (build a policy, projection or env by name); ``pm``: the plugin
      manager (``pm.infos`` lists the loaded plugins).
    * ``log``: :class:`Events` to emit scalars, histograms, figures and text to every logger.
    * ``video``: the stage's ``video`` table (:class:`sport_core.video.VideoConfig`), or None: a stage that
      declares ``films = True`` films the episodes it asks for (:class:`sport_core.filming.EpisodeCamera`,
      :class:`sport_core.video.VideoSink`; collection does it with ``collect(..., video=ctx.video)``).
    * ``inputs``: role -> {artifact name: path} of the stage each input role names (``{"file": path}`` for
      ``"file:PATH"`` inputs); ``input_refs``: role -> the producing stage's name or ``"file <path>"``.
    """

    run_dir: Path
    stage: Any
    stage_dir: Path
    checkpoint_dir: Path
    seed: int
    env: Any
    env_ref: Any
    executor: Any
    registry: Any
    pm: Any
    log: Events
    inputs: dict[str, dict[str, Path]]
    input_refs: dict[str, str]
    resumed: bool = False
    video: Any = None

    @property
    def name(self) -> str:
        return self.stage.name

    def input(self, role: str, artifact: str | None = None) -> Path:
        """Path of an input artifact: ``artifact`` of the stage that input ``role`` names (default: the one the
        recipe pins with ``"stage:artifact"``, else the stage's only artifact). A missing input is an error
        naming the stage that should have made it."""
        if role not in self.inputs:
            roles = ", ".join(self.inputs) or "none"
            raise ArtifactError(
                f'stage {self.name!r} needs input {role!r}; add inputs.{role} = "<stage>" to it (given: {roles})'
            )
        external = self.stage.input_file(role)
        if external is not None:  # a file brought from elsewhere is the input whatever artifact is asked for
            if not external.exists():
                raise ArtifactError(f"stage {self.name!r}: input {role!r} names {external}, which does not exist")
            return external
        outputs = self.inputs[role]
        made_by = self.input_refs[role]
        artifact = artifact or self.stage.input_stage(role)[1]
        if artifact is None:
            if len(outputs) != 1:
                raise ArtifactError(
                    f"stage {self.name!r}: input {role!r} from stage {made_by!r} has several artifacts "
                    f'({", ".join(outputs)}); write inputs.{role} = "{made_by}:<artifact>"'
                )
            artifact = next(iter(outputs))
        if artifact not in outputs:
            raise ArtifactError(
                f"stage {self.name!r}: stage {made_by!r} made no artifact {artifact!r} "
                f"(it made: {', '.join(outputs) or 'nothing'})"
            )
        path = outputs[artifact]
        if not path.exists():
            raise ArtifactError(f"artifact {artifact!r} ({path}) of stage {made_by!r} is missing; re-run that stage")
        return path

    def policy_input(self, role: str = "policy") -> Path:
        """The saved policy given as input ``role``: the producing stage's ``policy`` artifact when it made
        several, else its only one (or the one the recipe pins with ``"stage:artifact"``)."""
        outputs = self.inputs.get(role, {})
        pinned = ":" in self.stage.inputs.get(role, "")
        return self.input(role, "policy" if "policy" in outputs and not pinned else None)

    def input_ref(self, role: str) -> str:
        """How the recipe named input ``role``, as results record it: the producing stage's name, or
        ``"file <path>"`` with the path relative to the stage folder (so that a run folder can be moved whole)."""
        ref = self.input_refs[role]
        if ref.startswith("file "):
            return "file " + relative_path(ref[5:], self.stage_dir)
        return ref
