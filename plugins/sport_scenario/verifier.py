"""The verifier of ``scenario`` and ``scenario-uniform`` certificates (registered under both method names).

It re-derives the whole certificate from its episode store with
:func:`sport_core.verification.verify_store_certificate`: hashes of the store, the weights and the card; the
store's header and its episodes 0..N−1; the env description; then k(T), ε(T) (Clopper–Pearson at β, or
β / t_max for all horizons at once), T* and α* for every target bound
(:func:`sport_core.bounds.scenario_certificate`); optionally it replays episodes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs

from sport_core.bounds import failures_by_horizon, scenario_certificate
from sport_core.verification import VerificationSummary, mismatch, verify_store_certificate


@attrs.frozen
class ScenarioVerifierConfig:
    """No options."""


def clopper_pearson_guarantee(beta: float, t_max: int, simultaneous: bool) -> dict[str, Any]:
    """The ``guarantee`` table of a scenario certificate: frequentist, level 1 − β per horizon, or 1 − β / t_max
    each when the bounds hold for all horizons at once."""
    return {
        "kind": "frequentist",
        "level": 1.0 - (beta / t_max if simultaneous else beta),
        "simultaneous": bool(simultaneous),
        "description": "Clopper-Pearson upper limit",
    }


class ScenarioVerifier:
    """Verifier component for ``scenario`` and ``scenario-uniform`` certificates."""

    def __init__(self, config: ScenarioVerifierConfig | None = None) -> None:
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
        for key in ("bonferroni", "failures"):
            if key not in cert:
                raise mismatch(path, f"{key}: missing (a {cert['method']} certificate records it)")
        if cert["method"] == "scenario-uniform" and cert["bonferroni"] is not True:
            raise mismatch(path, "bonferroni: a scenario-uniform certificate must hold for all horizons at once (true)")

        def recompute(episodes: Any) -> dict[str, Any]:
            numbers = scenario_certificate(
                failures_by_horizon(episodes.records, int(cert["t_max"])),
                len(episodes),
                float(cert["beta"]),
                [b.get("bound") for b in cert["bounds"]],
                bool(cert["bonferroni"]),
            )
            numbers["guarantee"] = clopper_pearson_guarantee(numbers["beta"], numbers["t_max"], numbers["bonferroni"])
            return numbers

        return verify_store_certificate(
            path, cert, recompute, store=store, policy=policy, replay=replay, registry=registry
        )
