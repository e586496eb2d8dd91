"""Stages whose inputs are ready run at the same time (``[run] parallel_stages``), each in its own process.

The artifacts are those of the one-at-a-time runner, a stage never starts before the stages it takes inputs
from have completed, at most ``parallel_stages`` run at once, and a run killed with two stages in flight
resumes both from their checkpoints to the same artifacts. The recipe has the shape of Experiment 1 on the
point mass: two SAC trainings (``base``, ``task``) that do not depend on each other, the certification of
``base``, and the α sweep that needs all three.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tomli_w

from sport_core import hookimpl, progress
from sport_core.errors import SportError
from sport_core.parallel import portable_extras, stage_limit, usable_cores
from sport_core.plugins import load_plugin_manager
from sport_core.recipe import validate
from sport_core.runner import Runner
from tests.support import stage_plugin

ROOT = Path(__file__).resolve().parents[1]
SAC = {
    "total_steps": 1000,
    "learning_starts": 100,
    "batch_size": 64,
    "critic_hidden": [32, 32],
    "policy_config": {"hidden": [32, 32]},
    "checkpoint_every": 150,
    "log_every": 100,
}


def exp1_shaped(total_steps: int = 1000) -> dict:
    return {
        "run": {"name": "par", "seed": 4},
        "env": {"kind": "pointmass", "layout_seed": 8, "max_steps": 25},
        "executor": {"kind": "inline"},
        "loggers": [{"kind": "jsonl"}, {"kind": "tensorboard"}],
        "stages": [
            {"name": "base", "trainer": "sac", "config": {**SAC, "total_steps": total_steps}},
            {"name": "certify", "certifier": "scenario", "inputs": {"policy": "base"}, "config": {"episodes": 60}},
            {"name": "task", "trainer": "sac", "config": {**SAC, "total_steps": total_steps, "batch_size": 32}},
            {
                "name": "sweep",
                "evaluator": "projected-sweep",
                "inputs": {"certificate": "certify:certificate", "base": "base", "task": "task"},
                "config": {"alphas": [1.0, 3.0], "episodes": 30, "bound": 1.0},
            },
        ],
    }


#: JSON fields that say when a file was made: a certificate's and a policy card's ``created``, and the hashes of
#: those files where another artifact cites them. Everything else must be identical.
WHEN = frozenset({"created", "card_sha256"})


def timeless(value):
    if isinstance(value, dict):
        return {
            k: timeless(v)
            for k, v in value.items()
            if k not in WHEN and not (k == "sha256" and str(value.get("path", "")).endswith("certificate.json"))
        }
    if isinstance(value, list):
        return [timeless(v) for v in value]
    return value


def outputs(run_dir: Path) -> dict[str, object]:
    """Each stage's artifacts, file by file: the manifest's hash for files without a creation time, the content
    without its creation time for JSON files that have one (certificates and what cites them)."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed", manifest
    found: dict[str, object] = {}
    for name, entry in manifest["stages"].items():
        for artifact, out in entry["outputs"].items():
            path = run_dir / out["path"]
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                key = f"{name}:{artifact}:{file.relative_to(run_dir)}"
                data = file.read_bytes()
                if file.suffix == ".json" and b'"created"' in data:
                    found[key] = timeless(json.loads(data))
                else:
                    found[key] = hashlib.sha256(data).hexdigest()
    return found


@pytest.fixture(scope="module")
def pm():
    return load_plugin_manager(autoload=True)  # what `sport run` loads: the plugins' versions go into certificates


@pytest.fixture(scope="module")
def one_at_a_time(pm, tmp_path_factory):
    """The reference: the recipe run with ``parallel_stages = 1`` (every stage in the runner's process)."""
    runner = Runner.create(validate(exp1_shaped(), pm.registry), pm, tmp_path_factory.mktemp("sequential"))
    assert runner.run(parallel_stages=1) == "completed"
    return runner.run_dir


def test_parallel_stages_make_the_artifacts_of_the_one_at_a_time_runner(pm, one_at_a_time, tmp_path, caplog):
    runner = Runner.create(validate(exp1_shaped(), pm.registry), pm, tmp_path)
    with caplog.at_level(logging.INFO, logger="sport"):
        assert runner.run(parallel_stages=2) == "completed"
    assert outputs(runner.run_dir) == outputs(one_at_a_time)
    # base and task, ready together, ran in their own processes; the sweep, alone, ran in the runner's
    started = re.findall(r"stage (\w+): started in process \d+", caplog.text)
    assert started[:2] == ["base", "task"] and "sweep" not in started
    # each process's loggers wrote the stage's metrics: TensorBoard folders and JSON lines of both trainers
    assert (runner.run_dir / "tb" / "base").is_dir() and (runner.run_dir / "tb" / "task").is_dir()
    lines = [json.loads(line) for line in (runner.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"base", "task", "certify", "sweep"} <= {line["stage"] for line in lines}


def test_the_default_is_one_stage_per_usable_core():
    assert stage_limit(0) == usable_cores() >= 1
    assert stage_limit(3) == 3


def test_a_bad_parallel_stages_value_names_the_key(pm):
    data = exp1_shaped()
    data["run"]["parallel_stages"] = -1
    with pytest.raises(SportError, match=r"run\.parallel_stages"):
        validate(data, pm.registry)


# -- the schedule, watched with stages that wait for a file -------------------------------------------------


@pytest.fixture
def tpm(monkeypatch):
    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    return load_plugin_manager(extra=[("stage_plugin", stage_plugin)])


def diamond(gate: Path, **fail) -> dict:
    """a, b and d have no inputs; c needs a and b. a, b and d wait for their file in ``gate``."""

    def counting(name: str, value: int, **extra) -> dict:
        config = {"value": value, "block_file": str(gate / name), **fail.get(name, {})}
        return {"name": name, "evaluator": "counting", "config": config, **extra}

    return {
        "run": {"name": "diamond", "seed": 1, "parallel_stages": 2},
        "executor": {"kind": "inline"},
        "stages": [
            counting("a", 1),
            counting("b", 10),
            {"name": "c", "evaluator": "counting", "inputs": {"x": "a", "y": "b"}, "config": {"value": 100}},
            counting("d", 1000),
        ],
    }


def statuses(run_dir: Path) -> dict[str, str]:
    stages = json.loads((run_dir / "manifest.json").read_text())["stages"]
    return {name: entry["status"] for name, entry in stages.items()}


def wait_for(condition, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_stage_starts_only_after_its_inputs_complete_and_at_most_the_limit_run_at_once(tpm, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    runner = Runner.create(validate(diamond(gate), tpm.registry), tpm, tmp_path / "runs")
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(status=runner.run()))
    thread.start()
    try:
        seen: list[dict[str, str]] = []

        def now() -> dict[str, str]:
            seen.append(statuses(runner.run_dir))
            return seen[-1]

        wait_for(lambda: now()["a"] == "running" and seen[-1]["b"] == "running", what="a and b running")
        time.sleep(1.0)  # the runner has had time to start more if it wrongly would
        assert now() == {"a": "running", "b": "running", "c": "pending", "d": "pending"}  # the limit is 2
        assert not (runner.run_dir / "c").exists()
        (gate / "a").touch()
        wait_for(lambda: now()["d"] == "running", what="d to take a's place")
        time.sleep(1.0)
        assert now()["c"] == "pending"  # b has not completed yet
        (gate / "b").touch()
        (gate / "d").touch()
        thread.join(120)
    finally:
        for name in "abd":
            (gate / name).touch()
        thread.join(120)
    assert result == {"status": "completed"}
    assert all(s["c"] == "pending" for s in seen if s["a"] != "completed" or s["b"] != "completed")
    assert sum(1 for s in seen for v in s.values() if v == "running") > 0
    assert max(sum(v == "running" for v in s.values()) for s in seen) <= 2
    out = json.loads((runner.run_dir / "c" / "out.json").read_text())
    assert out == {"total": 100}  # (the counting stage adds only an input called "previous")


def test_a_failed_stage_stops_what_depends_on_it_and_the_others_finish(tpm, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    for name in "bd":
        (gate / name).touch()
    (gate / "a").touch()
    recipe = diamond(gate, a={"fail": True})
    runner = Runner.create(validate(recipe, tpm.registry), tpm, tmp_path / "runs")
    with pytest.raises(SportError, match=r"^stage 'a' failed: RuntimeError: counting stage a was told to fail$"):
        runner.run()
    manifest = json.loads((runner.run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["stages"]["a"]["status"] == "failed"
    assert manifest["stages"]["a"]["error"] == "RuntimeError: counting stage a was told to fail"
    assert manifest["stages"]["b"]["status"] == "completed"  # in flight beside a: it finished
    assert manifest["stages"]["c"]["status"] == "pending" and not (runner.run_dir / "c").exists()


# -- killed and interrupted with two stages in flight -------------------------------------------------------


def sport(*args: str, env: dict | None = None, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sport_core.cli", *args],
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "SPORT_NO_PROGRESS": "1", **(env or {})},
    )


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def checkpoints(run_dir: Path, stage: str) -> list[Path]:
    return sorted((run_dir / stage / "checkpoints").glob("step-*"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_run_killed_with_two_stages_in_flight_resumes_both_to_the_same_artifacts(one_at_a_time, tmp_path):
    recipe = tmp_path / "par.toml"
    recipe.write_text(tomli_w.dumps(exp1_shaped()))
    first = sport("run", str(recipe), "--out", str(tmp_path / "runs"), "-j", "2", log=tmp_path / "first.log")
    run_dir: Path | None = None

    def both_checkpointed() -> bool:
        nonlocal run_dir
        found = list((tmp_path / "runs").glob("par-*"))
        if not found:
            return False
        run_dir = found[0]
        try:
            s = statuses(run_dir)
        except (OSError, ValueError):
            return False
        return s["base"] == s["task"] == "running" and all(checkpoints(run_dir, n) for n in ("base", "task"))

    wait_for(both_checkpointed, timeout=180, what="base and task to checkpoint")
    pids = [int(p) for p in re.findall(r"started in process (\d+)", (tmp_path / "first.log").read_text())]
    assert len(pids) == 2
    os.kill(first.pid, signal.SIGKILL)  # the runner only: its stage processes must not outlive it
    first.wait()
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=30, what="the stage processes to die")
    with __import__("contextlib").suppress(ProcessLookupError):
        os.killpg(first.pid, signal.SIGKILL)
    assert statuses(run_dir)["base"] == statuses(run_dir)["task"] == "running"
    assert (run_dir / "base" / "policy.safetensors").exists() is False

    second = sport("run", "--resume", str(run_dir), "-j", "2", log=tmp_path / "second.log")
    assert second.wait(300) == 0, (tmp_path / "second.log").read_text()
    log = (tmp_path / "second.log").read_text()
    assert re.search(r"\[base\] .*resumed from step-", log) and re.search(r"\[task\] .*resumed from step-", log), log
    assert outputs(run_dir) == outputs(one_at_a_time)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="signals")
@pytest.mark.parametrize("to", ["runner", "group"])
def test_sigterm_interrupts_the_stages_in_flight_and_the_run_resumes(tmp_path, to):
    """SIGTERM to the runner alone (it passes it on) or to its whole process group (every stage gets it too,
    and then the runner's as well): each stage records itself as interrupted, once."""
    gate = tmp_path / "gate"
    gate.mkdir()
    recipe = tmp_path / "diamond.toml"
    recipe.write_text(tomli_w.dumps(diamond(gate)))
    env = {"SPORT_PLUGINS": "tests.support.stage_plugin", "SPORT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    first = sport("run", str(recipe), "--out", str(tmp_path / "runs"), env=env, log=tmp_path / "first.log")
    wait_for(lambda: list((tmp_path / "runs").glob("diamond-*")), what="the run directory")
    run_dir = next((tmp_path / "runs").glob("diamond-*"))
    wait_for(lambda: (run_dir / "a" / "calls.log").exists() and (run_dir / "b" / "calls.log").exists(), what="a, b")
    if to == "runner":
        os.kill(first.pid, signal.SIGTERM)
    else:
        os.killpg(first.pid, signal.SIGTERM)
    assert first.wait(90) == 130, (tmp_path / "first.log").read_text()
    assert statuses(run_dir) == {"a": "interrupted", "b": "interrupted", "c": "pending", "d": "pending"}
    for name in "abd":
        (gate / name).touch()
    second = sport("run", "--resume", str(run_dir), env=env, log=tmp_path / "second.log")
    assert second.wait(120) == 0, (tmp_path / "second.log").read_text()
    assert set(statuses(run_dir).values()) == {"completed"}
    assert (run_dir / "a" / "calls.log").read_text().split() == ["resumed=False", "resumed=True"]


# -- the parts ----------------------------------------------------------------------------------------------


def test_plugins_added_by_hand_go_to_the_stage_processes_or_the_runner_says_why_not():
    pm = load_plugin_manager(autoload=False, extra=[("stage_plugin", stage_plugin)])
    assert portable_extras(pm) == [("stage_plugin", "tests.support.stage_plugin")]

    class Local:  # defined in a function: no other process can import it
        @hookimpl
        def sport_register_evaluators(self):
            return []

    pm.add_plugin(Local(), "local")
    assert "plugin 'local' (" in portable_extras(pm)


def test_progress_in_a_stage_process_is_a_log_line_per_interval(caplog, monkeypatch):
    monkeypatch.setattr(progress, "_LINES_EVERY", 0.0)
    with caplog.at_level(logging.INFO, logger="sport"), progress.progress_bar(10, "episodes") as advance:
        for _ in range(10):
            advance(1)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("episodes: ")]
    assert lines[0].startswith("episodes: 1/10 (10%), ") and lines[-1].startswith("episodes: 10/10 (100%), ")
