"""One Adam step with less Python around the kernel: :func:`adam_step`.

``torch.optim.Adam(fused=True).step()`` spends about as long in Python (hooks, profiler scope, grouping the
tensors by device and dtype, per-group option handling) as in its one fused kernel when the parameters are a
few small CPU tensors, as in SAC, where three optimisers step at every update. :func:`adam_step` makes the
same two calls that ``step()`` ends in for such a group, ``step += 1`` on the state steps and
``torch._fused_adam_`` on (params, grads, exp_avg, exp_avg_sq), so the result is bit-identical to ``step()``
and the optimiser's state (and ``state_dict``) is the one ``step()`` would leave.

``torch._fused_adam_`` is a private operator: whenever it is missing, or the optimiser is not a plain fused
CPU Adam (amsgrad, maximize, weight decay, decoupled weight decay, a tensor learning rate, a missing
gradient, a parameter not yet stepped so its state does not exist), the step is ``optimizer.step()``, run
outside inference mode (a caller may be in it, and the state that step creates must be normal tensors).
"""

from __future__ import annotations

import torch

_FUSED = getattr(torch, "_fused_adam_", None)
_PLAIN = {"amsgrad": False, "maximize": False, "weight_decay": 0.0, "decoupled_weight_decay": False}


def _fast_group(optimizer: torch.optim.Optimizer) -> dict | None:
    """The single parameter group if :func:`adam_step` can step it directly, else None."""
    if _FUSED is None or type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if not group.get("fused") or isinstance(group["lr"], torch.Tensor):
        return None
    if any(group.get(key, plain) != plain for key, plain in _PLAIN.items()):
        return None
    return group


def public_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()`` outside inference mode, so the state it may create is made of normal tensors (an
    inference tensor cannot be updated in place once the mode is left). Public torch API only: what
    :func:`adam_step` falls back to, and what the SAC trainer uses with ``private_ops = false``."""
    with torch.inference_mode(False):
        optimizer.step()


def adam_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``, bit for bit, with the fused kernel called directly where that is possible."""
    group = _fast_group(optimizer)
    if group is None:
        public_step(optimizer)
        return
    params = group["params"]
    state = optimizer.state
    states = [state.get(p) for p in params]
    grads = [p.grad for p in params]
    if any(s is None or "exp_avg" not in s for s in states) or any(g is None for g in grads):
        public_step(optimizer)  # the first step creates the state; None grads are skipped by step()
        return
    if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in params):
        public_step(optimizer)
        return
    steps = [s["step"] for s in states]
    beta1, beta2 = group["betas"]
    torch._foreach_add_(steps, 1)
    _FUSED(
        params,
        grads,
        [s["exp_avg"] for s in states],
        [s["exp_avg_sq"] for s in states],
        [],
        steps,
        amsgrad=False,
        lr=group["lr"],
        beta1=beta1,
        beta2=beta2,
        weight_decay=0.0,
        eps=group["eps"],
        maximize=False,
        grad_scale=None,
        found_inf=None,
    )
