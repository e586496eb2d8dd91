"""``certified-eval``: roll out a task policy on a certificate's env and compare it with the certificate.

Inputs: ``certificate`` (a certifier stage; its ``certificate`` artifact) and ``policy`` (a saved task policy).
``alpha`` is the ratio bound the policy is claimed to satisfy (π_t ≤ α·π_b); it is not checked here — a
projected policy satisfies it by construction. The episodes run on the env *of the certificate* (rebuilt from
its ``env.config``), whatever env the stage itself has, since the certificate covers only that one. Output
``evaluation`` (``evaluation.json``): at the horizon T* of ``bound`` (default: the largest certified bound) or
at ``horizon``, the empirical failure rate, its Clopper–Pearson limits at the certificate's β and the prior
bound min(1, α^T·ε(T)) (:func:`sport_core.evaluation.evaluate_policy_records`); ``episodes``: the episode store.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import attrs

from sport_core.actors import PolicyActor
from sport_core.artifacts import atomic_write_json, relative_path, sha256_file
from sport_core.certificates import describe_policy, describe_store, env_maker_from_certificate, store_context
from sport_core.collect import collect_into_store
from sport_core.evaluation import evaluate_policy_records, stage_certificate
from sport_core.provenance import now_utc
from sport_core.stages import StageInput
from sport_core.weights import load_policy, policy_files

log = logging.getLogger("sport")


@attrs.frozen
class CertifiedEvalConfig:
    """``alpha``: the ratio bound the policy is claimed to satisfy (≥ 1); ``episodes`` to roll out; evaluate at
    the T* of ``bound`` (default: the largest bound in the certificate) or at ``horizon``."""

    alpha: float = attrs.field(default=1.0, validator=attrs.validators.ge(1.0))
    episodes: int = attrs.field(default=1000, validator=attrs.validators.gt(0))
    bound: float | None = None
    horizon: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))


class CertifiedEvaluator:
    """The ``certified-eval`` stage (see the module docstring)."""

    films = True  # collect_into_store films what ctx.video asks for
    inputs: ClassVar[dict[str, StageInput]] = {
        "certificate": StageInput(("certificate",), description="the certificate to compare with"),
        "policy": StageInput(("policy",), description="the task policy to roll out"),
    }
    outputs = ("evaluation", "episodes")

    def __init__(self, config: CertifiedEvalConfig) -> None:
        self.config = config

    def run(self, ctx: Any) -> dict[str, Path]:
        cfg = self.config
        cert_path, cert, _, _ = stage_certificate(ctx, cfg.bound, cfg.horizon)
        env = env_maker_from_certificate(cert, ctx.registry)
        env_table = cert["env"]["config"]
        if ctx.env_ref is not None and ctx.env_ref.to_table() != env_table:
            log.info("stage %s: evaluating on the certificate's env %s, not the stage's env", ctx.name, env_table)
        weights, _ = policy_files(ctx.policy_input())
        actor = PolicyActor(load_policy(weights, ctx.registry, made_by=f"stage {ctx.input_refs['policy']!r}"))
        ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        store_path = ctx.stage_dir / "episodes.bin"
        context = store_context(sha256_file(weights), env_table, ctx.seed)
        stored = collect_into_store(ctx, actor, env, store_path, context, cfg.episodes)

        result = evaluate_policy_records(cert, {cfg.alpha: stored.records}, bound=cfg.bound, horizon=cfg.horizon)
        result.update(
            certificate={"path": relative_path(cert_path, ctx.stage_dir), "sha256": sha256_file(cert_path)},
            policy={**describe_policy(weights, ctx.stage_dir), "stage": ctx.input_ref("policy")},
            seed=ctx.seed,
            episode_store=describe_store(store_path, ctx.stage_dir),
            created=now_utc(),
        )
        path = atomic_write_json(ctx.stage_dir / "evaluation.json", result)
        row = result["rows"][0]
        log.info(
            "stage %s: alpha=%g at T=%d: failure rate %.4g (k=%d of %d, CP upper %.4g) vs prior bound %.4g (%s)",
            ctx.name,
            row["alpha"],
            result["horizon"],
            row["failure_rate"],
            row["failures"],
            row["episodes"],
            row["cp_upper"],
            row["prior_bound"],
            result["guarantee"]["label"],
        )
        ctx.log.scalars(
            row["episodes"],
            {
                "eval/failure_rate": row["failure_rate"],
                "eval/cp_upper": row["cp_upper"],
                "eval/prior_bound": row["prior_bound"],
            },
        )
        return {"evaluation": path, "episodes": store_path}
