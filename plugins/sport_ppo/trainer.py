"""The ``ppo`` and ``projected-ppo`` trainer stages.

``ppo``: one :class:`sport_ppo.loop.Job` on the stage's env, a new policy from the ``policy`` component;
output ``policy``.

``projected-ppo`` (SPoRt's Experiment 2): inputs ``base`` (the certified policy; its weights must be the
certificate's) and ``certificate``. One job per α, sent through the stage's executor as independent tasks
(a process pool or Ray uses every core), each with its own checkpoint folder ``checkpoints/alpha-<α>/``
and output folder ``policies/alpha-<α>/``; all jobs share the stage's seeds, so episode i of every α
draws the same random numbers (common random numbers). A job whose ``summary.json`` matches its context
(α, config, base, certificate, env, seed) is not trained again: a killed stage redoes only the unfinished
α, and each of those resumes from its own last checkpoint.

Outputs: ``policies`` (a :mod:`sport_core.policyset` folder: one policy per α, each with the training-time
outcomes) and ``training`` (``training.json``: per α, the training episodes' failures at T* next to the
prior bound min(1, α^T*·ε(T*)) that covers every one of them).
"""

from __future__ import annotations

import copy
import logging
import math
import shutil
from pathlib import Path
from typing import Any, ClassVar

import attrs
import torch

from sport_core.artifacts import atomic_write_json, sha256_file
from sport_core.bounds import prior_bound
from sport_core.config import configured_component, structure, unstructure
from sport_core.devices import resolve_device
from sport_core.errors import RecipeError, RegistryError, SportError
from sport_core.evaluation import certified_base_input, stage_certificate
from sport_core.policyset import SetEntry, alpha_tag, write_policy_set
from sport_core.progress import progress_bar
from sport_core.seeding import stage_seeds
from sport_core.spaces import box_spaces
from sport_core.stages import StageInput
from sport_core.video import log_videos
from sport_core.weights import ModelCard, load_card, load_policy
from sport_ppo.config import PPOConfig, ProjectedPPOConfig
from sport_ppo.loop import Job, JobResult, finished_summary, run_job

log = logging.getLogger("sport.ppo")
SEED_NAMES = ("init", "update", "episodes")
TRAINING_FORMAT = "sport-projected-ppo-training-v1"


class PPOTrainer:
    """Stage component ``ppo`` (see :class:`sport_ppo.config.PPOConfig`)."""

    needs_env = True
    films = True  # training episodes, into videos/
    inputs: ClassVar[dict[str, StageInput]] = {}
    outputs = ("policy",)

    def __init__(self, config: PPOConfig) -> None:
        self.config = config

    def run(self, ctx: Any) -> dict[str, Path]:
        cfg = self.config
        resolve_device(cfg.device, ctx.name)
        seeds = stage_seeds(ctx.seed, ctx.name, SEED_NAMES)
        probe = ctx.env.make()
        sp = box_spaces(probe, ctx.name, "ppo")
        probe.close()
        component, pconf = configured_component(cfg, "policy", ctx.registry, ctx.name)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeds["init"] ^ 1)  # the critic uses seeds["init"] itself
            actor = component.build(pconf)(sp.obs_dim, sp.act_dim, sp.action_scale, sp.action_bias)
        card = ModelCard(
            cfg.policy,
            unstructure(pconf),
            sp.obs_dim,
            sp.act_dim,
            sp.action_scale,
            sp.action_bias,
            extra={"trainer": "ppo", "env_id": getattr(ctx.env, "env_id", "?")},
        )
        job = Job(
            stage=ctx.name,
            tag="",
            config=cfg,
            env_maker=ctx.env,
            actor=actor,
            card=card,
            seeds=seeds,
            checkpoint_dir=ctx.checkpoint_dir,
            out_dir=ctx.stage_dir,
            resume=ctx.resumed,
            context={"config": unstructure(cfg), "seed": ctx.seed},
            video=ctx.video,
            video_dir=ctx.stage_dir,
        )
        result = run_job(job, ctx.log.scalars, ctx.log)
        t = result.summary["training"]
        log.info(
            "stage %s: %d steps, %d episodes (%d goal, %d violation, %d timeout), %.0f s",
            ctx.name,
            result.summary["steps"],
            t["episodes"],
            t["goal"],
            t["violation"],
            t["timeout"],
            result.summary["wall_seconds"],
        )
        return {"policy": ctx.stage_dir / "policy.safetensors"}


class ProjectedPPOTrainer:
    """Stage component ``projected-ppo`` (see :class:`sport_ppo.config.ProjectedPPOConfig`)."""

    needs_env = False  # it trains on the certificate's scenario
    films = True  # training episodes of every α, into videos/alpha=<α>/
    inputs: ClassVar[dict[str, StageInput]] = {
        "certificate": StageInput(("certificate",), description="the base policy's certificate"),
        "base": StageInput(("policy",), description="the certified base policy (its weights are checked)"),
    }
    outputs = ("policies", "training")

    def __init__(self, config: ProjectedPPOConfig) -> None:
        self.config = config

    def run(self, ctx: Any) -> dict[str, Path]:
        cfg = self.config
        if ctx.stage.env is not None:
            raise RecipeError(
                f"stages.{ctx.name}.env: projected-ppo trains on the certificate's scenario; change rewards with "
                f"stages.{ctx.name}.config.env_overrides instead of a stage env table"
            )
        resolve_device(cfg.device, ctx.name)  # a one-line error here rather than one per α worker
        cert_path, cert, horizon, bound = stage_certificate(ctx, cfg.bound, cfg.horizon)
        alphas = self._alphas(ctx, cert, bound)
        env_maker, env_table = self._env(ctx, cert)
        base_w = certified_base_input(ctx, cert)
        base = load_policy(base_w, ctx.registry, made_by=f"stage {ctx.input_refs.get('base', 'base')!r}")
        base.requires_grad_(False)
        base_card = load_card(base_w)
        probe = env_maker.make()
        sp = box_spaces(probe, ctx.name, "projected-ppo")
        probe.close()
        if (sp.obs_dim, sp.act_dim) != (base_card.obs_dim, base_card.act_dim):
            raise RecipeError(
                f"stages.{ctx.name}.inputs.base: the base policy acts on obs {base_card.obs_dim} / actions "
                f"{base_card.act_dim}, the certified env has {sp.obs_dim} / {sp.act_dim}"
            )
        projection, projection_config = self._projection(ctx, base, sp.obs_dim)
        seeds = stage_seeds(ctx.seed, ctx.name, SEED_NAMES)
        eps_curve = cert["epsilon"][:horizon]  # ε(1..T*): the prior bound at T* is min(1, α^T*·ε(T*))
        common = {
            "config": {k: v for k, v in unstructure(cfg).items() if k != "alphas"},
            "seed": ctx.seed,
            "base_sha256": sha256_file(base_w),
            "certificate_sha256": sha256_file(cert_path),
            "env": env_table,
            "horizon": horizon,
        }
        policies = ctx.stage_dir / "policies"
        if not ctx.resumed:
            shutil.rmtree(policies, ignore_errors=True)  # a fresh attempt never mixes with leftovers
        done: dict[float, dict[str, Any]] = {}
        jobs = []
        for alpha in alphas:
            context = {"alpha": alpha, **common}
            out = policies / alpha_tag(alpha)
            summary = finished_summary(out, context) if ctx.resumed else None
            if summary is not None:
                done[alpha] = summary
                continue
            card = attrs.evolve(
                base_card,
                weights_sha256="",
                extra={
                    "trainer": "projected-ppo",
                    "alpha": alpha,
                    "projection": {"name": cfg.projection, "config": projection_config},
                    "base_sha256": common["base_sha256"],
                    "certificate_sha256": common["certificate_sha256"],
                    "through_projection": cfg.through_projection,
                },
            )
            jobs.append(
                Job(
                    stage=ctx.name,
                    tag=alpha_tag(alpha),
                    config=cfg,
                    env_maker=env_maker,
                    actor=copy.deepcopy(base).requires_grad_(True).train(),
                    card=card,
                    seeds=seeds,
                    checkpoint_dir=ctx.checkpoint_dir / alpha_tag(alpha),
                    out_dir=out,
                    resume=ctx.resumed,
                    context=context,
                    alpha=alpha,
                    base=base,
                    projection=copy.deepcopy(projection),
                    horizon=horizon,
                    video=ctx.video,
                    video_dir=ctx.stage_dir,
                    video_labels={"alpha": alpha},
                )
            )
        if done:
            log.info("stage %s: %d of %d alphas already trained; training the rest", ctx.name, len(done), len(alphas))
        with progress_bar(len(alphas), f"{ctx.name}: alphas trained", completed=len(done)) as advance:
            for result in ctx.executor.map(run_job, jobs):
                done[result.alpha] = result.summary
                self._report(ctx, result, alphas.index(result.alpha), eps_curve)
                advance(1)
        missing = [a for a in alphas if a not in done]
        if missing:
            raise SportError(f"stage {ctx.name!r}: the executor returned no result for alphas {missing}")
        return self._outputs(ctx, common, alphas, done, bound, eps_curve, policies)

    # -- helpers ------------------------------------------------------------------------------------------

    def _alphas(self, ctx: Any, cert: dict[str, Any], bound: float) -> list[float]:
        """The numeric α values: ``"certificate"`` is α* of the bound (its T* row)."""
        out = []
        for a in self.config.alphas:
            if a == "certificate":
                rows = [r for r in cert["bounds"] if math.isclose(r["bound"], bound, rel_tol=1e-12)]
                if not rows:
                    raise RecipeError(f'stages.{ctx.name}.config.alphas: "certificate" needs a certified bound')
                if not rows[0].get("feasible", True):
                    raise RecipeError(
                        f'stages.{ctx.name}.config.alphas: "certificate" asks for alpha* of bound {bound}, which the '
                        "certificate marks infeasible (no horizon reaches it even for the base); name a number"
                    )
                out.append(float(rows[0]["alpha_star"]))
            else:
                out.append(float(a))
        if len(set(out)) != len(out):
            raise RecipeError(f"stages.{ctx.name}.config.alphas: two entries give the same alpha ({sorted(out)})")
        return sorted(out)

    def _env(self, ctx: Any, cert: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The certificate's env with ``env_overrides``; the scenario must remain the certified one."""
        table = {**cert["env"]["config"], **self.config.env_overrides}
        kind = table.get("kind")
        try:
            component = ctx.registry.get("env", kind)
        except RegistryError as exc:
            raise RecipeError(f"stages.{ctx.name}: the certificate's env: {exc}") from exc
        config = structure(
            component.config_cls,
            {k: v for k, v in table.items() if k != "kind"},
            f"stages.{ctx.name}.config.env_overrides",
        )
        maker = component.build(config)
        if maker.scenario != cert["scenario"] or not maker.fixed_layout:
            raise RecipeError(
                f"stages.{ctx.name}.config.env_overrides: training must happen on the certified scenario "
                f"({cert['scenario'][:80]}…); these overrides change it to ({maker.scenario[:80]}…)"
            )
        return maker, table

    def _projection(self, ctx: Any, base: torch.nn.Module, obs_dim: int) -> tuple[Any, dict[str, Any]]:
        """The configured projection (built once, copied per α) and its config as a table for the cards."""
        cfg = self.config
        component, pconf = configured_component(cfg, "projection", ctx.registry, ctx.name)
        if cfg.through_projection:
            if not attrs.has(type(pconf)) or "differentiable" not in attrs.fields_dict(type(pconf)):
                raise RecipeError(
                    f"stages.{ctx.name}.config.through_projection: projection {cfg.projection!r} has no "
                    "'differentiable' option, so no gradient can flow through it"
                )
            pconf = attrs.evolve(pconf, differentiable=True)
        projection = component.build(pconf)
        with torch.no_grad():  # a projection that does not fit these policies fails here, in one line
            obs = torch.zeros(1, obs_dim)
            try:
                projection.project(base(obs), base(obs), 2.0)
            except (ValueError, TypeError) as exc:
                raise RecipeError(
                    f"stages.{ctx.name}.config.projection: {cfg.projection!r} cannot project this policy ({exc})"
                ) from exc
        projection.fallbacks = 0
        return projection, unstructure(pconf)

    def _report(self, ctx: Any, result: JobResult, index: int, eps_curve: list[float]) -> None:
        horizon = len(eps_curve)
        series = ctx.log.series(alpha=result.alpha)
        for step, scalars in result.metrics:
            series.scalars(step, scalars)
        if ctx.video is not None:
            log_videos(series, ctx.stage_dir, series.labels)
        t = result.summary["training"]
        prior = float(prior_bound(eps_curve, result.alpha)[-1])
        log.info(
            "stage %s: alpha=%g trained (%d steps, %.0f s): %d training episodes, %d failed by T=%d (rate %.4g, "
            "prior bound %.4g), %d projection fallbacks",
            ctx.name,
            result.alpha,
            result.summary["steps"],
            result.summary["wall_seconds"],
            t["episodes"],
            t.get("failures", 0),
            horizon,
            t.get("failure_rate", float("nan")),
            prior,
            result.summary["projection_fallbacks"],
        )
        ctx.log.scalars(
            index,
            {
                "alpha_sweep/alpha": result.alpha,
                "alpha_sweep/training_failure_rate": t.get("failure_rate", float("nan")),
                "alpha_sweep/prior_bound": prior,
            },
        )

    def _outputs(self, ctx, common, alphas, done, bound, eps_curve, policies: Path) -> dict[str, Path]:
        horizon, eps_t = len(eps_curve), float(eps_curve[-1])
        rows, entries = [], []
        for alpha in alphas:
            summary = done[alpha]
            weights = policies / alpha_tag(alpha) / "policy.safetensors"
            prior = float(prior_bound(eps_curve, alpha)[-1])
            training = {**summary["training"], "prior_bound": prior, "steps": summary["steps"]}
            training["wall_seconds"] = summary["wall_seconds"]
            training["projection_fallbacks"] = summary["projection_fallbacks"]
            entries.append(SetEntry(alpha, weights, summary["policy_sha256"], {"training": training}))
            rows.append({"alpha": alpha, **training})
        meta = {
            "made_by": {"stage": ctx.name, "trainer": "projected-ppo"},
            "base_sha256": common["base_sha256"],
            "certificate_sha256": common["certificate_sha256"],
        }
        write_policy_set(policies, entries, meta)
        training = atomic_write_json(
            ctx.stage_dir / "training.json",
            {
                "format": TRAINING_FORMAT,
                "horizon": horizon,
                "bound": None if math.isnan(bound) else bound,  # nan: evaluated at a given horizon, not a T*
                "epsilon_base": eps_t,
                "statement": (
                    "every training episode acted with a policy within the ratio alpha of the certified base, so "
                    "each failed by T with probability at most the prior bound min(1, alpha^T * epsilon(T))"
                ),
                "rows": rows,
            },
        )
        return {"policies": policies, "training": training}
