"""The ``sport`` command as a user meets it: help, listing, checking, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sport_core import __version__, cli, hookimpl
from sport_core.plugins import load_plugin_manager

ROOT = Path(__file__).resolve().parents[1]


def sport(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPORT_NO_PROGRESS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sport_core.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_version_and_help():
    assert sport("--version").stdout.strip() == f"sport {__version__}"
    out = sport("--help").stdout
    for command in ("run", "check", "plugins"):
        assert command in out
    assert "--resume" in sport("run", "--help").stdout


def test_plugins_lists_builtins_with_versions_and_components():
    out = sport("plugins").stdout
    assert f"pointmass {__version__} (built-in" in out
    assert "env        pointmass" in out
    assert "executor   process" in out
    assert "policy     gaussian-mlp" in out


def test_check_says_a_recipe_is_valid():
    res = sport("check", "recipes/quick/smoke.toml")
    assert res.returncode == 0
    assert res.stdout.startswith("recipes/quick/smoke.toml: valid recipe 'smoke' with 2 stages")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '[run]\nname="x"\n[env]\nkind="pointmass"\n[[stages]]\nname="s"\nevaluator="rollout"\n'
            "[stages.config]\nepisods=3\n",
            "stages[0].config.episods: unknown key; did you mean episodes?",
        ),
        (
            '[run]\nname="x"\n[env]\nkind="pointmass"\n[[stages]]\nname="s"\nevaluator="rollout"\n'
            '[stages.config]\nepisodes="3"\n',
            "stages[0].config.episodes: expected int, got str '3'",
        ),
        ("[run\n", "not valid TOML"),
    ],
)
def test_bad_recipes_fail_with_one_line_and_exit_code_2(tmp_path, content, expected):
    recipe = tmp_path / "r.toml"
    recipe.write_text(content)
    res = sport("check", str(recipe))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert expected in res.stderr


def test_a_missing_recipe_and_a_bad_override_are_one_line_errors(tmp_path):
    res = sport("run", str(tmp_path / "missing.toml"))
    assert (
        res.returncode == 2 and res.stderr.strip() == f"sport: error: {tmp_path / 'missing.toml'}: no such recipe file"
    )
    res = sport("check", "recipes/quick/smoke.toml", "--set", "stages.nope.config.episodes=3")
    assert res.returncode == 2 and "no stage named 'nope'" in res.stderr


def test_debug_shows_the_traceback(tmp_path):
    res = sport("--debug", "check", str(tmp_path / "missing.toml"))
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_the_smoke_recipe_runs_end_to_end(tmp_path):
    res = sport(
        "-q", "run", "recipes/quick/smoke.toml", "--out", str(tmp_path), "--set", "stages.random.config.episodes=30"
    )
    assert res.returncode == 0, res.stderr
    (run_dir,) = tmp_path.iterdir()
    assert res.stdout.strip() == f"completed: {run_dir}"
    summary = json.loads((run_dir / "random" / "summary.json").read_text())
    assert summary["episodes"] == 30
    assert abs(summary["goal_rate"] + summary["violation_rate"] + summary["timeout_rate"] - 1) < 1e-12
    episodes = (run_dir / "random-fixed" / "episodes.jsonl").read_text().splitlines()
    assert len(episodes) == 100 and "trajectory" in json.loads(episodes[0])
    # Re-running the finished run is a no-op that still succeeds.
    res = sport("-q", "run", "--resume", str(run_dir))
    assert res.returncode == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert all(s["attempts"] == 1 for s in manifest["stages"].values())


def test_relative_out_and_resume_paths_work_from_any_directory(tmp_path):
    recipe = ROOT / "recipes" / "quick" / "smoke.toml"
    res = sport("-q", "run", str(recipe), "--out", "runs", "--set", "stages.random.config.episodes=5", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "random" / "summary.json").read_text())["episodes"] == 5
    res = sport("-q", "run", "--resume", f"runs/{run_dir.name}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr


class GreeterPlugin:
    """A third-party plugin adding a command, as datasette's ``register_commands``."""

    @hookimpl
    def sport_register_commands(self, subparsers):
        greet = subparsers.add_parser("greet", help="say hello")
        greet.add_argument("name")
        greet.set_defaults(func=lambda args: print(f"hello {args.name}") or 0)


class ClashingPlugin:
    @hookimpl
    def sport_register_commands(self, subparsers):
        subparsers.add_parser("run")


def test_plugins_add_commands_and_help_lists_them(monkeypatch, capsys):
    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setattr(cli, "load_plugin_manager", lambda: load_plugin_manager(extra=[("greeter", GreeterPlugin())]))
    assert cli.main(["greet", "you"]) == 0
    assert capsys.readouterr().out == "hello you\n"
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "say hello" in capsys.readouterr().out


def test_built_in_plot_and_report_commands_are_listed():
    out = sport("--help").stdout
    assert "plot" in out and "report" in out


def test_a_plugin_command_clashing_with_another_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setattr(cli, "load_plugin_manager", lambda: load_plugin_manager(extra=[("clash", ClashingPlugin())]))
    assert cli.main(["--help"]) == 2
    assert "plugin 'clash' adds a command that exists already" in capsys.readouterr().err


def test_plugins_reports_a_plugin_that_fails_to_load_and_exits_with_1(tmp_path):
    """A broken plugin (here a module under development, named in SPORT_PLUGINS) breaks no command."""
    (tmp_path / "half_written_plugin.py").write_text("from sport_core import no_such_name\n")
    env = {**os.environ, "SPORT_NO_PROGRESS": "1", "SPORT_PLUGINS": "half_written_plugin", "PYTHONPATH": str(tmp_path)}

    def sport_with_broken_plugin(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "sport_core.cli", *args]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    res = sport_with_broken_plugin("plugins")
    assert res.returncode == 1
    assert "env        pointmass" in res.stdout  # everything else is listed as usual
    assert (
        "    half_written_plugin ? (from (SPORT_PLUGINS); half_written_plugin): "
        "ImportError: cannot import name 'no_such_name' from 'sport_core'"
    ) in res.stdout
    assert "plugin 'half_written_plugin' (half_written_plugin, from SPORT_PLUGINS) failed to load" in res.stderr
    res = sport_with_broken_plugin("check", "recipes/quick/smoke.toml")
    assert res.returncode == 0 and "valid recipe 'smoke'" in res.stdout
    assert "half_written_plugin" in res.stderr  # the warning
