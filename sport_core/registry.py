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
    "verifier",
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


def _shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters (with an ellipsis)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_repr(obj: object, limit: int = 80) -> str:
    """``repr(obj)`` on one line and at most ``limit`` characters, for error messages."""
    try:
        text = repr(obj)
    except Exception:  # a broken __repr__ must not hide the error being reported
        text = f"<{type(obj).__name__} object>"
    return _shorten(text, limit)


class Registry:
    """Components by kind and name; filled by :class:`sport_core.plugins.SportPluginManager`.

    ``failed_plugins`` (plugin name → one-line error) is set by the plugin manager for the plugins that
    failed to load, so that asking for a component one of them might have provided says so.
    """

    def __init__(self) -> None:
        self._by_kind: dict[str, dict[str, Component]] = {k: {} for k in KINDS}
        self.failed_plugins: dict[str, str] = {}

    def check(self, components: Iterable[tuple[str, Component]], plugin: str) -> None:
        """Raise :class:`PluginError` unless every (kind, component) of ``plugin`` can be added: a known kind, a
        :class:`Component`, a name that neither another plugin nor ``plugin`` itself already uses, and for stage
        kinds well-typed declarations (:func:`sport_core.stages.stage_contract`)."""
        seen: set[tuple[str, str]] = set()
        for kind, component in components:
            if kind not in self._by_kind:
                raise PluginError(f"plugin {plugin!r} registers unknown component kind {kind!r}; kinds: {KINDS}")
            if not isinstance(component, Component):
                raise PluginError(
                    f"plugin {plugin!r} returned {short_repr(component)} from its {kind} hook, not a Component"
                )
            existing = self._by_kind[kind].get(component.name)
            if existing is not None:
                raise PluginError(
                    f"{kind} component {component.name!r} is registered twice: by plugin {existing.plugin!r} "
                    f"and by plugin {plugin!r}; rename the component or disable one of the plugins with "
                    f"SPORT_DISABLE_PLUGINS={plugin} (or SPORT_DISABLE_PLUGINS={existing.plugin})"
                )
            if (kind, component.name) in seen:
                raise PluginError(f"plugin {plugin!r} registers {kind} component {component.name!r} twice")
            if kind in STAGE_KINDS:  # needs_env / inputs / outputs of the wrong type: the plugin's bug, named now
                from sport_core.stages import stage_contract

                stage_contract(attrs.evolve(component, kind=kind, plugin=plugin))
            seen.add((kind, component.name))

    def add_all(self, components: Iterable[tuple[str, Component]], plugin: str) -> None:
        """Add every (kind, component) of ``plugin``, or none of them (see :meth:`check`)."""
        components = list(components)
        self.check(components, plugin)
        for kind, component in components:
            self._by_kind[kind][component.name] = attrs.evolve(component, kind=kind, plugin=plugin)

    def add(self, kind: str, component: Component, plugin: str) -> None:
        """Register ``component`` under ``kind``; a second plugin using the same name is an error naming both."""
        self.add_all([(kind, component)], plugin)

    def get(self, kind: str, name: str) -> Component:
        """The component ``name`` of ``kind``, or a :class:`RegistryError` listing the known names (and the
        plugins that failed to load, which may be where it was meant to come from)."""
        known = self._by_kind.get(kind)
        if known is None:
            raise RegistryError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")
        if name not in known:
            hint = difflib.get_close_matches(name, known, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            names = ", ".join(sorted(known)) or "none"
            raise RegistryError(
                f"no {kind} component named {name!r}{suggestion} (known {kind}s: {names}){self._failed_note()}"
            )
        return known[name]

    def _failed_note(self) -> str:
        if not self.failed_plugins:
            return ""
        failed = [f"{plugin!r} ({_shorten(error, 100)})" for plugin, error in sorted(self.failed_plugins.items())]
        if len(failed) == 1:
            return f"; note: plugin {failed[0]} failed to load, it may provide it"
        return f"; note: plugins {', '.join(failed)} failed to load, one may provide it"

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def all(self) -> Iterable[Component]:
        for kind in KINDS:
            yield from self._by_kind[kind].values()

    def by_plugin(self, plugin: str) -> list[Component]:
        return [c for c in self.all() if c.plugin == plugin]
