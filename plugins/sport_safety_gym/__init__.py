"""Reach-avoid tasks on the real safety-gymnasium (MuJoCo) Point robot: curriculum levels 1–5, 50 Hz and
the paper's 5 Hz timing, end-on-violation and continue-on-violation variants, fixed layouts (the paper's
certification layout included), and resets that keep the compiled model.

``sport_safety_gym.make(env_id, layout_seed=None, **options)`` returns a gymnasium env; the ``safety-gym``
env component (:class:`SafetyGymConfig`) does the same from a recipe. Importing this package does not import
safety-gymnasium; building an env does (through :mod:`sport_safety_gym.shim`).
"""

from sport_safety_gym.levels import env_ids, parse_env_id
from sport_safety_gym.maker import (
    BASE_REWARD,
    NATIVE_REWARD,
    PAPER_LAYOUT,
    PAPER_LAYOUT_SEED,
    SafetyGymConfig,
    SafetyGymMaker,
    make,
)

__all__ = [
    "BASE_REWARD",
    "NATIVE_REWARD",
    "PAPER_LAYOUT",
    "PAPER_LAYOUT_SEED",
    "SafetyGymConfig",
    "SafetyGymMaker",
    "env_ids",
    "make",
    "parse_env_id",
]
