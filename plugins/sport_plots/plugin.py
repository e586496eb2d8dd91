"""Hooks of the ``plots`` plugin: the ``plot``, ``report`` and ``draw`` commands, and figures for the loggers."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from sport_core import hookimpl
from sport_plots.draw import add_draw_command

log = logging.getLogger("sport")


def _alpha_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"alphas are ratio bounds >= 1, got {text!r}")
    return values


def _formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad or not formats:
        raise argparse.ArgumentTypeError(f"formats are png, svg or pdf; got {text!r}")
    return formats


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (several: seeds, aggregated)")
    parser.add_argument("--out", help="output folder (default: RUN_DIR/<command> for one run; needed for several)")
    parser.add_argument("--format", type=_formats, default=["png", "svg"], help="figure formats (default png,svg)")
    parser.add_argument("--alphas", type=_alpha_list, help="alphas of the trajectory figure (default: up to 6)")
    parser.add_argument("--frames-alpha", type=float, help="alpha of the projection frames (default: closest to 2)")


def _out(args: argparse.Namespace, default: str) -> Path:
    from sport_core.errors import SportError

    if args.out:
        return Path(args.out)
    if len(args.runs) > 1:
        raise SportError(f"sport {default}: several runs need --out FOLDER for the aggregated {default}")
    return Path(args.runs[0]) / default


def _cmd_plot(args: argparse.Namespace) -> int:
    from sport_core.plugins import load_plugin_manager
    from sport_plots.report import write_figures
    from sport_plots.rundata import load_runs

    runs = load_runs(args.runs)
    out = _out(args, "figures")
    written = write_figures(runs, out, load_plugin_manager().registry, args.format, args.alphas, args.frames_alpha)
    for stem in written:
        print(f"{out / stem}.{{{','.join(args.format)}}}")
    return 0 if written else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from sport_core.plugins import load_plugin_manager
    from sport_plots.report import write_report
    from sport_plots.rundata import load_runs

    runs = load_runs(args.runs)
    out = _out(args, "report")
    path = write_report(
        runs, out, load_plugin_manager().registry, args.horizon, args.format, args.alphas, args.frames_alpha
    )
    print(path)
    return 0


@hookimpl
def sport_register_commands(subparsers: Any) -> None:
    plot = subparsers.add_parser(
        "plot",
        help="draw the paper's figures from run folders",
        description="Draw figures (a)-(f) of the paper from run folders' certificates and alpha sweeps.",
    )
    _common(plot)
    plot.set_defaults(func=_cmd_plot)
    report = subparsers.add_parser(
        "report",
        help="write a Markdown report of run folders",
        description="Write report.md: certificate and per-alpha tables, figures, versions and hashes.",
    )
    _common(report)
    report.add_argument(
        "--horizon", type=int, action="append", default=[], help="also tabulate the sweeps at this horizon T"
    )
    report.set_defaults(func=_cmd_report)
    add_draw_command(subparsers)


@hookimpl
def sport_stage_completed(run_dir: Path, stage: str, outputs: dict, log: Any, registry: Any) -> None:
    """Figures (and a table) of a completed certifier or sweep stage, for the loggers."""
    if "certificate" not in outputs and "sweep" not in outputs:
        return
    from sport_plots import figures
    from sport_plots.rundata import load_run
    from sport_plots.tables import certificate_table, sweep_table

    run = load_run(run_dir, stages=[stage])
    if "certificate" in outputs:
        for tag, make in (
            ("figures/a_max_log_alpha", figures.max_log_alpha_figure),
            ("figures/b_prior_bound", figures.prior_bound_figure),
        ):
            _emit(log, tag, make([run]))
        log.text(0, "tables/certificate", certificate_table([run]))
    if "sweep" in outputs:
        _emit(log, "figures/c_failure_vs_alpha", figures.failure_figure([run]))
        _emit(log, "figures/d_success_length", figures.success_length_figure([run]))
        if any(row.get("paths") for row in run.sweeps[0].rows):
            _emit(log, "figures/e_trajectories", figures.trajectories_figure([run]))
            _emit(log, "figures/f_projection_frames", figures.projection_frames_figure(run, registry))
        log.text(0, "tables/sweep", sweep_table(run.sweeps))


def _emit(log: Any, tag: str, fig: Any) -> None:
    log.figure(0, tag, fig)
    fig.clf()
