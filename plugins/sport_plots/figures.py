"""The paper's figures (FACTS §7, a–f) drawn from runs' own artifacts, one or several runs (seeds).

Every function takes :class:`~sport_plots.rundata.RunData` objects and returns a matplotlib ``Figure`` (the
caller saves or logs it, then closes it). With several runs, a line is the mean across runs and the shaded
band their minimum to maximum; each run's own points are drawn small. A single run's failure rates carry
their Clopper–Pearson interval at the certificate's β as error bars.

(a) ``max_log_alpha``: log α_max(T) = max(0, (ln B − ln ε(T))/T) for several target bounds B, with T* marked.
(b) ``prior_bound``: min(1, α^T ε(T)) against T for several α.
(c) ``failure_vs_alpha``: failure probability at each sweep's horizon T* against α (log x): empirical rate,
    its CP interval, and the prior bound, for every experiment present.
(d) ``success_length``: mean ± std of the goal step of episodes that succeeded by T*, against α.
(e) ``trajectories``: the agent's x–y paths per α over the layout (hazard and goal drawn to scale), coloured
    by outcome at T*.
(f) ``projection_frames``: at states along one episode, the pre-tanh action plane with the base, task and
    projected Gaussians (1σ ellipses around their means) and the ratio = α contour: the means m at which
    the projected σ would give sup p/π_b = α exactly (FACTS §3),
    Σ_i log(σb_i/σp_i) + (m_i − μb_i)² / (2(σb_i² − σp_i²)) = log α.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files and loggers only; never a window

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from sport_core.actors import ProjectedActor
from sport_core.bounds import max_log_alpha, prior_bound
from sport_core.config import structure
from sport_core.drawing import draw_layout
from sport_core.errors import ArtifactError
from sport_core.policyset import read_policy_set
from sport_core.weights import load_policy, policy_files
from sport_plots.rundata import EXP1, EXP2, RunData, Sweep
from sport_plots.tables import prior_bound_label

COLORS = {EXP1: "tab:orange", EXP2: "tab:green"}
OUTCOME_COLORS = {"goal": "tab:blue", "violation": "tab:red", "timeout": "0.55"}
DEFAULT_BOUNDS = (1.0, 0.5, 0.1, 0.025)
DEFAULT_PRIOR_ALPHAS = (1.0, 1.05, 1.1, 1.2, 1.5)


def _figure(width: float = 6.4, height: float = 4.2, **kw: Any) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(**kw)


def _seeds_note(runs: Sequence[RunData]) -> str:
    seeds = [r.seed for r in runs]
    if len(runs) == 1:
        return f"seed {seeds[0]}"
    return f"{len(runs)} runs (seeds {', '.join(str(s) for s in seeds)}): mean, band = min–max"


def _band(ax: Any, x: np.ndarray, curves: list[np.ndarray], color: Any, label: str, **kw: Any) -> None:
    stack = np.vstack(curves)
    ax.plot(x, stack.mean(axis=0), color=color, label=label, **kw)
    if len(curves) > 1:
        ax.fill_between(x, stack.min(axis=0), stack.max(axis=0), color=color, alpha=0.2, linewidth=0)


def _epsilons(runs: Sequence[RunData]) -> tuple[list[Any], np.ndarray, list[np.ndarray]]:
    """(certificates, horizons 1..T_max, each certificate's ε(T) over them) of the runs that have one."""
    certs = [r.certificate for r in runs if r.certificate is not None]
    if not certs:
        raise ArtifactError("none of the runs has a certificate")
    t_max = min(len(c.data["epsilon"]) for c in certs)
    return certs, np.arange(1, t_max + 1), [np.asarray(c.data["epsilon"][:t_max], dtype=np.float64) for c in certs]


# -- (a) and (b): the certificate -------------------------------------------------------------------------------


def max_log_alpha_figure(runs: Sequence[RunData], bounds: Sequence[float] = DEFAULT_BOUNDS) -> Figure:
    """(a) log α_max(T) for each target bound B; a dot at each run's (T*, log α*)."""
    _, T, epsilons = _epsilons(runs)
    fig, ax = _figure()
    cmap = matplotlib.colormaps["viridis"]
    last_peak, smallest = 0, min(bounds)
    for j, bound in enumerate(bounds):
        color = cmap(j / max(1, len(bounds) - 1))
        curves = [max_log_alpha(eps, bound) for eps in epsilons]
        _band(ax, T, curves, color, f"B = {bound:g}")
        for curve in curves:
            t_star = int(np.argmax(curve))
            if bound == smallest:  # the smallest bound peaks last: the x range shows it 3 times over
                last_peak = max(last_peak, t_star)
            ax.plot(T[t_star], curve[t_star], "o", color=color, markersize=4)
    ax.set_xlim(1, min(len(T), max(3 * (last_peak + 1), 10)))
    ax.set_xlabel("horizon T (steps)")
    ax.set_ylabel(r"max permitted $\log\alpha$")
    ax.set_title(f"(a) largest ratio bound per horizon, {_seeds_note(runs)}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def prior_bound_figure(runs: Sequence[RunData], alphas: Sequence[float] = DEFAULT_PRIOR_ALPHAS) -> Figure:
    """(b) the prior bound min(1, α^T ε(T)) against T for several α (log y)."""
    certs, T, epsilons = _epsilons(runs)
    fig, ax = _figure()
    cmap = matplotlib.colormaps["plasma"]
    for j, a in enumerate(alphas):
        curves = [prior_bound(eps, a) for eps in epsilons]
        _band(ax, T, curves, cmap(0.85 * j / max(1, len(alphas) - 1)), rf"$\alpha$ = {a:g}")
    for c in certs:
        ax.axvline(c.bound_row()["T_star"], color="0.6", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xlim(1, len(T))
    ax.set_xlabel("horizon T (steps)")
    ax.set_ylabel(r"prior bound $\min(1, \alpha^T \varepsilon_{base}(T))$")
    ax.set_title(f"(b) prior bound per horizon (dotted: T*), {_seeds_note(runs)}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


# -- (c) and (d): the sweeps -----------------------------------------------------------------------------------


def sweeps_by_experiment(runs: Sequence[RunData]) -> dict[str, list[Sweep]]:
    """Each run's sweeps grouped by experiment (one per run and experiment: its first)."""
    groups: dict[str, list[Sweep]] = defaultdict(list)
    for run in runs:
        seen = set()
        for sweep in run.sweeps:
            if sweep.experiment not in seen:
                groups[sweep.experiment].append(sweep)
                seen.add(sweep.experiment)
    return dict(groups)


def common_alphas(sweeps: Sequence[Sweep]) -> list[float]:
    """The α values every sweep of a group evaluated."""
    sets = [{r["alpha"] for r in s.rows} for s in sweeps]
    return sorted(set.intersection(*sets))


def _column(sweeps: Sequence[Sweep], alphas: Sequence[float], key: str) -> list[np.ndarray]:
    return [np.array([np.nan if s.row(a)[key] is None else s.row(a)[key] for a in alphas], dtype=float) for s in sweeps]


def _experiments(runs: Sequence[RunData]) -> dict[str, list[Sweep]]:
    groups = sweeps_by_experiment(runs)
    if not groups:
        raise ArtifactError("none of the runs has an alpha sweep (a projected-sweep stage)")
    return groups


def failure_figure(runs: Sequence[RunData]) -> Figure:
    """(c) failure probability at T* against α: empirical (with CP interval for one run) and prior bound."""
    fig, ax = _figure()
    prior_drawn = False
    for experiment, sweeps in _experiments(runs).items():
        alphas = common_alphas(sweeps)
        x = np.array(alphas)
        color = COLORS.get(experiment)
        rates = _column(sweeps, alphas, "failure_rate")
        _band(ax, x, rates, color, f"{experiment}: empirical", marker="o", markersize=4)
        if len(sweeps) == 1:
            lo, hi = _column(sweeps, alphas, "cp_lower")[0], _column(sweeps, alphas, "cp_upper")[0]
            ax.vlines(x, lo, hi, color=color, alpha=0.6)  # the CP interval (errorbar() warns on a single alpha)
            ax.plot(x, lo, "_", x, hi, "_", color=color, alpha=0.6, markersize=6)
        else:
            for r in rates:
                ax.plot(x, r, ".", color=color, alpha=0.5, markersize=3)
        if not prior_drawn:
            _band(ax, x, _column(sweeps, alphas, "prior_bound"), "black", prior_bound_label(sweeps), linestyle="--")
            prior_drawn = True
    horizons = sorted({s.data["horizon"] for sweeps in _experiments(runs).values() for s in sweeps})
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(r"ratio bound $\alpha$")
    ax.set_ylabel(f"failure probability by T* = {', '.join(map(str, horizons))}")
    note = "bars: Clopper–Pearson interval" if len(runs) == 1 else _seeds_note(runs)
    ax.set_title(f"(c) failure probability against alpha ({note})", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


def success_length_figure(runs: Sequence[RunData]) -> Figure:
    """(d) mean ± std of the success step (episodes that reached the goal safely by T*) against α."""
    fig, ax = _figure()
    for experiment, sweeps in _experiments(runs).items():
        alphas = common_alphas(sweeps)
        x = np.array(alphas)
        color = COLORS.get(experiment)
        means = _column(sweeps, alphas, "success_length_mean")
        stds = _column(sweeps, alphas, "success_length_std")
        mean = np.vstack(means).mean(axis=0)
        std = np.vstack(stds).mean(axis=0)
        ax.plot(x, mean, marker="o", markersize=4, color=color, label=experiment)
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
        if len(sweeps) > 1:
            for m in means:
                ax.plot(x, m, ".", color=color, alpha=0.5, markersize=3)
    ax.set_xscale("log")
    ax.set_xlabel(r"ratio bound $\alpha$")
    ax.set_ylabel("steps to goal (successful episodes)")
    note = "band: ± std" if len(runs) == 1 else f"{_seeds_note(runs)} of the mean; band: ± mean std"
    ax.set_title(f"(d) success episode length ({note})", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return fig


# -- (e): trajectories -----------------------------------------------------------------------------------------


def pick_alphas(available: Sequence[float], count: int = 6) -> list[float]:
    """Up to ``count`` α spread over the available ones on a log scale (always the first and the last)."""
    available = sorted(available)
    if len(available) <= count:
        return list(available)
    logs = np.log(available)
    targets = np.linspace(logs[0], logs[-1], count)
    picked = sorted({available[int(np.argmin(np.abs(logs - t)))] for t in targets})
    return picked


def trajectories_figure(runs: Sequence[RunData], alphas: Sequence[float] | None = None) -> Figure:
    """(e) x–y paths per α (columns) and experiment (rows), all runs' kept episodes overlaid."""
    groups = _experiments(runs)
    rows = []
    for experiment, sweeps in groups.items():
        kept = [s for s in sweeps if any(r.get("paths") for r in s.rows)]
        if kept:
            rows.append((experiment, kept))
    if not rows:
        raise ArtifactError("no sweep kept episode paths (set the sweep's config.paths above 0)")
    columns = list(alphas) if alphas else pick_alphas(common_alphas([s for _, ss in rows for s in ss]))
    fig = Figure(figsize=(2.3 * len(columns) + 0.4, 2.5 * len(rows) + 0.5), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), len(columns), sharex=True, sharey=True, squeeze=False))
    for i, (experiment, sweeps) in enumerate(rows):
        for j, alpha in enumerate(columns):
            ax = axes[i, j]
            counts: dict[str, int] = defaultdict(int)
            layout = None
            for sweep in sweeps:
                if alpha not in {r["alpha"] for r in sweep.rows}:
                    continue
                paths = sweep.paths(alpha)
                if paths is None:
                    continue
                layout = layout or paths.layout
                horizon = sweep.data["horizon"]
                for k, xy in enumerate(paths.xy):
                    outcome = paths.outcome(k, horizon)
                    counts[outcome] += 1
                    ax.plot(xy[:, 0], xy[:, 1], color=OUTCOME_COLORS[outcome], alpha=0.35, linewidth=0.7)
                ax.plot(*paths.xy[0][0], "k^", markersize=5)
            draw_layout(ax, layout, hazard_color="tab:red", goal_color="tab:green")
            total = sum(counts.values())
            summary = f"{counts['violation']}/{total} hit" if total else "no paths"
            ax.set_title(rf"$\alpha$ = {alpha:g} ({summary})", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{experiment.split(':')[0]}\ny (m)", fontsize=8)
            if i == len(rows) - 1:
                ax.set_xlabel("x (m)", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle(
        f"(e) agent paths (blue: goal, red: hazard, grey: neither by T*; ▲ start), {_seeds_note(runs)}", fontsize=9
    )
    return fig


# -- (f): projection frames ------------------------------------------------------------------------------------


def _policies(sweep: Sweep, alpha: float, registry: Any) -> tuple[Any, Any]:
    folder = sweep.folder
    base_w, _ = policy_files(folder / sweep.data["base_policy"]["weights"])
    task = sweep.data["task_policy"]
    if "policy_set" in task:
        task_w = read_policy_set(folder / task["policy_set"], made_by=f"stage {sweep.stage!r}")[alpha].weights
    else:
        task_w, _ = policy_files(folder / task["weights"])
    made_by = f"stage {sweep.stage!r}"
    return load_policy(base_w, registry, made_by=made_by), load_policy(task_w, registry, made_by=made_by)


def _projection(sweep: Sweep, registry: Any) -> Any:
    spec = sweep.data["projection"]
    component = registry.get("projection", spec["name"])
    return component.build(structure(component.config_cls, dict(spec["config"]), "sweep.json projection.config"))


def frame_states(sweep: Sweep, alpha: float, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, observations) of ``frames`` states evenly spread over the kept episode 0 of α."""
    paths = sweep.paths(alpha)
    if paths is None or paths.observations is None:
        raise ArtifactError(f"{sweep.path}: alpha {alpha:g} kept no observations (the sweep's config.paths is 0)")
    acted = paths.observations[:-1] if len(paths.observations) > 1 else paths.observations
    steps = np.unique(np.linspace(0, len(acted) - 1, frames).round().astype(int))
    return steps, acted[steps]


def ratio_contour(std_b: np.ndarray, std_p: np.ndarray, alpha: float) -> np.ndarray:
    """Semi-axes of the ellipse (centred on μb) of the means m at which sup N(m, σp²)/N(μb, σb²) = α
    (FACTS §3): (m_i − μb_i)² / (2(σb_i² − σp_i²)) summed over i equals log α − Σ_i log(σb_i/σp_i). A
    dimension with σp ≥ σb allows only m_i = μb_i (semi-axis 0); all NaN if no mean stays within α."""
    gap = std_b**2 - std_p**2
    budget = math.log(alpha) - float(np.sum(np.log(std_b / std_p)[gap > 0]))
    if budget < 0:
        return np.full_like(std_b, np.nan)
    return np.sqrt(np.maximum(gap, 0.0) * 2.0 * budget)


def projection_frames_figure(
    run: RunData, registry: Any, alpha: float | None = None, experiment: str | None = None, frames: int = 4
) -> Figure:
    """(f) base, task and projected Gaussians in the pre-tanh action plane at states along episode 0."""
    groups = sweeps_by_experiment([run])
    if not groups:
        raise ArtifactError(f"run {run.folder} has no alpha sweep")
    sweep = groups[experiment][0] if experiment in groups else next(iter(groups.values()))[0]
    available = [r["alpha"] for r in sweep.rows if r.get("paths")]
    if not available:
        raise ArtifactError(f"{sweep.path}: no alpha kept episode paths (set the sweep's config.paths above 0)")
    if alpha is None:  # the α closest to 2 above 1: where the projection visibly moves the task
        above = [a for a in available if a > 1] or available
        alpha = min(above, key=lambda a: abs(math.log(a) - math.log(2.0)))
    if alpha not in available:
        raise ArtifactError(f"{sweep.path}: alpha {alpha:g} has no kept paths (kept: {available})")
    base, task = _policies(sweep, alpha, registry)
    actor = ProjectedActor(base, task, _projection(sweep, registry), alpha)
    steps, obs = frame_states(sweep, alpha, frames)
    with torch.no_grad():
        x = torch.as_tensor(obs, dtype=torch.float32)
        (mu_b, std_b), (mu_t, std_t) = base(x), task(x)
        mu_p, std_p = actor.distribution(x)
    arrays = [np.asarray(t, dtype=np.float64) for t in (mu_b, std_b, mu_t, std_t, mu_p, std_p)]
    mu_b, std_b, mu_t, std_t, mu_p, std_p = arrays
    if mu_b.shape[1] != 2:
        raise ArtifactError(f"projection frames draw a 2-D action plane; these policies act in {mu_b.shape[1]} dims")
    fig = Figure(figsize=(3.0 * len(steps), 3.3), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(steps)))
    for k, ax in enumerate(axes):
        for mu, std, color, label in (
            (mu_b[k], std_b[k], "tab:blue", "base"),
            (mu_t[k], std_t[k], "tab:orange", "task"),
            (mu_p[k], std_p[k], "tab:green", "projected"),
        ):
            ax.add_patch(Ellipse(tuple(mu), 2 * std[0], 2 * std[1], fill=False, color=color, linewidth=1.5))
            ax.plot(*mu, "o", color=color, markersize=4, label=label)
        semi = ratio_contour(std_b[k], std_p[k], alpha)
        if np.all(np.isfinite(semi)):
            ax.add_patch(
                Ellipse(
                    tuple(mu_b[k]),
                    2 * semi[0],
                    2 * semi[1],
                    fill=False,
                    color="black",
                    linestyle="--",
                    linewidth=1,
                    label=rf"ratio = {alpha:g}",
                )
            )
        centre = np.vstack([mu_b[k], mu_t[k], mu_p[k]])
        reach = np.max(np.vstack([std_b[k], std_t[k], std_p[k], semi if np.all(np.isfinite(semi)) else std_b[k]]))
        lo, hi = centre.min(axis=0) - 1.2 * reach, centre.max(axis=0) + 1.2 * reach
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(f"step {int(steps[k])}", fontsize=8)
        ax.set_xlabel(r"$x_0$ (pre-tanh forward)", fontsize=8)
        if k == 0:
            ax.set_ylabel(r"$x_1$ (pre-tanh turn)", fontsize=8)
            ax.legend(fontsize=7, loc="best")
        ax.tick_params(labelsize=7)
    fig.suptitle(
        rf"(f) projection along episode 0 at $\alpha$ = {alpha:g} ({sweep.experiment}, seed {run.seed}); "
        r"ellipses: 1$\sigma$; dashed: means with sup ratio = $\alpha$ at the projected $\sigma$",
        fontsize=8,
    )
    return fig
