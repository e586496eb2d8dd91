"""Load a repository script that is not a package module (``tools/faults.py``, ``benchmarks/pipeline.py``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load_script(path: str, name: str) -> ModuleType:
    """Import ``ROOT/path`` as module ``name`` (registered in ``sys.modules``, as dataclasses and pickling need)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
