"""What a benchmark line must say about the machine that produced it, and the one way a benchmark writes a line.

:func:`machine` is the record (CPU model, SIMD flags, cores, load, torch build and threads); :func:`emit` adds
it, a UTC timestamp, the command line and the code's git revision to a result row, prints the row as one JSON
line and appends that line to ``benchmarks/results/<name>.jsonl``. The environment variable
``SPORT_BENCH_RESULTS`` names another folder for the ``.jsonl`` files (smoke runs, tests), and
``SPORT_BENCH_RESULTS=-`` prints without appending.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

SIMD = ("avx", "avx2", "fma", "f16c")  # and every avx512* and amx* flag the CPU reports
ISA_CAPS = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "NUMBA_CPU_NAME",
    "NUMBA_CPU_FEATURES",
)
#: the caps that make an AVX-512 CPU compute as one without it (torch's kernels, oneDNN, MKL, and numba's
#: compiled code, which otherwise targets the host CPU: both of its variables are needed, the name alone keeps
#: the host's features)
AVX2_CAP = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "NUMBA_CPU_NAME": "haswell",
    "NUMBA_CPU_FEATURES": "+avx2,+fma",
}
RESULTS = Path(__file__).resolve().parent / "results"
RESULTS_ENV = "SPORT_BENCH_RESULTS"


def _load() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


_LOAD_AT_START = _load()  # when the benchmark imported this module, before it ran anything


def isa_caps() -> dict[str, str]:
    """The instruction-set cap variables set in this process's environment."""
    return {k: os.environ[k] for k in ISA_CAPS if k in os.environ}


def cap_isa() -> None:
    """Restart this process with :data:`AVX2_CAP` set, unless it already is: torch, oneDNN, MKL and numba read
    these variables when they load, so they cannot take effect in a process that has imported torch."""
    if any(os.environ.get(k) != v for k, v in AVX2_CAP.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **AVX2_CAP})


def _torch_build(config: str) -> dict:
    """BLAS, oneDNN and OpenMP of torch's build, from ``torch.__config__.show()``."""
    build = {}
    for line in config.splitlines():
        line = line.strip(" -")
        if "Math Kernel Library Version" in line:
            build["mkl"] = line.split("Version", 1)[1].split()[0]
        elif line.startswith(("Intel(R) MKL-DNN", "oneDNN")):
            build["onednn"] = next((w for w in line.split() if w.startswith("v")), line)
        elif line.startswith("OpenMP"):
            build["openmp"] = line.split()[1]
        elif "BLAS_INFO=" in line:
            build["blas"] = line.split("BLAS_INFO=", 1)[1].split(",")[0]
    return build


@functools.cache
def _static() -> dict:
    """The parts of the record that do not change while the process runs (read once: /proc/cpuinfo, CUDA)."""
    import torch  # here, not at the top: benchmarks that do not use torch (and their worker processes) skip it

    model, flags = platform.processor() or "?", set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name") and model in ("?", "x86_64", ""):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return {
        "cpu": model,
        "simd": [f for f in SIMD if f in flags] + sorted(f for f in flags if f.startswith(("avx512", "amx"))),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_build": _torch_build(torch.__config__.show()),
        # instruction-set caps in force (ATEN_CPU_CAPABILITY=avx2 etc. emulate a CPU without AVX-512)
        "isa_caps": isa_caps(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def machine() -> dict:
    """CPU model, the SIMD flags that matter for matmuls, usable cores, Python and torch versions, torch's CPU
    capability and thread count, the GPU if any, and the 1-minute load average now and when the process started
    (the machine may be shared: read a line's numbers with its load).

    The static part is computed once per process; the torch thread count and the load are read at each call,
    since a benchmark sets the threads in ``main`` and the load moves while it runs."""
    import torch

    return {
        **_static(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1min": _load(),
        "load_avg_1min_at_start": _LOAD_AT_START,
    }


def results_file(name: str, results_dir: Path | None = None) -> Path | None:
    """Where :func:`emit` appends ``name``'s lines: ``results_dir`` if given, else ``$SPORT_BENCH_RESULTS`` if
    set, else ``benchmarks/results``; None when that is ``-`` (print only)."""
    folder = results_dir if results_dir is not None else os.environ.get(RESULTS_ENV) or RESULTS
    if str(folder) == "-":
        return None
    return Path(folder) / f"{name}.jsonl"


@functools.cache
def code_revision() -> str | None:
    """The commit of the code being measured: ``git rev-parse --short HEAD``, with ``+`` appended when a tracked
    ``.py`` file differs from it (uncommitted changes were measured); None outside a git checkout."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None

    head = git("rev-parse", "--short", "HEAD")
    if head is None or head.returncode != 0 or not head.stdout.strip():
        return None
    changed = git("diff", "--quiet", "HEAD", "--", "*.py")
    return head.stdout.strip() + ("+" if changed is not None and changed.returncode == 1 else "")


code_revision()  # now, when the benchmark starts: later edits to the tree are not what it measures


def emit(name: str, row: dict, results_dir: Path | None = None) -> None:
    """Print ``row`` as one JSON line and append it to ``<results folder>/<name>.jsonl`` (see :func:`results_file`).

    Adds, where the row lacks them, ``time`` (UTC, ISO 8601), ``command`` (this process's command line),
    ``code`` (:func:`code_revision`) and ``machine`` (:func:`machine`)."""
    row = dict(row)
    row.setdefault("time", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    row.setdefault("command", " ".join(sys.argv))
    row.setdefault("code", code_revision())
    row.setdefault("machine", machine())
    line = json.dumps(row)
    print(line, flush=True)
    path = results_file(name, results_dir)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as fh:
            fh.write(line + "\n")
