"""The wandb logger writes offline W&B runs whose transaction logs hold what the stages emitted.

wandb 0.31 has no Python reader for its ``run-<id>.wandb`` files (the Go ``wandb-core`` writes them), so
:func:`wandb_records` reads the format itself: a leveldb-style log of 32 KiB blocks after a 7-byte file
header (``:W&B``, magic 0xBEE1, version 0), each record a 7-byte header (CRC-32, length, type: full, first,
middle, last) and a chunk; whole records are ``wandb_internal_pb2.Record`` protobufs.
"""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from sport_core.errors import SportError
from sport_core.testing import pointmass_recipe

pytest.importorskip("wandb")
pytest.importorskip("av")  # sport_core.video.write_video

BLOCK = 32768
HEADER = struct.Struct("<IHB")  # CRC-32, chunk length, chunk type (1 full, 2 first, 3 middle, 4 last)


def wandb_records(path: Path) -> list:
    """The records of a ``run-<id>.wandb`` transaction log, as ``wandb_internal_pb2.Record``\\ s."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert struct.unpack("<4sHB", data[:7]) == (b":W&B", 0xBEE1, 0), f"{path}: not a W&B transaction log"
    records, pos, chunks = [], 7, b""
    while pos + HEADER.size <= len(data):
        if BLOCK - pos % BLOCK < HEADER.size:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = HEADER.unpack_from(data, pos)
        if kind == 0:  # zero padding to the end of the block
            pos += BLOCK - pos % BLOCK
            continue
        chunk = data[pos + HEADER.size : pos + HEADER.size + length]
        pos += HEADER.size + length
        chunks = chunk if kind in (1, 2) else chunks + chunk
        if kind in (1, 4):
            record = Record()
            record.ParseFromString(chunks)
            records.append(record)
    return records


class OfflineRun:
    """What one offline run folder holds: its run record (name, group, job type, config), history rows
    (key → decoded value, nested keys joined by ``/``), its exit code and the folder itself."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (log,) = folder.glob("run-*.wandb")
        self.name = self.group = self.job_type = ""
        self.config: dict = {}
        self.history: list[dict] = []
        self.exit_code: int | None = None
        for record in wandb_records(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                self.name, self.group, self.job_type = (
                    record.run.display_name,
                    record.run.run_group,
                    record.run.job_type,
                )
                self.config = {item.key: json.loads(item.value_json) for item in record.run.config.update}
            elif kind == "history":
                self.history.append(
                    {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
                )
            elif kind == "exit":
                self.exit_code = record.exit.exit_code

    def series(self, tag: str) -> list[tuple[int, object]]:
        """(step, value) of every row that has ``tag``, in logging order."""
        return [(row["step"], row[tag]) for row in self.history if tag in row]


def offline_runs(root: Path, timeout: float = 30.0) -> dict[str, OfflineRun]:
    """Every offline run under ``root`` (W&B's ``wandb/`` folder), by run name, once each holds its exit
    record: ``run.finish()`` returns before wandb-core has flushed the run's transaction log to disk."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [OfflineRun(folder) for folder in sorted(root.glob("offline-run-*"))]
        if all(run.exit_code is not None for run in runs) or time.monotonic() > deadline:
            return {run.name: run for run in runs}
        time.sleep(0.1)


@pytest.fixture
def offline_wandb(monkeypatch, tmp_path):
    """W&B offline, with its config, cache and data folders in the test's temporary folder."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / var.lower()))
    for var in ("WANDB_DIR", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_GROUP", "WANDB_JOB_TYPE", "WANDB_TAGS"):
        monkeypatch.delenv(var, raising=False)


def test_direct_events_become_one_offline_run_per_series(sport_plugin_manager, offline_wandb, tmp_path):
    from sport_core.video import write_video

    pm = sport_plugin_manager()
    logger = pm.registry.get("logger", "wandb").build()
    pm.register(logger, name="wandb-logger")
    run_dir = tmp_path / "runs" / "demo-0001"
    frames = np.random.default_rng(0).integers(0, 255, (6, 32, 48, 3), dtype=np.uint8)
    mp4 = write_video(run_dir / "s" / "videos" / "episode-000003.mp4", frames, fps=5)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    hook = pm.hook
    hook.sport_stage_started(run_dir=run_dir, stage="s", stage_dir=run_dir / "s", resumed=False)
    for step, value in [(10, 1.0), (20, 0.5), (30, 0.25)]:
        hook.sport_log_scalars(run_dir=run_dir, stage="s", step=step, scalars={"train/loss": value}, labels={})
    hook.sport_log_histogram(run_dir=run_dir, stage="s", step=30, tag="h", values=np.arange(100.0), labels={})
    hook.sport_log_text(run_dir=run_dir, stage="s", step=30, tag="t", text="**hello**", labels={})
    hook.sport_log_video(
        run_dir=run_dir, stage="s", step=3, tag="video/episode", frames=frames, fps=5.0, path=mp4, labels={}
    )
    hook.sport_log_video(
        run_dir=run_dir, stage="s", step=4, tag="video/frames", frames=frames, fps=5.0, path=None, labels={}
    )
    hook.sport_log_figure(run_dir=run_dir, stage="s", step=0, tag="f", figure=fig, labels={})  # out of order
    for alpha in (1.5, 3.0):
        for step in (1, 2):
            hook.sport_log_scalars(
                run_dir=run_dir, stage="s", step=step, scalars={"sweep/rate": alpha * step}, labels={"alpha": alpha}
            )
    hook.sport_stage_finished(run_dir=run_dir, stage="s", status="completed", outputs={})
    hook.sport_log_scalars(run_dir=run_dir, stage="bad", step=1, scalars={"x": 1.0}, labels={})
    hook.sport_stage_finished(run_dir=run_dir, stage="bad", status="failed", outputs={})
    logger.close()
    assert plt.fignum_exists(fig.number)  # the emitter closes its figures, not the logger
    plt.close(fig)

    runs = offline_runs(run_dir / "wandb")
    assert sorted(runs) == ["demo-0001/bad", "demo-0001/s", "demo-0001/s[alpha=1.5]", "demo-0001/s[alpha=3]"]
    assert runs["demo-0001/bad"].exit_code == 1 and runs["demo-0001/bad"].job_type == "bad"
    main = runs["demo-0001/s"]
    assert main.group == "demo-0001" and main.job_type == "s" and main.exit_code == 0
    assert main.config["stage"] == "s" and main.config["run_dir"] == str(run_dir)
    assert main.config["resumed"] is False and "alpha" not in main.config
    assert main.series("train/loss") == [(10, 1.0), (20, 0.5), (30, 0.25)]
    assert main.series("f/_type") == [(0, "image-file")]  # logged after step 30, kept at its own step
    assert main.series("h/_type") == [(30, "histogram")] and main.series("t/_type") == [(30, "html-file")]
    ((step, video),) = main.series("video/episode/path")
    assert step == 3 and video.startswith("media/videos/") and video.endswith(".mp4")
    assert (main.folder / "files" / video).read_bytes() == mp4.read_bytes()
    ((step, gif),) = main.series("video/frames/path")
    assert step == 4 and gif.endswith(".gif") and (main.folder / "files" / gif).is_file()
    for alpha in (1.5, 3.0):
        series = runs[f"demo-0001/s[alpha={alpha:g}]"]
        assert series.group == "demo-0001" and series.job_type == "s" and series.config["alpha"] == alpha
        assert series.series("sweep/rate") == [(1, alpha), (2, 2 * alpha)]


def test_a_recipe_run_with_the_wandb_logger(sport_plugin_manager, sport_run, offline_wandb):
    pm = sport_plugin_manager()
    stage = {
        "name": "eval",
        "evaluator": "rollout",
        "config": {"episodes": 4},
        "video": {"every": 2, "source": "topdown", "size": [64, 64], "fps": 5},
    }
    logger = {"kind": "wandb", "project": "sport-test", "tags": ["ci"]}
    run_dir = sport_run(pm, pointmass_recipe([stage], name="wb", loggers=[logger]))

    (run,) = offline_runs(run_dir / "wandb").values()
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    assert run.name == f"{run_dir.name}/eval" and run.group == run_dir.name and run.job_type == "eval"
    assert run.exit_code == 0
    recipe = run.config["recipe"]
    assert recipe["loggers"][0]["kind"] == "wandb" and recipe["stages"][0]["evaluator"] == "rollout"
    assert run.series("eval/goal_rate") == [(4, pytest.approx(summary["goal_rate"]))]
    assert run.series("eval/episodes") == [(4, 4)]
    videos = run.series("video/episode/path")
    assert [step for step, _ in videos] == [0, 2]
    assert all((run.folder / "files" / path).is_file() for _, path in videos)


def test_a_missing_wandb_package_is_a_one_line_error(sport_plugin_manager, monkeypatch):
    pm = sport_plugin_manager()
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(SportError, match=r"pip install 'sport\[wandb\]'") as info:
        pm.registry.get("logger", "wandb").build()
    assert "\n" not in str(info.value)
