"""The elementwise passes of the fused SAC engine's backward, each one sweep over memory: :func:`make_passes`.

Between its matrix products the fused engine (:mod:`sport_sac.fused`) applies activation derivatives and sums
columns for the bias gradients. As separate torch operators each is a sweep over a [B, 256] tensor (512 KiB at
batch 512), larger than what stays in a core's cache across an update, so every sweep is paid at memory speed.
The compiled (numba) passes do in one sweep what torch does in several:

* ``top(dq, w, h, gw, gb) -> dz``: the last hidden layer's input gradient for ∂L/∂Q = ``dq`` [B] through
  Q = h·w + c: ``dz[b, j] = dq[b] w[j] σ'(h[b, j])``, with ``gw = hᵀ dq`` (the weight gradient) and
  ``gb[j] = Σ_b dz[b, j]`` (the bias gradient of the layer below) written on the way. torch: ``mv``, ``outer``,
  the activation's backward and ``sum``: 4 sweeps, here 1.
* ``backward_sum_(dz, h, gb)``: ``dz ← dz · σ'(h)`` in place and ``gb = Σ_b dz``. torch: 2 sweeps, here 1.
* ``gather_top(w, h, rows) -> dz`` with ``dz[i, j] = w[j] σ'(h[rows[i], j])`` and ``gather_backward_(dz, h, rows)``
  with ``dz[i, j] ← dz[i, j] σ'(h[rows[i], j])``: the backward pass of the rows ``rows`` only, without first
  gathering them (torch: ``index_select`` and then the activation's backward).

σ' is taken from the activation's output h: ``[h > 0]`` for ReLU, ``1 − h²`` for tanh, as autograd does. Each
element gets the same float32 operations as in torch's kernels (no fused multiply-add; a NaN output passes
its gradient through the ReLU mask, as ``threshold_backward`` does); only the order in which the column sums
add the rows differs (a rounding-level difference, as between two BLAS libraries).

``make_passes("auto")`` takes numba where it imports, else torch; ``"torch"`` forces the operator sequences
(the reference, and the fallback tested against the compiled passes).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

log = logging.getLogger(__name__)
PASSES = ("auto", "numba", "torch")
_ACTIVATIONS = ("relu", "tanh")


def _threshold_backward(grad: torch.Tensor, out: torch.Tensor, dest: torch.Tensor) -> torch.Tensor:
    """dest ← grad · [out > 0] (``dest`` may be ``grad`` itself)."""
    return torch.ops.aten.threshold_backward.grad_input(grad, out, 0.0, grad_input=dest)


def _tanh_backward(grad: torch.Tensor, out: torch.Tensor, dest: torch.Tensor) -> torch.Tensor:
    """dest ← grad · (1 − out²) (``dest`` may be ``grad`` itself)."""
    return torch.ops.aten.tanh_backward.grad_input(grad, out, grad_input=dest)


class TorchPasses:
    """The passes as torch operator sequences."""

    name = "torch"

    def __init__(self, activation: str) -> None:
        self.backward = {"relu": _threshold_backward, "tanh": _tanh_backward}[activation]

    def top(self, dq: torch.Tensor, w: torch.Tensor, h: torch.Tensor, gw: torch.Tensor, gb: torch.Tensor):
        torch.mv(h.t(), dq, out=gw)
        dz = torch.outer(dq, w)
        self.backward(dz, h, dz)
        torch.sum(dz, 0, out=gb)
        return dz

    def backward_sum_(self, dz: torch.Tensor, h: torch.Tensor, gb: torch.Tensor) -> torch.Tensor:
        self.backward(dz, h, dz)
        torch.sum(dz, 0, out=gb)
        return dz

    def gather_top(self, w: torch.Tensor, h: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        picked = h.index_select(0, rows)
        # the gradient is a broadcast (expanded) view of w: written into a new tensor, not in place
        return self.backward(w.expand(rows.shape[0], -1), picked, torch.empty_like(picked))

    def gather_backward_(self, dz: torch.Tensor, h: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.backward(dz, h.index_select(0, rows), dz)


def _compile() -> dict[str, Any]:
    """The numba kernels (:mod:`sport_sac.passes_numba`; compiled on first call, cached on disk by numba)."""
    import numba

    if numba.config.DISABLE_JIT:  # NUMBA_DISABLE_JIT=1: the kernels would be Python loops, far slower than torch
        raise ImportError("numba's JIT is disabled (NUMBA_DISABLE_JIT)")
    from sport_sac.passes_numba import KERNELS

    return KERNELS


def _warm(kernels: dict[str, Any]) -> None:
    """Call every kernel once on tiny arrays: numba compiles them (or loads them from its cache) now, not in the
    first update, and a failure shows here."""
    import numpy as np

    h, w, rows, out = (
        np.ones((2, 3), np.float32),
        np.ones(3, np.float32),
        np.zeros(1, np.int64),
        np.empty(3, np.float32),
    )
    # one call each compiles the whole kernel: ``relu`` is a run-time flag, both of its branches are in it
    dz, one = np.empty((2, 3), np.float32), np.empty((1, 3), np.float32)
    kernels["top"](np.ones(2, np.float32), w, h, dz, out, out.copy(), True)
    kernels["backward_sum"](dz, h, out, True)
    kernels["gather_top"](w, h, rows, one, True)
    kernels["gather_backward"](one, h, rows, True)


_KERNELS: dict[str, Any] | None = None


def numba_available() -> bool:
    """Whether the compiled passes can be used: numba imports, its JIT is on, and it compiles them (once per
    process; a compile failure is logged). Otherwise ``auto`` takes the torch passes."""
    global _KERNELS
    if _KERNELS is None:
        try:
            kernels = _compile()
            _warm(kernels)
            _KERNELS = kernels
        except ImportError:
            _KERNELS = {}
        except Exception as exc:  # a numba or LLVM failure must not stop training: torch computes the same
            log.warning("sport_sac: numba could not compile the fused engine's passes (%s); using torch's", exc)
            _KERNELS = {}
    return bool(_KERNELS)


class NumbaPasses:
    """The passes as compiled (numba) sweeps. Every tensor must be a CPU float32 tensor (``rows``: int64) with
    unit-stride rows; the engine's are (products, activations, ``.grad`` views)."""

    name = "numba"

    def __init__(self, activation: str) -> None:
        if not numba_available():
            raise ValueError("the compiled passes need numba, which does not work here; use passes = 'torch'")
        self.k = _KERNELS
        self.relu = activation == "relu"

    def top(self, dq: torch.Tensor, w: torch.Tensor, h: torch.Tensor, gw: torch.Tensor, gb: torch.Tensor):
        dz = torch.empty_like(h)
        self.k["top"](dq.numpy(), w.numpy(), h.numpy(), dz.numpy(), gw.numpy(), gb.numpy(), self.relu)
        return dz

    def backward_sum_(self, dz: torch.Tensor, h: torch.Tensor, gb: torch.Tensor) -> torch.Tensor:
        self.k["backward_sum"](dz.numpy(), h.numpy(), gb.numpy(), self.relu)
        return dz

    def gather_top(self, w: torch.Tensor, h: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        dz = h.new_empty(rows.shape[0], h.shape[1])
        self.k["gather_top"](w.numpy(), h.numpy(), rows.numpy(), dz.numpy(), self.relu)
        return dz

    def gather_backward_(self, dz: torch.Tensor, h: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        self.k["gather_backward"](dz.numpy(), h.numpy(), rows.numpy(), self.relu)
        return dz


def make_passes(kind: str, activation: str) -> TorchPasses | NumbaPasses:
    """The passes for a network with hidden ``activation`` (``relu`` or ``tanh``): ``auto`` is numba where it
    imports, else torch."""
    if kind not in PASSES:
        raise ValueError(f"passes must be one of {', '.join(PASSES)}, got {kind!r}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(_ACTIVATIONS)}, got {activation!r}")
    if kind == "torch" or (kind == "auto" and not numba_available()):
        return TorchPasses(activation)
    return NumbaPasses(activation)
