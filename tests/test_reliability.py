"""Faults a run survives: a damaged checkpoint, a full disk, a NaN, a second process on the same run.

Every case runs the real components (the runner, SAC and Projected PPO on the point mass, the scenario
certifier and its episode store, real files). A full disk is injected where the OS reports it: the
``write`` or ``fsync`` of the chosen file fails with ENOSPC, as it does on a full filesystem.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sport_core import hookimpl
from sport_core.artifacts import sha256_file
from sport_core.checkpoint import load_checkpoint, resume_checkpoint, save_checkpoint
from sport_core.episodes import read_episodes
from sport_core.errors import ArtifactError, DiskFullError
from sport_core.finite import NonFiniteError
from sport_core.recipe import validate
from sport_core.runlock import RunLock, RunLocked
from sport_core.runner import Runner
from sport_pointmass.env import PointMassEnv

ROOT = Path(__file__).resolve().parents[1]
ENV = {"kind": "pointmass", "layout_seed": 8, "max_steps": 25}
SAC = {
    "total_steps": 600,
    "learning_starts": 100,
    "batch_size": 32,
    "critic_hidden": [16, 16],
    "policy_config": {"hidden": [16, 16]},
    "checkpoint_every": 100,
    "log_every": 100,
}


def sac_recipe(registry, **config):
    data = {
        "run": {"name": "faults", "seed": 5},
        "env": ENV,
        "executor": {"kind": "inline"},
        "stages": [{"name": "base", "trainer": "sac", "config": {**SAC, **config}}],
    }
    return validate(data, registry)


def interrupt_at(monkeypatch, at: int) -> None:
    """PointMassEnv.step raises KeyboardInterrupt (a kill, as the stage sees it) at its ``at``-th call."""
    original, calls = PointMassEnv.step, [0]

    def step(env, action):
        calls[0] += 1
        if calls[0] == at:
            raise KeyboardInterrupt("simulated kill")
        return original(env, action)

    monkeypatch.setattr(PointMassEnv, "step", step)


def path_of(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def disk_full(monkeypatch, fragment: str, after: int = 0) -> list[int]:
    """``os.write`` and ``os.fsync`` of files whose path contains ``fragment`` fail with ENOSPC, after
    ``after`` successful ones: what a filesystem that has just filled up does. Returns the failure count."""
    real_write, real_fsync, seen, failed = os.write, os.fsync, [0], [0]

    def hit(fd: int) -> bool:
        path = path_of(fd)
        if fragment not in path or os.path.isdir(path):  # files only (a directory's fsync is best effort)
            return False
        seen[0] += 1
        if seen[0] <= after:
            return False
        failed[0] += 1
        return True

    def write(fd, data):
        if hit(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    def fsync(fd):
        if hit(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fsync", fsync)
    return failed


# -- corrupt checkpoints ----------------------------------------------------------------------------------


def test_a_damaged_checkpoint_is_skipped_for_the_previous_one(tmp_path, caplog):
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, {"w": torch.arange(3.0)}, {"a": np.arange(step)}, {"n": step})
    assert sorted(p.name for p in tmp_path.glob("step-*")) == ["step-000000020", "step-000000030"]  # two kept
    folder, (_, arrays, state) = resume_checkpoint(tmp_path, "stage 's'")
    assert folder.name == "step-000000030" and state["n"] == 30 and len(arrays["a"]) == 30

    blob = (folder / "replay.npz").read_bytes()
    (folder / "replay.npz").write_bytes(blob[: len(blob) // 2])  # truncated
    folder, (_, _, state) = resume_checkpoint(tmp_path, "stage 's'")
    assert folder.name == "step-000000020" and state["n"] == 20
    assert "step-000000030 cannot be used" in caplog.text and "resuming from the older checkpoint" in caplog.text


def test_an_edited_checkpoint_state_is_detected_by_its_hash(tmp_path):
    folder = save_checkpoint(tmp_path, 10, {"w": torch.arange(3.0)}, {}, {"episode": 4})
    state = json.loads((folder / "state.json").read_text())
    state["episode"] = 5  # valid JSON, wrong number
    (folder / "state.json").write_text(json.dumps(state))
    with pytest.raises(ArtifactError, match=r"state\.json is altered \(hash mismatch\)"):
        load_checkpoint(folder)


def test_with_no_usable_checkpoint_the_stage_starts_over_and_says_so(tmp_path, caplog):
    folder = save_checkpoint(tmp_path, 10, {"w": torch.arange(3.0)}, {}, {})
    (folder / "learner.pt").write_bytes(b"garbage")
    assert resume_checkpoint(tmp_path, "stage 's'") is None
    assert "stage 's': no usable checkpoint" in caplog.text and "starting over" in caplog.text
    assert not list(tmp_path.iterdir())  # cleared: the fresh start cannot mix with it


@pytest.mark.parametrize("damage", ["latest", "all"])
def test_sac_resumes_through_a_damaged_checkpoint_to_the_uninterrupted_weights(pm, tmp_path, monkeypatch, damage):
    straight = Runner.create(sac_recipe(pm.registry), pm, tmp_path / "straight")
    assert straight.run() == "completed"

    original = PointMassEnv.step
    interrupt_at(monkeypatch, 480)
    killed = Runner.create(sac_recipe(pm.registry), pm, tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        killed.run()
    monkeypatch.setattr(PointMassEnv, "step", original)
    checkpoints = sorted((killed.run_dir / "base" / "checkpoints").glob("step-*"))
    assert len(checkpoints) == 2
    for folder in checkpoints[1:] if damage == "latest" else checkpoints:
        (folder / "learner.pt").write_bytes(b"\0" * 100)  # a disk error, say

    assert Runner.resume(killed.run_dir, pm).run() == "completed"
    weights = "base/policy.safetensors"
    assert sha256_file(killed.run_dir / weights) == sha256_file(straight.run_dir / weights)


# -- a full disk ----------------------------------------------------------------------------------------------


def certify_recipe(registry, episodes=120):
    data = {
        "run": {"name": "disk", "seed": 2},
        "env": ENV,
        "executor": {"kind": "inline"},
        "stages": [
            {"name": "base", "trainer": "sac", "config": {**SAC, "total_steps": 150, "checkpoint_every": 1000}},
            {
                "name": "certify",
                "certifier": "scenario",
                "inputs": {"policy": "base"},
                "config": {"episodes": episodes},
            },
        ],
    }
    return validate(data, registry)


def test_a_full_disk_during_episode_appends_stops_with_one_line_and_the_store_resumes(pm, tmp_path, monkeypatch):
    straight = Runner.create(certify_recipe(pm.registry), pm, tmp_path / "straight")
    assert straight.run() == "completed"

    runner = Runner.create(certify_recipe(pm.registry), pm, tmp_path / "full")
    failed = disk_full(monkeypatch, "certify/episodes.bin", after=50)
    with pytest.raises(DiskFullError) as caught:
        runner.run()
    message = str(caught.value)
    assert "\n" not in message and failed[0] >= 1
    assert message.startswith(f"no space left on the device writing {runner.run_dir / 'certify' / 'episodes.bin'}")
    monkeypatch.undo()  # space is back

    store = read_episodes(runner.run_dir / "certify" / "episodes.bin", strict=True)  # valid, no torn record
    assert 40 <= len(store) <= 50 and len(set(store.indices)) == len(store)
    assert Runner.resume(runner.run_dir, pm).run() == "completed"
    done = read_episodes(runner.run_dir / "certify" / "episodes.bin", strict=True)
    reference = read_episodes(straight.run_dir / "certify" / "episodes.bin", strict=True)
    assert np.array_equal(done.records, reference.records)  # nothing lost, nothing counted twice
    a, b = (json.loads((r / "certify" / "certificate.json").read_text()) for r in (runner.run_dir, straight.run_dir))
    assert a["epsilon"] == b["epsilon"] and a["bounds"] == b["bounds"]


def test_a_full_disk_while_writing_the_certificate_leaves_no_half_file(pm, tmp_path, monkeypatch):
    runner = Runner.create(certify_recipe(pm.registry, episodes=60), pm, tmp_path)
    disk_full(monkeypatch, "certificate.json")
    with pytest.raises(DiskFullError, match=r"writing .*certify/certificate\.json \(No space left on device\)"):
        runner.run()
    monkeypatch.undo()
    assert not (runner.run_dir / "certify" / "certificate.json").exists()
    assert not list((runner.run_dir / "certify").glob(".certificate.json*"))  # the temporary file is gone
    assert len(read_episodes(runner.run_dir / "certify" / "episodes.bin", strict=True)) == 60
    assert Runner.resume(runner.run_dir, pm).run() == "completed"


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(pm, tmp_path, monkeypatch):
    straight = Runner.create(sac_recipe(pm.registry), pm, tmp_path / "straight")
    assert straight.run() == "completed"
    runner = Runner.create(sac_recipe(pm.registry), pm, tmp_path / "full")
    disk_full(monkeypatch, "base/checkpoints/.step-", after=3)  # the 2nd checkpoint's first file
    with pytest.raises(DiskFullError, match=r"writing .*base/checkpoints/\.step-.*learner\.pt"):
        runner.run()
    monkeypatch.undo()
    checkpoints = runner.run_dir / "base" / "checkpoints"
    folder, _ = resume_checkpoint(checkpoints)
    assert json.loads((checkpoints / "latest.json").read_text())["checkpoint"] == folder.name
    assert not [p for p in checkpoints.iterdir() if p.name.endswith(".tmp")]  # the half-written one is gone
    assert Runner.resume(runner.run_dir, pm).run() == "completed"
    weights = "base/policy.safetensors"
    assert sha256_file(runner.run_dir / weights) == sha256_file(straight.run_dir / weights)


# -- NaN and infinity -----------------------------------------------------------------------------------------


def test_a_nan_reward_stops_sac_with_the_step_and_keeps_the_last_checkpoint(pm, tmp_path, monkeypatch):
    original, calls = PointMassEnv.step, [0]

    def step(env, action):
        obs, reward, terminated, truncated, info = original(env, action)
        calls[0] += 1
        return obs, (float("nan") if calls[0] == 345 else reward), terminated, truncated, info

    monkeypatch.setattr(PointMassEnv, "step", step)
    runner = Runner.create(sac_recipe(pm.registry), pm, tmp_path)
    with pytest.raises(NonFiniteError) as caught:
        runner.run()
    message = str(caught.value)
    assert message.startswith("stage 'base': reward is nan at step 345; training stopped; the last checkpoint")
    assert "\n" not in message
    _, (tensors, _, state) = resume_checkpoint(runner.run_dir / "base" / "checkpoints")
    assert state["step"] < 345
    assert all(np.isfinite(v.numpy()).all() for v in tensors["learner"]["actor"].values())
    assert runner.read_manifest()["stages"]["base"]["status"] == "failed"


def test_a_nan_loss_or_action_stops_training_naming_the_quantity(pm, tmp_path, monkeypatch):
    import attrs

    from sport_sac.learner import SACLearner

    update, calls = SACLearner.update, [0]

    def poisoned(self, *args, **kwargs):
        stats = update(self, *args, **kwargs)
        calls[0] += 1
        return attrs.evolve(stats, critic_loss=float("inf")) if calls[0] == 7 else stats

    monkeypatch.setattr(SACLearner, "update", poisoned)
    with pytest.raises(NonFiniteError, match=r"^stage 'base': loss/critic is inf at step 106; training stopped"):
        Runner.create(sac_recipe(pm.registry), pm, tmp_path / "loss").run()
    monkeypatch.undo()

    from sport_policies.gaussian import GaussianMLPPolicy

    act, calls = GaussianMLPPolicy.act, [0]

    def nan_action(self, *args, **kwargs):
        out = act(self, *args, **kwargs)
        calls[0] += 1
        return out * float("nan") if calls[0] == 20 else out

    monkeypatch.setattr(GaussianMLPPolicy, "act", nan_action)
    with pytest.raises(NonFiniteError, match=r"^stage 'base': the policy's action is nan at step 120; "):
        Runner.create(sac_recipe(pm.registry), pm, tmp_path / "action").run()


def test_a_nan_loss_stops_projected_ppo_naming_alpha_and_step(sport_plugin_manager, tmp_path, monkeypatch):
    from sport_core.testing import pointmass_recipe
    from sport_ppo.learner import PPOLearner

    update, calls = PPOLearner.update, [0]

    def poisoned(self, batch, warmup):
        stats = update(self, batch, warmup)
        calls[0] += 1
        return {**stats, "loss/value": float("nan")} if calls[0] == 3 else stats

    monkeypatch.setattr(PPOLearner, "update", poisoned)
    pm = sport_plugin_manager()
    finetune = {"alphas": [2.0], "total_steps": 256, "warmup_steps": 64, "num_envs": 2, "num_steps": 32}
    stages = [
        {"name": "base", "evaluator": "goal-seeker"},
        {"name": "certify", "certifier": "scenario", "inputs": {"policy": "base"}, "config": {"episodes": 40}},
        {
            "name": "tune",
            "trainer": "projected-ppo",
            "inputs": {"base": "base", "certificate": "certify"},
            "config": finetune,
        },
    ]
    runner = Runner.create(validate(pointmass_recipe(stages), pm.registry), pm, tmp_path)
    with pytest.raises(NonFiniteError, match=r"^stage 'tune' \(alpha 2\): loss/value is nan at step 192; "):
        runner.run()


# -- one writer per run ---------------------------------------------------------------------------------------


HOLD = """
import sys, time
from sport_core.runlock import RunLock
lock = RunLock(sys.argv[1]); lock.acquire(); print("locked", flush=True); time.sleep(600)
"""


def test_a_second_process_on_a_running_run_is_refused_and_a_killed_holder_leaves_no_lock(pm, tmp_path):
    runner = Runner.create(sac_recipe(pm.registry, total_steps=150), pm, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(runner.run_dir)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked) as caught:
            Runner.resume(runner.run_dir, pm).run()
        message = str(caught.value)
        assert message.startswith(f"run {runner.run_dir} is already being run by process {holder.pid} on ")
        assert "\n" not in message and "sport run --resume" in message
        # the CLI says the same in one line, exit status 2
        cli = subprocess.run(
            [sys.executable, "-m", "sport_core.cli", "run", "--resume", str(runner.run_dir)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "SPORT_NO_PROGRESS": "1"},
            timeout=120,
        )
        assert cli.returncode == 2 and f"already being run by process {holder.pid}" in cli.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert Runner.resume(runner.run_dir, pm).run() == "completed"  # the kernel released the killed holder's lock
    with RunLock(runner.run_dir):  # and the finished run released its own
        pass


def test_the_lock_is_held_exactly_while_a_run_runs(pm, tmp_path):
    seen = []

    class Probe:
        @hookimpl
        def sport_stage_started(self, run_dir):
            try:
                RunLock(run_dir).acquire()
                seen.append("free")
            except RunLocked:
                seen.append("held")

    pm.register(Probe(), name="probe")
    runner = Runner.create(sac_recipe(pm.registry, total_steps=150), pm, tmp_path)
    assert runner.run() == "completed"
    assert seen == ["held"]
    with RunLock(runner.run_dir):
        pass


# -- evaluation: the projection's fallbacks ------------------------------------------------------------------


def test_a_task_policy_that_outputs_nan_is_projected_onto_the_base_and_the_sweep_reports_it(
    sport_plugin_manager, tmp_path, caplog
):
    """Every row the projection cannot solve (here: a NaN task mean) acts with the base, which satisfies any
    ratio bound; the sweep counts those fallbacks per α and in total, and warns."""
    import torch

    from sport_core.testing import goal_seeking_policy, pointmass_recipe
    from sport_core.weights import load_card, save_policy

    pm = sport_plugin_manager()
    base = Runner.create(
        validate(
            pointmass_recipe(
                [
                    {"name": "base", "evaluator": "goal-seeker"},
                    {
                        "name": "certify",
                        "certifier": "scenario",
                        "inputs": {"policy": "base"},
                        "config": {"episodes": 30},
                    },
                ]
            ),
            pm.registry,
        ),
        pm,
        tmp_path / "base",
    )
    assert base.run() == "completed"
    base_w = base.run_dir / "base" / "policy.safetensors"
    broken = goal_seeking_policy(pm.registry, load_card(base_w).obs_dim)
    with torch.no_grad():
        broken.mlp_layout().mu_head.bias.fill_(float("nan"))
    task_w = save_policy(tmp_path / "nan-task.safetensors", broken, load_card(base_w))

    sweep = {
        "name": "sweep",
        "evaluator": "projected-sweep",
        "inputs": {
            "certificate": f"file:{base.run_dir / 'certify' / 'certificate.json'}",
            "base": f"file:{base_w}",
            "task": f"file:{task_w}",
        },
        "config": {"alphas": [1.5, 3.0], "episodes": 10, "paths": 0},
    }
    runner = Runner.create(validate(pointmass_recipe([sweep]), pm.registry), pm, tmp_path / "sweep")
    assert runner.run() == "completed"
    result = json.loads((runner.run_dir / "sweep" / "sweep.json").read_text())
    assert all(r["episodes"] == 10 and r["fallbacks"] == r["projected_steps"] > 0 for r in result["rows"])
    assert result["fallbacks"] == {
        "total": sum(r["fallbacks"] for r in result["rows"]),
        "projected_steps": sum(r["projected_steps"] for r in result["rows"]),
    }
    assert "the projection fell back to the base in" in caplog.text
    # acting with the base at every step: the base's own episodes (common random numbers), whatever α
    certified = read_episodes(base.run_dir / "certify" / "episodes.bin").records
    for alpha in ("alpha-1.5", "alpha-3.0"):
        swept = read_episodes(runner.run_dir / "sweep" / "alphas" / f"{alpha}.bin").records
        assert np.array_equal(np.sort(swept, order="index"), np.sort(certified, order="index")[:10])


def test_a_finished_certification_store_is_in_index_order_whatever_the_workers(pm, tmp_path):
    """Records are appended as workers finish; the finished store is rewritten in index order, so its bytes
    and the hash the certificate records are the same with 1 worker or 2."""
    from sport_core.episodes import HEADER_SIZE, RECORD_DTYPE

    hashes = []
    for executor in ({"kind": "inline"}, {"kind": "process", "workers": 2, "max_in_flight": 8}):
        data = certify_recipe(pm.registry, episodes=80).to_dict()
        data["executor"] = executor
        runner = Runner.create(validate(data, pm.registry), pm, tmp_path / executor["kind"])
        assert runner.run() == "completed"
        store = runner.run_dir / "certify" / "episodes.bin"
        raw = np.frombuffer(store.read_bytes()[HEADER_SIZE:], RECORD_DTYPE)
        assert list(raw["index"]) == list(range(80))
        cert = json.loads((runner.run_dir / "certify" / "certificate.json").read_text())
        assert cert["episode_store"]["sha256"] == sha256_file(store)
        hashes.append(sha256_file(store))
    assert hashes[0] == hashes[1]
