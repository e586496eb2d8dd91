"""Registers the ``sac`` trainer."""

from sport_core import Component, hookimpl
from sport_sac.config import SACConfig
from sport_sac.trainer import SACTrainer


@hookimpl
def sport_register_trainers():
    return [Component("sac", SACTrainer, SACConfig, "soft actor-critic (twin critics, PER, curriculum)")]
