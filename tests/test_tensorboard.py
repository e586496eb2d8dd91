"""The TensorBoard logger writes real event files that TensorBoard reads back."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sport_core.recipe import validate
from sport_core.runner import Runner


def test_a_run_with_the_tensorboard_logger_leaves_readable_event_files(pm, tmp_path):
    recipe = validate(
        {
            "run": {"name": "tb"},
            "env": {"kind": "pointmass", "layout_seed": 0, "max_steps": 10},
            "executor": {"kind": "inline"},
            "loggers": [{"kind": "tensorboard"}, {"kind": "jsonl"}],
            "stages": [{"name": "eval", "evaluator": "rollout", "config": {"episodes": 12}}],
        },
        pm.registry,
    )
    runner = Runner.create(recipe, pm, tmp_path)
    assert runner.run() == "completed"
    acc = EventAccumulator(str(runner.run_dir / "tb" / "eval"))
    acc.Reload()
    assert "eval/episodes" in acc.Tags()["scalars"]
    (event,) = acc.Scalars("eval/timeout_rate")
    summary = json.loads((runner.run_dir / "eval" / "summary.json").read_text())
    assert event.step == 12 and event.value == pytest.approx(summary["timeout_rate"])


def test_histograms_figures_and_text_are_written(pm, tmp_path):
    logger = pm.registry.get("logger", "tensorboard").build()
    pm.register(logger, name="tb")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    hook = pm.hook
    hook.sport_log_scalars(run_dir=tmp_path, stage="s", step=1, scalars={"a/b": 2.5}, labels={})
    hook.sport_log_histogram(run_dir=tmp_path, stage="s", step=1, tag="h", values=np.arange(100.0), labels={})
    hook.sport_log_figure(run_dir=tmp_path, stage="s", step=1, tag="f", figure=fig, labels={})
    hook.sport_log_text(run_dir=tmp_path, stage="s", step=1, tag="t", text="**hello**", labels={})
    logger.close()
    plt.close(fig)
    acc = EventAccumulator(str(tmp_path / "tb" / "s"), size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    assert acc.Scalars("a/b")[0].value == 2.5
    assert "h" in tags["histograms"] and "f" in tags["images"]
    assert any("t" in tag for tag in tags["tensors"])
