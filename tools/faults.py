"""Kill any stage at random moments with SIGKILL, resume it, and check that nothing was lost.

    .venv/bin/python tools/faults.py --size ci --trials 5 --seed 0 --jobs 3 --out /tmp/faults   # 3.5 min, 2 cores
    .venv/bin/python tools/faults.py --size full --trials 2 --seed 0 --out /tmp/faults-full    # 9 min
    .venv/bin/python tools/faults.py --kinds certify,rollout --min-kills 2 --max-kills 3     # some kinds only

The results measured with the first two are in ``docs/reliability.md``.

For every stage kind (``sac``, ``projected-ppo``, ``certify``, ``sweep``, ``rollout``) the harness writes a
recipe whose last (and only) stage is that kind; its inputs (a base policy, a task policy, a certificate) are
``file:`` inputs made once, uninterrupted, beforehand (``ci``: a prerequisites run on the point mass with the
hand-set goal-seeking base and task of :mod:`sport_core.testing` and a 200-episode certificate; ``full``: the
committed experiment-1 base, task and certificate in ``artifacts/exp1-seed0``, on the paper's 5 Hz level-5
Safety-Gym layout). SAC trains with the inline executor (it trains in its own process anyway), the other kinds
use a pool of two worker processes (``ci``: the rollout evaluator is inline too, to keep the test short).

1. The recipe runs once uninterrupted (the reference), timing its stage: from the moment the manifest shows
   it ``running`` to the end of the process.
2. Each trial starts ``sport run`` in its own session, waits until the manifest shows the stage running (a
   new attempt), sleeps a random part of the stage time and SIGKILLs the whole process group (the pool's
   workers too), waits until every process of the group is gone, then runs ``sport run --resume RUN_DIR``,
   and kills that one too if the trial drew more kills (``--min-kills`` to ``--max-kills``), until the run
   completes. Kill j comes u·r·S seconds after attempt j shows the stage running: u uniform in [0, 1), r the
   part of the stage still to do (1, then 1 − u of each earlier kill), S the shortest uninterrupted stage
   time seen (the reference's, or a trial's first attempt that finished before its kill moment: load on a
   shared machine varies). Every kind draws from its own ``random.Random("<seed>:<kind>")``.
   ``--min-total-kills N`` adds trials (at most 3) to a kind until N kills in all have landed.
3. The stage folder (checkpoints and the ``.tmp`` leftovers of atomic writes aside) is compared with the
   reference's, file by file: weights and other binary files byte for byte; episode stores by their header
   and their records sorted by index (records are stored in the order episodes finish); ``.npz`` arrays by
   value; JSON files after dropping volatile fields (times, durations, package versions, ``perf/`` speeds)
   and writing the run folder's path as ``<run>``, where the SHA-256 a JSON file gives for an episode store
   is checked against that store and then set aside (it depends on the record order); JSON-lines files as
   their sorted set of lines. The manifest must show the stage completed after one attempt per kill that
   found it running.
4. Counted per trial: episodes lost (indices of the reference missing from a store or from ``episodes.jsonl``)
   and counted twice (an index more than once in a store or in ``episodes.jsonl``; SAC's ``train_summary.json``
   and each Projected PPO job's ``summary.json`` episode counts against the reference's).

Prints a Markdown table (stage kind, reference stage time, kills with how many of them found the stage
running (the others hit the process after the stage had completed: its last manifest write and exit),
resumes, trials with identical artifacts / trials, episodes checked, lost, counted twice), then every
difference found, and writes ``<out>/faults.jsonl`` (one line per trial, then one per kind). Exit status 0
when every trial of every kind was identical and lost nothing, else 1. ``--jobs N`` runs N kinds side by
side. Linux only (``/proc`` is read to see that a killed process group is gone).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import tomli_w

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("sac", "projected-ppo", "certify", "sweep", "rollout")
STAGE = {"sac": "train", "projected-ppo": "finetune", "certify": "certify", "sweep": "sweep", "rollout": "rollout"}
#: JSON keys whose values change from run to run whatever happens (times, durations, the software's versions).
VOLATILE = frozenset(
    {"created", "started", "finished", "time", "timestamp", "elapsed", "seconds", "wall_seconds", "versions"}
)
#: Prefixes of metric names that measure speed, not results (``perf/steps_per_s``).
VOLATILE_PREFIXES = ("perf/",)
HEADER_SIZE = 64  # sport_core.episodes: a 64-byte header, then 32-byte records
EXIT_GRACE_S = 120.0  # beyond its reference time, how long a run may take before the harness gives up on it


# -- sizes: the recipes of each stage kind ----------------------------------------------------------------------


@attrs.frozen
class Size:
    """One size of the experiment: the env and executor of the target recipes, each kind's stage config, and
    how the prerequisites (``base``, ``task`` policies, ``certificate``) are made."""

    name: str
    env: dict[str, Any]
    configs: dict[str, dict[str, Any]]
    prerequisites: Callable[[Path], dict[str, Path]]
    workers: int = 2
    inline: tuple[str, ...] = ("sac",)  # kinds with the inline executor (SAC trains in-process anyway); others: a pool


POINTMASS = {"kind": "pointmass", "layout_seed": 8, "max_steps": 25}
SAFETY_GYM = {"kind": "safety-gym", "id": "SafetyPointReachAvoidLowFreqCurriculum5-v0", "layout": "paper"}


def ci_prerequisites(out: Path) -> dict[str, Path]:
    """Base and task (hand-set goal-seeking policies of :mod:`sport_core.testing`: the task steers harder and
    more surely, so it cuts past the hazard) and a 200-episode certificate of the base, on the point mass."""
    from sport_core.testing import plugin_manager, pointmass_recipe, run_recipe

    stages = [
        {"name": "base", "evaluator": "goal-seeker"},
        {"name": "task", "evaluator": "goal-seeker", "config": {"gain": 4.0, "std": 0.4}},
        {"name": "certify", "certifier": "scenario", "inputs": {"policy": "base"}, "config": {"episodes": 200}},
    ]
    run = run_recipe(plugin_manager(), pointmass_recipe(stages, seed=0, name="prerequisites"), out)
    return {
        "base": run / "base" / "policy.safetensors",
        "task": run / "task" / "policy.safetensors",
        "certificate": run / "certify" / "certificate.json",
    }


def full_prerequisites(out: Path) -> dict[str, Path]:
    """The committed experiment-1 artifacts (base and task trained by SAC, certificate of 10 001 episodes)."""
    exp1 = ROOT / "artifacts" / "exp1-seed0"
    found = {
        "base": exp1 / "base-20261125-183948" / "base" / "policy.safetensors",
        "task": exp1 / "task-20261125-194204" / "task" / "policy.safetensors",
        "certificate": exp1 / "certify-20261125-191746" / "certify-base" / "certificate.json",
    }
    missing = [str(p) for p in found.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"the full size needs the committed experiment-1 artifacts; missing: {', '.join(missing)}")
    return found


SIZES = {
    "ci": Size(
        "ci",
        POINTMASS,
        {
            "sac": {
                "total_steps": 600,
                "learning_starts": 100,
                "batch_size": 32,
                "critic_hidden": [16, 16],
                "policy_config": {"hidden": [16, 16]},
                "checkpoint_every": 100,
                "log_every": 100,
            },
            "projected-ppo": {
                "alphas": [1.0, 1.5],
                "total_steps": 384,
                "warmup_steps": 128,
                "num_envs": 2,
                "num_steps": 64,
                "checkpoint_every": 128,
                "critic_hidden": [16, 16],
            },
            "certify": {"episodes": 800},
            "sweep": {"alphas": [1.0, 1.5, 3.0], "episodes": 100, "projection": "gaussian-kl"},
            "rollout": {"episodes": 600},
        },
        ci_prerequisites,
        inline=("sac", "rollout"),
    ),
    "full": Size(
        "full",
        SAFETY_GYM,
        {
            "sac": {"total_steps": 4_000, "learning_starts": 1_000, "batch_size": 256, "checkpoint_every": 500},
            "projected-ppo": {
                "alphas": [1.0, 2.0],
                "total_steps": 6_144,
                "warmup_steps": 512,
                "num_envs": 1,
                "num_steps": 128,
                "checkpoint_every": 1_024,
                "learning_rate": 5e-5,
            },
            "certify": {"episodes": 2_000, "beta": 1e-7},
            "sweep": {"alphas": [1.0, 1.5, 5.0], "episodes": 1_000, "projection": "gaussian-kl"},
            "rollout": {"episodes": 3_000},
        },
        full_prerequisites,
    ),
}


def target_recipe(kind: str, size: Size, pre: dict[str, Path]) -> dict[str, Any]:
    """The recipe (as data) whose last stage is ``kind``, its inputs the prerequisites as ``file:`` inputs."""
    files = {role: f"file:{path.resolve()}" for role, path in pre.items()}
    inputs = {
        "sac": {},
        "projected-ppo": {"base": files["base"], "certificate": files["certificate"]},
        "certify": {"policy": files["base"]},
        "sweep": {"certificate": files["certificate"], "base": files["base"], "task": files["task"]},
        "rollout": {"policy": files["base"]},
    }[kind]
    role = {"sac": "trainer", "projected-ppo": "trainer", "certify": "certifier"}.get(kind, "evaluator")
    component = {"certify": "scenario", "sweep": "projected-sweep"}.get(kind, kind)
    stage: dict[str, Any] = {"name": STAGE[kind], role: component}
    if inputs:
        stage["inputs"] = inputs
    stage["config"] = size.configs[kind]
    executor = {"kind": "inline"} if kind in size.inline else {"kind": "process", "workers": size.workers}
    return {
        "run": {"name": f"faults-{kind}", "seed": 0},
        "env": dict(size.env),
        "executor": executor,
        "stages": [stage],
    }


# -- processes --------------------------------------------------------------------------------------------------


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # Built-in plugins only: third-party ones add nothing the recipes use, and ≈ 1 s to every start.
    env.update(SPORT_NO_PROGRESS="1", SPORT_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _sport() -> list[str]:
    exe = Path(sys.executable).with_name("sport")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "sport_core.cli"]


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``, from ``/proc``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()  # after "pid (comm) ": state, ppid, pgrp, …
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def kill_group(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGKILL the process group of ``proc`` (leader of its own session) and wait until every member is gone."""
    with suppress(ProcessLookupError):  # already gone
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + timeout
    while _group_members(proc.pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"process group {proc.pid} still has members {timeout:.0f} s after SIGKILL")
        time.sleep(0.02)


def _manifest_stage(run_dir: Path | None, stage: str) -> dict[str, Any]:
    if run_dir is None:
        return {}
    try:
        return json.loads((run_dir / "manifest.json").read_text())["stages"][stage]
    except (OSError, ValueError, KeyError):  # not written yet
        return {}


def _run_dir(parent: Path) -> Path | None:
    found = [p for p in parent.iterdir() if (p / "manifest.json").is_file()] if parent.is_dir() else []
    return found[0] if len(found) == 1 else None


@attrs.define
class Attempt:
    """One ``sport run`` process: its command, log file, and (once seen) the run folder."""

    proc: subprocess.Popen
    log: Path
    run_dir: Path | None
    started: float

    def wait_stage(self, parent: Path, stage: str, after_attempts: int, timeout: float) -> float | None:
        """Wait until the manifest shows ``stage`` running as attempt ``after_attempts + 1`` or later; returns
        the time it was seen, or None if the process ended first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run_dir is None:
                self.run_dir = _run_dir(parent)
            entry = _manifest_stage(self.run_dir, stage)
            if entry.get("status") == "running" and entry.get("attempts", 0) > after_attempts:
                return time.monotonic()
            if self.proc.poll() is not None:
                return None
            time.sleep(0.01)
        kill_group(self.proc)
        raise RuntimeError(f"stage {stage} did not start within {timeout:.0f} s (log: {self.log})")

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


#: The ``sport`` processes started and not yet reaped, so that an interrupted harness leaves none behind.
_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()
_STOP = threading.Event()


def start(args: list[str], log: Path, run_dir: Path | None = None) -> Attempt:
    """``sport`` with ``args`` in its own session (so that its workers can be killed with it)."""
    if _STOP.is_set():
        raise RuntimeError("the harness is stopping")
    with open(log, "w") as fh:  # the child writes to its own copy of the descriptor
        proc = subprocess.Popen(
            [*_sport(), *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=_environment(),
            cwd=ROOT,
        )
    with _LIVE_LOCK:
        _LIVE.difference_update([p for p in _LIVE if p.returncode is not None])
        _LIVE.add(proc)
    return Attempt(proc, log, run_dir, time.monotonic())


def stop_all() -> None:
    """Start nothing more, and SIGKILL the process group of every ``sport`` still running."""
    _STOP.set()
    with _LIVE_LOCK:
        running = [p for p in _LIVE if p.poll() is None]  # not reaped, so its pid cannot have been reused
    for proc in running:
        kill_group(proc)


# -- comparing a stage folder with the reference's ---------------------------------------------------------------


@attrs.define
class Comparison:
    """What differs between a trial's stage folder and the reference's, and the episodes lost or counted twice."""

    differences: list[str] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)  # what differs in form only (the values are equal)
    lost: int = 0
    twice: int = 0
    episodes: int = 0  # episodes the reference's stores and episode files hold (what could have been lost)


def _files(stage_dir: Path) -> dict[str, Path]:
    """Files of a stage folder by relative path, without checkpoints and leftover temporary files."""
    return {
        p.relative_to(stage_dir).as_posix(): p
        for p in sorted(stage_dir.rglob("*"))
        if p.is_file() and "checkpoints" not in p.relative_to(stage_dir).parts and not p.name.endswith(".tmp")
    }


def _records(path: Path) -> tuple[bytes, np.ndarray, int]:
    """An episode store read raw (header bytes, records in file order, torn bytes), duplicates kept."""
    from sport_core.episodes import RECORD_DTYPE

    raw = path.read_bytes()
    body = raw[HEADER_SIZE:]
    count = len(body) // RECORD_DTYPE.itemsize
    return raw[:HEADER_SIZE], np.frombuffer(body, RECORD_DTYPE, count=count), len(body) % RECORD_DTYPE.itemsize


def _count_indices(name: str, ref: np.ndarray, got: np.ndarray, out: Comparison) -> None:
    unique, counts = np.unique(got, return_counts=True)
    lost = np.setdiff1d(np.unique(ref), unique)
    twice = int((counts - 1).sum())
    out.episodes += int(np.unique(ref).size)
    out.lost += int(lost.size)
    out.twice += twice
    if lost.size:
        out.differences.append(f"{name}: {lost.size} episodes lost (indices {lost[:8].tolist()}…)")
    if twice:
        out.differences.append(f"{name}: {twice} episodes counted twice (indices {unique[counts > 1][:8].tolist()})")


def _compare_store(name: str, ref: Path, got: Path, out: Comparison) -> None:
    from sport_core.episodes import read_episodes
    from sport_core.errors import ArtifactError

    ref_head, ref_rec, _ = _records(ref)
    got_head, got_rec, torn = _records(got)
    _count_indices(name, ref_rec["index"], got_rec["index"], out)
    try:
        read_episodes(got, strict=True)
    except ArtifactError as exc:
        out.differences.append(f"{name}: not a valid finished store: {exc}")
    if torn:
        out.differences.append(f"{name}: {torn} bytes of a torn record at the end")
    if got_head != ref_head:
        out.differences.append(f"{name}: header differs (seed or context)")
    if np.sort(got_rec, order="index").tobytes() != np.sort(ref_rec, order="index").tobytes():
        out.differences.append(f"{name}: the set of records differs")


def _normalise(obj: Any, where: Path, stage_dir: Path, out: Comparison, name: str) -> Any:
    """``obj`` without volatile fields; a store's SHA-256 is checked against the store, then set aside."""
    from sport_core.artifacts import sha256_file

    if isinstance(obj, dict):
        store = obj.get("path")
        if isinstance(store, str) and store.endswith(".bin") and "sha256" in obj:
            candidates = [where / store, stage_dir / store]
            file = next((p for p in candidates if p.is_file()), None)
            if file is None or sha256_file(file) != obj["sha256"]:
                out.differences.append(f"{name}: names store {store} with a SHA-256 that is not the store's")
            obj = {**obj, "sha256": "<the store's>"}
        return {k: _normalise(v, where, stage_dir, out, name) for k, v in obj.items() if not _volatile(k)}
    if isinstance(obj, list):
        return [_normalise(v, where, stage_dir, out, name) for v in obj]
    if isinstance(obj, str) and str(stage_dir.parent) in obj:
        return obj.replace(str(stage_dir.parent), "<run>")
    return obj


def _volatile(key: str) -> bool:
    return key in VOLATILE or key.startswith(VOLATILE_PREFIXES)


def _canonical(value: Any) -> str:
    """``value`` as JSON text in which integers are written as floats: JSON has one number type, and 9 and
    9.0 are the same value."""

    def floats(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: floats(x) for k, x in v.items()}
        if isinstance(v, list):
            return [floats(x) for x in v]
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v

    return json.dumps(floats(value), sort_keys=True)


def _json_lines(path: Path, stage_dir: Path, out: Comparison, name: str) -> list[Any]:
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        try:
            rows.append(_normalise(json.loads(line), path.parent, stage_dir, out, name))
        except ValueError:
            out.differences.append(f"{name}: line {i + 1} is not JSON (a torn or garbled line)")
    return rows


def compare_stage(ref_dir: Path, got_dir: Path) -> Comparison:
    """Compare a trial's stage folder ``got_dir`` with the reference's ``ref_dir`` (see the module docstring)."""
    out = Comparison()
    ref_files, got_files = _files(ref_dir), _files(got_dir)
    for name in sorted(set(ref_files) ^ set(got_files)):
        out.differences.append(f"{name}: only in the {'reference' if name in ref_files else 'trial'}")
    for name in sorted(set(ref_files) & set(got_files)):
        ref, got = ref_files[name], got_files[name]
        if name.endswith(".bin"):
            _compare_store(name, ref, got, out)
        elif name.endswith(".jsonl"):
            a, b = _json_lines(ref, ref_dir, Comparison(), name), _json_lines(got, got_dir, out, name)
            if a and all(isinstance(r, dict) and "index" in r for r in a):  # one line per episode
                idx = np.array([r.get("index", -1) for r in b if isinstance(r, dict)], dtype=np.int64)
                _count_indices(name, np.array([r["index"] for r in a], dtype=np.int64), idx, out)
            ka, kb = sorted(map(_canonical, a)), sorted(map(_canonical, b))
            if ka != kb:
                only_ref, only_got = len(set(ka) - set(kb)), len(set(kb) - set(ka))
                out.differences.append(
                    f"{name}: the set of lines differs ({only_ref} lines only in the reference, {only_got} only in "
                    f"the trial, {len(ka)} vs {len(kb)} lines)"
                )
            elif sorted(map(json.dumps, a)) != sorted(map(json.dumps, b)):
                out.notes.append(f"{name}: the same values, written differently (e.g. an integer as a float)")
        elif name.endswith(".json"):
            a = _normalise(json.loads(ref.read_text()), ref.parent, ref_dir, Comparison(), name)
            b = _normalise(json.loads(got.read_text()), got.parent, got_dir, out, name)
            _count_reported(name, a, b, out)
            if a != b:
                out.differences.append(f"{name}: differs at {'; '.join(_differences(a, b))}")
            elif json.dumps(a) != json.dumps(b):
                out.notes.append(f"{name}: the same values, written differently (e.g. an integer as a float)")
        elif name.endswith(".npz"):
            with np.load(ref, allow_pickle=False) as za, np.load(got, allow_pickle=False) as zb:
                same = sorted(za.files) == sorted(zb.files) and all(
                    za[k].dtype == zb[k].dtype and za[k].tobytes() == zb[k].tobytes() for k in za.files
                )
            if not same:
                out.differences.append(f"{name}: arrays differ")
        elif ref.read_bytes() != got.read_bytes():
            out.differences.append(f"{name}: bytes differ")
    return out


def _count_reported(name: str, ref: Any, got: Any, out: Comparison) -> None:
    """Episode counts a trainer reports (SAC's ``train_summary.json``, a PPO job's ``summary.json``) against
    the reference's: more is counted twice, fewer is lost."""
    pairs = []
    if name.endswith("train_summary.json"):
        pairs.append((ref.get("episodes"), got.get("episodes")))
        out.episodes += int(ref.get("episodes") or 0)  # SAC keeps no episode store: its count is what is checked
    elif name.endswith("summary.json") and isinstance(ref.get("training"), dict):
        pairs.append((ref["training"].get("episodes"), got.get("training", {}).get("episodes")))
    for a, b in pairs:
        if isinstance(a, int) and isinstance(b, int) and a != b:
            out.lost += max(0, a - b)
            out.twice += max(0, b - a)
            out.differences.append(f"{name}: {b} episodes reported, the reference {a}")


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Every place where JSON values ``a`` (the reference's) and ``b`` differ, as ``.key[i]: a vs b``."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys if a.get(k) != b.get(k) for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = [(i, x, y) for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return [d for i, x, y in pairs for d in _differences(x, y, f"{path}[{i}]")]
    return [f"{path or '(top)'}: {str(a)[:60]} vs {str(b)[:60]}"]


# -- trials -------------------------------------------------------------------------------------------------------


@attrs.define
class Trial:
    """One trial of one stage kind: its kills (seconds after the stage attempt showed ``running``), the stage's
    status right after each kill, the resumes, and how the result compares with the reference."""

    kind: str
    trial: int
    run_dir: str = ""
    kill_after_s: list[float] = attrs.Factory(list)
    status_at_kill: list[str] = attrs.Factory(list)
    missed_kills: int = 0  # drawn kill moments the attempt outlived (it finished first)
    unkilled_s: float | None = None  # the stage time of a first attempt that was never killed
    resumes: int = 0
    attempts: int = 0
    identical: bool = False
    lost: int = 0
    twice: int = 0
    episodes: int = 0
    differences: list[str] = attrs.Factory(list)
    notes: list[str] = attrs.Factory(list)
    seconds: float = 0.0

    @property
    def kills(self) -> int:
        return len(self.kill_after_s)


@attrs.frozen
class Reference:
    kind: str
    run_dir: Path
    stage_seconds: float


def run_reference(kind: str, recipe: Path, out: Path) -> Reference:
    """The recipe once, uninterrupted; its stage time runs from ``running`` in the manifest to the exit."""
    parent = out / kind / "reference"
    parent.mkdir(parents=True, exist_ok=True)
    attempt = start(["run", str(recipe), "--out", str(parent)], parent / "sport.log")
    seen = attempt.wait_stage(parent, STAGE[kind], 0, timeout=600)
    rc = attempt.proc.wait()
    ended = time.monotonic()
    if rc != 0 or seen is None:
        raise RuntimeError(f"the reference run of {kind} failed (exit {rc}):\n{attempt.tail()}")
    return Reference(kind, attempt.run_dir, ended - seen)


def run_trial(
    kind: str,
    recipe: Path,
    ref: Reference,
    estimate: float,
    out: Path,
    index: int,
    rng: random.Random,
    kills: tuple[int, int],
) -> Trial:
    """One trial: ``kills`` (a range: the number is drawn) SIGKILLs at random moments, each followed by a resume,
    until the run completes. Kill j comes u·r·``estimate`` seconds after attempt j shows the stage running, u
    uniform in [0, 1) and r the part of the stage the attempt is expected to still need (1, then 1 − u of
    each earlier kill); an attempt that finishes before its kill moment ends the trial early (counted in
    ``missed_kills``; a first attempt that does gives its stage time in ``unkilled_s``)."""
    t0 = time.monotonic()
    stage = STAGE[kind]
    parent = out / kind / f"trial-{index}"
    parent.mkdir(parents=True, exist_ok=True)
    trial = Trial(kind, index)
    wanted = rng.randint(*kills)
    remaining = 1.0  # the part of the reference stage time an attempt is expected to still need
    attempt = start(["run", str(recipe), "--out", str(parent)], parent / "attempt-0.log")
    attempts_seen = 0
    limit = ref.stage_seconds + EXIT_GRACE_S
    while True:
        seen = attempt.wait_stage(parent, stage, attempts_seen, timeout=limit)
        if seen is None or trial.kills == wanted:  # the stage was skipped (it had completed), or enough kills
            break
        u = rng.random()
        deadline = seen + u * remaining * estimate
        while (left := deadline - time.monotonic()) > 0 and attempt.proc.poll() is None:
            time.sleep(min(left, 0.005))
        if attempt.proc.poll() is not None:
            trial.missed_kills += 1
            break
        at = time.monotonic() - seen
        kill_group(attempt.proc)
        entry = _manifest_stage(attempt.run_dir, stage)
        trial.kill_after_s.append(round(at, 3))
        trial.status_at_kill.append(entry.get("status", "?"))
        attempts_seen = entry.get("attempts", 0)
        remaining *= 1.0 - u
        trial.resumes += 1
        log = parent / f"attempt-{trial.resumes}.log"
        attempt = start(["run", "--resume", str(attempt.run_dir)], log, attempt.run_dir)
    try:
        rc = attempt.proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        kill_group(attempt.proc)
        rc = -9
    if seen is not None and not trial.kills:
        trial.unkilled_s = round(time.monotonic() - seen, 3)
    if rc != 0:
        trial.differences.append(f"{attempt.log.name}: sport exited with {rc}: {attempt.tail(3)}")
    trial.run_dir = str(attempt.run_dir)
    if attempt.run_dir is not None:
        entry = _manifest_stage(attempt.run_dir, stage)
        trial.attempts = int(entry.get("attempts", 0))
        if entry.get("status") != "completed":
            trial.differences.append(f"manifest: stage {stage} ended {entry.get('status')!r}, not 'completed'")
        interrupted = sum(s == "running" for s in trial.status_at_kill)
        if entry.get("status") == "completed" and trial.attempts != interrupted + 1:
            trial.differences.append(f"manifest: {trial.attempts} attempts for {interrupted} interruptions")
        if (attempt.run_dir / stage).is_dir():
            cmp = compare_stage(ref.run_dir / stage, attempt.run_dir / stage)
            trial.differences += cmp.differences
            trial.notes += cmp.notes
            trial.lost, trial.twice, trial.episodes = cmp.lost, cmp.twice, cmp.episodes
    trial.identical = not trial.differences
    trial.seconds = round(time.monotonic() - t0, 1)
    return trial


# -- the table ----------------------------------------------------------------------------------------------------


def kind_row(kind: str, ref: Reference, trials: list[Trial]) -> dict[str, Any]:
    return {
        "record": "kind",
        "kind": kind,
        "reference_stage_s": round(ref.stage_seconds, 2),
        "trials": len(trials),
        "kills": sum(t.kills for t in trials),
        "mid_stage": sum(s == "running" for t in trials for s in t.status_at_kill),  # the rest hit its teardown
        "resumes": sum(t.resumes for t in trials),
        "identical": sum(t.identical for t in trials),
        "lost": sum(t.lost for t in trials),
        "twice": sum(t.twice for t in trials),
        "episodes_checked": sum(t.episodes for t in trials),
        "ok": all(t.identical and t.lost == 0 and t.twice == 0 for t in trials),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| stage kind | reference stage (s) | kills (stage running) | resumes | identical / trials | episodes checked "
        "| lost | twice |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {r['kind']} | {r['reference_stage_s']:.1f} | {r['kills']} ({r['mid_stage']}) | {r['resumes']} | "
        f"{r['identical']} / {r['trials']} | {r['episodes_checked']} | {r['lost']} | {r['twice']} |\n"
        for r in rows
    )


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A rich progress bar over the trials (nothing when ``enabled`` is false)."""
    if not enabled:
        yield lambda _: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("faults", total=total)

        def advance(description: str) -> None:
            bar.update(task, advance=1, description=description)

        yield advance


@attrs.frozen
class Plan:
    """How much to do per stage kind: ``trials`` trials of ``kills`` = (fewest, most) kills each (the number
    is drawn), then more trials (at most ``extra_trials``) while fewer than ``min_kills`` kills in all have
    landed (a run can finish before its drawn kill moment, as load varies)."""

    trials: int = 2
    kills: tuple[int, int] = (1, 2)
    min_kills: int = 0
    extra_trials: int = 3


def run_kind(
    kind: str, spec: Size, pre: dict[str, Path], plan: Plan, seed: int, out: Path, advance: Callable[[str], None]
) -> tuple[dict[str, Any], list[Trial]]:
    """The reference and the trials of one stage kind; its kill moments come from its own generator (seeded
    by ``seed`` and the kind), so they do not depend on which other kinds run, or in what order."""
    recipe = out / kind / "recipe.toml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(tomli_w.dumps(target_recipe(kind, spec, pre)))
    ref = run_reference(kind, recipe, out)
    advance(f"{kind}: reference ({ref.stage_seconds:.1f} s)")
    rng = random.Random(f"{seed}:{kind}")
    estimate = ref.stage_seconds  # the shortest stage time seen: load on a shared machine varies
    done: list[Trial] = []
    while len(done) < plan.trials or (
        sum(t.kills for t in done) < plan.min_kills and len(done) < plan.trials + plan.extra_trials
    ):
        trial = run_trial(kind, recipe, ref, estimate, out, len(done), rng, plan.kills)
        estimate = min(estimate, trial.unkilled_s or estimate)
        done.append(trial)
        advance(f"{kind}: trial {trial.trial} ({trial.kills} kills, {'identical' if trial.identical else 'DIFFERS'})")
    return kind_row(kind, ref, done), done


def run_harness(
    size: str, kinds: list[str], plan: Plan, seed: int, out: Path, jobs: int = 1, progress: bool = False
) -> tuple[list[dict[str, Any]], list[Trial]]:
    """Run the harness, ``jobs`` stage kinds side by side. Returns the per-kind rows and every trial (also
    written to ``<out>/faults.jsonl``)."""
    spec = SIZES[size]
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    pre = spec.prerequisites(out / "prerequisites")
    first = sorted(kinds, key=lambda k: k in spec.inline)  # pooled kinds take longest: start them first
    _STOP.clear()
    with _progress(len(kinds) * (plan.trials + 1), progress) as advance, ThreadPoolExecutor(max(1, jobs)) as pool:
        try:
            made = list(pool.map(lambda k: run_kind(k, spec, pre, plan, seed, out, advance), first))
        except BaseException:  # Ctrl-C, a timeout, a failed reference: no run may outlive the harness
            stop_all()
            raise
    results = dict(zip(first, made, strict=True))
    rows = [results[k][0] for k in kinds]
    done = [t for k in kinds for t in results[k][1]]
    with open(out / "faults.jsonl", "w") as fh:
        for t in done:
            fh.write(json.dumps({"record": "trial", "size": size, "seed": seed, **_trial_dict(t)}) + "\n")
        for r in rows:
            fh.write(json.dumps({**r, "size": size, "seed": seed}) + "\n")
    return rows, done


def _trial_dict(t: Trial) -> dict[str, Any]:
    return {**attrs.asdict(t), "kills": t.kills}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="ci")
    parser.add_argument("--trials", type=int, default=2, help="trials per stage kind (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    parser.add_argument("--out", type=Path, default=Path("runs/faults"), help="folder for the runs and faults.jsonl")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated subset of {','.join(KINDS)}")
    parser.add_argument("--min-kills", type=int, default=1, help="fewest kills a trial draws (default 1)")
    parser.add_argument("--max-kills", type=int, default=2, help="most kills a trial draws (default 2)")
    parser.add_argument(
        "--min-total-kills", type=int, default=0, help="add trials (up to 3) until this many kills landed per kind"
    )
    parser.add_argument("--jobs", type=int, default=1, help="stage kinds run side by side (default 1)")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        parser.error(f"unknown stage kinds {unknown}; known: {', '.join(KINDS)}")
    if not 0 <= args.min_kills <= args.max_kills:
        parser.error("need 0 <= --min-kills <= --max-kills")
    plan = Plan(args.trials, (args.min_kills, args.max_kills), args.min_total_kills)
    try:
        rows, trials = run_harness(args.size, kinds, plan, args.seed, args.out, args.jobs, sys.stderr.isatty())
    except KeyboardInterrupt:
        print("interrupted; every sport process the harness started was killed", file=sys.stderr)
        return 130
    print(markdown(rows))
    for t in trials:
        if t.differences or t.notes:
            print(f"{t.kind} trial {t.trial} ({t.run_dir}), kills at {t.kill_after_s} s:")
            for d in t.differences:
                print(f"    {d}")
            for n in t.notes:
                print(f"    (not a difference) {n}")
    print(f"written: {args.out / 'faults.jsonl'}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
