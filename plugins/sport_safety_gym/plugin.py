"""Registers the ``safety-gym`` env (reach-avoid tasks on safety-gymnasium)."""

from sport_core import Component, hookimpl
from sport_safety_gym.maker import SafetyGymConfig, SafetyGymMaker


@hookimpl
def sport_register_envs():
    return [
        Component(
            "safety-gym",
            SafetyGymMaker,
            SafetyGymConfig,
            "reach-avoid curriculum levels on the safety-gymnasium Point robot (5 Hz and 50 Hz, fixed layouts)",
        )
    ]
