"""Every benchmark line says which machine produced it (benchmarks/machine.py).

A speed ratio means little without the hardware: the same SAC benchmark gave 2.2× on one machine and 1.36× on
another (AVX2, no AVX-512). So each line carries the CPU model, its SIMD flags (AVX2, every AVX-512 and AMX
flag), torch's version, build (BLAS, oneDNN) and thread count, any instruction-set cap in force, and the load.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import machine  # noqa: E402


def test_the_record_names_cpu_simd_torch_build_threads_and_caps(monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    machine._static.cache_clear()
    try:
        record = machine.machine()
    finally:
        machine._static.cache_clear()
    assert record["cpu"] and isinstance(record["simd"], list)
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").is_file() else []
    for flag in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"):
        assert (flag in record["simd"]) == (flag in flags)
    assert record["torch"] and record["torch_cpu_capability"]
    assert record["torch_build"].get("blas")
    assert isinstance(record["torch_threads"], int) and record["torch_threads"] >= 1
    assert record["isa_caps"] == {"ATEN_CPU_CAPABILITY": "avx2"}
    assert record["cores"] >= 1


def test_emit_prints_one_line_with_the_record_and_appends_it(tmp_path, capsys):
    machine.emit("demo", {"ours": 2.0, "baseline": 1.0, "speedup": 2.0}, results_dir=tmp_path)
    printed = json.loads(capsys.readouterr().out)
    stored = json.loads((tmp_path / "demo.jsonl").read_text())
    assert printed == stored
    assert stored["speedup"] == 2.0 and {"cpu", "simd", "torch_threads"} <= set(stored["machine"])
    assert stored["time"] and stored["command"]
    if stored["code"] is None:  # not a git checkout (or no git): nothing to name
        return
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=BENCHMARKS)
    assert stored["code"].rstrip("+") == head.stdout.strip()  # the commit measured, "+" for uncommitted changes


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "machine.py"))
def test_every_benchmark_writes_its_lines_through_emit(script):
    """A benchmark prints results only with ``machine.emit`` (which adds the record), never ``print(json…)``."""
    tree = ast.parse((BENCHMARKS / script).read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    emits = [c for c in calls if getattr(c.func, "id", getattr(c.func, "attr", None)) == "emit"]
    json_prints = [
        c
        for c in calls
        if getattr(c.func, "id", None) == "print"
        and any(isinstance(a, ast.Call) and getattr(a.func, "attr", None) == "dumps" for a in c.args)
    ]
    assert emits, f"{script} emits no line through machine.emit"
    assert not json_prints, f"{script} prints JSON without the machine record"
