"""Where a learner runs: ``device = "cpu" | "cuda" | "auto"`` in trainer configs.

Acting stays on the CPU whatever the learner's device, so every random number of an episode (drawn from
its CPU ``torch.Generator``) and hence every episode record is the same on any machine.
"""

from __future__ import annotations

import torch

from sport_core.errors import SportError


def resolve_device(name: str, stage: str) -> torch.device:
    """``auto`` → cuda when available, else cpu; ``cuda`` without a usable GPU is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SportError(
            f'stages.{stage}.config.device: "cuda" was asked for but torch {torch.__version__} sees no CUDA GPU '
            '(use "cpu" or "auto")'
        )
    if name not in ("cpu", "cuda"):
        raise SportError(f'stages.{stage}.config.device: expected "cpu", "cuda" or "auto", got {name!r}')
    return torch.device(name)
