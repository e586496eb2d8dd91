"""Benchmark: Experiment 1 then Experiment 2, timed stage by stage, against the goal of ≤ 60 min for both.

The goal is issue 16's: both experiments at paper scale in at most 60 minutes on 2 cores.

Experiment 2's ``base`` and ``certify-base`` stages are Experiment 1's (same config, env and seed, hence the
same artifacts; checked before anything runs), so the base is not trained twice: Experiment 1 runs whole
(``recipes/exp1.toml``), then Experiment 2 runs only its own stages (``recipes/exp2.toml --stage finetune
--stage evaluate``) on Experiment 1's base policy and certificate, given as ``file:`` inputs with ``--set``, as
``recipes/exp2-from-exp1.toml`` does. ``--quick`` does the same with ``recipes/quick/exp1.toml`` and
``recipes/quick/exp2.toml`` (minutes; a CI-sized check of the pipeline, to which the goal does not apply).

Each experiment is one ``sport run`` in ``OUT/<experiment>/``; its output goes to this process's stderr, so that
progress stays visible and stdout holds only the JSON lines. Each run's ``manifest.json`` then gives per stage
its status, ``started``, ``finished`` and ``seconds`` (those of its last attempt); an experiment's wall time is
measured around its ``sport run`` calls (``OUT/pipeline.json`` keeps them across ``--resume``). One JSON line
per experiment and a total line (``goal_minutes``, ``total_minutes``, ``meets_goal``, per-stage seconds,
commands, run directories, ``parallel_stages``), each with the machine record (``benchmarks/machine.py``),
appended to ``benchmarks/results/pipeline.jsonl`` (``$SPORT_BENCH_RESULTS`` names another folder; ``-``: print
only).

``--parallel-stages N`` sets ``run.parallel_stages`` in both runs (1: one stage at a time; 0: one per usable
core); without it the recipes' own value holds. ``--resume`` continues the runs in ``--out`` after an
interruption (``sport run --resume RUN_DIR``). ``--from-manifests PATH...`` runs nothing and reports finished
runs, such as the committed ones in ``artifacts/``: each PATH is a run directory or a folder of them, and the
run directories held by one folder are one experiment (Experiment 1 of seed 0 was run as four runs); its wall
time is the sum of each run's ``created`` → ``finished`` (a resumed run's pause included).

Run: ``.venv/bin/python benchmarks/pipeline.py [--quick] [--out DIR] [--parallel-stages N] [--resume]``, or
``.venv/bin/python benchmarks/pipeline.py --from-manifests artifacts/exp1-seed1 artifacts/exp2-seed1``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import emit

REPO = Path(__file__).resolve().parents[1]
NAME = "pipeline"
GOAL_MINUTES = 60
REUSED = ("base", "certify-base")  # Experiment 2's stages that are Experiment 1's
STATE = "pipeline.json"


class PipelineError(Exception):
    """A failure worth one line: which experiment, which stage, which run directory; ``returncode`` is the
    pipeline's exit status (130 when a run was interrupted, as ``sport run``'s)."""

    def __init__(self, message: str, returncode: int = 1) -> None:
        super().__init__(message)
        self.returncode = returncode


@attrs.frozen
class Experiment:
    """One ``sport run`` of the pipeline: its recipe (relative to the repository) and the stages it runs
    (empty: all of them)."""

    name: str
    recipe: str
    stages: tuple[str, ...] = ()


SCALES = {
    "paper": (
        Experiment("exp1", "recipes/exp1.toml"),
        Experiment("exp2", "recipes/exp2.toml", ("finetune", "evaluate")),
    ),
    "quick": (
        Experiment("exp1", "recipes/quick/exp1.toml"),
        Experiment("exp2", "recipes/quick/exp2.toml", ("finetune", "evaluate")),
    ),
}


# -- manifests ------------------------------------------------------------------------------------


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """A run directory's ``manifest.json`` (a :class:`PipelineError` if missing or not a run manifest)."""
    path = run_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PipelineError(f"{path}: not a readable run manifest ({exc})") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("stages"), dict):
        raise PipelineError(f"{path}: not a run manifest (no stages)")
    return manifest


def run_dirs_in(folder: Path) -> list[Path]:
    """The run directories (folders with a ``manifest.json``) directly inside ``folder``, by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / "manifest.json").is_file())


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one ISO 8601 time to another (None if either is missing)."""
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def stage_entries(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per stage that was attempted (not ``pending``): status, seconds, started, finished, attempts, error."""
    keys = ("status", "seconds", "started", "finished", "attempts", "error")
    return {
        name: {k: entry[k] for k in keys if k in entry}
        for name, entry in manifest["stages"].items()
        if entry.get("status") != "pending"
    }


def parallel_setting(run_dir: Path) -> int | None:
    """``[run] parallel_stages`` of the run's resolved recipe (None where the recipe predates the key)."""
    path = run_dir / "recipe.resolved.toml"
    if not path.is_file():
        return None
    return tomllib.loads(path.read_text()).get("run", {}).get("parallel_stages")


def unfinished(manifest: dict[str, Any], stages: tuple[str, ...]) -> list[str]:
    """The stages among ``stages`` (all if empty) that have not completed."""
    names = stages or tuple(manifest["stages"])
    return [n for n in names if manifest["stages"].get(n, {}).get("status") != "completed"]


def experiment_row(label: str, run_dirs: list[Path], **extra: Any) -> dict[str, Any]:
    """An experiment's line from its run directories' manifests: per stage its entry and seconds (a stage
    made in two of the runs is named ``<run name>/<stage>``), their sum, and each run's created → finished."""
    stages: dict[str, dict[str, Any]] = {}
    manifest_wall = 0.0
    revisions, settings = [], []
    for run_dir in run_dirs:
        manifest = read_manifest(run_dir)
        for name, entry in stage_entries(manifest).items():
            stages[f"{manifest.get('name', run_dir.name)}/{name}" if name in stages else name] = entry
        manifest_wall += seconds_between(manifest.get("created"), manifest.get("finished")) or 0.0
        revisions.append(manifest.get("git_revision"))
        settings.append(parallel_setting(run_dir))
    stage_seconds = {name: e["seconds"] for name, e in stages.items() if "seconds" in e}
    return {
        "benchmark": NAME,
        "line": "experiment",
        "experiment": label,
        **extra,
        "stage_seconds": stage_seconds,
        "stage_seconds_sum": round(sum(stage_seconds.values()), 3),
        "manifest_wall_s": round(manifest_wall, 3),
        "stages": stages,
        "run_dirs": [str(p) for p in run_dirs],
        "parallel_stages": settings[0] if len(set(settings)) == 1 else settings,
        "git_revisions": sorted({r for r in revisions if r}),
    }


def total_row(rows: list[dict[str, Any]], wall_key: str, **extra: Any) -> dict[str, Any]:
    """The total line: the experiments' wall times (``wall_key`` of each row) summed against the goal."""
    total_s = sum(r[wall_key] for r in rows)
    total_minutes = round(total_s / 60, 2)
    return {
        "benchmark": NAME,
        "line": "total",
        **extra,
        "goal_minutes": GOAL_MINUTES,
        "total_minutes": total_minutes,
        "meets_goal": None if extra.get("scale") == "quick" else total_minutes <= GOAL_MINUTES,
        "stage_minutes_sum": round(sum(r["stage_seconds_sum"] for r in rows) / 60, 2),
        "experiments": {
            r["experiment"]: {"wall_minutes": round(r[wall_key] / 60, 2), "stage_seconds": r["stage_seconds"]}
            for r in rows
        },
        "run_dirs": [d for r in rows for d in r["run_dirs"]],
        "parallel_stages": {r["experiment"]: r["parallel_stages"] for r in rows},
    }


# -- historical runs --------------------------------------------------------------------------------


def report_manifests(paths: list[str]) -> None:
    """One line per experiment (the run directories one folder holds) and a total line, from finished runs."""
    groups: dict[Path, list[Path]] = {}
    for arg in paths:
        path = Path(arg)
        runs = [path] if (path / "manifest.json").is_file() else run_dirs_in(path)
        if not runs:
            if path.is_dir():
                raise PipelineError(f"{path}: neither a run directory nor a folder of run directories")
            if not path.exists():
                raise PipelineError(f"{path}: no such run directory")
            print(f"pipeline: skipping {path} (not a run directory)", file=sys.stderr)
            continue
        for run in runs:
            folder = run.resolve().parent
            if run not in groups.setdefault(folder, []):
                groups[folder].append(run)
    if not groups:
        raise PipelineError("--from-manifests: no run directories among " + " ".join(paths))
    note = (
        "historical: read from the manifests of earlier runs, nothing was run; wall = sum of each run's "
        "created -> finished; stage seconds are each stage's last attempt; the machine record is the reader's"
    )
    rows = []
    for folder, runs in groups.items():
        row = experiment_row(folder.name, sorted(runs), historical=True)
        row["wall_s"] = row["manifest_wall_s"]
        row["note"] = note
        emit(NAME, row)
        rows.append(row)
    emit(NAME, total_row(rows, "wall_s", historical=True, note=note))


# -- running the pipeline ---------------------------------------------------------------------------


def sport_command() -> list[str]:
    """The ``sport`` command of this interpreter's environment."""
    script = Path(sys.executable).parent / "sport"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "sport_core.cli"]


def load_recipes(scale: str) -> tuple[Any, Any]:
    """Both experiments' recipes, validated, after checking that Experiment 2's ``base`` and
    ``certify-base`` are Experiment 1's (config, env, inputs, seed): else reusing them would be wrong."""
    from sport_core.errors import SportError
    from sport_core.plugins import load_plugin_manager
    from sport_core.recipe import load_recipe

    exp1, exp2 = SCALES[scale]
    pm = load_plugin_manager()
    try:
        first, second = (load_recipe(REPO / e.recipe, pm.registry) for e in (exp1, exp2))
    except SportError as exc:
        raise PipelineError(str(exc)) from exc
    for name in REUSED:
        a, b = first.stage(name), second.stage(name)
        if a != b or first.env_for(a) != second.env_for(b) or first.run.seed != second.run.seed:
            raise PipelineError(
                f"stage {name!r} of {exp2.recipe} differs from {exp1.recipe}'s, so Experiment 1's cannot stand in "
                "for it; make them equal or time the experiments separately"
            )
    for name in exp2.stages:
        stage = second.stage(name)
        for role in stage.inputs:
            upstream = stage.input_stage(role)[0]
            if stage.input_file(role) is None and upstream not in REUSED + exp2.stages:
                raise PipelineError(
                    f"{exp2.recipe}: stage {name!r} needs {upstream!r}, which the pipeline does not run"
                )
    return first, second


def reuse_overrides(exp2_recipe: Any, stages: tuple[str, ...], exp1_run: Path) -> list[str]:
    """``--set`` assignments that point every input of ``stages`` made by a reused stage at Experiment 1's
    artifact (its path from Experiment 1's manifest, as a ``file:`` input)."""
    manifest = read_manifest(exp1_run)
    sets = []
    for name in stages:
        stage = exp2_recipe.stage(name)
        for role in stage.inputs:
            if stage.input_file(role) is not None:
                continue
            upstream, artifact = stage.input_stage(role)
            if upstream not in REUSED:
                continue
            outputs = manifest["stages"][upstream].get("outputs", {})
            if artifact is None and len(outputs) == 1:
                artifact = next(iter(outputs))
            if artifact not in outputs:
                raise PipelineError(
                    f"exp2 stage {name!r} input {role!r}: {exp1_run}'s stage {upstream!r} made "
                    f"{', '.join(outputs) or 'nothing'}, not one {artifact or 'artifact'} it could name"
                )
            path = (exp1_run / outputs[artifact]["path"]).resolve()
            sets.append(f"stages.{name}.inputs.{role}={json.dumps(f'file:{path}')}")
    return sets


def call(cmd: list[str]) -> tuple[int, float]:
    """Run ``cmd`` in the repository, its stdout sent to this process's stderr; its exit status and seconds.

    A Ctrl-C reaches ``sport`` too (same process group), which records the interruption and exits 130: wait
    for it. A SIGTERM to this process is passed on to ``sport``, which treats it the same way."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=sys.stderr)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: proc.terminate())
    try:
        while True:
            try:
                returncode = proc.wait()
                break
            except KeyboardInterrupt:
                continue
    finally:
        signal.signal(signal.SIGTERM, previous)
    return returncode, time.perf_counter() - t0


def write_state(out: Path, state: dict[str, Any]) -> None:
    tmp = out / f".{STATE}.tmp"
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, out / STATE)


def failure(exp: Experiment, folder: Path, returncode: int, resume_hint: str) -> PipelineError:
    """One line saying where ``exp`` stopped: the failed stage and its error (else the stages in progress when
    it was interrupted, else those not completed), the run directory, and how to continue."""
    runs = run_dirs_in(folder)
    if not runs:
        return PipelineError(
            f"{exp.name} ({exp.recipe}): sport run exited with status {returncode} before making a run directory "
            f"in {folder} (its error is above)"
        )
    stages = read_manifest(runs[-1])["stages"]
    failed = [n for n, e in stages.items() if e.get("status") == "failed"]
    in_progress = [n for n, e in stages.items() if e.get("status") in ("running", "interrupted")]
    if failed:
        error = stages[failed[0]].get("error")
        what = f"stage {failed[0]!r} failed" + (f": {error}" if error else "")
    elif returncode == 130 or in_progress:
        what = "interrupted in stage " + ", ".join(map(repr, in_progress)) if in_progress else "interrupted"
    else:
        left = unfinished({"stages": stages}, exp.stages)
        what = f"sport run exited with status {returncode}; not completed: {', '.join(left) or 'none'}"
    return PipelineError(
        f"{exp.name} ({exp.recipe}): {what}; run dir {runs[-1]}; continue with: {resume_hint}",
        130 if returncode == 130 and not failed else 1,
    )


def run_experiment(
    exp: Experiment, out: Path, state: dict[str, Any], sets: list[str], resume: bool, resume_hint: str
) -> Path:
    """Run (or, with ``resume``, continue) ``exp`` in ``out/<name>/`` and return its run directory once its
    stages have completed; each ``sport run`` call is recorded in ``state``."""
    folder = out / exp.name
    runs = run_dirs_in(folder)
    select = [arg for name in exp.stages for arg in ("--stage", name)]
    if len(runs) > 1:
        raise PipelineError(f"{folder} holds {len(runs)} run directories; the pipeline keeps one per experiment")
    if runs and not resume:
        raise PipelineError(f"{folder} already holds the run {runs[0].name}; pass --resume, or choose another --out")
    if runs and not unfinished(read_manifest(runs[0]), exp.stages):
        print(f"pipeline: {exp.name}: {runs[0]} has completed, not run again", file=sys.stderr)
        return runs[0]
    if runs:
        cmd = [*sport_command(), "run", "--resume", str(runs[0]), *select]
    else:
        cmd = [*sport_command(), "run", exp.recipe, "--out", str(folder), *[a for s in sets for a in ("--set", s)]]
        cmd += select
    calls = state["experiments"].setdefault(exp.name, {"recipe": exp.recipe, "calls": []})["calls"]
    record = {"command": shlex.join(cmd), "started": datetime.now(UTC).isoformat(timespec="seconds")}
    calls.append(record)
    write_state(out, state)
    print(f"pipeline: {exp.name}: {record['command']}", file=sys.stderr, flush=True)
    returncode, seconds = call(cmd)
    record.update(seconds=round(seconds, 3), returncode=returncode)
    write_state(out, state)
    runs = run_dirs_in(folder)
    if returncode != 0 or not runs or unfinished(read_manifest(runs[0]), exp.stages):
        raise failure(exp, folder, returncode, resume_hint)
    return runs[0]


def run_pipeline(args: argparse.Namespace) -> None:
    """Experiment 1, then Experiment 2's own stages on its base and certificate; then the lines."""
    scale = "quick" if args.quick else "paper"
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or REPO / "runs" / f"pipeline-{scale}-{stamp}").resolve()
    state_path = out / STATE
    if args.resume and state_path.is_file():
        state = json.loads(state_path.read_text())
        if state.get("scale") != scale:
            flag = "with" if state.get("scale") == "quick" else "without"
            raise PipelineError(f"{out} holds a {state.get('scale')}-scale pipeline; resume it {flag} --quick")
        if args.parallel_stages is not None and args.parallel_stages != state.get("parallel_stages"):
            started = state.get("parallel_stages")
            flag = "without --parallel-stages" if started is None else f"with --parallel-stages {started}"
            raise PipelineError(f"{out} was started {flag}; its resumed runs keep that")
    else:
        state = {"scale": scale, "parallel_stages": args.parallel_stages, "experiments": {}}
    out.mkdir(parents=True, exist_ok=True)
    hint = shlex.join(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            *(["--quick"] if args.quick else []),
            "--out",
            str(out),
            "--resume",
        ]
    )
    exp1, exp2 = SCALES[scale]
    _, exp2_recipe = load_recipes(scale)
    common = [] if args.parallel_stages is None else [f"run.parallel_stages={args.parallel_stages}"]
    exp1_run = run_experiment(exp1, out, state, common, args.resume, hint)
    sets = common + reuse_overrides(exp2_recipe, exp2.stages, exp1_run)
    exp2_run = run_experiment(exp2, out, state, sets, args.resume, hint)
    rows = []
    for exp, run_dir in ((exp1, exp1_run), (exp2, exp2_run)):
        calls = state["experiments"].get(exp.name, {}).get("calls", [])
        row = experiment_row(exp.name, [run_dir], scale=scale, recipe=exp.recipe, historical=False)
        measured = [c["seconds"] for c in calls if c.get("seconds") is not None]
        # a call this process did not see end (killed with it) has no time: the run's own span stands in
        row["wall_s"] = round(sum(measured), 3) if calls and len(measured) == len(calls) else row["manifest_wall_s"]
        row["wall_measured"] = bool(calls) and len(measured) == len(calls)
        row["sport_commands"] = [c["command"] for c in calls]
        rows.append(row)
        emit(NAME, row)
    total = total_row(rows, "wall_s", scale=scale, historical=False, out=str(out))
    total["sport_commands"] = [c for r in rows for c in r["sport_commands"]]
    if scale == "quick":
        total["note"] = "quick recipes: a check that the pipeline runs; the goal is for paper scale"
    emit(NAME, total)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick recipes (minutes) instead of paper scale")
    parser.add_argument("--out", help="folder of the runs (default: runs/pipeline-<scale>-<UTC time>)")
    parser.add_argument(
        "--parallel-stages",
        type=int,
        metavar="N",
        help="run.parallel_stages of both runs (1: one stage at a time, 0: one per core; default: the recipes')",
    )
    parser.add_argument("--resume", action="store_true", help="continue the runs in --out")
    parser.add_argument(
        "--from-manifests",
        nargs="+",
        metavar="RUN_DIR",
        help="report finished runs (run directories or folders of them, one experiment per folder); run nothing",
    )
    args = parser.parse_args(argv)
    if args.from_manifests and (args.quick or args.out or args.resume or args.parallel_stages is not None):
        parser.error("--from-manifests runs nothing: it takes no --quick, --out, --resume or --parallel-stages")
    if args.resume and not args.out:
        parser.error("--resume continues the runs in --out DIR: name it")
    if args.parallel_stages is not None and args.parallel_stages < 0:
        parser.error("--parallel-stages: 0 (one per core) or a positive count")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.from_manifests:
            report_manifests(args.from_manifests)
        else:
            run_pipeline(args)
    except PipelineError as exc:
        print(f"pipeline: error: {exc}", file=sys.stderr)
        return exc.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
