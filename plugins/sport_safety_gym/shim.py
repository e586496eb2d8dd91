"""Importing safety-gymnasium 1.0.0 on Python 3.11.

safety-gymnasium declares dataclasses whose class-level defaults are numpy arrays (``color: np.array =
COLOR['hazard']``). Python ≥ 3.11 rejects any unhashable default (``ValueError: mutable default <class
'numpy.ndarray'> for field color is not allowed``), so ``import safety_gymnasium`` fails. While (and only
while) safety-gymnasium is imported, :func:`import_safety_gymnasium` replaces ``dataclasses.dataclass`` by a
wrapper that turns each ndarray class default into a ``default_factory`` returning a copy, then restores it.

Every process that touches safety-gymnasium must come through here (spawned worker processes too): the
env maker's ``make()`` does, so anything that builds envs from a pickled maker is covered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import sys
import threading
from collections.abc import Iterator
from types import ModuleType

import numpy as np

_LOCK = threading.Lock()


def _ndarray_defaults_as_factories(cls: type) -> type:
    for name in inspect.get_annotations(cls):
        value = cls.__dict__.get(name)
        if isinstance(value, np.ndarray):
            # a copy per instance: the stock classes would otherwise share (and could mutate) one array
            setattr(cls, name, dataclasses.field(default_factory=functools.partial(np.array, value)))
    return cls


@contextlib.contextmanager
def ndarray_dataclass_defaults() -> Iterator[None]:
    """Within the block, ``dataclasses.dataclass`` accepts numpy-array class defaults (as Python ≤ 3.10 did)."""
    original = dataclasses.dataclass

    def dataclass(cls: type | None = None, /, **kwargs):  # same calling forms as the original
        def wrap(c: type) -> type:
            return original(_ndarray_defaults_as_factories(c), **kwargs)

        return wrap if cls is None else wrap(cls)

    dataclasses.dataclass = dataclass
    try:
        yield
    finally:
        dataclasses.dataclass = original


def import_safety_gymnasium() -> ModuleType:
    """``import safety_gymnasium`` (with the Python 3.11 fix applied if it is needed)."""
    module = sys.modules.get("safety_gymnasium")
    if module is not None:
        return module
    with _LOCK:
        if "safety_gymnasium" in sys.modules:
            return sys.modules["safety_gymnasium"]
        with ndarray_dataclass_defaults():
            return importlib.import_module("safety_gymnasium")
