"""Registers the built-in executors."""

from sport_core import Component, hookimpl
from sport_executors.executors import InlineConfig, InlineExecutor, ProcessConfig, ProcessExecutor


@hookimpl
def sport_register_executors():
    return [
        Component("inline", InlineExecutor, InlineConfig, "every task in the calling process, in order"),
        Component("process", ProcessExecutor, ProcessConfig, "a pool of spawned local processes"),
    ]
