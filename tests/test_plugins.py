"""Plugin discovery, failure isolation, SPORT_DISABLE_PLUGINS / SPORT_PLUGINS, name clashes, hook checks and
hook order."""

from __future__ import annotations

import logging
import sys
import textwrap
import types

import pytest

import sport_core
from sport_core import Component, cli, hookimpl
from sport_core.errors import PluginError, RegistryError
from sport_core.plugins import FailedPlugin, PluginInfo, check_hook_object, load_plugin_manager

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
    assert not pm.failed and not pm.disabled
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


BROKEN_IMPORT = "import no_such_module_anywhere\n"


def test_a_plugin_that_fails_to_import_is_isolated_and_reported_by_sport_plugins(site, caplog, capsys):
    make_distribution(site, "thirdparty-broken", "thirdparty_broken", BROKEN_IMPORT)
    make_distribution(site, "thirdparty-good", "thirdparty_good", GOOD_PLUGIN)
    with caplog.at_level(logging.WARNING, logger="sport"):
        pm = load_plugin_manager()
    # The other plugins load as if nothing happened.
    assert set(pm.infos) >= BUILTINS | {"thirdparty_good"}
    assert pm.registry.get("env", "thirdparty-env").plugin == "thirdparty_good"
    # The broken one is recorded with where it comes from and why it failed, and warned about once.
    assert pm.failed["thirdparty_broken"] == FailedPlugin(
        name="thirdparty_broken",
        module="thirdparty_broken",
        distribution="thirdparty-broken",
        version="1.2.3",
        builtin=False,
        error="ModuleNotFoundError: No module named 'no_such_module_anywhere'",
    )
    assert "thirdparty_broken" not in pm.infos
    warnings = [r.getMessage() for r in caplog.records if "thirdparty" in r.getMessage()]
    assert warnings == [
        "plugin 'thirdparty_broken' (thirdparty_broken, from distribution thirdparty-broken 1.2.3) failed to load: "
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'; its components are unavailable "
        "(disable it with SPORT_DISABLE_PLUGINS=thirdparty_broken)"
    ]
    # ``sport plugins`` still lists everything, then the failure, and exits with 1.
    assert cli.main(["plugins"]) == 1
    out = capsys.readouterr().out
    assert "thirdparty_good 1.2.3 (from thirdparty-good; thirdparty_good)" in out
    assert "env        pointmass" in out
    assert (
        "    thirdparty_broken 1.2.3 (from thirdparty-broken; thirdparty_broken): "
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'\n"
    ) in out


@pytest.mark.parametrize(
    ("source", "error"),
    [
        pytest.param(
            GOOD_PLUGIN.replace('return [Component("thirdparty-env", Maker, Cfg, "a third-party env")]', "1 / 0"),
            "plugin 'thirdparty_bad' failed in sport_register_envs: ZeroDivisionError: division by zero",
            id="registration hook raises",
        ),
        pytest.param(
            GOOD_PLUGIN.replace("return [Component(", "return (Component(").replace('env")]', 'env"), "x")'),
            "plugin 'thirdparty_bad': sport_register_envs must return a list of sport_core.Component, "
            "got 'x' (str) at index 1",
            id="list holds a non-component",
        ),
        pytest.param(
            GOOD_PLUGIN + "\n    @hookimpl\n    def sport_run_start(run_dir):\n        pass\n",
            "plugin 'thirdparty_bad': function sport_run_start matches no sport hook; "
            "did you mean 'sport_run_started'?",
            id="misspelt event hook",
        ),
        pytest.param(
            GOOD_PLUGIN + "\n    def sport_run_started(run_dir):\n        pass\n",
            "plugin 'thirdparty_bad': function sport_run_started is not marked @sport_core.hookimpl, "
            "so it would never be called",
            id="unmarked hook",
        ),
    ],
)
def test_a_plugin_whose_registration_fails_leaves_nothing_behind(site, source, error):
    make_distribution(site, "thirdparty-bad", "thirdparty_bad", source)
    pm = load_plugin_manager()
    assert pm.failed["thirdparty_bad"].error == error
    assert not pm.has_plugin("thirdparty_bad") and "thirdparty_bad" not in pm.infos
    assert "thirdparty-env" not in pm.registry.names("env")
    assert set(pm.infos) >= BUILTINS


def test_a_registration_hook_returning_a_bare_component_is_a_one_line_error_naming_the_plugin(site):
    bare = GOOD_PLUGIN.replace("sport_register_envs", "sport_register_certifiers").replace(
        'return [Component("thirdparty-env", Maker, Cfg, "a third-party env")]',
        'return Component("thirdparty-env", Maker, Cfg, "a third-party env")',  # forgot the list
    )
    make_distribution(site, "thirdparty-bare", "thirdparty_bare", bare)
    error = load_plugin_manager().failed["thirdparty_bare"].error
    assert error.startswith(
        "plugin 'thirdparty_bare': sport_register_certifiers must return a list of sport_core.Component, "
        "got Component(name='thirdparty-env'"
    )
    assert error.endswith("…") and len(error) < 200 and "\n" not in error
    # Added in-process (tests, ``extra``), the same mistake raises.
    with pytest.raises(PluginError, match=r"must return a list of sport_core\.Component, got Component\("):
        load_plugin_manager(autoload=False).add_plugin(sys.modules["thirdparty_bare"], "bare")


def test_a_component_name_clash_isolates_the_later_plugin_and_says_how_to_disable_it(site):
    clash = GOOD_PLUGIN.replace(
        '[Component("thirdparty-env", Maker, Cfg, "a third-party env")]',
        '[Component("thirdparty-env", Maker, Cfg), Component("pointmass", Maker, Cfg)]',
    )
    make_distribution(site, "thirdparty-clash", "thirdparty_clash", clash)
    pm = load_plugin_manager()
    assert pm.registry.get("env", "pointmass").plugin == "pointmass"
    error = pm.failed["thirdparty_clash"].error
    assert "env component 'pointmass' is registered twice" in error
    assert "plugin 'pointmass'" in error and "plugin 'thirdparty_clash'" in error
    assert "SPORT_DISABLE_PLUGINS=thirdparty_clash" in error
    # All or nothing: the clash-free component of the failed plugin is not registered either.
    assert "thirdparty-env" not in pm.registry.names("env")
    assert not pm.has_plugin("thirdparty_clash")


def test_a_missing_component_error_mentions_the_plugins_that_failed_to_load(site):
    make_distribution(site, "thirdparty-broken", "thirdparty_broken", BROKEN_IMPORT)
    pm = load_plugin_manager()
    with pytest.raises(RegistryError) as err:
        pm.registry.get("env", "thirdparty-env")
    assert str(err.value).endswith(
        "; note: plugin 'thirdparty_broken' (ModuleNotFoundError: No module named 'no_such_module_anywhere') "
        "failed to load, it may provide it"
    )
    assert "\n" not in str(err.value)


def test_sport_disable_plugins_skips_third_party_and_built_in_plugins(site, monkeypatch, capsys):
    make_distribution(site, "thirdparty-good", "thirdparty_good", GOOD_PLUGIN)
    monkeypatch.setenv("SPORT_DISABLE_PLUGINS", " thirdparty_good , jsonl,")
    pm = load_plugin_manager()
    assert set(pm.disabled) == {"thirdparty_good", "jsonl"}
    assert pm.disabled["jsonl"].builtin and pm.disabled["thirdparty_good"].distribution == "thirdparty-good"
    assert not ({"thirdparty_good", "jsonl"} & set(pm.failed | pm.infos))
    assert "jsonl" not in pm.registry.names("logger")
    assert "thirdparty-env" not in pm.registry.names("env")
    assert cli.main(["plugins"]) == (1 if pm.failed else 0)  # 0 unless an unrelated plugin is broken
    out = capsys.readouterr().out
    assert (
        "    jsonl (disabled by SPORT_DISABLE_PLUGINS)\n    thirdparty_good (disabled by SPORT_DISABLE_PLUGINS)\n"
        in out
    )


def test_disabling_a_broken_plugin_silences_it(site, monkeypatch, caplog):
    make_distribution(site, "thirdparty-broken", "thirdparty_broken", BROKEN_IMPORT)
    monkeypatch.setenv("SPORT_DISABLE_PLUGINS", "thirdparty_broken")
    with caplog.at_level(logging.WARNING, logger="sport"):
        pm = load_plugin_manager()
    assert "thirdparty_broken" in pm.disabled and "thirdparty_broken" not in pm.failed
    assert "thirdparty_broken" not in sys.modules  # never imported
    assert not [r for r in caplog.records if "thirdparty_broken" in r.getMessage()]


def test_an_unknown_name_in_sport_disable_plugins_is_one_warning(pm, monkeypatch, caplog):
    monkeypatch.setenv("SPORT_DISABLE_PLUGINS", "jsonl,pointmas")
    with caplog.at_level(logging.WARNING, logger="sport"):
        pm = load_plugin_manager()
    assert set(pm.disabled) == {"jsonl"}
    (warning,) = [r.getMessage() for r in caplog.records if "SPORT_DISABLE_PLUGINS" in r.getMessage()]
    assert warning.startswith(
        "SPORT_DISABLE_PLUGINS names no plugin: 'pointmas' (did you mean 'pointmass'?); plugins: "
    )


def test_sport_plugins_loads_a_module_that_is_importable_but_not_installed(site, monkeypatch):
    """As PYTEST_PLUGINS: develop a plugin without installing it (here ``site`` is just a PYTHONPATH entry)."""
    (site / "thirdparty_dev.py").write_text(textwrap.dedent(GOOD_PLUGIN).replace("thirdparty-env", "dev-env"))
    monkeypatch.setenv("SPORT_PLUGINS", "thirdparty_dev, thirdparty_not_there")
    monkeypatch.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")  # only turns off entry points of other distributions
    pm = load_plugin_manager()
    assert pm.infos["thirdparty_dev"] == PluginInfo("thirdparty_dev", "thirdparty_dev", "(SPORT_PLUGINS)", "?", False)
    assert pm.registry.get("env", "dev-env").plugin == "thirdparty_dev"
    # The same isolation as for entry points.
    failed = pm.failed["thirdparty_not_there"]
    assert (failed.distribution, failed.error) == (
        "(SPORT_PLUGINS)",
        "ModuleNotFoundError: No module named 'thirdparty_not_there'",
    )


def test_a_registration_hook_returning_garbage_is_named(pm):
    class Bad:
        @hookimpl
        def sport_register_trainers(self):
            return ["not a component"]

    with pytest.raises(
        PluginError,
        match=r"^plugin 'bad': sport_register_trainers must return a list of sport_core.Component, "
        r"got 'not a component' \(str\) at index 0$",
    ):
        pm.add_plugin(Bad(), "bad")
    assert not pm.has_plugin("bad")


def test_a_hook_with_a_misspelt_name_is_rejected(pm):
    class Typo:
        @hookimpl
        def sport_log_scalar(self, step):  # missing the final s
            pass

    with pytest.raises(
        PluginError,
        match=r"^plugin 'typo': method sport_log_scalar matches no sport hook; did you mean 'sport_log_scalars'\?$",
    ):
        pm.add_plugin(Typo(), "typo")
    assert not pm.has_plugin("typo")


class MisspeltLogger:
    @hookimpl
    def sport_log_scalar(self, step, scalars):
        pass


class UnmarkedLogger:
    def sport_log_scalars(self, step, scalars):
        pass


class ExtraArgumentLogger:
    @hookimpl
    def sport_log_scalars(self, step, scalars, colour):
        pass


class HooklessLogger:
    def write(self, step, scalars):
        pass


@pytest.mark.parametrize(
    ("logger", "message"),
    [
        (MisspeltLogger, "method sport_log_scalar matches no sport hook; did you mean 'sport_log_scalars'?"),
        (UnmarkedLogger, "method sport_log_scalars is not marked @sport_core.hookimpl, so it would never be called"),
        (
            ExtraArgumentLogger,
            "method sport_log_scalars takes argument(s) 'colour' that hook sport_log_scalars does not pass "
            "(it passes run_dir, stage, step, scalars, labels)",
        ),
        (HooklessLogger, "implements no sport event hook (sport_log_figure, sport_log_histogram, "),
    ],
)
def test_a_logger_whose_hooks_would_never_be_called_is_a_one_line_error_naming_it(pm, logger, message):
    with pytest.raises(PluginError) as err:
        pm.register_logger(logger(), "logger-0-x", label="loggers[0] (x)")
    assert str(err.value).startswith(f"loggers[0] (x): {message}")
    assert "\n" not in str(err.value)
    assert not pm.has_plugin("logger-0-x")


def test_a_valid_logger_is_registered_and_receives_events(pm):
    calls = []

    class Logger:
        @hookimpl
        def sport_log_scalars(self, step, scalars):
            calls.append((step, scalars))

        def close(self):  # other methods are its own business
            pass

    pm.register_logger(Logger(), "logger-0-x", label="loggers[0] (x)")
    pm.hook.sport_log_scalars(run_dir=None, stage="s", step=3, scalars={"a": 1.0}, labels={})
    assert calls == [(3, {"a": 1.0})]


def test_check_hook_object_ignores_modules_and_non_callables_named_sport(pm):
    module = types.ModuleType("thirdparty_module")
    module.sport_core = sport_core  # ``import sport_core`` in a plugin module
    module.sport_version = "1.0"
    module.sport_register_envs = hookimpl(lambda: [])
    check_hook_object(module, "plugin 'module'", pm)
    module.sport_helper = lambda: None
    with pytest.raises(PluginError, match=r"^plugin 'module': function sport_helper matches no sport hook"):
        check_hook_object(module, "plugin 'module'", pm)


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
    pm.hook.sport_log_scalars(run_dir=None, stage="s", step=7, scalars={"x": 1.0}, labels={})
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
