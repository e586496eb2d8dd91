"""Atomic writes, hashes and the refusal of foreign or pickled files."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from sport_core.artifacts import (
    atomic_open,
    atomic_write_json,
    atomic_write_text,
    load_npz,
    read_json,
    save_npz,
    sha256_file,
    sha256_tree,
)
from sport_core.errors import ArtifactError
from sport_core.weights import ModelCard, load_policy, load_state, save_policy


def test_an_exception_mid_write_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_json(target, {"version": 1})
    with pytest.raises(RuntimeError), atomic_open(target, "w") as fh:
        fh.write('{"version": 2, "trunc')
        raise RuntimeError("crash in the middle of writing")
    assert read_json(target) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_process_killed_mid_write_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "big.bin"
    target.write_bytes(b"old")
    script = textwrap.dedent(f"""
        import os
        from sport_core.artifacts import atomic_open
        with atomic_open({str(target)!r}, "wb") as fh:
            fh.write(b"new" * 1000)
            fh.flush()
            os._exit(9)  # dies like SIGKILL: no cleanup, no rename
    """)
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == 9
    assert target.read_bytes() == b"old"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "big.bin"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".big.bin.") and leftovers[0].endswith(".tmp")
    # Directory hashes ignore such leftovers.
    before = sha256_tree(tmp_path)
    for name in leftovers:
        os.unlink(tmp_path / name)
    assert sha256_tree(tmp_path) == before


def test_hashes_change_with_content(tmp_path):
    a = atomic_write_text(tmp_path / "a.txt", "one")
    h1 = sha256_file(a)
    atomic_write_text(a, "two")
    assert sha256_file(a) != h1


def test_read_json_names_the_stage_that_makes_a_missing_file(tmp_path):
    with pytest.raises(
        ArtifactError, match=r"certificate .*cert.json does not exist \(it is written by stage 'certify'\)"
    ):
        read_json(tmp_path / "cert.json", what="certificate", made_by="stage 'certify'")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_npz_round_trip_refuses_object_arrays_and_pickles(tmp_path):
    path = save_npz(tmp_path / "a.npz", x=np.arange(5), y=np.ones((2, 2)))
    data = load_npz(path)
    assert np.array_equal(data["x"], np.arange(5))
    with pytest.raises(TypeError, match="dtype object"):
        save_npz(tmp_path / "b.npz", z=np.array([{"a": 1}], dtype=object))
    with open(tmp_path / "evil.npz", "wb") as fh:
        np.save(fh, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ArtifactError):
        load_npz(tmp_path / "evil.npz")


def _policy(registry):
    build = registry.get("policy", "gaussian-mlp").build()
    torch.manual_seed(0)
    return build(6, 2, (1.0, 1.0), (0.0, 0.0))


def _card() -> ModelCard:
    return ModelCard("gaussian-mlp", {"hidden": [256, 256]}, 6, 2, (1.0, 1.0), (0.0, 0.0))


def test_a_saved_policy_loads_back_with_identical_actions(registry, tmp_path):
    policy = _policy(registry)
    path = save_policy(tmp_path / "policy", policy, _card())
    loaded = load_policy(path, registry)
    obs = torch.randn(32, 6)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(policy.act(obs, g1), loaded.act(obs, g2))


def test_altered_weights_and_foreign_files_are_refused(registry, tmp_path):
    path = save_policy(tmp_path / "policy", _policy(registry), _card())
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match="do not match the SHA-256 in their model card"):
        load_policy(path, registry)
    # A pickle renamed to .safetensors is not loaded (and certainly not unpickled).
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"weight": torch.zeros(2)}))
    with pytest.raises(ArtifactError, match="not a safetensors file"):
        load_state(evil)
    (tmp_path / "foreign.json").write_text('{"hello": "world"}')
    with pytest.raises(ArtifactError, match="not a sport-policy-v1 card"):
        load_policy(tmp_path / "foreign.json", registry)
    with pytest.raises(ArtifactError, match="does not exist"):
        load_policy(tmp_path / "missing", registry)
