"""SIGKILL every kind of stage at random moments, resume it, and find nothing lost: ``tools/faults.py`` at CI size.

One harness run (module fixture) covers SAC training, Projected PPO training, certification, the α sweep and
the rollout evaluator on the point mass, each as the last stage of its own recipe, with two SIGKILLs of the
whole process group (pool workers included) per trial, each followed by ``sport run --resume``. Every kind
must end with the reference's artifacts, no episode lost and none counted twice. A second test damages copies
of reference artifacts to show that the comparison would see a lost, a doubled or a changed result.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.scripts import load_script

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


faults = load_script("tools/faults.py", "faults")


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults")
    plan = faults.Plan(trials=1, kills=(2, 2), min_kills=2)
    rows, trials = faults.run_harness("ci", list(faults.KINDS), plan, seed=0, out=out, jobs=3)
    print("\n" + faults.markdown(rows))
    return out, {r["kind"]: r for r in rows}, trials


@pytest.mark.parametrize("kind", faults.KINDS)
def test_a_stage_killed_anywhere_and_resumed_loses_nothing(harness, kind):
    out, rows, trials = harness
    row = rows[kind]
    mine = [t for t in trials if t.kind == kind]
    assert row["kills"] >= 2, f"{kind}: only {row['kills']} kills landed in {len(mine)} trials"
    assert row["lost"] == 0 and row["twice"] == 0, [t.differences for t in mine]
    assert row["episodes_checked"] > 0  # stores and episode files; SAC's episode count
    for t in mine:
        assert t.run_dir and Path(t.run_dir).is_dir()
        assert t.resumes == t.kills
    differences = [d for t in mine for d in t.differences]
    assert not differences, f"{kind}: artifacts differ from the reference after kills: {differences}"
    assert row["identical"] == row["trials"]
    lines = [json.loads(line) for line in (out / "faults.jsonl").read_text().splitlines()]
    assert sum(line["record"] == "trial" and line["kind"] == kind for line in lines) == len(mine)


def test_the_comparison_sees_a_lost_a_doubled_and_a_changed_result(harness, tmp_path):
    out, _, _ = harness
    ref = {kind: next((out / kind / "reference").glob("faults-*")) / faults.STAGE[kind] for kind in faults.KINDS}
    for kind in faults.KINDS:
        assert faults.compare_stage(ref[kind], ref[kind]).differences == []

    certify = shutil.copytree(ref["certify"], tmp_path / "certify", ignore=shutil.ignore_patterns("checkpoints"))
    store = certify / "episodes.bin"
    raw = store.read_bytes()
    store.write_bytes(raw + raw[faults.HEADER_SIZE : faults.HEADER_SIZE + 32])  # episode of the first record twice
    got = faults.compare_stage(ref["certify"], certify)
    assert (got.lost, got.twice) == (0, 1)
    store.write_bytes(raw[:-32])  # the last record lost (the certificate's store hash then no longer matches)
    got = faults.compare_stage(ref["certify"], certify)
    assert (got.lost, got.twice) == (1, 0)
    assert any("SHA-256 that is not the store's" in d for d in got.differences)

    rollout = shutil.copytree(ref["rollout"], tmp_path / "rollout")
    lines = (rollout / "episodes.jsonl").read_text().splitlines(keepends=True)
    (rollout / "episodes.jsonl").write_text("".join(lines[1:] + lines[-1:]))
    got = faults.compare_stage(ref["rollout"], rollout)
    assert (got.lost, got.twice) == (1, 1)

    sac = shutil.copytree(ref["sac"], tmp_path / "sac", ignore=shutil.ignore_patterns("checkpoints"))
    weights = bytearray((sac / "policy.safetensors").read_bytes())
    weights[-1] ^= 1
    (sac / "policy.safetensors").write_bytes(bytes(weights))
    summary = json.loads((sac / "train_summary.json").read_text())
    summary["episodes"] += 1
    summary["wall_seconds"] = -1.0  # volatile: not a difference
    (sac / "train_summary.json").write_text(json.dumps(summary))
    got = faults.compare_stage(ref["sac"], sac)
    assert got.twice == 1
    assert sorted(d.split(":")[0] for d in got.differences) == [
        "policy.safetensors",  # bytes differ
        "train_summary.json",  # one more episode reported than the reference's
        "train_summary.json",  # differs at .episodes (and not at .wall_seconds)
    ]
