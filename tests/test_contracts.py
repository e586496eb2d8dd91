"""The plugin-author contracts: what stages declare and `sport check` validates, the versioned certificate
schema, certifier-provided verifiers, and the guarantee kind that evaluators report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar

import attrs
import jsonschema
import pytest

from sport_core import Component, hookimpl
from sport_core.certificates import (
    CERTIFICATE_FORMAT,
    LEGACY_FORMAT,
    certificate_schema,
    read_certificate,
    write_certificate,
)
from sport_core.cli import main
from sport_core.errors import ArtifactError, PluginError, RecipeError, SportError
from sport_core.recipe import validate
from sport_core.runner import Runner
from sport_core.stages import StageInput
from sport_core.testing import pointmass_recipe

ROOT = Path(__file__).resolve().parents[1]
COMMITTED_V1 = ROOT / "artifacts/exp1-seed0/certify-20261125-191746/certify-base/certificate.json"


@attrs.frozen
class NoConfig:
    pass


class Undeclared:
    """A stage that declares nothing (allowed: its inputs are then checked only when it runs)."""

    def __init__(self, config):
        pass

    def run(self, ctx):
        ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        return {"out": ctx.stage_dir / "calls.log"} if ctx.env else {}


class UsesEnvSecretly(Undeclared):
    def run(self, ctx):
        ctx.env.make()


class Reader:
    """Declares one required input, reading a ``policy``."""

    inputs: ClassVar[dict[str, StageInput]] = {"policy": StageInput(("policy",), description="what to read")}
    outputs = ("report",)

    def __init__(self, config):
        pass

    def run(self, ctx):
        path = ctx.stage_dir / "report.txt"
        ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(str(ctx.policy_input()))
        return {"report": path}


class Contracts:
    @hookimpl
    def sport_register_evaluators(self):
        return [
            Component("undeclared", Undeclared, NoConfig),
            Component("secret-env", UsesEnvSecretly, NoConfig),
            Component("reader", Reader, NoConfig),
        ]


@pytest.fixture
def cpm(sport_plugin_manager):
    return sport_plugin_manager(("contracts", Contracts()))


def no_env(stages):
    data = pointmass_recipe(stages)
    del data["env"]
    return data


# -- the stage graph ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        (
            [{"name": "read", "evaluator": "reader"}],
            "stages[0].inputs.policy: missing; evaluator 'reader' needs input 'policy' (what to read): "
            'inputs.policy = "<stage>" (a stage that makes policy) or "file:PATH"',
        ),
        (
            [{"name": "b", "evaluator": "goal-seeker"}, {"name": "r", "evaluator": "reader", "inputs": {"polcy": "b"}}],
            "stages[1].inputs.polcy: evaluator 'reader' takes no such input; did you mean policy? (inputs: policy)",
        ),
        (
            [
                {"name": "b", "evaluator": "goal-seeker"},
                {"name": "r", "evaluator": "reader", "inputs": {"policy": "b"}},
                {"name": "again", "evaluator": "reader", "inputs": {"policy": "r"}},
            ],
            "stages[2].inputs.policy: stage 'r' (evaluator 'reader') makes no policy (it makes: report), which "
            "evaluator 'reader' reads from input 'policy'",
        ),
        (
            [
                {"name": "b", "evaluator": "goal-seeker"},
                {"name": "r", "evaluator": "reader", "inputs": {"policy": "b:weights"}},
            ],
            "stages[1].inputs.policy: stage 'b' (evaluator 'goal-seeker') makes no artifact 'weights' "
            "(it makes: policy)",
        ),
        (
            [
                {"name": "b", "evaluator": "goal-seeker"},
                {"name": "c", "certifier": "scenario", "inputs": {"policy": "b"}},
                {"name": "s", "evaluator": "projected-sweep", "inputs": {"certificate": "c", "base": "b"}},
            ],
            "stages[2].inputs.task: missing; evaluator 'projected-sweep' needs input 'task'",
        ),
        (
            [
                {"name": "b", "evaluator": "goal-seeker"},
                {"name": "c", "certifier": "scenario", "inputs": {"policy": "b"}},
                {"name": "s", "evaluator": "certified-eval", "inputs": {"certificate": "b", "policy": "b"}},
            ],
            "stages[2].inputs.certificate: stage 'b' (evaluator 'goal-seeker') makes no certificate",
        ),
    ],
    ids=["missing-role", "misspelt-role", "wrong-artifact", "pinned-missing", "sweep-without-task", "not-a-cert"],
)
def test_check_validates_the_stage_graph_before_anything_runs(cpm, stages, message):
    with pytest.raises(RecipeError) as info:
        validate(pointmass_recipe(stages), cpm.registry)
    assert str(info.value).startswith(message)


def test_the_graph_check_also_runs_in_sport_check(tmp_path, capsys):
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[run]\nname = "r"\n[env]\nkind = "pointmass"\nlayout_seed = 1\n'
        '[[stages]]\nname = "c"\ncertifier = "scenario"\n'
    )
    assert main(["check", str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sport: error: stages[0].inputs.policy: missing; certifier 'scenario' needs input 'policy'")


def test_undeclared_stages_are_checked_only_when_they_run(cpm):
    stages = [
        {"name": "a", "evaluator": "undeclared"},
        {"name": "b", "evaluator": "undeclared", "inputs": {"anything": "a:whatever"}},
    ]
    recipe = validate(pointmass_recipe(stages), cpm.registry)
    assert recipe.stage("b").inputs == {"anything": "a:whatever"}


def test_a_stage_without_needs_env_gets_a_clear_error_instead_of_none(cpm, tmp_path):
    runner = Runner.create(validate(no_env([{"name": "s", "evaluator": "secret-env"}]), cpm.registry), cpm, tmp_path)
    with pytest.raises(
        SportError,
        match=r"stage 's' \(evaluator 'secret-env'\) used ctx.env.make, but the recipe gives "
        "it no env; a stage that uses an env declares needs_env = True",
    ):
        runner.run()


def test_needs_env_is_checked_by_validation(cpm):
    with pytest.raises(RecipeError, match=r"stages\[0\]: evaluator 'goal-seeker' needs an env"):
        validate(no_env([{"name": "b", "evaluator": "goal-seeker"}]), cpm.registry)


@pytest.mark.parametrize(
    ("attrs_", "message"),
    [
        ({"needs_env": "yes"}, "needs_env must be True or False, got 'yes'"),
        ({"inputs": {"policy": ("policy",)}}, "inputs must map role names to sport_core.stages.StageInput"),
        ({"outputs": "policy"}, "outputs must be a tuple of artifact names, got 'policy'"),
    ],
)
def test_ill_typed_declarations_are_the_plugins_error_at_registration(sport_plugin_manager, attrs_, message):
    stage = type("Bad", (Undeclared,), attrs_)

    class Plugin:
        @hookimpl
        def sport_register_trainers(self):
            return [Component("bad", stage, NoConfig)]

    with pytest.raises(PluginError, match=r"trainer component 'bad' of plugin 'bad-plugin': " + message[:30]):
        sport_plugin_manager(("bad-plugin", Plugin()))


# -- --stage runs what the stage needs ------------------------------------------------------------------------


def test_running_one_stage_runs_the_stages_it_needs_first(cpm, tmp_path):
    stages = [
        {"name": "base", "evaluator": "goal-seeker"},
        {"name": "other", "evaluator": "goal-seeker", "config": {"gain": 3.0}},
        {"name": "certify", "certifier": "scenario", "inputs": {"policy": "base"}, "config": {"episodes": 20}},
    ]
    runner = Runner.create(validate(pointmass_recipe(stages), cpm.registry), cpm, tmp_path)
    assert runner.needed(["certify"]) == ["base", "certify"]
    assert runner.run(only=["certify"]) == "completed"
    manifest = json.loads((runner.run_dir / "manifest.json").read_text())
    assert manifest["stages"]["certify"]["status"] == "completed"
    assert manifest["stages"]["base"]["status"] == "completed"
    assert manifest["stages"]["other"]["status"] == "pending"
    with pytest.raises(RecipeError, match=r"--stage certfy: the recipe has no such stage \(stages: base, other"):
        runner.run(only=["certfy"])


# -- the certificate schema -------------------------------------------------------------------------------------


@pytest.fixture
def fresh_certificate(cpm, sport_run) -> Path:
    stages = [
        {"name": "base", "evaluator": "goal-seeker"},
        {"name": "certify", "certifier": "scenario-uniform", "inputs": {"policy": "base"}, "config": {"episodes": 60}},
    ]
    return sport_run(cpm, pointmass_recipe(stages)) / "certify" / "certificate.json"


def test_a_fresh_certificate_validates_against_the_schema_file_in_the_repository(fresh_certificate):
    schema = json.loads((ROOT / "sport_core/schemas/certificate-v2.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(fresh_certificate.read_text())
    jsonschema.validate(data, schema)
    assert data["format"] == CERTIFICATE_FORMAT
    assert data["guarantee"] == {
        "kind": "frequentist",
        "level": pytest.approx(1 - 1e-7 / 25),
        "simultaneous": True,
        "description": "Clopper-Pearson upper limit",
    }
    # every field the schema requires is one the evaluators read
    assert set(certificate_schema()["required"]) >= {"guarantee", "epsilon", "bounds", "beta", "t_max", "env"}


def test_committed_version_1_certificates_are_read_as_version_2(capsys):
    data = json.loads(COMMITTED_V1.read_text())
    assert data["format"] == LEGACY_FORMAT
    jsonschema.validate(data, certificate_schema(LEGACY_FORMAT))
    cert = read_certificate(COMMITTED_V1)
    assert cert["guarantee"]["kind"] == "frequentist" and cert["guarantee"]["simultaneous"] is False
    jsonschema.validate({**cert, "format": CERTIFICATE_FORMAT}, certificate_schema())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("guarantee"), "lacks guarantee"),
        (lambda c: c["guarantee"].update(kind="vibes"), "field guarantee.kind is malformed"),
        (lambda c: c["bounds"][0].update(alpha_star=0.5), "field bounds[0].alpha_star is malformed"),
        (lambda c: c["epsilon"].pop(), "field epsilon is malformed: 24 entries for t_max 25"),
        (lambda c: c["base_policy"].update(weights_sha256="abc"), "field base_policy.weights_sha256 is malformed"),
    ],
)
def test_the_schema_refuses_what_evaluators_could_not_read(fresh_certificate, change, message):
    data = json.loads(fresh_certificate.read_text())
    change(data)
    fresh_certificate.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match=re.escape(message)):
        read_certificate(fresh_certificate)
    with pytest.raises(ArtifactError, match=r"malformed|lacks|refusing"):
        write_certificate(fresh_certificate.with_name("copy.json"), data)
    assert not fresh_certificate.with_name("copy.json").exists()


# -- verifiers ---------------------------------------------------------------------------------------------


def test_a_method_without_a_verifier_is_a_one_line_error_naming_the_known_ones(fresh_certificate, capsys):
    data = json.loads(fresh_certificate.read_text())
    data["method"] = "hoeffding"
    fresh_certificate.write_text(json.dumps(data))
    assert main(["verify", str(fresh_certificate)]) == 2
    err = capsys.readouterr().err
    assert "no verifier for certification method 'hoeffding'" in err and "scenario-uniform" in err
    assert err.count("\n") == 1


def test_verify_prints_the_guarantee(fresh_certificate, capsys):
    assert main(["verify", str(fresh_certificate)]) == 0
    out = capsys.readouterr().out
    assert "OK (scenario-uniform, 60 episodes" in out
    assert "guarantee: frequentist (Clopper-Pearson upper limit, level 1 - 4e-09, all horizons at once)" in out
