"""Shared fixtures: a plugin manager with only the built-ins, quiet progress bars, one torch thread."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("SPORT_NO_PROGRESS", "1")
torch.set_num_threads(1)


@pytest.fixture
def pm(monkeypatch):
    """A fresh plugin manager with the built-in plugins only (third-party autoload off)."""
    from sport_core.plugins import load_plugin_manager

    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    return load_plugin_manager()


@pytest.fixture
def registry(pm):
    return pm.registry
