"""``sport plot`` and ``sport report``: the figures as files, and one Markdown report around them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sport_core.artifacts import atomic_write_bytes, atomic_write_text, relative_path
from sport_core.errors import ArtifactError
from sport_core.provenance import now_utc
from sport_plots import figures
from sport_plots.rundata import RunData
from sport_plots.tables import bounds_table, certificate_table, horizon_table, sweep_table

log = logging.getLogger("sport")

FORMATS = ("png", "svg")


def figure_makers(
    runs: Sequence[RunData], registry: Any, alphas: Sequence[float] | None = None, frames_alpha: float | None = None
) -> list[tuple[str, Callable[[], Any]]]:
    """(file stem, maker) for every figure the runs have data for, in the paper's order."""
    makers: list[tuple[str, Callable[[], Any]]] = []
    if any(r.certificate is not None for r in runs):
        makers += [
            ("a-max-log-alpha", lambda: figures.max_log_alpha_figure(runs)),
            ("b-prior-bound", lambda: figures.prior_bound_figure(runs)),
        ]
    if any(r.sweeps for r in runs):
        makers += [
            ("c-failure-vs-alpha", lambda: figures.failure_figure(runs)),
            ("d-success-length", lambda: figures.success_length_figure(runs)),
        ]
        if any(row.get("paths") for r in runs for s in r.sweeps for row in s.rows):
            makers.append(("e-trajectories", lambda: figures.trajectories_figure(runs, alphas)))
            first = next(r for r in runs if any(row.get("paths") for s in r.sweeps for row in s.rows))
            for experiment in figures.sweeps_by_experiment([first]):
                tag = "exp2" if experiment == figures.EXP2 else "exp1"
                makers.append(
                    (
                        f"f-projection-frames-{tag}",
                        lambda e=experiment: figures.projection_frames_figure(first, registry, frames_alpha, e),
                    )
                )
    return makers


def save_figure(fig: Any, stem: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``fig`` as ``stem.<format>`` for each format, atomically; returns the paths."""
    import io

    out = []
    for fmt in formats:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150)
        out.append(atomic_write_bytes(stem.with_suffix(f".{fmt}"), buf.getvalue()))
    return out


def write_figures(
    runs: Sequence[RunData],
    out: Path,
    registry: Any,
    formats: Sequence[str] = FORMATS,
    alphas: Sequence[float] | None = None,
    frames_alpha: float | None = None,
) -> dict[str, list[Path]]:
    """Draw every available figure into ``out``; a figure that cannot be drawn is skipped with a warning
    naming why (e.g. a sweep that kept no paths), the others are still written."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    for stem, make in figure_makers(runs, registry, alphas, frames_alpha):
        try:
            fig = make()
        except ArtifactError as exc:
            log.warning("figure %s skipped: %s", stem, exc)
            continue
        written[stem] = save_figure(fig, out / stem, formats)
    return written


def _versions(runs: Sequence[RunData]) -> str:
    lines = []
    for run in runs:
        m = run.manifest
        v = m.get("versions", {})
        packages = ", ".join(f"{k} {v[k]}" for k in ("python", "sport", "numpy", "torch") if k in v)
        lines.append(
            f"* `{run.name}`: recipe `{m.get('recipe', '?')}`, created {m.get('created', '?')}, "
            f"git {str(m.get('git_revision') or '?')[:12]}, status {m.get('status', '?')}; {packages}"
        )
    return "\n".join(lines)


def _hashes(runs: Sequence[RunData], out: Path) -> str:
    lines = []
    for run in runs:
        for cert in run.certificates or ([run.certificate] if run.certificate else []):
            lines.append(f"* `{relative_path(cert.path, out)}`: sha256 `{cert.sha256}`")
        for sweep in run.sweeps:
            lines.append(f"* `{relative_path(sweep.path, out)}`: sha256 `{sweep.sha256}`")
            base = sweep.data["base_policy"]
            lines.append(f"  * base weights sha256 `{base['weights_sha256']}`")
            task = sweep.data["task_policy"]
            if "weights_sha256" in task:
                lines.append(f"  * task weights sha256 `{task['weights_sha256']}`")
            else:
                lines.append(f"  * task policy set `{task.get('policy_set', '?')}` (hashes checked on read)")
    return "\n".join(lines)


def write_report(
    runs: Sequence[RunData],
    out: Path,
    registry: Any,
    horizons: Sequence[int] = (),
    formats: Sequence[str] = FORMATS,
    alphas: Sequence[float] | None = None,
    frames_alpha: float | None = None,
) -> Path:
    """``out/report.md`` with the certificate and per-α tables, the figures (``out/figures``), versions and
    hashes; ``horizons`` adds the sweeps' numbers recomputed at other horizons from their episode stores."""
    written = write_figures(runs, out / "figures", registry, formats, alphas, frames_alpha)
    title = runs[0].name if len(runs) == 1 else f"{len(runs)} runs ({', '.join(r.name for r in runs)})"
    parts = [f"# sport report: {title}", "", f"Made by `sport report` on {now_utc()} from the runs' own artifacts."]
    if len(runs) > 1:
        parts.append("With several runs, each cell reads `mean [min, max]` across runs.")
    if any(r.certificate for r in runs):
        parts += ["", "## Certificate of the base policy", "", certificate_table(runs), "", bounds_table(runs)]
    groups = figures.sweeps_by_experiment(runs)
    for experiment, sweeps in groups.items():
        s0 = sweeps[0]
        parts += [
            "",
            f"## {experiment}",
            "",
            f"{s0.data['episodes']} episodes per α on the certified scenario; failure by T* of bound "
            f"B = {s0.data.get('bound')}; CP interval at β = {s0.data['beta']:g}.",
            "",
            sweep_table(sweeps),
        ]
        for T in horizons:
            parts += ["", f"Recomputed at T = {T} from the episode stores:", "", horizon_table(sweeps, T)]
    if written:
        parts += ["", "## Figures", ""]
        for stem, files in written.items():
            png = [f for f in files if f.suffix == ".png"]
            link = png[0] if png else files[0]
            parts.append(f"![{stem}]({relative_path(link, out)})")
            parts.append("")
    parts += ["## Runs and versions", "", _versions(runs), "", "## Artifacts", "", _hashes(runs, out), ""]
    return atomic_write_text(out / "report.md", "\n".join(parts))
