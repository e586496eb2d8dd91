"""Named component factories with their config classes.

A *component* is what a plugin contributes: a name unique within its kind, a factory, and an attrs class
that describes (and validates) the factory's configuration. The registry is filled once from the
registration hooks and then only read.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from sport_core.errors import PluginError, RegistryError

#: Every component kind. ``stage`` kinds (trainer, certifier, evaluator) can be named by a recipe stage.
KINDS: tuple[str, ...] = (
    "env",
    "policy",
    "projection",
    "certifier",
    "trainer",
    "evaluator",
    "logger",
    "executor",
)
STAGE_KINDS: tuple[str, ...] = ("trainer", "certifier", "evaluator")


def register_hook_name(kind: str) -> str:
    """The registration hook of ``kind``: ``sport_register_envs``, ``sport_register_policies``, ..."""
    plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
    return f"sport_register_{plural}"


@attrs.frozen
class Component:
    """One thing a plugin provides.

    ``factory(config)`` builds it from an instance of ``config_cls`` (an attrs class whose fields are the
    recipe keys). ``plugin`` is filled in by the plugin manager with the name of the registering plugin.
    """

    name: str
    factory: Callable[..., Any]
    config_cls: type
    description: str = ""
    kind: str = ""
    plugin: str = ""

    def __attrs_post_init__(self) -> None:
        if not attrs.has(self.config_cls):
            raise TypeError(f"component {self.name!r}: config_cls must be an attrs class, got {self.config_cls!r}")

    def build(self, config: Any | None = None) -> Any:
        """Instantiate the component; ``config`` defaults to the config class's defaults."""
        return self.factory(self.config_cls() if config is None else config)


class Registry:
    """Components by kind and name; filled by :class:`sport_core.plugins.SportPluginManager`."""

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, Component]] = {k: {} for k in KINDS}

    def add(self, kind: str, component: Component, plugin: str) -> None:
        """Register ``component`` under ``kind``; a second plugin using the same name is an error naming both."""
        if kind not in self._by_kind:
            raise PluginError(f"plugin {plugin!r} registers unknown component kind {kind!r}; kinds: {KINDS}")
        if not isinstance(component, Component):
            raise PluginError(f"plugin {plugin!r} returned {component!r} from its {kind} hook, not a Component")
        existing = self._by_kind[kind].get(component.name)
        if existing is not None:
            raise PluginError(
                f"{kind} component {component.name!r} is registered twice: by plugin {existing.plugin!r} "
                f"and by plugin {plugin!r}; disable one of them or rename the component"
            )
        self._by_kind[kind][component.name] = attrs.evolve(component, kind=kind, plugin=plugin)

    def get(self, kind: str, name: str) -> Component:
        """The component ``name`` of ``kind``, or a :class:`RegistryError` listing the known names."""
        known = self._by_kind.get(kind)
        if known is None:
            raise RegistryError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            names = ", ".join(sorted(known)) or "none"
            raise RegistryError(f"no {kind} component named {name!r}{suggestion} (known {kind}s: {names})")
        return known[name]

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def all(self) -> Iterable[Component]:
        for kind in KINDS:
            yield from self._by_kind[kind].values()

    def by_plugin(self, plugin: str) -> list[Component]:
        return [c for c in self.all() if c.plugin == plugin]
