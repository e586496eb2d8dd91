"""Executes the stages of a recipe in a run directory, with a manifest, caching and resume.

Run directory layout: ``recipe.resolved.toml`` (every default filled in), ``manifest.json`` (per stage:
status, input hash, output hashes, attempts, times; package versions; git revision), one folder per stage
(``<stage>/`` with ``checkpoints/``), and whatever loggers write (``tb/``, ``metrics.jsonl``).

A stage's *input hash* covers its component and config, its env, the run seed and the output hashes of the
stages it consumes. On ``--resume`` a stage is skipped when it completed with the same input hash and its
outputs still have their recorded hashes; a stage that was running when the run died is called again with
``ctx.resumed = True`` and continues from its checkpoints. One process at a time runs a run directory
(:class:`sport_core.runlock.RunLock`): a second ``--resume`` of a running run is refused with one line.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sport_core.artifacts import atomic_write_json, atomic_write_text, read_json, sha256_tree
from sport_core.config import unstructure
from sport_core.context import Events, MissingEnv, StageContext
from sport_core.errors import ArtifactError, RecipeError, SportError
from sport_core.parallel import StageJob, StageProcess, portable_extras, stage_limit
from sport_core.plugins import SportPluginManager
from sport_core.provenance import git_revision, now_utc, package_versions
from sport_core.recipe import Recipe, StageSpec, read_toml, validate
from sport_core.runlock import RunLock
from sport_core.video import require_video_writer

log = logging.getLogger("sport")
MANIFEST = "manifest.json"
RESOLVED = "recipe.resolved.toml"
MANIFEST_FORMAT = "sport-run-v1"


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so that a terminated run records itself as interrupted."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Runner:
    """Runs a validated recipe in ``run_dir`` (new or resumed)."""

    def __init__(self, recipe: Recipe, pm: SportPluginManager, run_dir: Path) -> None:
        self.recipe = recipe
        self.pm = pm
        # Absolute, so that stage paths mean the same whatever the working directory of a later resume.
        self.run_dir = Path(run_dir).resolve()
        self.manifest_path = self.run_dir / MANIFEST

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def create(cls, recipe: Recipe, pm: SportPluginManager, out_dir: str | Path | None = None) -> Runner:
        """A fresh run directory ``<out_dir>/<name>-<UTC timestamp>`` with the resolved recipe and manifest."""
        base = Path(out_dir if out_dir is not None else recipe.run.out_dir)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        run_dir = base / f"{recipe.run.name}-{stamp}"
        n = 1
        while run_dir.exists():
            n += 1
            run_dir = base / f"{recipe.run.name}-{stamp}-{n}"
        run_dir.mkdir(parents=True)
        atomic_write_text(run_dir / RESOLVED, recipe.to_toml())
        runner = cls(recipe, pm, run_dir)
        runner._write_manifest(runner._new_manifest())
        return runner

    @classmethod
    def resume(cls, run_dir: str | Path, pm: SportPluginManager) -> Runner:
        """Re-open ``run_dir`` with the recipe it was started with."""
        run_dir = Path(run_dir)
        if not (run_dir / MANIFEST).is_file() or not (run_dir / RESOLVED).is_file():
            raise ArtifactError(
                f"{run_dir} is not a sport run directory (no {MANIFEST} / {RESOLVED}; `sport run` makes them)"
            )
        recipe = validate(read_toml(run_dir / RESOLVED), pm.registry, source=str(run_dir / RESOLVED))
        runner = cls(recipe, pm, run_dir)
        runner.read_manifest()  # refuse a corrupt or foreign manifest now, with one line
        return runner

    def _new_manifest(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "name": self.recipe.run.name,
            "created": now_utc(),
            "recipe": self.recipe.source,
            "versions": package_versions(self.pm),
            "git_revision": git_revision(),
            "status": "created",
            "stages": {s.name: {"status": "pending", "attempts": 0} for s in self.recipe.stages},
        }

    def read_manifest(self) -> dict[str, Any]:
        """The manifest, checked for the structure this runner writes (else :class:`ArtifactError`)."""
        manifest = read_json(self.manifest_path, what="run manifest", made_by="`sport run`")
        stages = manifest.get("stages") if isinstance(manifest, dict) else None
        if (
            not isinstance(manifest, dict)
            or manifest.get("format") != MANIFEST_FORMAT
            or not isinstance(stages, dict)
            or not all(isinstance(entry, dict) for entry in stages.values())
        ):
            raise ArtifactError(f"{self.manifest_path} is not a {MANIFEST_FORMAT} manifest (corrupt or foreign file)")
        return manifest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write_json(self.manifest_path, manifest)

    # -- hashing ------------------------------------------------------------------------------------

    def input_hash(self, stage: StageSpec, manifest: dict[str, Any]) -> str:
        env = self.recipe.env_for(stage)
        payload = {
            "component": [stage.kind, stage.component.name],
            "config": unstructure(stage.component.config),
            "env": env.to_table() if env is not None else None,
            "seed": self.recipe.run.seed,
            "inputs": {role: self._input_fingerprint(stage, role, manifest) for role in sorted(stage.inputs)},
        }
        if stage.video is not None:  # only then, so that runs without videos keep their hashes
            payload["video"] = unstructure(stage.video)
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def _input_fingerprint(self, stage: StageSpec, role: str, manifest: dict[str, Any]) -> Any:
        external = stage.input_file(role)
        if external is not None:
            if not external.exists():
                raise ArtifactError(f"stage {stage.name!r}: input {role!r} names {external}, which no longer exists")
            return {"file": str(external), "sha256": sha256_tree(external)}
        return manifest["stages"][stage.input_stage(role)[0]].get("outputs", {})

    def _outputs_intact(self, entry: dict[str, Any]) -> bool:
        for out in entry.get("outputs", {}).values():
            path = self.run_dir / out["path"]
            if not path.exists() or sha256_tree(path) != out["sha256"]:
                return False
        return True

    def outputs_of(self, name: str, manifest: dict[str, Any]) -> dict[str, Path]:
        return {k: self.run_dir / v["path"] for k, v in manifest["stages"][name].get("outputs", {}).items()}

    # -- running ------------------------------------------------------------------------------------

    def needed(self, only: list[str] | None = None) -> list[str]:
        """The stages to run for ``only`` (default: all), in recipe order: the named stages and every stage
        they take inputs from, recursively. An unknown name is a :class:`RecipeError` listing the stages."""
        names = [s.name for s in self.recipe.stages]
        if not only:
            return names
        todo, wanted = list(only), set()
        while todo:
            name = todo.pop()
            if name in wanted:
                continue
            if name not in names:
                raise RecipeError(f"--stage {name}: the recipe has no such stage (stages: {', '.join(names)})")
            wanted.add(name)
            todo += self.upstream(self.recipe.stage(name))
        return [n for n in names if n in wanted]

    @staticmethod
    def upstream(stage: StageSpec) -> list[str]:
        """The stages of this run that ``stage`` takes inputs from (``file:`` inputs are not stages)."""
        return [stage.input_stage(r)[0] for r in stage.inputs if stage.input_file(r) is None]

    def run(self, only: list[str] | None = None, parallel_stages: int | None = None) -> str:
        """Run every stage, or the named ones and every stage they need (stages already up to date are
        skipped, see the module docstring); returns the run status.

        A stage starts once every stage it takes inputs from has completed; ``parallel_stages`` (default
        ``[run] parallel_stages``; ``0``: one per usable core) bounds how many run at once, see
        :mod:`sport_core.parallel`. The artifacts do not depend on it."""
        selected = self.needed(only)
        if only and len(selected) > len(set(only)):
            extra = [n for n in selected if n not in only]
            log.info("running %s, which %s need%s", ", ".join(extra), ", ".join(only), "s" if len(only) == 1 else "")
        setting = self.recipe.run.parallel_stages if parallel_stages is None else parallel_stages
        if setting < 0:
            raise SportError(f"parallel_stages must be 0 (one per core) or a positive count, got {setting}")
        with RunLock(self.run_dir):
            return self._run(selected, stage_limit(setting))

    def _register_loggers(self) -> list[tuple[str, Any]]:
        """Build and register the recipe's loggers; every one is checked (a misspelt or unmarked event hook is
        an error) before anything runs."""
        loggers: list[tuple[str, Any]] = []
        try:
            for i, ref in enumerate(self.recipe.loggers):
                name, logger = f"logger-{i}-{ref.name}", ref.build(self.pm.registry)
                self.pm.register_logger(logger, name=name, label=f"loggers[{i}] ({ref.name})")
                loggers.append((name, logger))
        except BaseException:
            self._unregister(loggers)
            raise
        return loggers

    def _run(self, selected: list[str], limit: int) -> str:
        manifest = self.read_manifest()
        loggers = self._register_loggers()
        executor = self.recipe.executor.build(self.pm.registry)
        status = "failed"
        try:
            with _sigterm_as_interrupt():
                self.pm.hook.sport_run_started(run_dir=self.run_dir, recipe=self.recipe)
                manifest["status"] = "running"
                self._write_manifest(manifest)
                extras = portable_extras(self.pm) if limit > 1 else []
                if isinstance(extras, str):
                    log.warning("running stages one at a time: %s", extras)
                    limit = 1
                if limit > 1:
                    self._run_parallel(selected, manifest, executor, limit, extras)
                else:
                    for name in selected:
                        self._run_stage(self.recipe.stage(name), manifest, executor)
                status = "completed"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            manifest["status"] = status
            manifest["finished"] = now_utc()
            self._write_manifest(manifest)
            self.pm.hook.sport_run_finished(run_dir=self.run_dir, status=status)
            self._unregister(loggers)
            executor.close()
        return status

    def _run_parallel(
        self, selected: list[str], manifest: dict[str, Any], executor: Any, limit: int, extras: list
    ) -> None:
        """Start every stage whose upstream stages have completed, at most ``limit`` at once. A stage that is
        the only one that can run runs here; stages that run together run in their own processes, which
        report every change of their manifest entry to this one, the manifest's only writer. After a failure
        no stage starts; the stages in flight finish, then the first failure is raised."""
        pending, running = list(selected), {}  # type: list[str], dict[str, StageProcess]
        failure: str | None = None
        try:
            while pending or running:
                if failure is None:
                    ready = self._ready(pending, running, manifest)
                    if not running and len(ready) == 1:
                        pending.remove(ready[0])
                        self._execute(self.recipe.stage(ready[0]), manifest, executor)
                        continue
                    for name in ready[: max(0, limit - len(running))]:
                        pending.remove(name)
                        running[name] = self._start_process(name, manifest, extras)
                if not running:
                    break
                failure = self._receive(running, manifest) or failure
        except KeyboardInterrupt as exc:
            self._stop(running, manifest, forward=bool(exc.args))
            raise
        if failure is not None:
            raise SportError(failure)

    def _ready(self, pending: list[str], running: dict[str, StageProcess], manifest: dict[str, Any]) -> list[str]:
        """Pending stages none of whose upstream stages is pending or running, in recipe order; up-to-date
        ones are skipped on the way (which may make others ready)."""
        while True:
            ready = [
                name
                for name in pending
                if not any(up in pending or up in running for up in self.upstream(self.recipe.stage(name)))
            ]
            current = [name for name in ready if self._skip_if_current(self.recipe.stage(name), manifest)]
            if not current:
                return ready
            for name in current:
                pending.remove(name)

    def _start_process(self, name: str, manifest: dict[str, Any], extras: list) -> StageProcess:
        job = StageJob(
            run_dir=self.run_dir,
            stage=name,
            manifest=copy.deepcopy(manifest),
            autoload=self.pm.autoload,
            extras=extras,
            log_level=log.getEffectiveLevel(),
        )
        stage = StageProcess(job)
        log.info("stage %s: started in process %s", name, stage.process.pid)
        return stage

    def _receive(
        self, running: dict[str, StageProcess], manifest: dict[str, Any], timeout: float | None = None
    ) -> str | None:
        """Wait (at most ``timeout`` seconds) for news from the stages in flight and record it; returns a
        failure's one-line description. A stage that reports itself interrupted raises KeyboardInterrupt."""
        from multiprocessing.connection import wait

        failure = None
        by_conn = {stage.conn: stage for stage in running.values()}
        for conn in wait(list(by_conn), timeout=timeout):
            stage = by_conn[conn]
            try:
                message = conn.recv()
            except EOFError:  # the stage's process has exited
                del running[stage.name]
                failure = self._finish_process(stage, manifest) or failure
                continue
            if message[0] == "entry":
                manifest["stages"][stage.name] = message[1]
                self._write_manifest(manifest)
            elif message[0] == "done":
                stage.status, stage.error = message[1], message[2]
        return failure

    def _finish_process(self, stage: StageProcess, manifest: dict[str, Any]) -> str | None:
        stage.process.join()
        stage.conn.close()
        entry = manifest["stages"][stage.name]
        if stage.status == "completed" and entry.get("status") == "completed":
            return None  # the stage's process said so in its log
        if stage.status == "interrupted":
            raise KeyboardInterrupt(f"stage {stage.name} was interrupted")
        reason = stage.error or f"its process died (exit code {stage.process.exitcode})"
        if entry.get("status") == "running":
            entry.update(status="failed", error=reason)
            self._write_manifest(manifest)
        return f"stage {stage.name!r} failed: {reason}"

    def _stop(self, running: dict[str, StageProcess], manifest: dict[str, Any], forward: bool) -> None:
        """After an interrupt: let every stage in flight record itself as interrupted, then reap them. A
        terminal's Ctrl-C reached them already; a signal sent to this process only (``forward``) is passed on.
        Stages that have not exited after 60 s are killed (their entries stay ``running``: resumable)."""
        if forward:
            for stage in running.values():
                stage.interrupt()
        deadline = time.monotonic() + 60.0
        while running and time.monotonic() < deadline:
            try:
                self._receive(running, manifest, timeout=max(0.0, deadline - time.monotonic()))
            except KeyboardInterrupt:
                continue
        for stage in running.values():
            stage.kill()
            stage.process.join()

    def run_in_child(self, name: str, manifest: dict[str, Any], report: Callable[[dict], None]) -> str:
        """Run stage ``name`` in this process for a runner in another (:mod:`sport_core.parallel`): the
        recipe's loggers and executor are built here, and every change of the stage's manifest entry goes to
        ``report`` instead of the manifest file."""
        loggers = self._register_loggers()
        executor = self.recipe.executor.build(self.pm.registry)
        try:  # SIGINT and SIGTERM are handled by the stage's process (sport_core.parallel)
            self.pm.hook.sport_run_started(run_dir=self.run_dir, recipe=self.recipe)
            self._execute(
                self.recipe.stage(name),
                manifest,
                executor,
                commit=lambda: report(copy.deepcopy(manifest["stages"][name])),
            )
        finally:
            self._unregister(loggers)
            executor.close()
        return "completed"

    def _unregister(self, loggers: list[tuple[str, Any]]) -> None:
        for name, logger in loggers:
            self.pm.unregister(logger, name=name)
            close = getattr(logger, "close", None)
            if close is not None:
                close()

    def _run_stage(self, stage: StageSpec, manifest: dict[str, Any], executor: Any) -> None:
        if not self._skip_if_current(stage, manifest):
            self._execute(stage, manifest, executor)

    def _skip_if_current(self, stage: StageSpec, manifest: dict[str, Any]) -> bool:
        """True (and the loggers told) when ``stage`` completed with today's input hash and intact outputs."""
        entry = manifest["stages"].setdefault(stage.name, {"status": "pending", "attempts": 0})
        if entry.get("status") != "completed" or any(
            manifest["stages"].get(up, {}).get("status") != "completed" for up in self.upstream(stage)
        ):
            return False
        if entry.get("input_hash") != self.input_hash(stage, manifest) or not self._outputs_intact(entry):
            return False
        log.info("stage %s: up to date, skipped", stage.name)
        self.pm.hook.sport_stage_finished(
            run_dir=self.run_dir, stage=stage.name, status="skipped", outputs=self.outputs_of(stage.name, manifest)
        )
        return True

    def _execute(
        self,
        stage: StageSpec,
        manifest: dict[str, Any],
        executor: Any,
        commit: Callable[[], None] | None = None,
    ) -> None:
        """Run ``stage`` (resuming an unfinished attempt with the same input hash) and record it in the
        manifest; ``commit`` persists the manifest (default: write it; a stage's process reports instead)."""
        commit = commit or (lambda: self._write_manifest(manifest))
        entry = manifest["stages"].setdefault(stage.name, {"status": "pending", "attempts": 0})
        digest = self.input_hash(stage, manifest)
        stage_dir = self.run_dir / stage.name
        unfinished = entry.get("status") in ("running", "interrupted", "failed")
        resumed = unfinished and entry.get("input_hash") == digest
        if not resumed and stage_dir.is_dir() and any(stage_dir.iterdir()):
            # What an earlier attempt with other inputs left (config, env, upstream outputs, or a config class
            # that gained a field) must not be resumed from or mixed in; it is set aside, not deleted.
            stale = self.run_dir / f"{stage.name}.stale-{entry.get('attempts', 0)}"
            stage_dir.rename(stale)
            log.warning(
                "stage %s: its inputs changed since its last attempt; starting over (old files in %s)",
                stage.name,
                stale,
            )
        entry.update(status="running", input_hash=digest, started=now_utc(), attempts=entry.get("attempts", 0) + 1)
        entry.pop("outputs", None)
        commit()
        checkpoint_dir = stage_dir / "checkpoints"
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        env_ref = self.recipe.env_for(stage)
        inputs, refs = {}, {}
        for role in stage.inputs:
            external = stage.input_file(role)
            if external is not None:
                inputs[role], refs[role] = {"file": external}, f"file {external}"
                continue
            ref_stage, _ = stage.input_stage(role)
            if manifest["stages"][ref_stage].get("status") != "completed":
                raise ArtifactError(f"stage {stage.name!r} needs stage {ref_stage!r}, which has not completed")
            inputs[role] = self.outputs_of(ref_stage, manifest)
            refs[role] = ref_stage
        ctx = StageContext(
            run_dir=self.run_dir,
            stage=stage,
            stage_dir=stage_dir,
            checkpoint_dir=checkpoint_dir,
            seed=self.recipe.run.seed,
            env=env_ref.build(self.pm.registry) if env_ref is not None else MissingEnv(stage.name, stage.label),
            env_ref=env_ref,
            executor=executor,
            registry=self.pm.registry,
            pm=self.pm,
            log=Events(self.pm, self.run_dir, stage.name),
            inputs=inputs,
            input_refs=refs,
            resumed=resumed,
            video=stage.video,
        )
        if stage.video is not None and stage.video.every > 0:
            require_video_writer()  # a missing PyAV is a one-line error now, not after the first filmed episode
        self.pm.hook.sport_stage_started(run_dir=self.run_dir, stage=stage.name, stage_dir=stage_dir, resumed=resumed)
        log.info("stage %s: %s %s%s", stage.name, stage.kind, stage.component.name, " (resumed)" if resumed else "")
        t0 = time.perf_counter()
        try:
            outputs = stage.component.build(self.pm.registry).run(ctx) or {}
        except KeyboardInterrupt:
            entry["status"] = "interrupted"
            commit()
            raise
        except BaseException as exc:
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            commit()
            self.pm.hook.sport_stage_finished(run_dir=self.run_dir, stage=stage.name, status="failed", outputs={})
            raise
        recorded = {}
        for artifact, path in outputs.items():
            path = Path(path)
            if not path.is_absolute():
                path = stage_dir / path
            if not path.exists():
                raise SportError(f"stage {stage.name!r} reported artifact {artifact!r} at {path}, which does not exist")
            recorded[artifact] = {"path": str(path.relative_to(self.run_dir)), "sha256": sha256_tree(path)}
        entry.update(
            status="completed", outputs=recorded, finished=now_utc(), seconds=round(time.perf_counter() - t0, 3)
        )
        entry.pop("error", None)
        commit()
        made = self.outputs_of(stage.name, manifest)
        try:
            self.pm.hook.sport_stage_completed(
                run_dir=self.run_dir,
                stage=stage.name,
                stage_dir=stage_dir,
                outputs=made,
                log=ctx.log,
                registry=self.pm.registry,
            )
        except Exception as exc:  # a summary for the loggers never fails a finished stage
            log.warning(
                "stage %s: a summary of its outputs for the loggers failed: %s: %s", stage.name, type(exc).__name__, exc
            )
        self.pm.hook.sport_stage_finished(run_dir=self.run_dir, stage=stage.name, status="completed", outputs=made)
        log.info("stage %s: completed in %.1f s", stage.name, entry["seconds"])
