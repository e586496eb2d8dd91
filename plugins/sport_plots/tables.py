"""The numbers behind the figures as Markdown tables (one run, or mean and spread across runs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sport_core.certificates import guarantee_label
from sport_core.episodes import read_episodes
from sport_core.evaluation import evaluate_policy_records
from sport_plots.rundata import RunData, Sweep


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def spread(values: Sequence[float | None], digits: int = 4) -> str:
    """One value as is; several as ``mean [min, max]`` (``–`` for a missing value)."""
    vals = np.array([np.nan if v is None else v for v in values], dtype=float)
    if len(vals) == 1:
        return _fmt(float(vals[0]), digits)
    if np.all(np.isnan(vals)):
        return "–"
    return f"{np.nanmean(vals):.{digits}g} [{np.nanmin(vals):.{digits}g}, {np.nanmax(vals):.{digits}g}]"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def certificate_table(runs: Sequence[RunData]) -> str:
    """Per run: N, β, and for the largest bound B: T*, k(T*), ε(T*), α*, and the guarantee (its kind and
    method); then k and ε at T* of every bound. N and k(T*) are method-specific fields ("–" when absent)."""
    rows = []
    for run in runs:
        cert = run.certificate
        if cert is None:
            continue
        c = cert.data
        best = cert.bound_row()
        rows.append(
            [
                run.name,
                _fmt(run.seed),
                str(c.get("episodes", "–")),
                f"{c['beta']:g}",
                f"{best['bound']:g}",
                str(best["T_star"]),
                str(best.get("failures_at_T_star", "–")),
                f"{best['epsilon_at_T_star']:.6g}",
                f"{best['alpha_star']:.5f}",
                f"{c['method']}: {guarantee_label(c)}",
            ]
        )
    return table(["run", "seed", "N", "β", "B", "T*", "k(T*)", "ε(T*)", "α*", "guarantee"], rows)


def bounds_table(runs: Sequence[RunData]) -> str:
    """(T*, log α*) per target bound B, one column per run."""
    certs = [(r, r.certificate) for r in runs if r.certificate is not None]
    bounds = sorted({row["bound"] for _, c in certs for row in c.data["bounds"]}, reverse=True)
    rows = []
    for B in bounds:
        cells = []
        for _, c in certs:
            match = [row for row in c.data["bounds"] if row["bound"] == B]
            cells.append(f"({match[0]['T_star']}, {match[0]['log_alpha_star']:.4f})" if match else "–")
        rows.append([f"{B:g}", *cells])
    return table(["B", *[f"(T*, log α*) {r.name}" for r, _ in certs]], rows)


def prior_bound_label(sweeps: Sequence[Sweep]) -> str:
    """ "prior bound", naming the certificates' guarantee kind unless every one is frequentist (a Bayesian
    credible bound is never shown as if it were a confidence bound)."""
    kinds = sorted({s.certificate.data.get("guarantee", {}).get("kind", "unspecified") for s in sweeps})
    return "prior bound" if kinds == ["frequentist"] else f"prior bound ({' / '.join(kinds)})"


def sweep_table(sweeps: Sequence[Sweep]) -> str:
    """Per α: failures, empirical rate with its CP interval, prior bound, success length, fallbacks.

    With several sweeps (seeds), each cell is ``mean [min, max]`` across them."""
    alphas = sorted(set.intersection(*[{r["alpha"] for r in s.rows} for s in sweeps]))
    rows = []
    for a in alphas:
        r = [s.row(a) for s in sweeps]
        rows.append(
            [
                f"{a:g}",
                spread([x["failures"] for x in r], 4),
                spread([x["failure_rate"] for x in r]),
                spread([x["cp_lower"] for x in r]) + " – " + spread([x["cp_upper"] for x in r]),
                spread([x["prior_bound"] for x in r]),
                spread([x["success_length_mean"] for x in r]),
                spread([x["success_length_std"] for x in r], 3),
                spread([x.get("fallbacks") for x in r], 3),
            ]
        )
    n = sorted({s.data["episodes"] for s in sweeps})
    T = sorted({s.data["horizon"] for s in sweeps})
    header = [
        "α",
        f"failures of {'/'.join(map(str, n))}",
        f"failure rate by T = {'/'.join(map(str, T))}",
        "CP interval",
        prior_bound_label(sweeps),
        "success length mean",
        "std",
        "fallbacks",
    ]
    return table(header, rows)


def at_horizon(sweep: Sweep, horizon: int) -> list[dict[str, Any]]:
    """The sweep's rows recomputed at another horizon T from its episode stores (e.g. the paper's T = 21):
    failures by T, CP limits, the prior bound min(1, α^T ε(T)) and the success length within T."""
    records = {a: read_episodes(sweep.episode_store(a), strict=True).records for a in (r["alpha"] for r in sweep.rows)}
    return evaluate_policy_records(sweep.certificate.data, records, horizon=horizon)["rows"]


def horizon_table(sweeps: Sequence[Sweep], horizon: int) -> str:
    """Failure rate and success length at ``horizon`` per α (mean [min, max] across sweeps)."""
    per = [{row["alpha"]: row for row in at_horizon(s, horizon)} for s in sweeps]
    alphas = sorted(set.intersection(*[set(p) for p in per]))
    rows = [
        [
            f"{a:g}",
            spread([p[a]["failure_rate"] for p in per]),
            spread([p[a]["prior_bound"] for p in per]),
            spread([p[a]["success_length_mean"] for p in per]),
            spread([p[a]["success_length_std"] for p in per], 3),
        ]
        for a in alphas
    ]
    return table(["α", f"failure rate by T = {horizon}", "prior bound", "success length mean", "std"], rows)
