"""``benchmarks/pipeline.py``: reporting finished runs from their manifests, the arguments, and the pipeline's
flow (commands, reuse of Experiment 1's base, resume, one-line failures) with ``sport run`` replaced by a fake
that writes manifests, so that nothing trains."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.support.scripts import load_script

pipeline = load_script("benchmarks/pipeline.py", "bench_pipeline")


def write_run(folder: Path, name: str, stages: dict, created: str, finished: str, parallel: int | None = None) -> Path:
    run = folder / name
    run.mkdir(parents=True)
    manifest = {"format": "sport-run-v1", "name": name.rsplit("-", 2)[0], "created": created, "finished": finished}
    manifest.update(status="completed", git_revision="abc", stages=stages)
    (run / "manifest.json").write_text(json.dumps(manifest))
    if parallel is not None:
        (run / "recipe.resolved.toml").write_text(f'[run]\nname = "x"\nparallel_stages = {parallel}\n')
    return run


def done(seconds: float, started: str = "2026-01-01T00:00:00+00:00", **outputs: str) -> dict:
    entry = {"status": "completed", "attempts": 1, "started": started, "finished": started, "seconds": seconds}
    if outputs:
        entry["outputs"] = {k: {"path": v, "sha256": "0"} for k, v in outputs.items()}
    return entry


@pytest.fixture
def results(tmp_path, monkeypatch):
    folder = tmp_path / "results"
    monkeypatch.setenv("SPORT_BENCH_RESULTS", str(folder))
    return folder / "pipeline.jsonl"


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_from_manifests_groups_runs_by_folder_and_sums_their_times(tmp_path, results, capsys):
    exp1, exp2 = tmp_path / "exp1-seed9", tmp_path / "exp2-seed9"
    # Experiment 1 made as two runs, Experiment 2 as one with a stage it did not run
    write_run(
        exp1, "base-20260101-000000", {"base": done(1500.0)}, "2026-01-01T00:00:00+00:00", "2026-01-01T00:30:00+00:00"
    )
    write_run(
        exp1,
        "rest-20260101-010000",
        {"certify-base": done(100.0), "task": done(600.0), "sweep": done(200.0)},
        "2026-01-01T01:00:00+00:00",
        "2026-01-01T01:15:00+00:00",
        parallel=1,
    )
    write_run(
        exp2,
        "exp2-20260101-020000",
        {"base": {"status": "pending", "attempts": 0}, "finetune": done(400.0), "evaluate": done(80.0)},
        "2026-01-01T02:00:00+00:00",
        "2026-01-01T02:09:00+00:00",
    )
    (exp1 / "README.md").write_text("not a run")
    args = ["--from-manifests", *map(str, sorted(exp1.iterdir())), str(exp2)]
    assert pipeline.main(args) == 0
    first, second, total = lines(capsys)
    assert first["experiment"] == "exp1-seed9" and first["historical"] is True
    assert first["stage_seconds"] == {"base": 1500.0, "certify-base": 100.0, "task": 600.0, "sweep": 200.0}
    assert first["wall_s"] == 45 * 60 and len(first["run_dirs"]) == 2
    assert first["parallel_stages"] == [None, 1]  # the runs disagree: both are shown
    assert second["stage_seconds"] == {"finetune": 400.0, "evaluate": 80.0} and "base" not in second["stages"]
    assert second["wall_s"] == 9 * 60 and second["parallel_stages"] is None
    assert total["line"] == "total" and total["goal_minutes"] == 60
    assert total["total_minutes"] == 54.0 and total["meets_goal"] is True
    assert total["stage_minutes_sum"] == round(2880 / 60, 2)
    assert set(total["experiments"]) == {"exp1-seed9", "exp2-seed9"}
    assert "historical" in total["note"] and "machine" in total and "cores" in total["machine"]
    assert [json.loads(line)["line"] for line in results.read_text().splitlines()] == ["experiment"] * 2 + ["total"]


def test_from_manifests_names_a_stage_made_twice_by_its_run(tmp_path, results, capsys):
    folder = tmp_path / "exp2-seed0"
    t = ("2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00")
    write_run(folder, "exp2-a-20260101-000000", {"evaluate": done(80.0)}, *t)
    write_run(folder, "exp2-b-20260101-010000", {"evaluate": done(90.0)}, *t)
    assert pipeline.main(["--from-manifests", str(folder)]) == 0
    row, total = lines(capsys)
    assert row["stage_seconds"] == {"evaluate": 80.0, "exp2-b/evaluate": 90.0}
    assert total["total_minutes"] == 120.0 and total["meets_goal"] is False


def test_from_manifests_errors_are_one_line(tmp_path, results, capsys):
    assert pipeline.main(["--from-manifests", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("pipeline: error:") and "missing" in err and "\n" not in err
    (tmp_path / "empty").mkdir()
    assert pipeline.main(["--from-manifests", str(tmp_path / "empty")]) == 1
    assert "neither a run directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--from-manifests", "x", "--quick"],
        ["--from-manifests", "x", "--parallel-stages", "1"],
        ["--from-manifests", "x", "--resume", "--out", "y"],
        ["--resume"],
        ["--parallel-stages", "-1"],
        ["--parallel-stages", "two"],
    ],
)
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        pipeline.parse_args(argv)
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.fixture(scope="module")
def recipes():
    """Both scales' recipes, loaded (and their reuse checked) once: this is the slow part."""
    return {scale: pipeline.load_recipes(scale) for scale in pipeline.SCALES}


def test_experiment_2_reuses_experiment_1s_base_and_certificate(tmp_path, recipes):
    """Loading checked that exp2's base and certify-base are exp1's (both scales); the ``--set`` lines point
    exp2's own stages at the artifacts Experiment 1's manifest names."""
    stages = {"base": done(1.0, policy="base/policy.safetensors")}
    stages["certify-base"] = done(1.0, certificate="certify-base/certificate.json", episodes="certify-base/e.bin")
    exp1_run = write_run(tmp_path, "exp1-20260101-000000", stages, "a", "b")
    for scale, (_, exp2) in recipes.items():
        sets = pipeline.reuse_overrides(exp2, ("finetune", "evaluate"), exp1_run)
        policy = f'"file:{exp1_run.resolve()}/base/policy.safetensors"'
        certificate = f'"file:{exp1_run.resolve()}/certify-base/certificate.json"'
        assert sorted(sets) == sorted(
            [
                f"stages.finetune.inputs.base={policy}",
                f"stages.finetune.inputs.certificate={certificate}",
                f"stages.evaluate.inputs.base={policy}",
                f"stages.evaluate.inputs.certificate={certificate}",
            ]
        ), scale
    del stages["certify-base"]["outputs"]["episodes"], stages["base"]["outputs"]
    write_run(tmp_path, "exp1-bare-20260101-000000", stages, "a", "b")
    with pytest.raises(pipeline.PipelineError, match="stage 'base' made nothing"):
        pipeline.reuse_overrides(recipes["quick"][1], ("finetune",), tmp_path / "exp1-bare-20260101-000000")


class FakeSport:
    """Stands in for ``sport run``: makes (or continues) a run directory whose selected stages complete, or
    fail at ``fail_stage`` once."""

    def __init__(self, fail_stage: str | None = None, interrupt: bool = False) -> None:
        self.commands: list[list[str]] = []
        self.fail_stage, self.interrupt = fail_stage, interrupt

    def __call__(self, cmd: list[str]) -> tuple[int, float]:
        self.commands.append(cmd)
        stages = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--stage"]
        if "--resume" in cmd:
            run = Path(cmd[cmd.index("--resume") + 1])
            manifest = json.loads((run / "manifest.json").read_text())
        else:
            recipe = cmd[cmd.index("run") + 1]
            names = ["base", "certify-base"] + (["finetune", "evaluate"] if "exp2" in recipe else ["task", "sweep"])
            run = Path(cmd[cmd.index("--out") + 1]) / f"{Path(recipe).stem}-20260101-000000"
            run.mkdir(parents=True)
            (run / "recipe.resolved.toml").write_text("[run]\nparallel_stages = 1\n")
            manifest = {"name": Path(recipe).stem, "created": "2026-01-01T00:00:00+00:00"}
            manifest["stages"] = {n: {"status": "pending", "attempts": 0} for n in names}
        manifest["finished"] = "2026-01-01T00:00:02+00:00"
        returncode = 0
        for name in stages or list(manifest["stages"]):
            if name == self.fail_stage and self.interrupt:  # as a parallel run leaves a killed stage
                manifest["stages"][name] = {"status": "running", "attempts": 1}
                self.fail_stage, returncode = None, 130
                break
            if name == self.fail_stage:
                manifest["stages"][name] = {"status": "failed", "attempts": 1, "error": "RuntimeError: boom"}
                self.fail_stage, returncode = None, 1
                break
            outputs = {"policy": "base/policy.safetensors"} if name == "base" else {}
            if name == "certify-base":
                outputs = {"certificate": "certify-base/certificate.json"}
            manifest["stages"][name] = done(2.0, **outputs)
        (run / "manifest.json").write_text(json.dumps(manifest))
        return returncode, 2.5


def test_pipeline_runs_exp1_then_exp2s_own_stages_on_its_artifacts(tmp_path, recipes, results, capsys, monkeypatch):
    fake = FakeSport()
    monkeypatch.setattr(pipeline, "call", fake)
    monkeypatch.setattr(pipeline, "load_recipes", lambda scale: recipes[scale])
    out = tmp_path / "out"
    assert pipeline.main(["--quick", "--out", str(out), "--parallel-stages", "1"]) == 0
    exp1_cmd, exp2_cmd = (shlex.join(c) for c in fake.commands)
    assert "recipes/quick/exp1.toml" in exp1_cmd and "--set run.parallel_stages=1" in exp1_cmd
    assert "--stage" not in exp1_cmd
    exp1_run = out / "exp1" / "exp1-20260101-000000"
    assert "recipes/quick/exp2.toml" in exp2_cmd and exp2_cmd.endswith("--stage finetune --stage evaluate")
    assert f'stages.finetune.inputs.base="file:{exp1_run}/base/policy.safetensors"' in fake.commands[1]
    first, second, total = lines(capsys)
    assert (first["experiment"], second["experiment"]) == ("exp1", "exp2")
    assert second["stage_seconds"] == {"finetune": 2.0, "evaluate": 2.0}  # not the reused stages
    assert first["wall_s"] == 2.5 and first["wall_measured"] is True and first["parallel_stages"] == 1
    assert total["total_minutes"] == round(5.0 / 60, 2) and total["meets_goal"] is None  # quick: no goal
    assert total["sport_commands"] == [exp1_cmd, exp2_cmd] and total["historical"] is False
    state = json.loads((out / "pipeline.json").read_text())
    assert state["scale"] == "quick" and len(state["experiments"]["exp2"]["calls"]) == 1
    # the runs are there: a second pipeline in the same folder needs --resume, which then runs nothing
    assert pipeline.main(["--quick", "--out", str(out)]) == 1
    assert "pass --resume" in capsys.readouterr().err
    assert pipeline.main(["--quick", "--out", str(out), "--resume"]) == 0
    assert len(fake.commands) == 2
    assert pipeline.main(["--out", str(out), "--resume"]) == 1  # not the paper-scale pipeline
    assert "resume it with --quick" in capsys.readouterr().err
    assert pipeline.main(["--quick", "--out", str(out), "--resume", "--parallel-stages", "0"]) == 1
    assert "was started with --parallel-stages 1" in capsys.readouterr().err


def test_a_failed_stage_is_one_line_and_resume_continues_it(tmp_path, recipes, results, capsys, monkeypatch):
    fake = FakeSport(fail_stage="finetune")
    monkeypatch.setattr(pipeline, "call", fake)
    monkeypatch.setattr(pipeline, "load_recipes", lambda scale: recipes[scale])
    out = tmp_path / "out"
    assert pipeline.main(["--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("pipeline: error: exp2 (recipes/exp2.toml): stage 'finetune' failed: RuntimeError: boom")
    assert str(out / "exp2") in err and "--resume" in err
    assert "run.parallel_stages" not in shlex.join(fake.commands[0])  # no flag: the recipes' own value
    assert pipeline.main(["--out", str(out), "--resume"]) == 0
    resumed = fake.commands[-1]
    assert resumed[resumed.index("run") + 1 :][:2] == ["--resume", str(out / "exp2" / "exp2-20260101-000000")]
    assert resumed[-4:] == ["--stage", "finetune", "--stage", "evaluate"]
    rows = lines(capsys)
    assert rows[1]["wall_s"] == 5.0 and len(rows[1]["sport_commands"]) == 2  # both calls of exp2 count


def test_an_interrupted_run_exits_130_naming_its_stages(tmp_path, recipes, results, capsys, monkeypatch):
    monkeypatch.setattr(pipeline, "call", FakeSport(fail_stage="task", interrupt=True))
    monkeypatch.setattr(pipeline, "load_recipes", lambda scale: recipes[scale])
    assert pipeline.main(["--quick", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("pipeline: error: exp1 (recipes/quick/exp1.toml): interrupted in stage 'task'; run dir ")
    assert err.endswith(f"--quick --out {tmp_path} --resume")
