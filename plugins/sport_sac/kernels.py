"""Dense 2-D products for the fused SAC engine: ``act(a @ wᵀ + bias)`` through oneDNN or the BLAS.

Why a choice: PyTorch sends float32 ``mm``/``addmm`` on CPU to its BLAS (MKL on x86), which on AMD CPUs runs
its AVX2 code path. oneDNN picks its kernels by the instruction set alone; on an AVX-512 core (e.g. AMD Zen 5)
its float32 matmul is about 2× faster at SAC's sizes, and it fuses the bias and the activation. Both compute
in IEEE float32 (no reduced-precision mode); they differ only in summation order.

But each oneDNN call costs about 30 µs before its kernel runs (measured on an Intel Xeon, AVX2 cap and
default: 28–35 µs for an 8×8 product against 4 µs through the BLAS), and its per-shape kernels make a row count
that changes at every step costly. So the ``onednn`` backend sends the products with no activation to the BLAS
wherever the BLAS runs the same instruction set (:func:`blas_runs_full_isa`): there oneDNN would only fuse the
bias, and at SAC's shapes the BLAS's kernel is as fast (512×256×256 with the AVX2 cap: 865 µs through MKL,
883 µs through oneDNN, in one run on that Xeon).
"""

from __future__ import annotations

import platform
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


def cpu_vendor() -> str:
    """The CPU's vendor string (``GenuineIntel``, ``AuthenticAMD``, ...): Linux's /proc/cpuinfo, else the one
    ``platform.processor()`` names (Windows); ``""`` where neither says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("vendor_id"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    processor = platform.processor()
    return next((v for v in ("GenuineIntel", "AuthenticAMD") if v in processor), "")


def blas_runs_full_isa(vendor: str | None = None, capability: str | None = None) -> bool:
    """False where the BLAS runs a smaller instruction set than oneDNN: MKL on a non-Intel CPU with AVX-512
    (it takes its AVX2 code there). ``vendor`` and ``capability`` (ATen's, ``"AVX512"``, ``"AVX2"``, ...)
    default to this machine's. A fixed rule, not a timing: which kernel computes a product must not depend on
    how busy the machine was (the backends sum in different orders)."""
    vendor = cpu_vendor() if vendor is None else vendor
    capability = torch.backends.cpu.get_cpu_capability() if capability is None else capability
    return not (capability.startswith("AVX512") and vendor != "GenuineIntel")


Linear = Callable[..., torch.Tensor]


def make_linear(backend: str = "auto", plain_to_blas: bool | None = None) -> tuple[str, Linear]:
    """``(name, linear)`` with ``linear(a, w, bias=None, act="none") = act(a @ wᵀ + bias)`` for 2-D float32
    tensors, ``w`` in ``nn.Linear``'s [out, in] layout (a transposed view is free: pass ``W.t()`` for an
    [in, out] matrix ``W``, made once by the caller, since even ``.t()`` costs a dispatch per call).

    ``act`` is ``"none"``, ``"relu"`` or ``"tanh"``. ``auto`` takes oneDNN when :func:`onednn_available`, else
    the BLAS. ``onednn`` computes the products with an activation through oneDNN, and those without one through
    the BLAS if ``plain_to_blas`` (default: :func:`blas_runs_full_isa`), else through oneDNN too.
    """
    if backend not in BACKENDS:
        raise ValueError(f"matmul backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        backend = "onednn" if onednn_available() else "blas"
    if backend == "onednn":
        if not onednn_available():
            raise ValueError("matmul backend 'onednn' is not available in this PyTorch build; use 'blas' or 'auto'")
        pointwise = torch.ops.mkldnn._linear_pointwise
        if plain_to_blas is None:
            plain_to_blas = blas_runs_full_isa()

        def linear(a: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None, act: str = "none"):
            if act == "none" and plain_to_blas:
                return torch.mm(a, w.t()) if bias is None else torch.addmm(bias, a, w.t())
            return pointwise(a, w, bias, act, [None], "")

        return "onednn", linear

    def linear_blas(a: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None, act: str = "none"):
        out = torch.mm(a, w.t()) if bias is None else torch.addmm(bias, a, w.t())
        if act == "relu":
            out.relu_()
        elif act == "tanh":
            out.tanh_()
        return out

    return "blas", linear_blas
