"""Where a result comes from: package versions, the time, and the code's git revision.

Run manifests, certificates and reports record these so that a number can be traced to the code and the
libraries that produced it.
"""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def package_versions(pm: Any = None) -> dict[str, Any]:
    """Versions of Python, sport, numpy, scipy and torch, and (given a plugin manager) of every loaded plugin
    as ``{"plugins": {name: version}}``."""
    import numpy
    import scipy
    import torch

    from sport_core import __version__

    out: dict[str, Any] = {
        "python": platform.python_version(),
        "sport": __version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
    }
    if pm is not None:
        out["plugins"] = {name: info.version for name, info in sorted(pm.infos.items())}
    return out


def now_utc() -> str:
    """The current UTC time as ISO 8601 to the second (``2026-11-30T23:59:48+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_revision(path: str | Path | None = None) -> str | None:
    """The git commit checked out at ``path`` (default: the sport source tree), or None outside a checkout."""
    where = Path(path) if path is not None else Path(__file__).parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=where)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
