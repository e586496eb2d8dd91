"""What a stage component declares about itself, so that ``sport check`` can validate a recipe's stage graph.

A stage component's factory (usually its class) declares, as class attributes:

* ``needs_env: bool`` — the stage uses ``ctx.env``; a recipe must then give an env (``[env]`` or
  ``[stages.env]``). Default False (``ctx.env`` is then a :class:`sport_core.context.MissingEnv` when the
  recipe has none).
* ``inputs: dict[str, StageInput]`` — the input roles it reads (``inputs = { policy = "base" }`` in a
  recipe), each with the artifact names it accepts from the producing stage and whether it is required.
  Undeclared (``None``): the roles are not checked before the run.
* ``films: bool`` — the stage honours ``ctx.video`` (a recipe's ``video`` table, :mod:`sport_core.video`):
  it films the episodes the table asks for. Default False: a recipe that gives such a stage a ``video``
  table is refused by ``sport check``.
* ``outputs: tuple[str, ...]`` — every artifact name its ``run(ctx)`` may return. Undeclared (``None``): later
  stages' references to it are not checked before the run.

Standard artifact names (what the built-in stages make and consume) are in :data:`STANDARD_ARTIFACTS`;
a plugin that makes one of these things should use the same name so that other plugins' stages accept it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from sport_core.errors import PluginError

#: Artifact names shared between plugins, and what each one is.
STANDARD_ARTIFACTS: dict[str, str] = {
    "policy": "a saved policy: <name>.safetensors + <name>.json model card (sport_core.weights.save_policy)",
    "policies": "a policy set, one saved policy per ratio bound alpha (sport_core.policyset)",
    "certificate": "certificate.json, schema sport_core/schemas/certificate-v2.schema.json (sport_core.certificates)",
    "episodes": "an episode store, episodes.bin (sport_core.episodes), or a JSONL file of episode records",
    "evaluation": "evaluation.json: a policy's episodes compared with a certificate (sport_core.evaluation)",
    "sweep": "sweep.json: one evaluation row per alpha of projected policies (the projected-sweep evaluator)",
    "alphas": "a folder of per-alpha episode stores and summaries (the projected-sweep evaluator)",
    "summary": "summary.json: outcome rates of a rollout",
    "training": "a folder of per-alpha training logs (projected-ppo)",
}


@attrs.frozen
class StageInput:
    """One input role of a stage: the artifact names it accepts (any one of them; empty: any artifact),
    whether the recipe must give it, and what it is for (shown in errors and ``sport plugins``)."""

    artifacts: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    required: bool = True
    description: str = ""


@attrs.frozen
class StageContract:
    """What a stage component declared (see the module docstring); None means undeclared."""

    needs_env: bool = False
    inputs: Mapping[str, StageInput] | None = None
    films: bool = False
    outputs: tuple[str, ...] | None = None


def stage_contract(component: Any) -> StageContract:
    """The declarations of a stage component's factory, checked for type (a :class:`PluginError` naming the
    component otherwise)."""
    factory = component.factory
    label = f"{component.kind or 'stage'} component {component.name!r}" + (
        f" of plugin {component.plugin!r}" if component.plugin else ""
    )
    needs_env = getattr(factory, "needs_env", False)
    if not isinstance(needs_env, bool):
        raise PluginError(f"{label}: needs_env must be True or False, got {needs_env!r}")
    films = getattr(factory, "films", False)
    if not isinstance(films, bool):
        raise PluginError(f"{label}: films must be True or False, got {films!r}")
    inputs = getattr(factory, "inputs", None)
    if inputs is not None:
        if not isinstance(inputs, Mapping) or not all(
            isinstance(k, str) and isinstance(v, StageInput) for k, v in inputs.items()
        ):
            raise PluginError(f"{label}: inputs must map role names to sport_core.stages.StageInput, got {inputs!r}")
        inputs = dict(inputs)
    outputs = getattr(factory, "outputs", None)
    if outputs is not None:
        if isinstance(outputs, str) or not all(isinstance(o, str) for o in outputs):
            raise PluginError(f"{label}: outputs must be a tuple of artifact names, got {outputs!r}")
        outputs = tuple(outputs)
    return StageContract(needs_env, inputs, films, outputs)
