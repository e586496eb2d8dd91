"""Run directories, manifests, stage caching and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sport_core import hookimpl
from sport_core.errors import ArtifactError
from sport_core.plugins import load_plugin_manager
from sport_core.recipe import validate
from sport_core.runner import Runner
from tests.support import stage_plugin

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tpm(monkeypatch):
    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    return load_plugin_manager(extra=[("stage_plugin", stage_plugin)])


def chain(**stage_b) -> dict:
    return {
        "run": {"name": "chain", "seed": 1},
        "executor": {"kind": "inline"},
        "stages": [
            {"name": "a", "evaluator": "counting", "config": {"value": 2}},
            {"name": "b", "evaluator": "counting", "inputs": {"previous": "a"}, "config": {"value": 3, **stage_b}},
            {"name": "c", "evaluator": "counting", "inputs": {"previous": "b"}, "config": {"value": 4}},
        ],
    }


def calls(run_dir: Path, stage: str) -> list[str]:
    return (run_dir / stage / "calls.log").read_text().split()


def test_a_run_writes_the_resolved_recipe_the_manifest_and_chained_outputs(tpm, tmp_path):
    runner = Runner.create(validate(chain(), tpm.registry), tpm, tmp_path)
    assert runner.run() == "completed"
    run_dir = runner.run_dir
    assert run_dir.parent == tmp_path and run_dir.name.startswith("chain-")
    assert json.loads((run_dir / "c" / "out.json").read_text()) == {"total": 9}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert set(manifest["versions"]) >= {"python", "torch", "numpy", "sport", "plugins"}
    assert manifest["versions"]["plugins"]["stage_plugin"] == "?"
    for name in "abc":
        entry = manifest["stages"][name]
        assert entry["status"] == "completed" and entry["attempts"] == 1
        assert entry["outputs"]["out"]["path"] == f"{name}/out.json"
        assert len(entry["outputs"]["out"]["sha256"]) == 64
    assert "[[stages]]" in (run_dir / "recipe.resolved.toml").read_text()
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(x["stage"], x["scalars"]["test/total"]) for x in lines] == [("a", 2), ("b", 5), ("c", 9)]


def test_resume_after_ctrl_c_skips_finished_stages_and_resumes_the_interrupted_one(tpm, tmp_path):
    runner = Runner.create(validate(chain(interrupt=True), tpm.registry), tpm, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    manifest = runner.read_manifest()
    assert manifest["status"] == "interrupted"
    assert [manifest["stages"][s]["status"] for s in "abc"] == ["completed", "interrupted", "pending"]
    again = Runner.resume(runner.run_dir, tpm)
    assert again.run() == "completed"
    assert calls(runner.run_dir, "a") == ["resumed=False"]
    assert calls(runner.run_dir, "b") == ["resumed=False", "resumed=True"]
    assert calls(runner.run_dir, "c") == ["resumed=False"]
    assert json.loads((runner.run_dir / "c" / "out.json").read_text()) == {"total": 9}
    # A third pass has nothing to do.
    assert Runner.resume(runner.run_dir, tpm).run() == "completed"
    assert len(calls(runner.run_dir, "a")) == 1 and len(calls(runner.run_dir, "c")) == 1


def test_an_altered_output_makes_its_stage_and_the_stages_after_it_run_again(tpm, tmp_path):
    runner = Runner.create(validate(chain(), tpm.registry), tpm, tmp_path)
    runner.run()
    (runner.run_dir / "b" / "out.json").write_text('{"total": 100}')
    Runner.resume(runner.run_dir, tpm).run()
    assert len(calls(runner.run_dir, "a")) == 1
    assert len(calls(runner.run_dir, "b")) == 1 and len(calls(runner.run_dir, "b.stale-1")) == 1  # redone afresh
    assert len(calls(runner.run_dir, "c")) == 1  # b's output hash came back the same, so c's inputs are unchanged
    assert json.loads((runner.run_dir / "c" / "out.json").read_text()) == {"total": 9}


def test_stage_events_reach_loggers_in_order(tpm, tmp_path):
    events = []

    class Recorder:
        @hookimpl
        def sport_stage_started(self, stage, resumed):
            events.append(("start", stage, resumed))

        @hookimpl
        def sport_stage_finished(self, stage, status, outputs):
            events.append(("end", stage, status, sorted(outputs)))

        @hookimpl
        def sport_run_finished(self, status):
            events.append(("run", status))

    tpm.register(Recorder(), name="recorder")
    Runner.create(validate(chain(), tpm.registry), tpm, tmp_path).run()
    assert events == [
        ("start", "a", False),
        ("end", "a", "completed", ["out"]),
        ("start", "b", False),
        ("end", "b", "completed", ["out"]),
        ("start", "c", False),
        ("end", "c", "completed", ["out"]),
        ("run", "completed"),
    ]


def test_a_missing_input_names_the_stage_that_should_have_made_it(tpm, tmp_path):
    runner = Runner.create(validate(chain(), tpm.registry), tpm, tmp_path)
    runner.run(only=["a"])
    (runner.run_dir / "a" / "out.json").unlink()
    manifest = runner.read_manifest()
    manifest["stages"]["a"]["status"] = "completed"
    with pytest.raises(ArtifactError, match=r"artifact 'out' .* of stage 'a' is missing"):
        Runner.resume(runner.run_dir, tpm)._run_stage(runner.recipe.stage("b"), manifest, None)


def test_resume_refuses_a_directory_that_is_not_a_run_or_a_corrupt_manifest(tpm, tmp_path):
    with pytest.raises(ArtifactError, match="is not a sport run directory"):
        Runner.resume(tmp_path, tpm)
    runner = Runner.create(validate(chain(), tpm.registry), tpm, tmp_path)
    for garbage in ("[1]", '{"format": "sport-run-v1", "stages": "x"}', '{"format": "other", "stages": {}}', "{"):
        (runner.run_dir / "manifest.json").write_text(garbage)
        with pytest.raises(ArtifactError, match=r"manifest"):
            Runner.resume(runner.run_dir, tpm)


def test_relative_run_directories_work_for_runs_and_resumes(tpm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = Runner.create(validate(chain(interrupt=True), tpm.registry), tpm, "runs")
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    relative = Path("runs") / runner.run_dir.name
    assert Runner.resume(relative, tpm).run() == "completed"
    manifest = json.loads((relative / "manifest.json").read_text())
    assert manifest["stages"]["c"]["outputs"]["out"]["path"] == "c/out.json"


def _write_test_distribution(site: Path) -> None:
    info = site / "sport_test_stages-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sport-test-stages\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[sport]\nstage_plugin = tests.support.stage_plugin\n")


def test_a_run_killed_between_stages_resumes_from_the_cli_without_redoing_work(tmp_path):
    """A real ``sport run`` process is SIGKILLed while stage b runs; ``--resume`` finishes the run."""
    site = tmp_path / "site"
    _write_test_distribution(site)
    gate = tmp_path / "gate"
    recipe = tmp_path / "chain.toml"
    recipe.write_text(
        f"""
[run]
name = "killed"
[executor]
kind = "inline"
[[stages]]
name = "a"
evaluator = "counting"
[[stages]]
name = "b"
evaluator = "counting"
inputs = {{ previous = "a" }}
config = {{ block_file = "{gate}" }}
[[stages]]
name = "c"
evaluator = "counting"
inputs = {{ previous = "b" }}
"""
    )
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "SPORT_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "sport_core.cli", "-q"]
    proc = subprocess.Popen([*cmd, "run", str(recipe), "--out", str(tmp_path / "runs")], env=env, cwd=tmp_path)
    deadline = time.time() + 60
    run_dir = None
    while time.time() < deadline:
        found = list((tmp_path / "runs").glob("killed-*/b/calls.log"))
        if found:
            run_dir = found[0].parents[1]
            break
        time.sleep(0.05)
    assert run_dir is not None, "stage b never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["a"]["status"] == "completed"
    assert manifest["stages"]["b"]["status"] == "running"  # killed: nothing got to record anything else
    gate.write_text("open")
    done = subprocess.run(
        [*cmd, "run", "--resume", str(run_dir)], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"completed: {run_dir}" in done.stdout
    assert calls(run_dir, "a") == ["resumed=False"]
    assert calls(run_dir, "b") == ["resumed=False", "resumed=True"]
    assert json.loads((run_dir / "c" / "out.json").read_text()) == {"total": 3}


def test_an_input_can_be_a_file_made_elsewhere_and_its_content_is_part_of_the_stage_hash(tpm, tmp_path):
    brought = tmp_path / "previous.json"
    brought.write_text('{"total": 40}')
    data = chain()
    data["stages"] = [{"name": "x", "evaluator": "counting", "inputs": {"previous": f"file:{brought}"}}]
    runner = Runner.create(validate(data, tpm.registry), tpm, tmp_path / "runs")
    runner.run()
    assert json.loads((runner.run_dir / "x" / "out.json").read_text()) == {"total": 41}
    Runner.resume(runner.run_dir, tpm).run()
    assert len(calls(runner.run_dir, "x")) == 1  # unchanged file: up to date
    brought.write_text('{"total": 50}')
    Runner.resume(runner.run_dir, tpm).run()
    assert json.loads((runner.run_dir / "x" / "out.json").read_text()) == {"total": 51}


def test_a_missing_input_file_is_a_recipe_error(tpm, tmp_path):
    from sport_core.errors import RecipeError

    data = chain()
    data["stages"][0]["inputs"] = {"previous": f"file:{tmp_path / 'nope.json'}"}
    with pytest.raises(RecipeError, match=r"stages\[0\]\.inputs\.previous: file .*nope\.json does not exist"):
        validate(data, tpm.registry)


def test_an_interrupted_stage_whose_inputs_changed_starts_over_and_sets_its_old_files_aside(tpm, tmp_path):
    runner = Runner.create(validate(chain(interrupt=True), tpm.registry), tpm, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    assert (runner.run_dir / "b" / "checkpoints" / "interrupted-once").exists()
    # The resolved recipe is edited (as a config class gaining a field would change it): b's hash changes.
    resolved = runner.run_dir / "recipe.resolved.toml"
    resolved.write_text(resolved.read_text().replace("value = 3", "value = 30"))
    with pytest.raises(KeyboardInterrupt):  # a fresh start of b interrupts once more
        Runner.resume(runner.run_dir, tpm).run()
    assert calls(runner.run_dir, "b") == ["resumed=False"]  # a fresh stage folder
    assert (runner.run_dir / "b.stale-1" / "checkpoints" / "interrupted-once").exists()
    assert (runner.run_dir / "b.stale-1" / "calls.log").read_text() == "resumed=False\n"
    Runner.resume(runner.run_dir, tpm).run()
    assert json.loads((runner.run_dir / "c" / "out.json").read_text()) == {"total": 36}
