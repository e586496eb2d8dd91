"""Plugin loading: built-ins and third-party plugins through one entry-point group, ``sport``.

Built-in plugins are the entry points of the ``sport`` distribution itself; anything else in the group is
third-party. Environment variables, as pytest's ``PYTEST_*``:

* ``SPORT_DISABLE_PLUGIN_AUTOLOAD=1`` loads only the built-ins (as ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``).
* ``SPORT_DISABLE_PLUGINS=name1,name2`` skips the plugins with these entry-point names, built-in or
  third-party (a name matching no plugin is a warning). They are listed in ``pm.disabled``.
* ``SPORT_PLUGINS=package.module,other.module`` (as ``PYTEST_PLUGINS``) also loads these importable modules
  as plugins, after the entry points, each named by its module path: a plugin under development can be
  tried from ``PYTHONPATH`` without installing it.

Failure isolation: a plugin that fails to import, whose registration hook raises or returns something else
than a list of :class:`sport_core.Component`, that implements a hook matching no hook specification, or
that registers a component name another loaded plugin already uses, does not stop the others or any
command. It is recorded in ``pm.failed`` (a :class:`FailedPlugin` with a one-line error), reported by one
warning on the ``sport`` logger and by ``sport plugins`` (which then exits with 1), and named by the
:class:`RegistryError` of a component that is not found. Loading is all or nothing per plugin: its
components are collected and validated before it is registered, so a failed plugin leaves nothing behind.

:meth:`SportPluginManager.add_plugin` (used for in-process ``extra`` plugins) raises :class:`PluginError`
instead; :meth:`SportPluginManager.register_logger` validates and registers a run's logger object.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import os
import tomllib
import types
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import attrs
import pluggy

from sport_core import hookspecs
from sport_core.errors import PluginError
from sport_core.registry import KINDS, Component, Registry, register_hook_name, short_repr

GROUP = "sport"
DISTRIBUTION = "sport"
AUTOLOAD_ENV = "SPORT_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_ENV = "SPORT_DISABLE_PLUGINS"
PLUGINS_ENV = "SPORT_PLUGINS"
#: The ``distribution`` of a plugin loaded from ``SPORT_PLUGINS``.
PLUGINS_ENV_DISTRIBUTION = f"({PLUGINS_ENV})"

log = logging.getLogger("sport")


def _source_tree_builtins() -> dict[str, str]:
    """Built-in entry points read from ``pyproject.toml``, for a source tree that was never installed."""
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    with open(pyproject, "rb") as fh:
        return tomllib.load(fh).get("project", {}).get("entry-points", {}).get(GROUP, {})


@attrs.frozen
class PluginInfo:
    """What ``sport plugins`` shows about one loaded (or disabled) plugin."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool


@attrs.frozen
class FailedPlugin:
    """A plugin that failed to load; ``error`` is one line (``ImportError: …``, or the :class:`PluginError`)."""

    name: str
    module: str
    distribution: str
    version: str
    builtin: bool
    error: str


def _normalise(dist_name: str) -> str:
    return dist_name.lower().replace("_", "-")


def _one_line(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _env_list(var: str) -> list[str]:
    """The comma-separated names in environment variable ``var``, stripped, empty ones dropped."""
    return [name.strip() for name in os.environ.get(var, "").split(",") if name.strip()]


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


def _spec_callers(pm: pluggy.PluginManager) -> dict[str, Any]:
    """Hook name → hook caller, for the hooks that have a specification."""
    return {name: caller for name, caller in vars(pm.hook).items() if getattr(caller, "spec", None) is not None}


def _event_hook_names(pm: pluggy.PluginManager) -> list[str]:
    return [name for name in _spec_callers(pm) if not name.startswith("sport_register_")]


def check_hook_object(obj: object, label: str, pm: pluggy.PluginManager) -> None:
    """Raise :class:`PluginError` (one line starting with ``label``) if a function or method of ``obj`` (a
    plugin module or object, e.g. a logger) whose name starts with ``sport_`` would silently never be called:
    it is not marked ``@sport_core.hookimpl``, its name matches no hook specification (with a did-you-mean),
    or it takes an argument its hook does not pass. Non-callables, classes, modules and, in a module,
    functions imported from ``sport_core`` itself are ignored."""
    specs = _spec_callers(pm)
    is_module = isinstance(obj, types.ModuleType)
    for attr_name in dir(obj):
        if not attr_name.startswith("sport_"):
            continue
        try:
            attr = getattr(obj, attr_name)
        except Exception:  # a property that raises is not a hook
            continue
        if isinstance(attr, type | types.ModuleType) or not inspect.isroutine(attr):
            continue
        if is_module and (getattr(attr, "__module__", None) or "").split(".")[0] == "sport_core":
            continue  # e.g. ``from sport_core.x import sport_helper`` in a plugin module
        what = "method" if inspect.ismethod(attr) else "function"
        opts = pm.parse_hookimpl_opts(obj, attr_name)
        spec_name = (opts or {}).get("specname") or attr_name
        caller = specs.get(spec_name)
        hint = difflib.get_close_matches(spec_name, specs, n=1)
        did_you_mean = f"; did you mean {hint[0]!r}?" if hint else ""
        if opts is None:
            if caller is None:
                raise PluginError(
                    f"{label}: {what} {attr_name} matches no sport hook{did_you_mean} (names starting with sport_ "
                    "are reserved for hooks, marked @sport_core.hookimpl)"
                )
            raise PluginError(
                f"{label}: {what} {attr_name} is not marked @sport_core.hookimpl, so it would never be called"
            )
        if caller is None:
            raise PluginError(f"{label}: {what} {attr_name} matches no sport hook{did_you_mean}")
        impl = pluggy.HookImpl(obj, label, attr, opts)
        passed = (*caller.spec.argnames, *caller.spec.kwargnames)
        unknown = [arg for arg in impl.argnames if arg not in passed]
        if unknown:
            raise PluginError(
                f"{label}: {what} {attr_name} takes argument(s) {', '.join(map(repr, unknown))} that hook "
                f"{spec_name} does not pass (it passes {', '.join(passed)})"
            )


class SportPluginManager(pluggy.PluginManager):
    """A pluggy manager that also holds the component registry and what it knows about each plugin.

    ``infos`` holds the loaded plugins, ``disabled`` those skipped by ``SPORT_DISABLE_PLUGINS`` and
    ``failed`` those that failed to load (see the module docstring).
    """

    def __init__(self) -> None:
        super().__init__(GROUP)
        self.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.infos: dict[str, PluginInfo] = {}
        self.disabled: dict[str, PluginInfo] = {}
        self.failed: dict[str, FailedPlugin] = {}
        # How to make this manager again in another process (sport_core.parallel): whether entry points were
        # loaded, and the plugins added by hand (tests, embedding programs), in order.
        self.autoload = True
        self.extras: list[tuple[str, object]] = []

    def add_plugin(self, plugin: object, name: str, info: PluginInfo | None = None) -> None:
        """Register ``plugin`` (module or object) under ``name`` and add its components, or raise
        :class:`PluginError` and leave nothing of it behind.

        Its ``sport_*`` functions are checked (:func:`check_hook_object`), its registration hooks called and
        their components validated (types, name clashes) before it is registered with pluggy."""
        if self.has_plugin(name) or name in self.infos:
            known = self.infos[name].module if name in self.infos else repr(self.get_plugin(name))
            raise PluginError(
                f"two plugins are named {name!r}: {known} and {info.module if info else short_repr(plugin)}"
            )
        if self.is_registered(plugin):
            raise PluginError(f"plugin {name!r}: {short_repr(plugin)} is already loaded as {self.get_name(plugin)!r}")
        check_hook_object(plugin, f"plugin {name!r}", self)
        components = self._collect_components(name, plugin)
        self.registry.check(components, plugin=name)
        try:
            self.register(plugin, name=name)
            self.check_pending()  # a hookimpl whose name matches no hookspec is a typo, not a silent no-op
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self.has_plugin(name):
                self.unregister(name=name)
            raise PluginError(
                f"plugin {name!r} does not match the sport hook specifications: {_one_line(str(exc))}"
            ) from exc
        self.registry.add_all(components, plugin=name)
        self.infos[name] = info or PluginInfo(name, getattr(plugin, "__name__", repr(plugin)), "?", "?", False)
        if info is None:
            self.extras.append((name, plugin))

    def _collect_components(self, name: str, plugin: object) -> list[tuple[str, Component]]:
        """(kind, component) of every registration hook of ``plugin``; a hook that raises or returns anything
        but a list or tuple of :class:`Component` (or None) is a one-line :class:`PluginError`."""
        collected: list[tuple[str, Component]] = []
        for kind in KINDS:
            hook = register_hook_name(kind)
            impl = getattr(plugin, hook, None)
            if impl is None:
                continue
            try:
                components = impl()
            except Exception as exc:  # a plugin bug; name it
                raise PluginError(
                    f"plugin {name!r} failed in {hook}: {type(exc).__name__}: {_one_line(str(exc))}"
                ) from exc
            if components is None:
                continue
            if not isinstance(components, list | tuple):
                raise PluginError(
                    f"plugin {name!r}: {hook} must return a list of sport_core.Component, got {short_repr(components)}"
                )
            for i, component in enumerate(components):
                if not isinstance(component, Component):
                    raise PluginError(
                        f"plugin {name!r}: {hook} must return a list of sport_core.Component, got "
                        f"{short_repr(component)} ({type(component).__name__}) at index {i}"
                    )
                collected.append((kind, component))
        return collected

    def register_logger(self, obj: object, name: str, label: str) -> None:
        """Register a run's logger object ``obj`` (a component's instance) under ``name``, or raise a one-line
        :class:`PluginError` starting with ``label`` (e.g. ``loggers[0] (csv)``) if one of its hooks would
        never be called (:func:`check_hook_object`), it implements no event hook, or pluggy rejects it."""
        check_hook_object(obj, label, self)
        events = _event_hook_names(self)
        implemented = [
            attr_name
            for attr_name in dir(obj)
            if (opts := self.parse_hookimpl_opts(obj, attr_name)) is not None
            and (opts.get("specname") or attr_name) in events
        ]
        if not implemented:
            raise PluginError(
                f"{label}: implements no sport event hook ({', '.join(events)}); "
                "mark its methods with @sport_core.hookimpl"
            )
        try:
            self.register(obj, name=name)
            self.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self.has_plugin(name) and self.get_plugin(name) is obj:
                self.unregister(name=name)
            raise PluginError(f"{label}: {_one_line(str(exc))}") from exc

    def hook_order(self, hook_name: str) -> list[str]:
        """Plugin names in the order pluggy calls ``hook_name`` (last registered first, tryfirst/trylast applied)."""
        impls = getattr(self.hook, hook_name).get_hookimpls()
        return [impl.plugin_name for impl in reversed(impls)]

    def _load_isolated(self, info: PluginInfo, load: Callable[[], object]) -> None:
        """Import (``load()``) and add one plugin; a failure is recorded and warned about, never raised."""
        try:
            self.add_plugin(load(), info.name, info)
        except (Exception, SystemExit) as exc:
            error = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
            failed = FailedPlugin(
                info.name, info.module, info.distribution, info.version, info.builtin, _one_line(error)
            )
            self.failed[info.name] = failed
            self.registry.failed_plugins[info.name] = failed.error
            if info.distribution == PLUGINS_ENV_DISTRIBUTION:
                origin, remedy = f"from {PLUGINS_ENV}", f"remove it from {PLUGINS_ENV}"
            else:
                origin = f"from distribution {info.distribution} {info.version}"
                remedy = f"disable it with {DISABLE_ENV}={info.name}"
            log.warning(
                "plugin %r (%s, %s) failed to load: %s; its components are unavailable (%s)",
                info.name,
                info.module,
                origin,
                failed.error,
                remedy,
            )


def load_plugin_manager(autoload: bool | None = None, extra: Iterable[tuple[str, object]] = ()) -> SportPluginManager:
    """Create a plugin manager with the built-ins, the third-party plugins (unless autoload is disabled), the
    ``SPORT_PLUGINS`` modules and ``extra`` (name, plugin) pairs, in that order.

    Entry points named in ``SPORT_DISABLE_PLUGINS`` are skipped (``pm.disabled``); an entry point or
    ``SPORT_PLUGINS`` module that fails to load is recorded in ``pm.failed`` with a warning; an ``extra``
    plugin that fails raises :class:`PluginError`."""
    if autoload is None:
        autoload = os.environ.get(AUTOLOAD_ENV, "") in ("", "0")
    disable = set(_env_list(DISABLE_ENV))
    pm = SportPluginManager()
    pm.autoload = autoload
    found = sorted(_discover(), key=lambda e: (not e[3], e[0].name))
    dev_modules = list(dict.fromkeys(_env_list(PLUGINS_ENV)))
    # Built-ins first so that a third-party clash is reported against the built-in it shadows.
    for ep, dist, ver, builtin in found:
        info = PluginInfo(ep.name, ep.value, dist, ver, builtin)
        if ep.name in disable:
            pm.disabled[ep.name] = info
        elif builtin or autoload:
            pm._load_isolated(info, ep.load)
    for module in dev_modules:
        info = PluginInfo(module, module, PLUGINS_ENV_DISTRIBUTION, "?", False)
        if module in disable:
            pm.disabled[module] = info
        else:
            pm._load_isolated(info, lambda module=module: importlib.import_module(module))
    unknown = sorted(disable - {ep.name for ep, *_ in found} - set(dev_modules))
    if unknown:
        names = sorted({ep.name for ep, *_ in found})
        described = []
        for name in unknown:
            hint = difflib.get_close_matches(name, names, n=1)
            described.append(f"{name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
        log.warning(
            "%s names no plugin: %s; plugins: %s", DISABLE_ENV, ", ".join(described), ", ".join(names) or "none"
        )
    for name, plugin in extra:
        if isinstance(plugin, str):
            plugin = importlib.import_module(plugin)
        pm.add_plugin(plugin, name)
    return pm
