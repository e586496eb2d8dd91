"""``scenario`` and ``scenario-uniform``: certify a base policy's failure probability from N episodes.

The stage takes input ``policy`` (a saved policy), refuses an env that draws a new layout at each reset
(the certificate is conditional on one scenario distribution, stated in words in the certificate), rolls out
N episodes through the run's executor, appending each record to the episode store
(:mod:`sport_core.episodes`) as it arrives — so a killed stage, called again with ``ctx.resumed``,
collects only the missing indices — and writes ``certificate.json`` (see :mod:`sport_core.certificates`;
:mod:`sport_scenario.verifier` re-checks it).

``scenario`` bounds each horizon at β (set ``bonferroni = true`` to make T* safe to choose after seeing the
data); ``scenario-uniform`` always bounds all horizons at once (β / T_max each).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import attrs

from sport_core.actors import PolicyActor
from sport_core.artifacts import sha256_file
from sport_core.bounds import failures_by_horizon, scenario_certificate
from sport_core.certificates import describe_store, new_certificate, store_context, write_certificate
from sport_core.collect import collect_into_store, episode_limit
from sport_core.errors import RecipeError
from sport_core.stages import StageInput
from sport_core.weights import load_policy, policy_files
from sport_scenario.verifier import clopper_pearson_guarantee

log = logging.getLogger("sport")

#: The target bounds B of the paper's figure of max permitted log α against T.
PAPER_BOUNDS: tuple[float, ...] = (1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.025)
DEFAULT_BETA = 1e-7
DEFAULT_T_MAX = 100


def _open_unit(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    if value is not None and not 0.0 < value < 1.0:
        raise ValueError(f"{attribute.name} must lie strictly between 0 and 1, got {value}")


def _bounds_ok(instance: Any, attribute: attrs.Attribute, value: tuple[float, ...]) -> None:
    bad = [b for b in value if not 0.0 < b <= 1.0]
    if bad:
        raise ValueError(f"must be target failure probabilities in (0, 1], got {bad}")


@attrs.frozen
class UniformScenarioConfig:
    """``episodes`` N; ``beta`` (1 − confidence; default 1e-7) or ``confidence``, not both; ``bounds``: the
    target bounds B to find (T*, α*) for; ``t_max``: the largest horizon (default: the env's episode limit,
    else 100)."""

    episodes: int = attrs.field(default=10_001, validator=attrs.validators.gt(0))
    beta: float | None = attrs.field(default=None, validator=_open_unit)
    confidence: float | None = attrs.field(default=None, validator=_open_unit)
    bounds: tuple[float, ...] = attrs.field(default=PAPER_BOUNDS, validator=_bounds_ok)
    t_max: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))

    def __attrs_post_init__(self) -> None:
        if self.beta is not None and self.confidence is not None:
            raise ValueError("give beta or confidence (= 1 − beta), not both")

    @property
    def effective_beta(self) -> float:
        if self.beta is not None:
            return self.beta
        return 1.0 - self.confidence if self.confidence is not None else DEFAULT_BETA


@attrs.frozen
class ScenarioConfig(UniformScenarioConfig):
    """As ``scenario-uniform``, plus ``bonferroni``: bound every horizon at β / t_max (simultaneous)."""

    bonferroni: bool = False


def guarantee_text(simultaneous: bool) -> str:
    """The certificate's statement in words (``simultaneous``: the Bonferroni variant)."""
    horizons = (
        "for all horizons T <= t_max at once (each bound at beta / t_max: a union bound, so T may be "
        "chosen after seeing the data)"
        if simultaneous
        else "for each horizon T fixed in advance"
    )
    return (
        f"With confidence at least 1 - beta over the N base-policy episodes, {horizons}, the base policy fails by "
        "T with probability at most epsilon[T-1] on the scenario distribution stated in 'scenario'; every policy "
        "pi with pi(a|s) <= alpha * pi_base(a|s) for all states and actions (alpha >= 1) then fails by T with "
        "probability at most min(1, alpha^T * epsilon[T-1]). For each target bound B, alpha_star is the largest "
        "alpha that keeps this at or below B, reached at horizon T_star."
    )


class ScenarioCertifier:
    """The ``scenario`` certifier stage (see the module docstring)."""

    needs_env = True
    films = True  # collect_into_store films what ctx.video asks for
    inputs: ClassVar[dict[str, StageInput]] = {
        "policy": StageInput(("policy",), description="the base policy to certify")
    }
    outputs = ("certificate", "episodes")
    method = "scenario"

    def __init__(self, config: UniformScenarioConfig) -> None:
        self.config = config

    @property
    def bonferroni(self) -> bool:
        return bool(getattr(self.config, "bonferroni", False))

    def run(self, ctx: Any) -> dict[str, Path]:
        cfg = self.config
        env = ctx.env
        if not getattr(env, "fixed_layout", False):
            raise RecipeError(
                f"stage {ctx.name!r}: the {self.method} certifier needs a fixed-layout env (the same layout and "
                f"initial pose at every reset), but env {getattr(env, 'env_id', '?')!r} is configured with random "
                "layouts; give it a fixed layout (e.g. layout_seed = 0) in [stages.env]"
            )
        weights, _ = policy_files(ctx.policy_input())
        actor = PolicyActor(load_policy(weights, ctx.registry, made_by=f"stage {ctx.input_refs['policy']!r}"))
        env_table = ctx.env_ref.to_table()
        t_max = cfg.t_max or episode_limit(env) or DEFAULT_T_MAX
        beta = cfg.effective_beta
        ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        store_path = ctx.stage_dir / "episodes.bin"
        context = store_context(sha256_file(weights), env_table, ctx.seed)
        stored = collect_into_store(ctx, actor, env, store_path, context, cfg.episodes)

        numbers = scenario_certificate(
            failures_by_horizon(stored.records, t_max), len(stored), beta, cfg.bounds, self.bonferroni
        )
        certificate = new_certificate(
            ctx,
            method=self.method,
            guarantee=clopper_pearson_guarantee(beta, t_max, self.bonferroni),
            statement=guarantee_text(self.bonferroni),
            weights=weights,
            numbers=numbers,
        )
        certificate["episode_store"] = describe_store(store_path, ctx.stage_dir)
        path = write_certificate(ctx.stage_dir / "certificate.json", certificate)
        self._report(ctx, numbers)
        return {"certificate": path, "episodes": store_path}

    def _report(self, ctx: Any, numbers: dict[str, Any]) -> None:
        n = numbers["episodes"]
        for row in numbers["bounds"]:
            log.info(
                "stage %s: B=%g: T*=%d, alpha*=%.6g (k=%d of %d, epsilon=%.6g)%s",
                ctx.name,
                row["bound"],
                row["T_star"],
                row["alpha_star"],
                row["failures_at_T_star"],
                n,
                row["epsilon_at_T_star"],
                "" if row["feasible"] else " — not reachable even by the base policy",
            )
        if numbers["bounds"]:
            top = max(numbers["bounds"], key=lambda r: r["bound"])
            ctx.log.scalars(
                n,
                {
                    "certify/T_star": top["T_star"],
                    "certify/alpha_star": top["alpha_star"],
                    "certify/epsilon_T_star": top["epsilon_at_T_star"],
                    "certify/failures_T_star": top["failures_at_T_star"],
                },
            )


class UniformScenarioCertifier(ScenarioCertifier):
    """``scenario-uniform``: the bounds hold for all horizons at once (β / t_max each)."""

    method = "scenario-uniform"

    @property
    def bonferroni(self) -> bool:
        return True
