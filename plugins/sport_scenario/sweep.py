"""``projected-sweep``: a projected task policy's failure rate at T*, per α, next to the certificate's bound.

Inputs: ``certificate`` (a certifier stage's ``certificate``), ``base`` (the certified base policy: its
weights must be the ones the certificate names) and ``task`` (a saved task policy with the same observation
and action spaces). For every α in ``alphas`` the stage rolls out episodes 0..N−1 of
:class:`sport_core.actors.ProjectedActor` — the task projected by the ``projection`` component onto
{p : p(a|s) ≤ α·π_b(a|s)} — on the env *of the certificate* (rebuilt from its ``env.config``; a fixed
layout), with the run seed. Episode i therefore draws the same random numbers under every α (common random
numbers): α = 1 replays the base policy's own episodes exactly, and an α at which the task already meets
the bound replays the task's.

Output ``sweep`` (``sweep.json``): at the horizon T* of ``bound`` (default: the largest certified bound) or
at ``horizon``, one row per α with the failures k of N episodes, the empirical rate k/N, its
Clopper–Pearson upper and lower limits at the certificate's β, the prior bound min(1, α^T·ε(T)), whether
the data contradict it, the mean/std length of the episodes that succeeded by T
(:func:`sport_core.evaluation.evaluate_policy_records`), and the projection's fallbacks (rows it replaced by
the base) among the projected steps. Output ``alphas``: per α an episode store ``alpha-<α>.bin``
(:mod:`sport_core.episodes`) and ``alpha-<α>.json`` (its row and counts).

Resume: each α's files are written (the JSON atomically, last) as soon as its N episodes are in; a stage
called again with ``ctx.resumed`` keeps every α whose JSON matches this sweep (same α, N, seed, weights,
projection and env) and whose store still has the recorded hash, and rolls out only the others. A
fresh (not resumed) attempt clears the folder first.

Fallbacks: :func:`sport_core.collect.iter_collect` hands back only episode records, while the projection's
fallback count lives in the worker's copy of the actor. So the sweep sends its own chunks through
``ctx.executor`` — the same :func:`sport_core.collect.run_episode` with the same per-episode seeds, hence
the same records — and each chunk returns its records with the fallback and step counts of its actor, exact
under every executor. The chunks of all pending α go to the executor as one stream, so workers never wait
for the slowest chunk of one α before starting the next.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import shutil
from pathlib import Path
from typing import Any, ClassVar

import attrs
import torch

from sport_core.actors import ProjectedActor
from sport_core.artifacts import atomic_write_json, read_json, relative_path, sha256_file
from sport_core.bounds import PAPER_ALPHAS
from sport_core.certificates import describe_policy, env_maker_from_certificate
from sport_core.collect import EpisodeRecord, run_episode, run_filmed
from sport_core.config import component_field, configured_component, unstructure
from sport_core.episodes import EpisodeStore, read_episodes
from sport_core.errors import ArtifactError, RecipeError
from sport_core.evaluation import certified_base_input, evaluate_policy_records, stage_certificate
from sport_core.paths import EpisodePath, record_episode, write_paths
from sport_core.policyset import alpha_tag, is_policy_set, read_policy_set
from sport_core.progress import progress_bar
from sport_core.provenance import now_utc
from sport_core.stages import StageInput
from sport_core.video import Film, VideoConfig, VideoSink
from sport_core.weights import load_card, load_policy, policy_files

log = logging.getLogger("sport")

SWEEP_FORMAT = "sport-projected-sweep-v1"
ALPHA_FORMAT = "sport-projected-sweep-alpha-v1"
CRN_TEXT = (
    "episode i resets the env with the stream (seed, i, 'env') and samples actions with the stream "
    "(seed, i, 'policy') under every alpha (common random numbers)"
)


def _alphas_ok(instance: Any, attribute: attrs.Attribute, value: tuple[float, ...]) -> None:
    if not value:
        raise ValueError("alphas must list at least one ratio bound")
    bad = [a for a in value if not (math.isfinite(a) and a >= 1.0)]
    if bad:
        raise ValueError(f"alphas must be ratio bounds, finite and >= 1; got {bad}")
    if len(set(value)) != len(value):
        raise ValueError(f"alphas must not list a value twice: {sorted(value)}")


@attrs.frozen
class ProjectedSweepConfig:
    """``projection``: the projection component (default ``gaussian-kl``) and its ``projection_config``;
    ``alphas``: the ratio bounds to evaluate (default: the paper's 1 … 100); ``episodes`` per α; evaluate at
    the T* of ``bound`` (default: the largest bound in the certificate) or at ``horizon``; ``paths``: keep the
    x–y paths of the first ``paths`` episodes of every α (and the observations of episode 0) in
    ``alpha-<α>.paths.npz`` (:mod:`sport_core.paths`; 0 keeps none)."""

    projection: str = component_field("projection", "gaussian-kl", config_field="projection_config")
    projection_config: dict[str, Any] = attrs.Factory(dict)
    alphas: tuple[float, ...] = attrs.field(default=PAPER_ALPHAS, validator=_alphas_ok)
    episodes: int = attrs.field(default=1000, validator=attrs.validators.gt(0))
    bound: float | None = None
    horizon: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))
    paths: int = attrs.field(default=100, validator=attrs.validators.ge(0))


# -- the worker side ----------------------------------------------------------------------------------------


@attrs.frozen
class SweepChunk:
    """Episodes ``indices`` of one α. ``actor`` and ``env_maker`` are pickled by this process (never a file)."""

    alpha: float
    actor: bytes
    env_maker: bytes
    seed: int
    indices: tuple[int, ...]
    paths: int = 0  # episodes with index < paths keep their x-y path (episode 0 its observations too)
    video: VideoConfig | None = None  # the stage's video table: the episodes it asks for are filmed


@attrs.frozen
class ChunkResult:
    """A chunk's records, and how many steps its actor projected and how many of them fell back."""

    alpha: float
    records: list[EpisodeRecord]
    steps: int
    fallbacks: int
    paths: list[EpisodePath] = attrs.Factory(list)
    films: list[Film] = attrs.Factory(list)


def run_chunk(chunk: SweepChunk) -> ChunkResult:
    """Roll out one chunk; the actor is unpickled afresh, so its counts are this chunk's alone. Filmed episodes
    run on a filmable env with the same seeds (:func:`sport_core.collect.run_filmed`)."""
    actor = pickle.loads(chunk.actor)
    records, paths, films = [], [], []
    for i in chunk.indices:

        def one(e: Any, i: int = i) -> EpisodeRecord | EpisodePath:
            if i < chunk.paths:
                return record_episode(actor, e, chunk.seed, i, observations=i == 0)
            return run_episode(actor, e, chunk.seed, i)

        done, film = run_filmed(one, chunk.env_maker, chunk.video, i)
        if film is not None:
            films.append(film)
        if isinstance(done, EpisodePath):
            paths.append(done)
            done = done.record
        records.append(done)
    return ChunkResult(chunk.alpha, records, int(actor.steps), int(actor.fallbacks), paths, films)


# -- the stage ----------------------------------------------------------------------------------------------


@attrs.define
class _Pending:
    records: list[EpisodeRecord] = attrs.Factory(list)
    steps: int = 0
    fallbacks: int = 0
    paths: list[EpisodePath] = attrs.Factory(list)


class ProjectedSweep:
    """The ``projected-sweep`` evaluator stage (see the module docstring)."""

    films = True  # every α films the episodes ctx.video asks for, into videos/alpha=<α>/
    inputs: ClassVar[dict[str, StageInput]] = {
        "certificate": StageInput(("certificate",), description="the base policy's certificate"),
        "base": StageInput(("policy",), description="the certified base policy (its weights are checked)"),
        "task": StageInput(("policies", "policy"), description="one task policy, or a policy set with one per alpha"),
    }
    outputs = ("sweep", "alphas")

    def __init__(self, config: ProjectedSweepConfig) -> None:
        self.config = config

    def run(self, ctx: Any) -> dict[str, Path]:
        cfg = self.config
        projection = self._projection(ctx)
        cert_path, cert, horizon, bound = stage_certificate(ctx, cfg.bound, cfg.horizon)
        env = env_maker_from_certificate(cert, ctx.registry)
        env_table = cert["env"]["config"]
        alphas = sorted(cfg.alphas)
        base_w, task_ws, extras, task_desc = self._policies(ctx, cert, alphas)
        base = load_policy(base_w, ctx.registry, made_by=f"stage {ctx.input_refs['base']!r}")
        made_by = f"stage {ctx.input_refs['task']!r}"
        loaded: dict[Path, Any] = {}
        for w in task_ws.values():
            if w not in loaded:
                loaded[w] = load_policy(w, ctx.registry, made_by=made_by)
        tasks = {a: loaded[task_ws[a]] for a in alphas}
        self._probe(ctx, projection, base, tasks[alphas[-1]], load_card(base_w).obs_dim)

        common = {
            "episodes": cfg.episodes,
            "seed": ctx.seed,
            "base_sha256": sha256_file(base_w),
            "projection": {"name": cfg.projection, "config": unstructure(projection.config)},
            "env": env_table,
            "paths": min(cfg.paths, cfg.episodes),
        }
        contexts = {a: {"alpha": a, "task_sha256": sha256_file(task_ws[a]), **common} for a in alphas}
        out = ctx.stage_dir / "alphas"
        if not ctx.resumed and out.exists():
            shutil.rmtree(out)  # a fresh attempt never mixes with leftovers of another configuration
        out.mkdir(parents=True, exist_ok=True)
        finished = {a: s for a in alphas if (s := _finished(out, a, contexts[a])) is not None}
        pending = [a for a in alphas if a not in finished]
        if finished:
            log.info(
                "stage %s: %d of %d alphas already evaluated; rolling out the rest",
                ctx.name,
                len(finished),
                len(alphas),
            )

        env_blob = pickle.dumps(env)
        workers = max(1, getattr(ctx.executor, "workers", 1))
        size = max(1, min(64, math.ceil(cfg.episodes / (4 * workers))))
        actors = {a: pickle.dumps(ProjectedActor(base, tasks[a], projection.fresh(), a)) for a in pending}
        chunks = [
            SweepChunk(
                a, actors[a], env_blob, ctx.seed, tuple(range(i, min(i + size, cfg.episodes))), cfg.paths, ctx.video
            )
            for a in pending
            for i in range(0, cfg.episodes, size)
        ]
        buckets = {a: _Pending() for a in pending}
        sinks = {a: VideoSink(ctx.stage_dir, ctx.log.series(alpha=a)) for a in pending}
        with progress_bar(len(pending) * cfg.episodes, f"{ctx.name}: alpha sweep") as advance:
            for result in ctx.executor.map(run_chunk, chunks):
                for film in result.films:  # before the records, so a stored α never lacks its videos
                    sinks[result.alpha](film)
                bucket = buckets[result.alpha]
                bucket.records.extend(result.records)
                bucket.steps += result.steps
                bucket.fallbacks += result.fallbacks
                bucket.paths.extend(result.paths)
                advance(len(result.records))
                if len(bucket.records) == cfg.episodes:
                    alpha = result.alpha
                    finished[alpha] = self._finish(ctx, cert, alpha, bucket, out, contexts[alpha])
                    self._report(ctx, alphas.index(alpha), finished[alpha], horizon, cert["guarantee"]["kind"])
                    del buckets[alpha]
        if buckets:
            raise ArtifactError(
                f"stage {ctx.name!r}: the executor returned too few episodes for alphas {sorted(buckets)}"
            )

        records = {a: read_episodes(out / f"{alpha_tag(a)}.bin", strict=True).episode_records() for a in alphas}
        result = evaluate_policy_records(cert, records, bound=cfg.bound, horizon=cfg.horizon)
        for row in result["rows"]:
            summary = finished[row["alpha"]]
            row.update(
                fallbacks=summary["fallbacks"],
                projected_steps=summary["projected_steps"],
                episode_store=summary["episode_store"],
            )
            if "paths" in summary:
                row["paths"] = summary["paths"]
            if extras.get(row["alpha"]):
                row.update(extras[row["alpha"]])
        star = [r for r in cert["bounds"] if cfg.horizon is None and r["bound"] == bound]
        fallbacks = sum(r["fallbacks"] for r in result["rows"])
        projected = sum(r["projected_steps"] for r in result["rows"])
        if fallbacks:
            log.warning(
                "stage %s: the projection fell back to the base in %d of %d projected steps (non-finite or "
                "unsolvable rows; those steps acted with the base, so the ratio bound still held): %s",
                ctx.name,
                fallbacks,
                projected,
                ", ".join(f"alpha={r['alpha']:g}: {r['fallbacks']}" for r in result["rows"] if r["fallbacks"]),
            )
        result.update(
            fallbacks={"total": fallbacks, "projected_steps": projected},
            format=SWEEP_FORMAT,
            alpha_star=star[0]["alpha_star"] if star else None,
            scenario=cert["scenario"],
            projection=common["projection"],
            episodes=cfg.episodes,
            seed=ctx.seed,
            common_random_numbers=CRN_TEXT,
            certificate={"path": relative_path(cert_path, ctx.stage_dir), "sha256": sha256_file(cert_path)},
            base_policy={**describe_policy(base_w, ctx.stage_dir), "stage": ctx.input_ref("base")},
            task_policy={**task_desc, "stage": ctx.input_ref("task")},
            created=now_utc(),
        )
        path = atomic_write_json(ctx.stage_dir / "sweep.json", result)
        return {"sweep": path, "alphas": out}

    # -- helpers ------------------------------------------------------------------------------------------

    def _projection(self, ctx: Any) -> _ProjectionFactory:
        """The configured projection component, or a one-line error naming the known ones."""
        return _ProjectionFactory(*configured_component(self.config, "projection", ctx.registry, ctx.name))

    def _policies(
        self, ctx: Any, cert: dict[str, Any], alphas: list[float]
    ) -> tuple[Path, dict[float, Path], dict[float, dict], dict[str, Any]]:
        """(base weights, task weights per α, extra row fields per α, the task input described).

        The base must be the certified one. The task input is one saved policy (the same task under every α,
        Experiment 1) or a policy set (:mod:`sport_core.policyset`: one task per α, e.g. Projected PPO's
        fine-tunings, Experiment 2), which must hold every α of the sweep; a set's per-α ``training`` table is
        copied into the rows. Every task must act in the base's spaces."""
        base_w = certified_base_input(ctx, cert)
        made = ctx.inputs.get("task", {})
        pinned = ":" in ctx.stage.inputs.get("task", "")
        task_in = ctx.input("task", "policies") if "policies" in made and not pinned else ctx.policy_input("task")
        if is_policy_set(task_in):
            entries = read_policy_set(task_in, made_by=f"stage {ctx.input_refs['task']!r}")
            missing = [a for a in alphas if a not in entries]
            if missing:
                raise RecipeError(
                    f"stages.{ctx.name}.inputs.task: the policy set {task_in} has no policy for alphas {missing} "
                    f"(it has {sorted(entries)}); set stages.{ctx.name}.config.alphas to a subset"
                )
            task_ws = {a: entries[a].weights for a in alphas}
            extras = {a: {k: v for k, v in entries[a].extra.items() if k == "training"} for a in alphas}
            index = Path(task_in) / "policies.json" if Path(task_in).is_dir() else Path(task_in)
            desc = {"policy_set": relative_path(index, ctx.stage_dir), "alphas": sorted(entries)}
        else:
            task_w, _ = policy_files(ctx.policy_input("task"))
            task_ws, extras = dict.fromkeys(alphas, task_w), {}
            desc = describe_policy(task_w, ctx.stage_dir)
        b = load_card(base_w)
        for task_w in dict.fromkeys(task_ws.values()):
            t = load_card(task_w)
            for field in ("obs_dim", "act_dim", "action_scale", "action_bias"):
                if getattr(b, field) != getattr(t, field):
                    raise RecipeError(
                        f"stages.{ctx.name}.inputs.task: the task policy's {field} {getattr(t, field)} differs from "
                        f"the base policy's {getattr(b, field)}; both must act in the same spaces"
                    )
        return base_w, task_ws, extras, desc

    def _probe(self, ctx: Any, projection: _ProjectionFactory, base: Any, task: Any, obs_dim: int) -> None:
        """Project one observation before any rollout, so that a projection that does not fit these policies
        (e.g. a categorical one for Gaussian policies) fails here with one line rather than in a worker."""
        obs = torch.zeros(1, obs_dim)
        try:
            with torch.no_grad():
                ProjectedActor(base, task, projection.fresh(), max(self.config.alphas)).distribution(obs)
        except (ValueError, TypeError) as exc:
            raise RecipeError(
                f"stages.{ctx.name}.config.projection: {self.config.projection!r} cannot project these policies' "
                f"distributions ({exc})"
            ) from exc

    def _finish(
        self, ctx: Any, cert: dict[str, Any], alpha: float, bucket: _Pending, out: Path, context: dict[str, Any]
    ) -> dict[str, Any]:
        """Write α's episode store, then (atomically, last) its JSON; returns the JSON's content."""
        store_path = out / f"{alpha_tag(alpha)}.bin"
        if store_path.exists():
            store_path.unlink()  # an earlier attempt died between the store and the JSON
        # by index, whatever order the workers finished in: the floating-point sums (length mean/std) then
        # come out bit for bit the same as sweep.json's, which reads the stores, whatever the worker count
        records = sorted(bucket.records, key=lambda r: r.index)
        with EpisodeStore.open(store_path, ctx.seed, _context_text(context)) as store:
            store.extend(records)
        cfg = self.config
        (row,) = evaluate_policy_records(cert, {alpha: records}, bound=cfg.bound, horizon=cfg.horizon)["rows"]
        summary = {
            "format": ALPHA_FORMAT,
            "context": context,
            "row": row,
            "fallbacks": bucket.fallbacks,
            "projected_steps": bucket.steps,
            "episode_store": {"path": f"alphas/{store_path.name}", "sha256": sha256_file(store_path)},
        }
        if bucket.paths:
            paths_file = write_paths(out / f"{alpha_tag(alpha)}.paths.npz", bucket.paths)
            summary["paths"] = {
                "path": f"alphas/{paths_file.name}",
                "sha256": sha256_file(paths_file),
                "episodes": len(bucket.paths),
            }
        atomic_write_json(out / f"{alpha_tag(alpha)}.json", summary)
        return summary

    def _report(self, ctx: Any, step: int, summary: dict[str, Any], horizon: int, kind: str) -> None:
        """Log α's row; ``kind`` is the certificate's guarantee kind, printed with the prior bound."""
        row = summary["row"]
        log.info(
            "stage %s: alpha=%g at T=%d: failure rate %.4g (k=%d of %d, CP %.4g..%.4g) vs prior bound %.4g (%s); "
            "%d fallbacks in %d projected steps",
            ctx.name,
            row["alpha"],
            horizon,
            row["failure_rate"],
            row["failures"],
            row["episodes"],
            row["cp_lower"],
            row["cp_upper"],
            row["prior_bound"],
            kind,
            summary["fallbacks"],
            summary["projected_steps"],
        )
        scalars = {
            "sweep/alpha": row["alpha"],
            "sweep/log_alpha": math.log(row["alpha"]),
            "sweep/failure_rate": row["failure_rate"],
            "sweep/cp_upper": row["cp_upper"],
            "sweep/cp_lower": row["cp_lower"],
            "sweep/prior_bound": row["prior_bound"],
            "sweep/fallbacks": summary["fallbacks"],
        }
        if row["success_length_mean"] is not None:
            scalars["sweep/success_length_mean"] = row["success_length_mean"]
            scalars["sweep/success_length_std"] = row["success_length_std"]
        ctx.log.scalars(step, scalars)
        # the same row as one series per α, so that loggers that compare runs (W&B) see α as a config value
        per_alpha = {
            k.replace("sweep/", "eval/"): v for k, v in scalars.items() if k not in ("sweep/alpha", "sweep/log_alpha")
        }
        ctx.log.series(alpha=row["alpha"]).scalars(row["episodes"], per_alpha)


@attrs.frozen
class _ProjectionFactory:
    """A projection component with its config: ``fresh()`` builds a new instance (its own fallback count)."""

    component: Any
    config: Any

    def fresh(self) -> Any:
        return self.component.build(self.config)


def _context_text(context: dict[str, Any]) -> str:
    return json.dumps(context, sort_keys=True)


def _finished(out: Path, alpha: float, context: dict[str, Any]) -> dict[str, Any] | None:
    """α's summary if an earlier attempt finished it for this very sweep (same context, store intact)."""
    path = out / f"{alpha_tag(alpha)}.json"
    if not path.is_file():
        return None
    try:
        summary = read_json(path)
    except ArtifactError:
        return None
    if not isinstance(summary, dict) or summary.get("format") != ALPHA_FORMAT or summary.get("context") != context:
        return None
    for kept in (summary["episode_store"], summary.get("paths")):
        if kept is None:
            continue
        file = out.parent / kept["path"]
        if not file.is_file() or sha256_file(file) != kept["sha256"]:
            return None
    return summary
