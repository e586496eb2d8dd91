"""sport: certified-safe policy updates (SPoRt) as a plugin framework.

The core holds no RL algorithm: it defines the plugin contract (:mod:`sport_core.hookspecs`), loads plugins
(:mod:`sport_core.plugins`), validates recipes (:mod:`sport_core.recipe`) and runs them
(:mod:`sport_core.runner`). Plugins use ``hookimpl`` to implement hooks and ``Component`` to register what
they provide.
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

from sport_core.registry import KINDS, Component

try:
    __version__ = version("sport")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

PROJECT = "sport"
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["KINDS", "PROJECT", "Component", "__version__", "hookimpl"]
