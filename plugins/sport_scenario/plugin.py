"""Registers the ``scenario`` and ``scenario-uniform`` certifiers and the ``certified-eval`` and
``projected-sweep`` evaluators, and the verifier of scenario certificates."""

from sport_core import Component, hookimpl
from sport_scenario.certifier import ScenarioCertifier, ScenarioConfig, UniformScenarioCertifier, UniformScenarioConfig
from sport_scenario.evaluate import CertifiedEvalConfig, CertifiedEvaluator
from sport_scenario.sweep import ProjectedSweep, ProjectedSweepConfig
from sport_scenario.verifier import ScenarioVerifier, ScenarioVerifierConfig


@hookimpl
def sport_register_certifiers():
    return [
        Component(
            "scenario",
            ScenarioCertifier,
            ScenarioConfig,
            "Clopper-Pearson bound on the base policy's failure probability per horizon, T* and alpha*",
        ),
        Component(
            "scenario-uniform",
            UniformScenarioCertifier,
            UniformScenarioConfig,
            "as scenario, holding for all horizons at once (Bonferroni, beta / t_max)",
        ),
    ]


@hookimpl
def sport_register_evaluators():
    return [
        Component(
            "certified-eval",
            CertifiedEvaluator,
            CertifiedEvalConfig,
            "a task policy's failure rate at T* next to a certificate's prior bound",
        ),
        Component(
            "projected-sweep",
            ProjectedSweep,
            ProjectedSweepConfig,
            "a task policy projected onto the certified base, per alpha: failure rate and CP bound at T* vs the "
            "prior bound",
        ),
    ]


@hookimpl
def sport_register_verifiers():
    return [
        Component(method, ScenarioVerifier, ScenarioVerifierConfig, f"re-derives {method} certificates")
        for method in ("scenario", "scenario-uniform")
    ]
