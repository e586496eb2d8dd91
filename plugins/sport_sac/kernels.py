"""Dense 2-D matmuls for the fused SAC engine: ``act(a @ b + bias)`` through oneDNN or the BLAS.

Why a choice: PyTorch sends float32 ``mm``/``addmm`` on CPU to its BLAS (MKL on x86), which on AMD CPUs runs
its AVX2 code path. oneDNN picks its kernels by the instruction set alone; on an AVX-512 core (e.g. AMD Zen 5)
its float32 matmul is about 2× faster at SAC's sizes, and it fuses the bias and the activation. Both compute
in IEEE float32 (no reduced-precision mode); they differ only in summation order.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

BACKENDS = ("auto", "onednn", "blas")


def onednn_available() -> bool:
    """True when this PyTorch has oneDNN's float32 linear kernel and it runs here."""
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return False
    try:
        a, b = torch.ones(2, 3), torch.ones(4, 3)
        return bool(torch.equal(op(a, b, None, "none", [None], ""), torch.full((2, 4), 3.0)))
    except Exception:  # a private op: any change of its signature or build means "not available"
        return False


MatMul = Callable[..., torch.Tensor]


def make_matmul(backend: str = "auto") -> tuple[str, MatMul]:
    """``(name, mm)`` with ``mm(a, b, bias=None, act="none") = act(a @ b + bias)`` for 2-D float32 tensors.

    ``act`` is ``"none"``, ``"relu"`` or ``"tanh"``; ``a`` and ``b`` may be transposed views.
    ``auto`` takes oneDNN when :func:`onednn_available`, else the BLAS.
    """
    if backend not in BACKENDS:
        raise ValueError(f"matmul backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        backend = "onednn" if onednn_available() else "blas"
    if backend == "onednn":
        if not onednn_available():
            raise ValueError("matmul backend 'onednn' is not available in this PyTorch build; use 'blas' or 'auto'")
        linear = torch.ops.mkldnn._linear_pointwise

        def mm(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None, act: str = "none") -> torch.Tensor:
            # oneDNN's linear computes a @ wᵀ + bias with w = [out, in]; bᵀ is a free view
            return linear(a, b.t(), bias, act, [None], "")

        return "onednn", mm

    def mm_blas(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor | None = None, act: str = "none") -> torch.Tensor:
        out = torch.mm(a, b) if bias is None else torch.addmm(bias, a, b)
        if act == "relu":
            out.relu_()
        elif act == "tanh":
            out.tanh_()
        return out

    return "blas", mm_blas
