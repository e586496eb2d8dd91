"""``sport verify``: an untouched certificate passes; any altered number, episode or weight is named."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_certifier import certified_run, plugin_manager  # the certification helpers

from sport_core.artifacts import sha256_file
from sport_core.cli import main
from sport_core.episodes import HEADER_SIZE, RECORD_DTYPE, RECORD_SIZE, read_episodes
from sport_core.errors import ArtifactError
from sport_core.verification import VerificationError, verify_certificate


@pytest.fixture
def certificate(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    return certified_run(plugin_manager(), tmp_path)


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    return plugin_manager().registry


def verify(path: Path, *extra: str, capsys) -> tuple[int, str, str]:
    code = main(["verify", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def rewrite_record(store: Path, index: int, **fields) -> None:
    """Change fields of one stored episode and re-seal its CRC, as a careful forger would."""
    data = bytearray(store.read_bytes())
    rows = np.fromfile(store, RECORD_DTYPE, offset=HEADER_SIZE)  # in arrival order
    start = HEADER_SIZE + int(np.flatnonzero(rows["index"] == index)[0]) * RECORD_SIZE
    row = bytearray(data[start : start + RECORD_SIZE])
    fmt = {
        "goal_step": (4, "<i"),
        "violation_step": (8, "<i"),
        "length": (12, "<i"),
        "ret": (16, "<d"),
        "outcome": (24, "<B"),
    }
    for name, value in fields.items():
        off, code = fmt[name]
        row[off : off + struct.calcsize(code)] = struct.pack(code, value)
    row[28:32] = struct.pack("<I", zlib.crc32(bytes(row[:28])))
    data[start : start + RECORD_SIZE] = row
    store.write_bytes(bytes(data))


def reseal_store_hash(certificate: Path) -> None:
    store = certificate.parent / "episodes.bin"
    edit_json(certificate, lambda c: c["episode_store"].update(sha256=sha256_file(store)))


def first_success(certificate: Path) -> tuple[int, int]:
    rows = read_episodes(certificate.parent / "episodes.bin").records
    for r in rows:
        if r["outcome"] == 0:
            return int(r["index"]), int(r["goal_step"])
    raise AssertionError("no successful episode")


def test_an_untouched_certificate_verifies(certificate, capsys):
    code, out, err = verify(certificate, capsys=capsys)
    assert code == 0, err
    assert "OK" in out and "200 episodes" in out and "B=1: T*=" in out
    assert "not reachable" in out  # B = 0.1 and below: ε(T) > B at every T with only 200 episodes
    assert "not checked" not in out


def test_replaying_episodes_from_the_weights_reproduces_the_store(certificate, registry):
    summary = verify_certificate(certificate, replay=7, registry=registry)
    assert summary.replayed == 7


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c["failures"].__setitem__(15, c["failures"][15] + 1), "failures[15]"),
        (lambda c: c["epsilon"].__setitem__(20, c["epsilon"][20] * 0.999), "epsilon[20]"),
        (lambda c: c["bounds"][0].update(alpha_star=c["bounds"][0]["alpha_star"] * 1.01), "bounds[0].alpha_star"),
        (lambda c: c["bounds"][2].update(T_star=c["bounds"][2]["T_star"] + 1), "bounds[2].T_star"),
        (lambda c: c.update(episodes=201), "episodes"),
        (lambda c: c.update(bonferroni=True), "beta_per_horizon"),
        (lambda c: c.update(seed=4), "seed"),
        (lambda c: c["env"]["config"].update(max_steps=60), "not collected from this policy, env and seed"),
        (lambda c: c.update(method="scenario-uniform"), "bonferroni"),
        (lambda c: c.update(scenario="pointmass, any layout"), "scenario: certificate says"),
        (lambda c: c["env"].update(layout_seed=0), "env.layout_seed"),
        (lambda c: c["env"].update(id="SafetyPointReachAvoid5-v0"), "env.id"),
    ],
)
def test_an_altered_certificate_is_rejected_naming_the_first_mismatch(certificate, capsys, change, named):
    edit_json(certificate, change)
    code, _, err = verify(certificate, capsys=capsys)
    assert code == 1
    assert err.startswith("sport verify: MISMATCH:") and named in err and err.count("\n") == 1


def test_an_altered_episode_store_is_caught_by_its_hash(certificate, capsys):
    index, step = first_success(certificate)
    rewrite_record(certificate.parent / "episodes.bin", index, goal_step=step + 1)
    code, _, err = verify(certificate, capsys=capsys)
    assert code == 1 and "episode_store.sha256" in err


def test_an_altered_store_with_a_forged_hash_is_caught_by_the_recomputed_numbers(certificate, capsys):
    index, step = first_success(certificate)
    rewrite_record(certificate.parent / "episodes.bin", index, goal_step=step + 1, length=step + 1)
    reseal_store_hash(certificate)
    code, _, err = verify(certificate, capsys=capsys)
    assert code == 1 and f"failures[{step - 1}]" in err  # k(T) at T = step grew by one


def test_an_outcome_that_contradicts_its_steps_is_caught(certificate, capsys):
    index, _ = first_success(certificate)
    rewrite_record(certificate.parent / "episodes.bin", index, outcome=2)  # "timeout" though it reached the goal
    reseal_store_hash(certificate)
    code, _, err = verify(certificate, capsys=capsys)
    assert code == 1 and f"episode {index}: outcome 'timeout' contradicts" in err


def test_a_forged_return_is_only_caught_by_replaying(certificate, registry):
    index, _ = first_success(certificate)
    rewrite_record(certificate.parent / "episodes.bin", index, ret=123.0)
    reseal_store_hash(certificate)
    verify_certificate(certificate, registry=registry)  # the return is not part of any certified number
    with pytest.raises(VerificationError, match=f"episode {index}: replay gives return"):
        verify_certificate(certificate, replay=200, registry=registry)


def test_altered_weights_are_named(certificate, capsys):
    weights = certificate.parent.parent / "base" / "policy.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    code, _, err = verify(certificate, capsys=capsys)
    assert code == 1 and "base_policy.weights_sha256" in err


def test_moved_files_verify_with_explicit_paths(certificate, tmp_path, capsys):
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(certificate, moved / "certificate.json")
    shutil.copy(certificate.parent / "episodes.bin", moved / "store.bin")
    base = certificate.parent.parent / "base"
    for name in ("policy.safetensors", "policy.json"):
        shutil.copy(base / name, moved / name)
    code, _, err = verify(moved / "certificate.json", capsys=capsys)
    assert code == 2 and "does not exist" in err
    code, out, _ = verify(
        moved / "certificate.json",
        "--store",
        str(moved / "store.bin"),
        "--policy",
        str(moved / "policy.safetensors"),
        capsys=capsys,
    )
    assert code == 0 and "OK" in out


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda c: c.unlink(), "does not exist"),
        (lambda c: c.write_text("{ not json"), "not valid JSON"),
        (lambda c: c.write_text(json.dumps({"format": "sport-policy-v1"})), "is not a sport certificate"),
        (lambda c: edit_json(c, lambda d: d.pop("epsilon")), "lacks epsilon"),
        (lambda c: (c.parent / "episodes.bin").unlink(), "episode store"),
        (lambda c: edit_json(c, lambda d: d["bounds"][0].pop("bound")), "lacks bounds[0].bound"),
        (lambda c: edit_json(c, lambda d: d.update(t_max=10**12)), "field t_max is malformed"),
        (lambda c: edit_json(c, lambda d: d.update(beta="1e-7")), "field beta is malformed"),
    ],
    ids=["missing", "corrupt", "foreign", "truncated", "no-store", "no-bound", "huge-t-max", "beta-text"],
)
def test_missing_corrupt_or_foreign_files_give_one_line_errors(certificate, capsys, damage, message):
    damage(certificate)
    code, _, err = verify(certificate, capsys=capsys)
    assert code == 2
    assert err.startswith("sport: error:") and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_foreign_episode_store_with_a_matching_hash_is_refused(certificate):
    store = certificate.parent / "episodes.bin"
    store.write_bytes(b"JUNK" * 100)
    reseal_store_hash(certificate)
    with pytest.raises(ArtifactError, match="not a sport episode store"):
        verify_certificate(certificate)


def test_the_committed_experiment_1_certificate_verifies(capsys):
    """The certificate of the real seed-0 base policy (artifacts/exp1-seed0) recomputes exactly."""
    root = Path(__file__).resolve().parents[1]
    cert = root / "artifacts/exp1-seed0/certify-20261125-191746/certify-base/certificate.json"
    assert main(["verify", str(cert)]) == 0
    assert "OK (scenario, 10001 episodes; B=1: T*=27, alpha*=1.21904" in capsys.readouterr().out
