"""``beta-posterior``: a Bayesian bound on the base policy's failure probability, labelled as such.

For each horizon T the failures by T are k(T) of N episodes. With a Beta(a, b) prior on the failure
probability p_T, the posterior is Beta(a + k(T), b + N − k(T)) (the Beta prior is conjugate to the binomial
count), and ε(T) is its (1 − β) quantile: P(p_T ≤ ε(T) | episodes) = 1 − β. With ``simultaneous = true`` each
horizon uses β / t_max, so by the union bound the posterior probability that *all* horizons hold at once is at
least 1 − β.

This is a *credible* bound: a statement about the posterior under the stated prior, not a frequentist
confidence bound (for the uniform prior it is close to, and slightly below, the Clopper–Pearson limit of the
built-in ``scenario`` certifier). The certificate says so (``guarantee.kind = "bayesian"``, ``guarantee.prior``),
and the evaluators print that kind next to every bound they derive.

Everything here comes from the documented core API: the episodes are collected and stored with
:func:`sport_core.collect.collect_into_store`, the certificate is built with
:func:`sport_core.certificates.new_certificate` and written with
:func:`sport_core.certificates.write_certificate`, and :class:`BetaPosteriorVerifier` re-checks it with
:func:`sport_core.verification.verify_store_certificate`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
from scipy import stats

from sport_core.actors import PolicyActor
from sport_core.artifacts import sha256_file
from sport_core.bounds import failures_by_horizon, ratio_bounds
from sport_core.certificates import describe_store, new_certificate, store_context, write_certificate
from sport_core.collect import collect_into_store, episode_limit
from sport_core.errors import RecipeError
from sport_core.stages import StageInput
from sport_core.verification import VerificationSummary, verify_store_certificate
from sport_core.weights import load_policy

METHOD = "beta-posterior"


@attrs.frozen
class BetaPosteriorConfig:
    """``episodes`` N; ``beta``: 1 − the posterior probability of each bound; ``prior_a``, ``prior_b``: the
    Beta prior (1, 1 is uniform); ``simultaneous``: β / t_max per horizon; ``bounds``: the target bounds B;
    ``t_max``: the largest horizon (default: the env's episode limit)."""

    episodes: int = attrs.field(default=10_001, validator=attrs.validators.gt(0))
    beta: float = attrs.field(default=1e-7, validator=[attrs.validators.gt(0.0), attrs.validators.lt(1.0)])
    prior_a: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
    prior_b: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
    simultaneous: bool = False
    bounds: tuple[float, ...] = (1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.025)
    t_max: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))


def posterior_numbers(
    failures: np.ndarray, n: int, beta: float, prior: tuple[float, float], simultaneous: bool, bounds: Any
) -> dict[str, Any]:
    """Every number of a ``beta-posterior`` certificate from k(1..t_max) of n episodes (what the certifier
    writes and the verifier recomputes)."""
    failures = np.asarray(failures, dtype=np.int64)
    t_max = int(failures.size)
    level = 1.0 - (beta / t_max if simultaneous else beta)
    a, b = prior
    eps = stats.beta.ppf(level, a + failures, b + n - failures)
    return {
        "beta": float(beta),
        "t_max": t_max,
        "episodes": int(n),
        "failures": [int(k) for k in failures],
        "epsilon": [float(e) for e in eps],
        "bounds": ratio_bounds(eps, bounds, failures),
        "prior": {"a": float(a), "b": float(b)},
        "simultaneous": bool(simultaneous),
        "guarantee": guarantee(beta, t_max, prior, simultaneous),
    }


def guarantee(beta: float, t_max: int, prior: tuple[float, float], simultaneous: bool) -> dict[str, Any]:
    """The certificate's ``guarantee`` table: Bayesian, with its prior."""
    return {
        "kind": "bayesian",
        "level": 1.0 - (beta / t_max if simultaneous else beta),
        "simultaneous": bool(simultaneous),
        "description": "Beta posterior quantile",
        "prior": f"Beta({prior[0]:g}, {prior[1]:g})",
    }


STATEMENT = (
    "Under the stated Beta prior on the base policy's failure probability by each horizon T, and given the N "
    "episodes, the posterior probability that it is at most epsilon[T-1] is at least the guarantee's level (for "
    "all horizons at once when simultaneous). This is a Bayesian credible bound, not a frequentist confidence "
    "bound. Every policy within alpha of the base then fails by T with probability at most "
    "min(1, alpha^T * epsilon[T-1]) whenever the base's does not exceed epsilon[T-1]."
)


class BetaPosteriorCertifier:
    """The ``beta-posterior`` certifier stage (see the module docstring)."""

    needs_env = True
    films = True  # collect_into_store films what a recipe's video table asks for
    inputs: ClassVar[dict[str, StageInput]] = {
        "policy": StageInput(("policy",), description="the base policy to certify")
    }
    outputs = ("certificate", "episodes")

    def __init__(self, config: BetaPosteriorConfig) -> None:
        self.config = config

    def run(self, ctx: Any) -> dict[str, Path]:
        cfg = self.config
        if not ctx.env.fixed_layout:
            raise RecipeError(f"stage {ctx.name!r}: {METHOD} needs a fixed-layout env (e.g. layout_seed = 0)")
        weights = ctx.policy_input()
        actor = PolicyActor(load_policy(weights, ctx.registry))
        ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        store = ctx.stage_dir / "episodes.bin"
        context = store_context(sha256_file(weights), ctx.env_ref.to_table(), ctx.seed)
        episodes = collect_into_store(ctx, actor, ctx.env, store, context, cfg.episodes)

        t_max = cfg.t_max or episode_limit(ctx.env) or 100
        numbers = posterior_numbers(
            failures_by_horizon(episodes.records, t_max),
            len(episodes),
            cfg.beta,
            (cfg.prior_a, cfg.prior_b),
            cfg.simultaneous,
            cfg.bounds,
        )
        guarantee_table = numbers.pop("guarantee")
        cert = new_certificate(
            ctx, method=METHOD, guarantee=guarantee_table, statement=STATEMENT, weights=weights, numbers=numbers
        )
        cert["episode_store"] = describe_store(store, ctx.stage_dir)
        path = write_certificate(ctx.stage_dir / "certificate.json", cert)
        top = max(numbers["bounds"], key=lambda r: r["bound"], default=None)
        if top is not None:
            ctx.log.scalars(len(episodes), {"certify/T_star": top["T_star"], "certify/alpha_star": top["alpha_star"]})
        return {"certificate": path, "episodes": store}


@attrs.frozen
class BetaPosteriorVerifierConfig:
    """No options."""


class BetaPosteriorVerifier:
    """Re-derives a ``beta-posterior`` certificate: hashes, the episode store, the env, every number."""

    def __init__(self, config: BetaPosteriorVerifierConfig) -> None:
        self.config = config

    def verify(
        self,
        path: Path,
        cert: dict[str, Any],
        *,
        store: str | os.PathLike | None = None,
        policy: str | os.PathLike | None = None,
        replay: int = 0,
        registry: Any = None,
    ) -> VerificationSummary:
        prior = cert.get("prior", {})

        def recompute(episodes: Any) -> dict[str, Any]:
            return posterior_numbers(
                failures_by_horizon(episodes.records, int(cert["t_max"])),
                len(episodes),
                float(cert["beta"]),
                (float(prior.get("a", float("nan"))), float(prior.get("b", float("nan")))),
                bool(cert.get("simultaneous", False)),
                [row["bound"] for row in cert["bounds"]],
            )

        return verify_store_certificate(
            path, cert, recompute, store=store, policy=policy, replay=replay, registry=registry
        )
