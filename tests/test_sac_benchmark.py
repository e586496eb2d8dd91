"""``benchmarks/sac.py`` end to end on the point-mass env with tiny sizes: ours and SB3 paired concurrently on
two cores (cores swapped between the pairs, the speed-up their geometric mean) or one after the other, and the
update timing interleaved; every line carries the machine record."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--env", "pointmass", "--quick", "--warmup", "64", "--steps", "64", "--update-repeats", "10"]


def run_benchmark(tmp_path: Path, *extra: str) -> list[dict]:
    env = {**os.environ, "SPORT_BENCH_RESULTS": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sac.py"), *TINY, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in (tmp_path / "sac.jsonl").read_text().splitlines()]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="concurrent pairing needs two usable cores")
def test_concurrent_pairs_swap_cores_and_report_the_geometric_mean(tmp_path):
    lines = run_benchmark(tmp_path)
    steps = [line for line in lines if line["measure"] == "env_steps_per_s"]
    assert len(steps) == 1
    line = steps[0]
    assert line["pairing"].startswith("concurrent")
    pairs = line["pairs"]
    assert len(pairs) == 2
    assert (pairs[0]["ours_core"], pairs[0]["sb3_core"]) == (pairs[1]["sb3_core"], pairs[1]["ours_core"])
    assert pairs[0]["ours_core"] != pairs[0]["sb3_core"]
    for pair in pairs:
        assert pair["ours"] > 0 and pair["sb3"] > 0
        assert 0.0 <= pair["overlap"] <= 1.0
        assert pair["ratio"] == pytest.approx(pair["ours"] / pair["sb3"], rel=0.01)
    assert line["speedup"] == pytest.approx(math.sqrt(pairs[0]["ratio"] * pairs[1]["ratio"]), abs=0.006)
    assert line["machine"]["cores"] >= 2 and line["machine"]["torch_threads"] == 1
    updates = [line for line in lines if line["measure"] == "update_ms"]
    assert {u["ours_variant"].split(" engine")[0] for u in updates} >= {"fused", "autograd"}
    for u in updates:
        assert u["pairing"].startswith("interleaved") and u["ours"] > 0 and u["sb3"] > 0


def test_sequential_pairing_divides_by_the_faster_sb3_run(tmp_path):
    lines = run_benchmark(tmp_path, "--pairing", "sequential")
    (line,) = [line for line in lines if line["measure"] == "env_steps_per_s"]
    assert line["pairing"].startswith("sequential") and "pairs" not in line
    assert line["speedup"] == pytest.approx(line["ours"] / line["sb3"], abs=0.02)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="concurrent pairing needs two usable cores")
@pytest.mark.timeout(180)  # the failure this guards against is a hang
def test_a_side_that_fails_stops_the_pair_with_one_line_instead_of_hanging(monkeypatch):
    """The other side would wait at the start barrier for ever: it is stopped, and the error names the side."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # spawned children import the script as ``sac``
    bench = load_script("benchmarks/sac.py", "sac")
    with pytest.raises(SystemExit, match=r"the ours process failed \(exit code 1\)"):
        bench.concurrent_pairs("pointmass", 8, 8, {"no_such_key": 1})
