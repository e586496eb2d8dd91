"""The plugin contract: every hook a sport plugin may implement.

A plugin is a module (or object) with functions decorated by ``sport_core.hookimpl`` whose names are the
hooks below. It is found through the entry-point group ``sport``::

    # pyproject.toml of a third-party package
    [project.entry-points.sport]
    my_plugin = "my_package.plugin"

Two kinds of hooks, as in pytest and datasette:

* **Registration hooks** (``sport_register_*``) are called once when the plugin manager starts. Each returns
  a list of :class:`sport_core.Component` (name, factory, attrs config class). Results of every plugin are
  collected; a name registered by two plugins within the same kind is an error naming both plugins.
* **Event hooks** (``sport_run_*``, ``sport_stage_*``, ``sport_log_*``) are broadcast to every plugin (and to
  every logger object the runner registered for the run). Their return values are ignored. Trainers never
  call loggers directly: they emit events through their stage context, and any number of loggers observe.

Arguments are passed by keyword; an implementation may accept any subset of a hook's arguments. A function
or method named ``sport_*`` that is not marked ``@hookimpl``, or whose name matches no hook below, is an error
naming the plugin (it would otherwise never be called). ``docs/plugin-api.md`` is the reference for plugin
authors and ``docs/writing-plugins.md`` the tutorial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("sport")


# --------------------------------------------------------------------------------------------------------
# Registration hooks
# --------------------------------------------------------------------------------------------------------


@hookspec
def sport_register_envs() -> list:
    """Environments. ``factory(config)`` returns an *env maker*: a picklable object with ``make() ->
    gymnasium.Env`` (seeded at ``reset(seed=…)``), ``env_id``, ``scenario`` and ``fixed_layout`` (see
    :class:`sport_core.protocols.EnvMaker`). Every step's ``info`` must carry
    ``goal_met`` (bool), ``constraint_violated`` (bool), ``cost`` (float) and ``agent_pos`` (x, y)."""


@hookspec
def sport_register_policies() -> list:
    """Policy architectures. ``factory(config)`` returns a builder ``(obs_dim, act_dim, action_scale,
    action_bias) -> torch.nn.Module`` satisfying :class:`sport_core.protocols.Policy`."""


@hookspec
def sport_register_projections() -> list:
    """Safety layers. ``factory(config)`` returns an object satisfying :class:`sport_core.protocols.Projection`:
    it maps (base distribution, task distribution, α) to a distribution whose density ratio to the base is at
    most α everywhere, batched over states."""


@hookspec
def sport_register_certifiers() -> list:
    """Certifiers (a recipe stage kind). ``factory(config)`` returns a :class:`sport_core.protocols.Certifier`
    whose ``run(ctx)`` collects base-policy episodes (:func:`sport_core.collect.collect_into_store`) and writes
    a ``certificate.json`` (:func:`sport_core.certificates.new_certificate` and ``write_certificate``; schema
    ``sport_core/schemas/certificate-v2.schema.json``), returning ``{"certificate": …, "episodes": …}``. Register
    the verifier of its ``method`` with :func:`sport_register_verifiers`. Stage components declare
    ``needs_env``, ``inputs`` and ``outputs`` (:mod:`sport_core.stages`)."""


@hookspec
def sport_register_trainers() -> list:
    """Trainers (a recipe stage kind). ``factory(config)`` returns a :class:`sport_core.protocols.Stage`
    whose ``run(ctx)`` trains a policy, checkpointing into ``ctx.checkpoint_dir`` so that it can resume.

    The core's trainer toolkit is what a trainer builds on (SAC and PPO do, neither importing the other):
    :mod:`sport_core.checkpoint` (atomic checkpoint folders), :func:`sport_core.seeding.stage_seeds` and
    ``episode_seed`` (per-stage and per-episode streams), :func:`sport_core.spaces.box_spaces`,
    :class:`sport_core.tracking.EpisodeTracker` (goal/violation steps and outcome, as collection counts
    them), :class:`sport_core.metrics.MetricsWindow`, :func:`sport_core.devices.resolve_device`,
    :func:`sport_core.weights.save_policy`. Output artifacts: ``policy`` (one saved policy) or, for a trainer
    that makes one policy per ratio bound α, ``policies`` (a :mod:`sport_core.policyset` folder), which the
    ``projected-sweep`` evaluator takes as its ``task`` input. A trainer that acts with a projected policy
    uses :meth:`sport_core.actors.ProjectedActor.sample` (one batched projection per env step)."""


@hookspec
def sport_register_evaluators() -> list:
    """Evaluators (a recipe stage kind): stages that roll out existing policies (e.g. projected policies for
    an α sweep) and write results; ``factory(config)`` returns a :class:`sport_core.protocols.Evaluator`
    (declaring ``needs_env``, ``inputs`` and ``outputs``, :mod:`sport_core.stages`)."""


@hookspec
def sport_register_loggers() -> list:
    """Loggers. ``factory(config)`` returns a :class:`sport_core.protocols.Logger`: an object whose methods
    marked ``@sport_core.hookimpl`` implement event hooks (``sport_log_scalars``, ...). The runner checks it
    (a misspelt or unmarked hook is an error naming ``loggers[i]``), registers it with the plugin manager for
    the duration of a run and unregisters it afterwards, calling its ``close()`` if it has one."""


@hookspec
def sport_register_executors() -> list:
    """Executors. ``factory(config)`` returns a :class:`sport_core.protocols.Executor`: ``map(fn, tasks)``
    yielding results as they finish, and ``close()``."""


@hookspec
def sport_register_verifiers() -> list:
    """Verifiers of certificates, one component per certification ``method`` (the component's name is the
    ``method`` its certificates carry). ``factory(config)`` returns a :class:`sport_core.protocols.Verifier`:
    ``verify(path, cert, *, store, policy, replay, registry) -> VerificationSummary`` re-derives everything the
    certificate claims and raises :class:`sport_core.verification.VerificationError` naming the first
    difference. ``sport verify`` dispatches to it; :mod:`sport_core.verification` holds the building blocks
    (hashes, episode store, env description, replay). A certifier plugin registers the verifier of its own
    method(s): the built-in ``scenario`` plugin registers ``scenario`` and ``scenario-uniform``."""


@hookspec
def sport_register_commands(subparsers: Any) -> None:
    """Add ``sport`` subcommands (as datasette's ``register_commands``). ``subparsers`` is the argparse
    sub-parser action of the ``sport`` command: call ``subparsers.add_parser(name, help=…)``, add arguments
    and ``set_defaults(func=handler)``; ``handler(args) -> int`` is the exit status. A handler reports a user
    error by raising :class:`sport_core.errors.SportError` (one line on stderr, exit 2). Two plugins adding
    the same command name is an error. The built-in ``plots`` plugin adds ``sport plot`` and ``sport report``.
    """


# --------------------------------------------------------------------------------------------------------
# Event hooks (broadcast)
# --------------------------------------------------------------------------------------------------------


@hookspec
def sport_run_started(run_dir: Path, recipe: Any) -> None:
    """A run (new or resumed) starts in ``run_dir``; ``recipe`` is the validated :class:`Recipe`.

    Stages that run at the same time (``[run] parallel_stages``, :mod:`sport_core.parallel`) each run in their
    own process with their own logger instances: there this hook is called once before the stage's events,
    and ``sport_run_finished`` is not called (the run's end belongs to the runner's process). A logger must
    therefore keep per-stage state per stage and append to shared files (several processes may append to
    ``metrics.jsonl`` at once; write whole lines)."""


@hookspec
def sport_run_finished(run_dir: Path, status: str) -> None:
    """A run ends; ``status`` is ``"completed"``, ``"failed"`` or ``"interrupted"``."""


@hookspec
def sport_stage_started(run_dir: Path, stage: str, stage_dir: Path, resumed: bool) -> None:
    """Stage ``stage`` starts (``resumed`` is True when it restarts from an interrupted attempt)."""


@hookspec
def sport_stage_finished(run_dir: Path, stage: str, status: str, outputs: dict) -> None:
    """Stage ``stage`` ends with ``status`` (``completed``, ``skipped``, ``failed``); ``outputs`` maps
    artifact names to paths (empty unless completed or skipped)."""


@hookspec
def sport_stage_completed(run_dir: Path, stage: str, stage_dir: Path, outputs: dict, log: Any, registry: Any) -> None:
    """Stage ``stage`` has just completed (called before ``sport_stage_finished``; not for a stage skipped as
    up to date): ``outputs`` maps artifact names to paths, ``log`` is the stage's event emitter
    (``log.figure(step, tag, fig)``, ``log.text(…)``, ``log.scalars(…)``), and ``registry`` the component
    registry. Plugins summarise the outputs for the loggers here (the ``plots``
    plugin sends the paper's figures and tables for ``certificate`` and ``sweep`` artifacts). An exception
    raised here is logged as a warning and does not fail the stage."""


@hookspec
def sport_log_scalars(run_dir: Path, stage: str, step: int, scalars: dict, labels: dict) -> None:
    """Scalar metrics at ``step`` (an integer the emitting stage counts, e.g. env steps). Tags are the keys of
    ``scalars`` and use ``/`` for grouping (``train/return``); loggers prefix nothing but may group by stage.

    ``labels`` (every ``sport_log_*`` hook has it) names the *series* within the stage that the event belongs
    to, as a flat dict of scalars: ``{"alpha": 1.5}`` for one ratio bound of a sweep or of a per-α trainer,
    ``{}`` for the stage as a whole. A logger keeps one series per distinct ``labels`` so that series can be
    compared side by side: TensorBoard writes them to ``<stage>/alpha=1.5``; W&B makes one run per series with
    the labels in its config (all runs of one ``sport run`` in one group, the stage as the job type). Stages
    emit labelled events with ``ctx.log.series(alpha=…)``."""


@hookspec
def sport_log_histogram(run_dir: Path, stage: str, step: int, tag: str, values: Any, labels: dict) -> None:
    """A distribution of ``values`` (a 1-D numpy array) at ``step``."""


@hookspec
def sport_log_figure(run_dir: Path, stage: str, step: int, tag: str, figure: Any, labels: dict) -> None:
    """A matplotlib figure at ``step``; loggers must not close it (the emitter does)."""


@hookspec
def sport_log_text(run_dir: Path, stage: str, step: int, tag: str, text: str, labels: dict) -> None:
    """A piece of text (markdown allowed) at ``step``."""


@hookspec
def sport_log_video(
    run_dir: Path, stage: str, step: int, tag: str, frames: Any, fps: float, path: Path | None, labels: dict
) -> None:
    """An episode video at ``step``: ``frames`` is a uint8 array (T, H, W, 3), to be played at ``fps`` frames a
    second; ``path`` is the MP4 the stage already wrote under its folder (:func:`sport_core.video.write_video`),
    or None. Loggers must not modify ``frames``. Tags name what was filmed, e.g. ``video/episode`` (one step per
    filmed episode index)."""
