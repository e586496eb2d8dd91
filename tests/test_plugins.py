"""Plugin discovery, loading errors, name clashes and hook order."""

from __future__ import annotations

import sys
import textwrap

import pytest

from sport_core import Component, hookimpl
from sport_core.errors import PluginError, RegistryError
from sport_core.plugins import load_plugin_manager

BUILTINS = {"pointmass", "executors", "jsonl", "rollout", "policies"}


def make_distribution(root, dist: str, module: str, source: str, entry_name: str | None = None) -> None:
    """A minimal installed distribution: a module plus a .dist-info with a ``sport`` entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[sport]\n{entry_name or module} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A directory on sys.path acting as site-packages for test distributions."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("thirdparty_")]:
        del sys.modules[name]


GOOD_PLUGIN = """
    import attrs
    from sport_core import Component, hookimpl

    @attrs.frozen
    class Cfg:
        size: int = 3

    class Maker:
        def __init__(self, config):
            self.config = config

    @hookimpl
    def sport_register_envs():
        return [Component("thirdparty-env", Maker, Cfg, "a third-party env")]
"""


def test_builtins_are_loaded_through_the_sport_entry_point_group(pm):
    assert set(pm.infos) >= BUILTINS
    assert all(pm.infos[name].builtin for name in BUILTINS)
    assert pm.registry.get("env", "pointmass").plugin == "pointmass"
    assert {"inline", "process"} <= set(pm.registry.names("executor"))


def test_a_third_party_distribution_is_discovered_through_its_entry_point(site):
    make_distribution(site, "thirdparty-good", "thirdparty_good", GOOD_PLUGIN)
    pm = load_plugin_manager()
    info = pm.infos["thirdparty_good"]
    assert (info.distribution, info.version, info.builtin) == ("thirdparty-good", "1.2.3", False)
    component = pm.registry.get("env", "thirdparty-env")
    assert component.plugin == "thirdparty_good"
    assert component.build().config.size == 3


def test_autoload_can_be_disabled_to_load_only_builtins(site, monkeypatch):
    make_distribution(site, "thirdparty-good", "thirdparty_good", GOOD_PLUGIN)
    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = load_plugin_manager()
    assert "thirdparty_good" not in pm.infos
    assert set(pm.infos) >= BUILTINS
    with pytest.raises(RegistryError, match="no env component named 'thirdparty-env'"):
        pm.registry.get("env", "thirdparty-env")


def test_a_plugin_that_fails_to_import_is_named(site):
    make_distribution(site, "thirdparty-broken", "thirdparty_broken", "import no_such_module_anywhere\n")
    with pytest.raises(PluginError) as err:
        load_plugin_manager()
    message = str(err.value)
    assert "thirdparty_broken" in message and "thirdparty-broken" in message
    assert "ModuleNotFoundError" in message


def test_a_component_name_clash_names_both_plugins(site):
    clash = GOOD_PLUGIN.replace('"thirdparty-env"', '"pointmass"')
    make_distribution(site, "thirdparty-clash", "thirdparty_clash", clash)
    with pytest.raises(PluginError) as err:
        load_plugin_manager()
    message = str(err.value)
    assert "'pointmass'" in message and "plugin 'pointmass'" in message and "plugin 'thirdparty_clash'" in message


def test_a_registration_hook_returning_garbage_is_named(pm):
    class Bad:
        @hookimpl
        def sport_register_trainers(self):
            return ["not a component"]

    with pytest.raises(PluginError, match="plugin 'bad' returned 'not a component'"):
        pm.add_plugin(Bad(), "bad")


def test_a_hook_with_a_misspelt_name_is_rejected(pm):
    class Typo:
        @hookimpl
        def sport_log_scalar(self, step):  # missing the final s
            pass

    with pytest.raises(PluginError, match="'typo' does not match the sport hook specifications"):
        pm.add_plugin(Typo(), "typo")


def test_event_hooks_reach_every_logger_last_registered_first_with_tryfirst_overriding(pm):
    calls = []

    def logger(tag, **opts):
        class Logger:
            @hookimpl(**opts)
            def sport_log_scalars(self, step, scalars):
                calls.append((tag, step, dict(scalars)))

        return Logger()

    pm.register(logger("a"), name="a")
    pm.register(logger("b"), name="b")
    pm.register(logger("first", tryfirst=True), name="first")
    pm.register(logger("c"), name="c")
    pm.hook.sport_log_scalars(run_dir=None, stage="s", step=7, scalars={"x": 1.0})
    assert [c[0] for c in calls] == ["first", "c", "b", "a"]
    assert pm.hook_order("sport_log_scalars") == ["first", "c", "b", "a"]
    assert all(c[1:] == (7, {"x": 1.0}) for c in calls)


def test_component_configs_must_be_attrs_classes():
    with pytest.raises(TypeError, match="must be an attrs class"):
        Component("x", dict, dict)


def test_an_unknown_component_suggests_the_closest_name(registry):
    with pytest.raises(RegistryError, match="did you mean 'pointmass'"):
        registry.get("env", "pointmas")


def test_the_example_third_party_package_is_installed_and_its_logger_works_in_a_run(tmp_path, monkeypatch):
    """install.sh installs examples/sport_example_plugin like any third-party package."""
    from sport_core.recipe import validate
    from sport_core.runner import Runner

    monkeypatch.delenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pm = load_plugin_manager()
    info = pm.infos["example"]
    assert (info.distribution, info.builtin) == ("sport-example-plugin", False)
    recipe = validate(
        {
            "run": {"name": "csv"},
            "env": {"kind": "pointmass", "layout_seed": 1, "max_steps": 5},
            "executor": {"kind": "inline"},
            "loggers": [{"kind": "csv", "filename": "s.csv"}],
            "stages": [{"name": "e", "evaluator": "rollout", "config": {"episodes": 3}}],
        },
        pm.registry,
    )
    runner = Runner.create(recipe, pm, tmp_path)
    runner.run()
    rows = (runner.run_dir / "s.csv").read_text().splitlines()
    assert rows[0] == "stage,step,tag,value" and rows[1].startswith("e,3,eval/episodes,3.0")
