"""Stopping training at the first NaN or infinity, with one line naming the quantity and the step.

A non-finite number in a loss, a gradient, a policy's output, a reward or an observation silently poisons
everything after it (NaN weights, NaN priorities in a replay sum-tree, NaN returns). Trainers check the
quantities they already have in hand (losses are floats after each update; actions, rewards and observations
per step or per rollout, vectorised) and their parameters before every checkpoint, so that a checkpoint is
never written from poisoned weights. A non-finite gradient shows up as non-finite parameters after the
optimiser step, which the next update's losses (or the checkpoint check) catch. The error is
:class:`NonFiniteError` (a :class:`sport_core.errors.SportError`: one line from the CLI); the last checkpoint,
written before the number went bad, is kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from sport_core.errors import SportError


class NonFiniteError(SportError):
    """Training met a NaN or an infinity; the message names the quantity and the step."""


def nonfinite(value: Any) -> str | None:
    """``"nan"``, ``"inf"`` or ``"-inf"`` for the first non-finite element of ``value`` (a float, an array or a
    tensor), or None when every element is finite."""
    # the common, finite case first and cheaply: trainers call this at every env step
    if isinstance(value, float | int):
        if math.isfinite(value):
            return None
    elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
        if np.isfinite(value).all():
            return None
    elif isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(array)
    if not bad.any():
        return None
    first = array[bad].flat[0]
    return "nan" if np.isnan(first) else ("inf" if first > 0 else "-inf")


def check_finite(where: str, step: int, values: Mapping[str, Any], hint: str = "") -> None:
    """Raise :class:`NonFiniteError` ``"{where}: {name} is nan at step {step}{hint}"`` for the first of
    ``values`` (name -> float, array or tensor) that holds a NaN or ±inf."""
    for name, value in values.items():
        kind = nonfinite(value)
        if kind is not None:
            raise NonFiniteError(f"{where}: {name} is {kind} at step {step}; training stopped{hint}")


def check_parameters(where: str, step: int, modules: Mapping[str, torch.nn.Module], hint: str = "") -> None:
    """Raise :class:`NonFiniteError` naming the first parameter of ``modules`` (name -> module) that holds a
    NaN or ±inf (after an optimiser step, that means a gradient was not finite)."""
    for prefix, module in modules.items():
        for name, param in module.named_parameters():
            if not bool(torch.isfinite(param).all()):
                kind = nonfinite(param)
                raise NonFiniteError(
                    f"{where}: parameter {prefix}.{name} is {kind} at step {step} (a gradient was not finite); "
                    f"training stopped{hint}"
                )


def stopped_hint(last_checkpoint: int | None) -> str:
    """What the error says about the checkpoint kept and what to do."""
    kept = f"the last checkpoint (step {last_checkpoint}) is kept" if last_checkpoint else "no checkpoint was written"
    return (
        f"; {kept}. A resume with this config meets the same numbers: change what produced them (learning "
        "rates, reward scale, the env), which starts the stage afresh"
    )
