"""The ``sport`` command: run, check, plugins, verify, and the commands plugins add (plot, report, …).

Every user error (bad recipe, missing file, broken plugin) exits with status 2 and one line on stderr;
``--debug`` shows the traceback instead. An interrupted run exits with 130 and says how to resume it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from sport_core import __version__
from sport_core.errors import SportError
from sport_core.plugins import load_plugin_manager
from sport_core.recipe import load_recipe
from sport_core.runner import Runner
from sport_core.verify_command import add_verify_command

log = logging.getLogger("sport")


def _cmd_run(args: argparse.Namespace) -> int:
    pm = load_plugin_manager()
    if args.resume:
        if args.recipe or args.set:
            raise SportError("--resume RUN_DIR continues a run with its own resolved recipe; give no RECIPE or --set")
        runner = Runner.resume(args.resume, pm)
        log.info("resuming %s", runner.run_dir)
    else:
        if not args.recipe:
            raise SportError("sport run needs a RECIPE file (or --resume RUN_DIR)")
        recipe = load_recipe(args.recipe, pm.registry, args.set)
        runner = Runner.create(recipe, pm, args.out)
        log.info("run directory %s", runner.run_dir)
    try:
        status = runner.run(only=args.stage or None, parallel_stages=args.parallel_stages)
    except KeyboardInterrupt:
        print(f"interrupted; continue with: sport run --resume {runner.run_dir}", file=sys.stderr)
        return 130
    print(f"{status}: {runner.run_dir}")
    return 0 if status == "completed" else 1


def _cmd_check(args: argparse.Namespace) -> int:
    """Validate a recipe: every key, every component, and the stage graph (inputs each stage declares, made by
    earlier stages that declare those artifacts; an env for stages that need one)."""
    pm = load_plugin_manager()
    recipe = load_recipe(args.recipe, pm.registry, args.set)
    stages = ", ".join(f"{s.name} ({s.kind} {s.component.name})" for s in recipe.stages)
    print(f"{args.recipe}: valid recipe {recipe.run.name!r} with {len(recipe.stages)} stages: {stages}")
    for s in recipe.stages:  # the stage graph `sport check` validated
        if s.inputs:
            print(f"    {s.name} <- " + ", ".join(f"{role}: {ref}" for role, ref in s.inputs.items()))
    if args.show:
        print(recipe.to_toml())
    return 0


def _cmd_plugins(args: argparse.Namespace) -> int:
    """Loaded plugins with their components, then the disabled and the failed ones; 1 if any failed."""
    pm = load_plugin_manager()
    for name, info in sorted(pm.infos.items(), key=lambda kv: (not kv[1].builtin, kv[0])):
        origin = "built-in" if info.builtin else f"from {info.distribution}"
        print(f"{name} {info.version} ({origin}; {info.module})")
        for component in pm.registry.by_plugin(name):
            desc = f": {component.description}" if component.description else ""
            print(f"    {component.kind:<10} {component.name}{desc}")
    if pm.disabled:
        print("\ndisabled plugins:")
        for name in sorted(pm.disabled):
            print(f"    {name} (disabled by SPORT_DISABLE_PLUGINS)")
    if pm.failed:
        print("\nplugins that failed to load (their components are unavailable):")
        for name, failed in sorted(pm.failed.items()):
            origin = "built-in" if failed.builtin else f"from {failed.distribution}"
            print(f"    {name} {failed.version} ({origin}; {failed.module}): {failed.error}")
        return 1
    return 0


def build_parser(plugin_commands: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sport", description="Certified-safe policy updates (SPoRt) as a plugin framework."
    )
    parser.add_argument("--version", action="version", version=f"sport {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a recipe (or resume a run)", description="Run the stages of a TOML recipe.")
    run.add_argument("recipe", nargs="?", help="recipe TOML file")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. stages.base.config.total_steps=2000 (repeatable)",
    )
    run.add_argument("--out", help="parent directory of the run directory (default: [run].out_dir)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run in RUN_DIR")
    run.add_argument("--stage", action="append", help="run only this stage (repeatable)")
    run.add_argument(
        "-j",
        "--parallel-stages",
        type=int,
        metavar="N",
        help="run at most N stages at once (default: [run].parallel_stages; 0: one per core; 1: one at a time)",
    )
    run.set_defaults(func=_cmd_run)

    check = sub.add_parser("check", help="validate a recipe without running it", description="Validate a recipe.")
    check.add_argument("recipe", help="recipe TOML file")
    check.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override as in run")
    check.add_argument("--show", action="store_true", help="print the resolved recipe")
    check.set_defaults(func=_cmd_check)

    plugins = sub.add_parser("plugins", help="list plugins and their components", description="List plugins.")
    plugins.set_defaults(func=_cmd_plugins)
    for extra in EXTRA_COMMANDS:
        extra(sub)
    if plugin_commands:
        _plugin_commands(sub)
    return parser


def _needs_plugin_commands(argv: Sequence[str]) -> bool:
    """Whether the command line may name a plugin's command (loading plugins imports torch: ≈ 2 s)."""
    words = [a for a in argv if not a.startswith("-")]
    return not ("--version" in argv or (words and words[0] in BUILTIN_COMMANDS))


def _plugin_commands(sub: argparse._SubParsersAction) -> None:
    """Subcommands added by plugins (``sport_register_commands``). If the plugins cannot be loaded, the
    built-in commands still parse, and the command that loads them reports why."""
    try:
        pm = load_plugin_manager()
    except SportError as exc:
        log.debug("plugin commands not added: %s", exc)
        return
    before = set(sub.choices)
    for impl in pm.hook.sport_register_commands.get_hookimpls():
        try:
            impl.function(subparsers=sub)
        except argparse.ArgumentError as exc:
            raise SportError(f"plugin {impl.plugin_name!r} adds a command that exists already ({exc})") from exc
    log.debug("plugin commands: %s", sorted(set(sub.choices) - before))


#: Commands of the core itself (no plugin needs loading to parse them).
BUILTIN_COMMANDS = ("run", "check", "plugins", "verify")

#: Functions adding further subcommands (``verify``, ...) to the parser; modules append to it.
EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []
EXTRA_COMMANDS.append(add_verify_command)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser(_needs_plugin_commands(argv))
    except SportError as exc:
        print(f"sport: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except SportError as exc:
        if args.debug:
            raise
        print(f"sport: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
