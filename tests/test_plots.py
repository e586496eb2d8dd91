"""The ``plots`` plugin: the paper's figures and the report show a run's own numbers.

A small Experiment-1-shaped run on the point mass (hand-set base and task policies, a certificate from 200
episodes, a sweep over three α that keeps some episode paths) is made once through the real runner with the
TensorBoard logger; the figures, the report and the logged images are then checked against its artifacts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sport_core.bounds import max_log_alpha, prior_bound
from sport_core.cli import main
from sport_core.errors import ArtifactError
from sport_core.plugins import load_plugin_manager
from sport_core.recipe import validate
from sport_core.runner import Runner
from sport_plots import figures
from sport_plots.report import write_report
from sport_plots.rundata import EXP1, load_run
from tests.support.hand_policy import HandPolicyPlugin

ALPHAS = [1.0, 1.5, 10.0]


def recipe(seed: int) -> dict:
    return {
        "run": {"name": f"plots-{seed}", "seed": seed},
        "env": {"kind": "pointmass", "layout_seed": 8, "max_steps": 25},
        "executor": {"kind": "inline"},
        "loggers": [{"kind": "tensorboard"}],
        "stages": [
            {"name": "base", "evaluator": "hand-policy"},
            {"name": "task", "evaluator": "hand-policy", "config": {"std": 0.5, "gain": 4.0}},
            {"name": "certify", "certifier": "scenario", "inputs": {"policy": "base"}, "config": {"episodes": 200}},
            {
                "name": "sweep",
                "evaluator": "projected-sweep",
                "inputs": {"certificate": "certify", "base": "base", "task": "task"},
                "config": {"alphas": ALPHAS, "episodes": 60, "paths": 8},
            },
        ],
    }


@pytest.fixture(scope="module")
def pm():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
        yield load_plugin_manager(extra=[("hand_policy", HandPolicyPlugin())])


@pytest.fixture(scope="module")
def runs(pm, tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("runs")
    dirs = []
    for seed in (0, 1):
        runner = Runner.create(validate(recipe(seed), pm.registry), pm, out)
        assert runner.run() == "completed"
        dirs.append(runner.run_dir)
    return dirs


def sweep_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "sweep" / "sweep.json").read_text())


def line(fig, label: str):
    (found,) = [ln for ax in fig.axes for ln in ax.lines if ln.get_label() == label]
    return found


def test_figure_c_plots_the_sweeps_failure_rates_and_prior_bounds(runs):
    sweep = sweep_json(runs[0])
    fig = figures.failure_figure([load_run(runs[0])])
    empirical = line(fig, f"{EXP1}: empirical")
    assert empirical.get_xdata().tolist() == ALPHAS
    assert empirical.get_ydata().tolist() == [row["failure_rate"] for row in sweep["rows"]]
    assert line(fig, "prior bound").get_ydata().tolist() == [row["prior_bound"] for row in sweep["rows"]]


def test_several_runs_plot_the_mean_across_seeds(runs):
    rates = np.array([[row["failure_rate"] for row in sweep_json(r)["rows"]] for r in runs])
    fig = figures.failure_figure([load_run(r) for r in runs])
    np.testing.assert_allclose(line(fig, f"{EXP1}: empirical").get_ydata(), rates.mean(axis=0), rtol=0, atol=1e-15)
    lengths = np.array([[row["success_length_mean"] for row in sweep_json(r)["rows"]] for r in runs])
    fig = figures.success_length_figure([load_run(r) for r in runs])
    np.testing.assert_allclose(line(fig, EXP1).get_ydata(), lengths.mean(axis=0), rtol=0, atol=1e-12)


def test_figures_a_and_b_are_the_certificates_curves(runs):
    cert = json.loads((runs[0] / "certify" / "certificate.json").read_text())
    eps = np.array(cert["epsilon"])
    fig = figures.max_log_alpha_figure([load_run(runs[0])], bounds=(1.0, 0.1))
    np.testing.assert_array_equal(line(fig, "B = 0.1").get_ydata(), max_log_alpha(eps, 0.1))
    fig = figures.prior_bound_figure([load_run(runs[0])], alphas=(1.2,))
    np.testing.assert_array_equal(line(fig, r"$\alpha$ = 1.2").get_ydata(), prior_bound(eps, 1.2))


def test_figure_e_draws_every_kept_path_over_the_layout(runs):
    fig = figures.trajectories_figure([load_run(runs[0])], alphas=[1.0, 10.0])
    for ax in fig.axes:
        paths = [ln for ln in ax.lines if ln.get_marker() in ("None", "", None)]
        assert len(paths) == 8  # sweep.config.paths
        assert len(ax.patches) == 4  # hazard and goal, each a fill and an outline


def test_figure_f_ratio_contour_is_where_the_sup_ratio_equals_alpha(pm):
    projection = pm.registry.get("projection", "gaussian-kl").build()
    std_b, std_p, alpha = np.array([0.5, 0.25]), np.array([0.48, 0.24]), 1.3
    semi = figures.ratio_contour(std_b, std_p, alpha)
    mu_b = np.array([0.1, -0.2])
    for angle in (0.0, 1.0, 2.5, 4.0):
        m = mu_b + semi * np.array([math.cos(angle), math.sin(angle)])  # a point of the ellipse
        log_ratio = projection.max_log_ratio(
            (torch.tensor(m)[None], torch.tensor(std_p)[None]), (torch.tensor(mu_b)[None], torch.tensor(std_b)[None])
        )
        assert float(log_ratio) == pytest.approx(math.log(alpha), abs=1e-12)
    # σp so narrow that even m = μb exceeds α: no mean stays within the bound
    assert np.isnan(figures.ratio_contour(std_b, np.array([0.3, 0.15]), alpha)).all()


def test_figure_f_draws_base_task_projected_and_the_contour(pm, runs):
    fig = figures.projection_frames_figure(load_run(runs[0]), pm.registry, alpha=1.5, frames=3)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert [ln.get_label() for ln in ax.lines] == ["base", "task", "projected"]
        assert len(ax.patches) == 4  # three 1-sigma ellipses and the ratio contour


def test_the_run_sent_the_figures_and_tables_to_tensorboard(runs):
    sweep = EventAccumulator(str(runs[0] / "tb" / "sweep"), size_guidance={"images": 0, "tensors": 0})
    sweep.Reload()
    assert set(sweep.Tags()["images"]) >= {
        "figures/c_failure_vs_alpha",
        "figures/d_success_length",
        "figures/e_trajectories",
        "figures/f_projection_frames",
    }
    (image,) = sweep.Images("figures/c_failure_vs_alpha")
    assert image.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n" and image.width > 100
    table = sweep.Tensors("tables/sweep/text_summary")[0].tensor_proto.string_val[0].decode()
    assert f"| 10 | {sweep_json(runs[0])['rows'][2]['failures']} |" in table
    cert = EventAccumulator(str(runs[0] / "tb" / "certify"), size_guidance={"images": 0})
    cert.Reload()
    assert set(cert.Tags()["images"]) >= {"figures/a_max_log_alpha", "figures/b_prior_bound"}


def test_sport_plot_writes_png_and_svg(runs, tmp_path, capsys):
    assert main(["plot", str(runs[0]), "--out", str(tmp_path)]) == 0
    for stem in ("a-max-log-alpha", "b-prior-bound", "c-failure-vs-alpha", "d-success-length", "e-trajectories"):
        assert (tmp_path / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / f"{stem}.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "f-projection-frames-exp1.png").is_file()


def test_sport_report_tables_are_the_runs_numbers(pm, runs, tmp_path):
    path = write_report([load_run(runs[0])], tmp_path, pm.registry, horizons=[20])
    text = path.read_text()
    cert = json.loads((runs[0] / "certify" / "certificate.json").read_text())
    best = cert["bounds"][0]
    assert f"| {best['T_star']} | {best['failures_at_T_star']} | {best['epsilon_at_T_star']:.6g} |" in text
    for row in sweep_json(runs[0])["rows"]:
        assert f"| {row['alpha']:g} | {row['failures']} | {row['failure_rate']:.4g} |" in text
    assert "Recomputed at T = 20" in text and "![c-failure-vs-alpha](figures/c-failure-vs-alpha.png)" in text
    assert (tmp_path / "figures" / "c-failure-vs-alpha.png").is_file()


def test_a_report_of_several_runs_gives_mean_and_range(runs, tmp_path, capsys):
    assert main(["report", *map(str, runs), "--out", str(tmp_path), "--format", "png"]) == 0
    text = (tmp_path / "report.md").read_text()
    k = [sweep_json(r)["rows"][2]["failures"] for r in runs]
    assert f"| 10 | {np.mean(k):.4g} [{min(k):.4g}, {max(k):.4g}] |" in text
    assert "plots-0" in text and "plots-1" in text


def test_bad_run_folders_are_one_line_errors(runs, tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "is not a run folder (no manifest.json)" in capsys.readouterr().err
    assert main(["report", str(runs[0]), str(runs[1])]) == 2
    assert "several runs need --out" in capsys.readouterr().err
    with pytest.raises(ArtifactError, match="has changed since the sweep"):
        cert = runs[1] / "certify" / "certificate.json"
        original = cert.read_bytes()
        try:
            cert.write_bytes(original.replace(b'"beta"', b'"beta" ', 1))
            load_run(runs[1])
        finally:
            cert.write_bytes(original)
