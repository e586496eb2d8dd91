"""Recipe validation: every error names the key path and what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import attrs
import pytest

from sport_core.config import structure
from sport_core.errors import RecipeError
from sport_core.recipe import apply_override, load_recipe, parse_value, read_toml, validate

SMOKE = "recipes/quick/smoke.toml"


def base_recipe() -> dict:
    return {
        "run": {"name": "t", "seed": 3},
        "env": {"kind": "pointmass", "max_steps": 20},
        "executor": {"kind": "inline"},
        "stages": [
            {"name": "a", "evaluator": "rollout", "config": {"episodes": 5}},
            {"name": "b", "evaluator": "rollout", "inputs": {}, "config": {"episodes": 7, "trajectory": True}},
        ],
    }


def error_of(data: dict, registry) -> str:
    with pytest.raises(RecipeError) as err:
        validate(data, registry)
    return str(err.value)


def test_the_smoke_recipe_is_valid_and_defaults_are_filled_in(registry):
    recipe = load_recipe(SMOKE, registry)
    assert [s.name for s in recipe.stages] == ["random", "random-fixed"]
    assert recipe.env.config.max_steps == 40
    fixed = recipe.stage("random-fixed")
    assert recipe.env_for(fixed).config.layout_seed == 0
    resolved = recipe.to_dict()
    assert resolved["stages"][0]["config"] == {"episodes": 200, "deterministic": False, "trajectory": False}


def test_a_misspelt_config_key_names_the_path_and_suggests_the_right_key(registry):
    data = base_recipe()
    data["stages"][0]["config"]["episods"] = 3
    message = error_of(data, registry)
    assert message.startswith("stages[0].config.episods: unknown key; did you mean episodes?")


def test_a_misspelt_top_level_or_stage_key_is_reported_the_same_way(registry):
    data = base_recipe()
    data["stagse"] = data.pop("stages")
    assert error_of(data, registry).startswith("stagse: unknown key; did you mean stages?")
    data = base_recipe()
    data["stages"][1]["inputz"] = {}
    assert error_of(data, registry).startswith("stages[1].inputz: unknown key; did you mean inputs?")


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        (("stages", 0, "config", "episodes"), "many", "stages[0].config.episodes: expected int, got str 'many'"),
        (("stages", 0, "config", "episodes"), 2.5, "stages[0].config.episodes: expected int, got float 2.5"),
        (
            ("stages", 1, "config", "trajectory"),
            1,
            "stages[1].config.trajectory: expected bool (true or false), got int 1",
        ),
        (("env", "dt"), "fast", "env.dt: expected float, got str 'fast'"),
        (("env", "on_violation"), "stop", "env.on_violation: expected one of 'terminate', 'continue', got str 'stop'"),
        (("run", "seed"), True, "run.seed: expected int, got bool True"),
    ],
)
def test_a_wrong_type_names_the_path_and_the_expected_type(registry, where, value, expected):
    data = base_recipe()
    node = data
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    assert error_of(data, registry).startswith(expected)


def test_a_failing_validator_names_the_path(registry):
    data = base_recipe()
    data["stages"][0]["config"]["episodes"] = 0
    assert error_of(data, registry) == "stages[0].config.episodes: must be > 0, got 0"


def test_unknown_components_suggest_a_registered_name(registry):
    data = base_recipe()
    data["stages"][0]["evaluator"] = "rolout"
    assert "stages[0].evaluator: no evaluator component named 'rolout'; did you mean 'rollout'?" in error_of(
        data, registry
    )
    data = base_recipe()
    data["env"]["kind"] = "pointmas"
    assert error_of(data, registry).startswith("env.kind: no env component named 'pointmas'")


def test_stage_structure_errors(registry):
    data = base_recipe()
    data["stages"][1]["name"] = "a"
    assert "stages[1].name: 'a' is already the name of stages[0]" in error_of(data, registry)
    data = base_recipe()
    data["stages"][0]["inputs"] = {"policy": "b"}
    assert "stages[0].inputs.policy: 'b' is not an earlier stage" in error_of(data, registry)
    data = base_recipe()
    data["stages"][0]["trainer"] = "sac"
    assert "stages[0]: a stage names exactly one of trainer, certifier, evaluator" in error_of(data, registry)
    data = base_recipe()
    del data["env"]
    assert "stages[0]: evaluator 'rollout' needs an env" in error_of(data, registry)
    data = base_recipe()
    del data["run"]["name"]
    assert error_of(data, registry).startswith("run: missing required key: name")


def test_overrides_address_stages_by_name_and_parse_toml_values(registry):
    data = base_recipe()
    apply_override(data, "stages.b.config.episodes=2000")
    apply_override(data, "run.seed=11")
    apply_override(data, "env.on_violation=continue")  # a bare word is a string
    apply_override(data, "stages.0.env={kind = 'pointmass', layout_seed = 4}")
    apply_override(data, "stages[0].config.deterministic=true")  # the form error messages print
    recipe = validate(data, registry)
    assert recipe.stage("b").component.config.episodes == 2000
    assert recipe.run.seed == 11
    assert recipe.env.config.on_violation == "continue"
    assert recipe.env_for(recipe.stage("a")).config.layout_seed == 4
    assert recipe.stage("a").component.config.deterministic is True
    assert parse_value("[1, 2.5]") == [1, 2.5] and parse_value("true") is True


def test_overrides_with_a_bad_path_are_reported(registry):
    data = base_recipe()
    with pytest.raises(RecipeError, match=r"no stage named .bb.; did you mean b"):
        apply_override(data, "stages.bb.config.episodes=3")
    with pytest.raises(RecipeError, match=r"expected KEY\.PATH=VALUE"):
        apply_override(data, "stages.b.config.episodes")
    apply_override(data, "stages.b.config.episods=3")
    assert error_of(data, registry).startswith("stages[1].config.episods: unknown key; did you mean episodes?")


def test_missing_and_non_toml_files_give_one_line_errors(tmp_path):
    with pytest.raises(RecipeError, match=r"nope.toml: no such recipe file$"):
        read_toml(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nname = 1\n")
    with pytest.raises(RecipeError, match=r"bad\.toml: not valid TOML"):
        read_toml(bad)
    binary = tmp_path / "weights.toml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(RecipeError, match="not a text file"):
        read_toml(binary)
    with pytest.raises(RecipeError, match="not a file"):
        read_toml(tmp_path)


def test_the_resolved_recipe_round_trips(registry, tmp_path):
    recipe = load_recipe(SMOKE, registry, ["stages.random.config.episodes=9"])
    path = tmp_path / "resolved.toml"
    path.write_text(recipe.to_toml())
    again = load_recipe(path, registry)
    assert again.to_dict() == recipe.to_dict()
    assert again.stage("random").component.config.episodes == 9


def test_comments_and_inline_tables_are_fine(registry, tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(
        textwrap.dedent("""
        # comment
        run = { name = "inline", seed = 1 }
        env = { kind = "pointmass" }
        executor = { kind = "process", workers = 2 }
        stages = [ { name = "s", evaluator = "rollout", config = { episodes = 3 } } ]
    """)
    )
    recipe = load_recipe(path, registry)
    assert recipe.executor.config.workers == 2


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shipped_registry():
    """The built-ins and the example third-party plugin (install.sh installs it; a recipe swaps its certifier in)."""
    from sport_core.testing import plugin_manager

    return plugin_manager(("example", "sport_example_plugin.plugin")).registry


@pytest.mark.parametrize("recipe", sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("recipes/**/*.toml")))
def test_every_shipped_recipe_is_valid(shipped_registry, recipe, tmp_path):
    brought = {  # recipes that work on files made elsewhere: name some (validation checks they exist)
        "recipes/certify.toml": {"certify-base": ["policy"]},
        "recipes/sweep.toml": {"sweep": ["certificate", "base", "task"]},
    }
    overrides = []
    for stage, roles in brought.get(recipe, {}).items():
        for role in roles:
            (tmp_path / role).write_bytes(b"")
            overrides.append(f'stages.{stage}.inputs.{role}="file:{tmp_path / role}"')
    loaded = load_recipe(ROOT / recipe, shipped_registry, overrides)
    assert loaded.stages


def test_component_names_inside_a_stage_config_are_checked_by_sport_check(registry):
    data = {
        "run": {"name": "sweep"},
        "stages": [
            {
                "name": "sweep",
                "evaluator": "projected-sweep",
                "inputs": {},
                "config": {"projection": "gausian-kl"},
            }
        ],
    }
    with pytest.raises(
        RecipeError, match=r"stages\[0\]\.config\.projection: no projection component named 'gausian-kl'"
    ):
        validate(data, registry)
    data["stages"][0]["config"] = {"projection": "gaussian-kl", "projection_config": {"backend": "fortran"}}
    with pytest.raises(RecipeError, match=r"stages\[0\]\.config\.projection_config\.backend: expected one of"):
        validate(data, registry)


def scenario_recipe(config: dict) -> dict:
    """base_recipe with stages[1] a ``scenario`` certifier whose config table is ``config``."""
    data = base_recipe()
    data["env"]["layout_seed"] = 0
    data["stages"][1] = {"name": "b", "certifier": "scenario", "inputs": {}, "config": config}
    return data


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"beta": 2.0}, "stages[1].config.beta: must lie strictly between 0 and 1, got 2.0"),
        ({"episodes": -1}, "stages[1].config.episodes: must be > 0, got -1"),
        ({"confidence": 0.0}, "stages[1].config.confidence: must lie strictly between 0 and 1, got 0.0"),
        ({"t_max": 0}, "stages[1].config.t_max: must be > 0, got 0"),
    ],
)
def test_a_failing_field_validator_names_the_field_and_reads_naturally(registry, config, expected):
    assert error_of(scenario_recipe(config), registry) == expected


def test_a_failing_custom_validator_without_the_field_name_still_names_the_field(registry):
    message = error_of(scenario_recipe({"bounds": [0.5, 2.0]}), registry)
    assert message.startswith("stages[1].config.bounds: ") and "[2.0]" in message


def test_a_cross_field_error_from_post_init_stays_on_the_table(registry):
    message = error_of(scenario_recipe({"beta": 0.01, "confidence": 0.99}), registry)
    assert message == "stages[1].config: give beta or confidence (= 1 − beta), not both"


def test_the_first_failing_field_in_field_order_is_named(registry):
    message = error_of(scenario_recipe({"beta": 2.0, "episodes": 0}), registry)
    assert message == "stages[1].config.episodes: must be > 0, got 0"


def test_built_in_attrs_validators_name_the_field_of_a_plain_attrs_class():
    @attrs.frozen
    class Plain:
        mode: str = attrs.field(default="fast", validator=attrs.validators.in_(["fast", "slow"]))
        name: str = attrs.field(default="a", validator=attrs.validators.matches_re(r"[a-z]+"))
        tags: tuple[str, ...] = attrs.field(factory=tuple, validator=attrs.validators.max_len(2))
        count: int = attrs.field(default=1, validator=[attrs.validators.instance_of(int), attrs.validators.ge(1)])

    assert structure(Plain, {}, "plain") == Plain()
    with pytest.raises(RecipeError) as err:
        structure(Plain, {"mode": "medium"}, "plain")
    assert str(err.value) == "plain.mode: must be in ['fast', 'slow'], got 'medium'"
    with pytest.raises(RecipeError) as err:
        structure(Plain, {"name": "A1"}, "plain")
    assert str(err.value) == "plain.name: must match regex '[a-z]+', got 'A1'"
    with pytest.raises(RecipeError) as err:
        structure(Plain, {"tags": ["x", "y", "z"]}, "plain")
    assert str(err.value) == "plain.tags: length must be <= 2, got 3"
    with pytest.raises(RecipeError) as err:
        structure(Plain, {"count": 0}, "plain")
    assert str(err.value) == "plain.count: must be >= 1, got 0"


def test_a_validator_that_needs_the_instance_is_skipped_and_the_table_is_named():
    def below_limit(instance, attribute, value):
        if value >= instance.limit:
            raise ValueError(f"{attribute.name} must be below limit")

    @attrs.frozen
    class NeedsSelf:
        limit: int = 10
        value: int = attrs.field(default=0, validator=below_limit)

    with pytest.raises(RecipeError) as err:
        structure(NeedsSelf, {"value": 11}, "cfg")
    assert str(err.value) == "cfg: value must be below limit"
