"""Registers the ``ppo`` and ``projected-ppo`` trainers."""

from sport_core import Component, hookimpl
from sport_ppo.config import PPOConfig, ProjectedPPOConfig
from sport_ppo.trainer import PPOTrainer, ProjectedPPOTrainer


@hookimpl
def sport_register_trainers():
    return [
        Component("ppo", PPOTrainer, PPOConfig, "proximal policy optimisation (clipped surrogate, GAE)"),
        Component(
            "projected-ppo",
            ProjectedPPOTrainer,
            ProjectedPPOConfig,
            "SPoRt's Projected PPO: one fine-tuning of the certified base per alpha, every action projected",
        ),
    ]
