"""TOML recipes: parse, apply ``--set`` overrides, validate into an attrs tree, and write back resolved.

A recipe has a ``[run]`` table, a default ``[env]``, an ``[executor]``, ``[[loggers]]`` and ``[[stages]]``.
Component tables (env, executor, loggers, a stage's own ``env``) are flat: ``kind`` names the component
and every other key is validated against that component's attrs config class. A stage names exactly one
stage component (``trainer = "sac"``, ``certifier = "scenario"`` or ``evaluator = "..."``), the earlier
stages whose artifacts it consumes (``inputs = { policy = "base" }``, or ``"file:PATH"`` for a file made
elsewhere, e.g. a base policy trained by another run) and its ``[stages.config]``.
Every error starts with the key path, e.g. ``stages[2].config.totl_steps: unknown key; did you mean
total_steps?``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import attrs
import tomli_w

from sport_core.config import COMPONENT_KEY, structure, unstructure
from sport_core.errors import RecipeError, RegistryError
from sport_core.registry import STAGE_KINDS, Registry
from sport_core.stages import StageContract, stage_contract
from sport_core.video import VideoConfig


@attrs.frozen
class RunSection:
    """``[run]``: the run's name (its directory prefix), master seed, where run directories go, and how many
    stages may run at the same time.

    ``parallel_stages``: at most this many stages whose inputs are complete run at once, each in its own process
    (:mod:`sport_core.parallel`); ``0`` (the default) means one per usable core, ``1`` runs them one after the
    other in the runner's process. It changes no stage's input hash or artifacts, only when stages run.
    """

    name: str = attrs.field(validator=attrs.validators.matches_re(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))
    seed: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    out_dir: str = "runs"
    description: str = ""
    parallel_stages: int = attrs.field(default=0, validator=attrs.validators.ge(0))


@attrs.frozen
class ComponentRef:
    """A component chosen by a recipe: its kind, registered name and validated config."""

    kind: str
    name: str
    config: Any

    def build(self, registry: Registry) -> Any:
        return registry.get(self.kind, self.name).build(self.config)

    def to_table(self) -> dict:
        return {"kind": self.name, **unstructure(self.config)}


@attrs.frozen
class StageSpec:
    """One ``[[stages]]`` entry."""

    name: str
    component: ComponentRef
    inputs: dict[str, str]
    env: ComponentRef | None
    video: VideoConfig | None = None

    @property
    def kind(self) -> str:
        return self.component.kind

    @property
    def label(self) -> str:
        """``<kind> '<component>'``, as errors name a stage's component (``certifier 'scenario'``)."""
        return f"{self.kind} {self.component.name!r}"

    def input_stage(self, role: str) -> tuple[str, str | None]:
        """(stage, artifact or None) referenced by input ``role`` (``"stage"`` or ``"stage:artifact"``)."""
        stage, _, artifact = self.inputs[role].partition(":")
        return stage, artifact or None

    def input_file(self, role: str) -> Path | None:
        """The file an input names with ``"file:PATH"`` (a policy brought from elsewhere), else None."""
        value = self.inputs[role]
        return Path(value[len(FILE_PREFIX) :]) if value.startswith(FILE_PREFIX) else None


@attrs.frozen
class Recipe:
    run: RunSection
    env: ComponentRef | None
    executor: ComponentRef
    loggers: tuple[ComponentRef, ...]
    stages: tuple[StageSpec, ...]
    source: str = ""

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def env_for(self, stage: StageSpec) -> ComponentRef | None:
        return stage.env or self.env

    def to_dict(self) -> dict:
        """The fully resolved recipe (every default filled in), as plain TOML-ready data."""
        out: dict[str, Any] = {"run": unstructure(self.run)}
        if self.env is not None:
            out["env"] = self.env.to_table()
        out["executor"] = self.executor.to_table()
        out["loggers"] = [lg.to_table() for lg in self.loggers]
        stages = []
        for s in self.stages:
            table: dict[str, Any] = {"name": s.name, s.kind: s.component.name}
            if s.inputs:
                table["inputs"] = dict(s.inputs)
            if s.env is not None:
                table["env"] = s.env.to_table()
            if s.video is not None:
                table["video"] = unstructure(s.video)
            table["config"] = unstructure(s.component.config)
            stages.append(table)
        out["stages"] = stages
        return out

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())


FILE_PREFIX = "file:"
_TOP_KEYS = ("run", "env", "executor", "loggers", "stages")
_STAGE_KEYS = ("name", *STAGE_KINDS, "inputs", "env", "video", "config")
DEFAULT_EXECUTOR = {"kind": "process"}
DEFAULT_LOGGERS = [{"kind": "jsonl"}]


def _unknown(path: str, key: str, allowed: tuple[str, ...] | list[str]) -> RecipeError:
    hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    suggestion = f"; did you mean {hint[0]}?" if hint else ""
    return RecipeError(f"{path}: unknown key{suggestion} (allowed keys: {', '.join(allowed)})")


def _component(kind: str, table: Any, path: str, registry: Registry) -> ComponentRef:
    if not isinstance(table, dict):
        raise RecipeError(f"{path}: expected a table with a 'kind' key naming a {kind}, got {table!r}")
    data = dict(table)
    name = data.pop("kind", None)
    if not isinstance(name, str):
        names = ", ".join(registry.names(kind)) or "none registered"
        raise RecipeError(f"{path}.kind: expected the name of a {kind} component ({names})")
    try:
        component = registry.get(kind, name)
    except RegistryError as exc:
        raise RecipeError(f"{path}.kind: {exc}") from exc
    config = structure(component.config_cls, data, path)
    check_component_fields(config, registry, path)
    return ComponentRef(kind, name, config)


def check_component_fields(config: Any, registry: Registry, path: str) -> None:
    """Check every :func:`sport_core.config.component_field` of ``config`` against the registry."""
    for field in attrs.fields(type(config)):
        ref = field.metadata.get(COMPONENT_KEY)
        if ref is None:
            continue
        kind, config_field = ref
        name = getattr(config, field.name)
        try:
            component = registry.get(kind, name)
        except RegistryError as exc:
            raise RecipeError(f"{path}.{field.name}: {exc}") from exc
        if config_field is not None:
            structure(component.config_cls, getattr(config, config_field), f"{path}.{config_field}")


def _stage(table: Any, path: str, registry: Registry) -> StageSpec:
    if not isinstance(table, dict):
        raise RecipeError(f"{path}: expected a table, got {table!r}")
    for key in table:
        if key not in _STAGE_KEYS:
            raise _unknown(f"{path}.{key}", key, list(_STAGE_KEYS))
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise RecipeError(f"{path}.name: expected a non-empty str naming the stage")
    kinds = [k for k in STAGE_KINDS if k in table]
    if len(kinds) != 1:
        raise RecipeError(
            f"{path}: a stage names exactly one of {', '.join(STAGE_KINDS)} (found {', '.join(kinds) or 'none'})"
        )
    kind = kinds[0]
    comp_name = table[kind]
    try:
        component = registry.get(kind, comp_name if isinstance(comp_name, str) else "")
    except RegistryError as exc:
        raise RecipeError(f"{path}.{kind}: {exc}") from exc
    config = structure(component.config_cls, table.get("config", {}), f"{path}.config")
    check_component_fields(config, registry, f"{path}.config")
    inputs = table.get("inputs", {})
    if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
        raise RecipeError(
            f'{path}.inputs: expected a table of role = "stage" (or "stage:artifact", or "file:PATH") strings'
        )
    env = _component("env", table["env"], f"{path}.env", registry) if "env" in table else None
    video = structure(VideoConfig, table["video"], f"{path}.video") if "video" in table else None
    return StageSpec(name, ComponentRef(kind, comp_name, config), dict(inputs), env, video)


def validate(data: dict, registry: Registry, source: str = "") -> Recipe:
    """Validate recipe data (already parsed and overridden) against the registry's components."""
    for key in data:
        if key not in _TOP_KEYS:
            raise _unknown(key, key, list(_TOP_KEYS))
    if "run" not in data:
        raise RecipeError('run: missing table [run] (it needs at least name = "...")')
    run = structure(RunSection, data["run"], "run")
    env = _component("env", data["env"], "env", registry) if "env" in data else None
    executor = _component("executor", data.get("executor", DEFAULT_EXECUTOR), "executor", registry)
    raw_loggers = data.get("loggers", DEFAULT_LOGGERS)
    if not isinstance(raw_loggers, list):
        raise RecipeError('loggers: expected an array of tables ([[loggers]] with kind = "...")')
    loggers = tuple(_component("logger", t, f"loggers[{i}]", registry) for i, t in enumerate(raw_loggers))
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise RecipeError("stages: expected at least one [[stages]] table")
    stages = []
    seen: dict[str, int] = {}
    contracts: dict[str, tuple[StageSpec, StageContract]] = {}
    for i, table in enumerate(raw_stages):
        stage = _stage(table, f"stages[{i}]", registry)
        if stage.name in seen:
            raise RecipeError(f"stages[{i}].name: {stage.name!r} is already the name of stages[{seen[stage.name]}]")
        for role in list(stage.inputs):
            external = stage.input_file(role)
            if external is not None:
                if not external.exists():
                    raise RecipeError(f"stages[{i}].inputs.{role}: file {external} does not exist")
                # Absolute, so that the resolved recipe still finds it from another directory (resume).
                stage.inputs[role] = f"{FILE_PREFIX}{external.resolve()}"
                continue
            ref, _ = stage.input_stage(role)
            if ref not in seen:
                earlier = ", ".join(seen) or "none"
                raise RecipeError(
                    f"stages[{i}].inputs.{role}: {ref!r} is not an earlier stage (earlier stages: {earlier}); "
                    f'a file from elsewhere is written "{FILE_PREFIX}PATH"'
                )
        contract = stage_contract(registry.get(stage.kind, stage.component.name))
        if stage.env is None and env is None and contract.needs_env:
            raise RecipeError(f"stages[{i}]: {stage.label} needs an env; add [env] or [stages.env]")
        if stage.video is not None and not contract.films:
            raise RecipeError(
                f"stages[{i}].video: {stage.label} films no episodes (a stage component that honours ctx.video "
                "declares films = True)"
            )
        _check_inputs(f"stages[{i}]", stage, contract, contracts)
        contracts[stage.name] = (stage, contract)
        seen[stage.name] = i
        stages.append(stage)
    return Recipe(run, env, executor, loggers, tuple(stages), source)


def _check_inputs(
    path: str, stage: StageSpec, contract: StageContract, earlier: dict[str, tuple[StageSpec, StageContract]]
) -> None:
    """The stage graph: every input role the stage declares as required is given, no undeclared role is, and
    every earlier stage an input names declares the artifact the input reads (see :mod:`sport_core.stages`)."""
    declared = contract.inputs
    if declared is not None:
        for role in stage.inputs:
            if role not in declared:
                hint = difflib.get_close_matches(role, list(declared), n=1)
                suggestion = f"; did you mean {hint[0]}?" if hint else ""
                roles = ", ".join(declared) or "none"
                raise RecipeError(
                    f"{path}.inputs.{role}: {stage.label} takes no such input{suggestion} (inputs: {roles})"
                )
        for role, spec in declared.items():
            if spec.required and role not in stage.inputs:
                what = f" ({spec.description})" if spec.description else ""
                makes = f"a stage that makes {' or '.join(spec.artifacts)}" if spec.artifacts else "a stage"
                raise RecipeError(
                    f"{path}.inputs.{role}: missing; {stage.label} needs input {role!r}{what}: "
                    f'inputs.{role} = "<stage>" ({makes}) or "{FILE_PREFIX}PATH"'
                )
    for role in stage.inputs:
        if stage.input_file(role) is not None:
            continue
        name, pinned = stage.input_stage(role)
        producer, produced = earlier[name]
        outputs = produced.outputs
        if outputs is None:
            continue  # the producer does not say what it makes: checked when the stage runs
        made = ", ".join(outputs) or "nothing"
        if pinned is not None:
            if pinned not in outputs:
                raise RecipeError(
                    f"{path}.inputs.{role}: stage {name!r} ({producer.label}) makes no artifact {pinned!r} "
                    f"(it makes: {made})"
                )
            continue
        spec = declared.get(role) if declared is not None else None
        if spec is not None and spec.artifacts and not set(spec.artifacts) & set(outputs):
            raise RecipeError(
                f"{path}.inputs.{role}: stage {name!r} ({producer.label}) makes no {' or '.join(spec.artifacts)} "
                f"(it makes: {made}), which {stage.label} reads from input {role!r}"
            )


def parse_value(text: str) -> Any:
    """A ``--set`` value: any TOML value (``2000``, ``1.5``, ``true``, ``[1, 2]``, ``"x"``), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(data: dict, assignment: str) -> None:
    """Apply ``a.b.c=value`` to the raw recipe; ``stages.<name>``, ``stages.<index>`` or ``stages[<index>]``
    picks a stage."""
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"--set {assignment!r}: expected KEY.PATH=VALUE, e.g. stages.base.config.total_steps=2000")
    # Both the dotted form and the form errors print are accepted: stages.base.x, stages.0.x, stages[0].x
    parts = re.findall(r"[^.\[\]]+", key.strip())
    node: Any = data
    path = ""
    for i, part in enumerate(parts[:-1]):
        path = f"{path}.{part}" if path else part
        if isinstance(node, list):
            node = _pick(node, part, path)
            continue
        nxt = node.get(part)
        if nxt is None:
            if i == 0 and part == "stages":
                raise RecipeError(f"--set {key}: the recipe has no stages")
            nxt = node[part] = {}
        if not isinstance(nxt, (dict, list)):
            raise RecipeError(f"--set {key}: {path} is a value, not a table")
        node = nxt
    if isinstance(node, list):
        raise RecipeError(f"--set {key}: name a key inside the stage, e.g. {key}.config.x=1")
    node[parts[-1]] = parse_value(text.strip())


def _pick(items: list, part: str, path: str) -> dict:
    for item in items:
        if isinstance(item, dict) and item.get("name") == part:
            return item
    if part.isdigit() and int(part) < len(items):
        return items[int(part)]
    names = [str(it.get("name")) for it in items if isinstance(it, dict)]
    hint = difflib.get_close_matches(part, names, n=1)
    suggestion = f"; did you mean {hint[0]}?" if hint else ""
    raise RecipeError(
        f"--set {path}: no stage named {part!r}{suggestion} (stages: {', '.join(names)}; "
        "address one as stages.<name> or stages[<index>])"
    )


def read_toml(path: str | os.PathLike) -> dict:
    """Parse a TOML file; a missing or malformed file is a one-line :class:`RecipeError`."""
    p = Path(path)
    if not p.exists():
        raise RecipeError(f"{p}: no such recipe file")
    if not p.is_file():
        raise RecipeError(f"{p}: not a file")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{p}: not a text file ({exc.reason}); a recipe is TOML") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{p}: not valid TOML ({exc})") from exc


def load_recipe(path: str | os.PathLike, registry: Registry, overrides: tuple[str, ...] | list[str] = ()) -> Recipe:
    """Read, override and validate a recipe file."""
    data = read_toml(path)
    for assignment in overrides:
        apply_override(data, assignment)
    return validate(data, registry, source=str(path))
