"""Plugin loading: built-ins and third-party plugins through one entry-point group, ``sport``.

Built-in plugins are the entry points of the ``sport`` distribution itself; anything else in the group is
third-party. ``SPORT_DISABLE_PLUGIN_AUTOLOAD=1`` loads only the built-ins (as pytest's
``PYTEST_DISABLE_PLUGIN_AUTOLOAD``). A plugin that fails to import is an error naming it; a component name
registered twice within a kind is an error naming both plugins.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import attrs
import pluggy

from sport_core import hookspecs
from sport_core.errors import PluginError
from sport_core.registry import KINDS, Registry, register_hook_name

GROUP = "sport"
DISTRIBUTION = "sport"
AUTOLOAD_ENV = "SPORT_DISABLE_PLUGIN_AUTOLOAD"


def _source_tree_builtins() -> dict[str, str]:
    """Built-in entry points read from ``pyproject.toml``, for a source tree that was never installed."""
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    with open(pyproject, "rb") as fh:
        return tomllib.load(fh).get("project", {}).get("entry-points", {}).get(GROUP, {})


@attrs.frozen
class PluginInfo:
    """What ``sport plugins`` shows about one loaded plugin."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool


def _normalise(dist_name: str) -> str:
    return dist_name.lower().replace("_", "-")


def _discover() -> list[tuple[EntryPoint, str, str, bool]]:
    """Entry points of group ``sport`` as (entry point, distribution, version, builtin)."""
    found = []
    for ep in entry_points(group=GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        ver = ep.dist.version if ep.dist is not None else "?"
        found.append((ep, dist, ver, _normalise(dist) == DISTRIBUTION))
    # In a source checkout, built-ins added to pyproject.toml since the last (editable) install count too.
    known = {ep.name for ep, *_, builtin in found if builtin}
    from sport_core import __version__

    found += [
        (EntryPoint(name, value, GROUP), DISTRIBUTION, __version__, True)
        for name, value in _source_tree_builtins().items()
        if name not in known
    ]
    return found


class SportPluginManager(pluggy.PluginManager):
    """A pluggy manager that also holds the component registry and what it knows about each plugin."""

    def __init__(self) -> None:
        super().__init__(GROUP)
        self.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.infos: dict[str, PluginInfo] = {}

    def add_plugin(self, plugin: object, name: str, info: PluginInfo | None = None) -> None:
        """Register ``plugin`` (module or object) under ``name`` and collect its components."""
        if self.has_plugin(name):
            raise PluginError(
                f"two plugins are named {name!r}: {self.infos[name].module} and {info.module if info else plugin}"
            )
        try:
            self.register(plugin, name=name)
            self.check_pending()  # a hookimpl whose name matches no hookspec is a typo, not a silent no-op
        except pluggy.PluginValidationError as exc:
            if self.has_plugin(name):
                self.unregister(name=name)
            raise PluginError(f"plugin {name!r} does not match the sport hook specifications: {exc}") from exc
        self.infos[name] = info or PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), "?", "?", False)
        self._collect_components(name, plugin)

    def _collect_components(self, name: str, plugin: object) -> None:
        for kind in KINDS:
            hook = register_hook_name(kind)
            impl = getattr(plugin, hook, None)
            if impl is None:
                continue
            try:
                components = impl() or []
            except Exception as exc:  # a plugin bug; name it
                raise PluginError(f"plugin {name!r} failed in {hook}: {type(exc).__name__}: {exc}") from exc
            for component in components:
                self.registry.add(kind, component, plugin=name)

    def hook_order(self, hook_name: str) -> list[str]:
        """Plugin names in the order pluggy calls ``hook_name`` (last registered first, tryfirst/trylast applied)."""
        impls = getattr(self.hook, hook_name).get_hookimpls()
        return [impl.plugin_name for impl in reversed(impls)]


def load_plugin_manager(autoload: bool | None = None, extra: Iterable[tuple[str, object]] = ()) -> SportPluginManager:
    """Create a plugin manager with the built-ins, the third-party plugins (unless autoload is disabled)
    and ``extra`` (name, plugin) pairs, in that order."""
    if autoload is None:
        autoload = os.environ.get(AUTOLOAD_ENV, "") in ("", "0")
    pm = SportPluginManager()
    # Built-ins first so that a third-party clash is reported against the built-in it shadows.
    for ep, dist, ver, builtin in sorted(_discover(), key=lambda e: (not e[3], e[0].name)):
        if not builtin and not autoload:
            continue
        try:
            module = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} ({ep.value}, from distribution {dist} {ver}) failed to import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        pm.add_plugin(module, ep.name, PluginInfo(ep.name, ep.value, dist, ver, builtin))
    for name, plugin in extra:
        if isinstance(plugin, str):
            plugin = importlib.import_module(plugin)
        pm.add_plugin(plugin, name)
    return pm
