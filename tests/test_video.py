"""Episode videos: filmed on the real MuJoCo env (headless) or drawn top-down, written as MP4 under the stage's
folder, sent to the loggers (TensorBoard reads them back as animated images), and never changing a number.
"""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sport_core.artifacts import sha256_file
from sport_core.errors import RecipeError, SportError
from sport_core.policyset import alpha_tag
from sport_core.recipe import validate
from sport_core.runner import Runner
from sport_core.testing import pointmass_recipe
from sport_core.video import VideoConfig, read_video, video_path, write_video

SAFETY_ENV = {"kind": "safety-gym", "id": "SafetyPointReachAvoidLowFreqCurriculum5-v0", "layout": "paper"}
SMALL = {"every": 2, "size": [96, 64]}


def run(pm, path, data):
    runner = Runner.create(validate(data, pm.registry), pm, path)
    assert runner.run() == "completed"
    return runner.run_dir


def rollout_recipe(video=None, episodes=3, env=SAFETY_ENV, loggers=()):
    stage = {"name": "eval", "evaluator": "rollout", "config": {"episodes": episodes}}
    if video is not None:
        stage["video"] = video
    return {
        "run": {"name": "video", "seed": 4},
        "env": env,
        "executor": {"kind": "inline"},
        "loggers": [{"kind": k} for k in loggers],
        "stages": [stage],
    }


def records(run_dir):
    return [json.loads(line) for line in (run_dir / "eval" / "episodes.jsonl").read_text().splitlines()]


def tb_videos(logdir, tag="video/episode"):
    """(step, number of GIF frames, (width, height)) of every video TensorBoard holds under ``tag``."""
    acc = EventAccumulator(str(logdir), size_guidance={"images": 0})
    acc.Reload()
    out = []
    for event in acc.Images(tag):
        gif = Image.open(io.BytesIO(event.encoded_image_string))
        assert gif.format == "GIF"
        out.append((event.step, gif.n_frames, gif.size))
    return out


# -- files ----------------------------------------------------------------------------------------------------


def test_a_video_file_keeps_its_frames_size_and_rate(tmp_path):
    frames = np.zeros((12, 48, 80, 3), dtype=np.uint8)
    for t in range(12):
        frames[t, :, 5 * t : 5 * t + 8] = 255  # a white bar moving right
    path = write_video(tmp_path / "v" / "bar.mp4", frames, fps=5)
    back, fps = read_video(path)
    assert back.shape == frames.shape and fps == 5
    assert np.abs(back.astype(int) - frames).mean() < 4  # H.264 is lossy, but barely at this quality
    assert not list(path.parent.glob(".*"))  # written atomically: no temporary file is left


def test_odd_sizes_are_padded_and_bad_frames_or_files_are_refused(tmp_path):
    back, _ = read_video(write_video(tmp_path / "odd.mp4", np.full((3, 33, 31, 3), 90, np.uint8), fps=2))
    assert back.shape == (3, 34, 32, 3)
    with pytest.raises(ValueError, match=r"uint8 array \(T, H, W, 3\)"):
        write_video(tmp_path / "x.mp4", np.zeros((3, 8, 8)), fps=2)
    (tmp_path / "fake.mp4").write_bytes(b"not a video at all")
    with pytest.raises(SportError, match=r"fake\.mp4 is not a readable video"):
        read_video(tmp_path / "fake.mp4")


def test_without_pyav_writing_a_video_is_a_one_line_error_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(SportError, match=r"needs PyAV, which is not installed: pip install 'sport\[video\]'"):
        write_video(tmp_path / "x.mp4", np.zeros((2, 16, 16, 3), np.uint8), fps=2)


def test_without_pyav_a_stage_that_films_stops_before_it_runs(pm, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    data = rollout_recipe({"every": 1, "source": "topdown"}, env={"kind": "pointmass", "layout_seed": 8})
    runner = Runner.create(validate(data, pm.registry), pm, tmp_path)
    with pytest.raises(SportError, match=r"pip install 'sport\[video\]'"):
        runner.run()
    assert not (runner.run_dir / "eval" / "episodes.jsonl").exists()  # nothing ran


# -- the recipe's video table ---------------------------------------------------------------------------------


def test_the_video_table_is_checked_where_it_is_written(sport_plugin_manager):
    registry = sport_plugin_manager().registry
    with pytest.raises(RecipeError, match=r"stages\[0\]\.video\.size: must be \[width, height\]"):
        validate(rollout_recipe({"every": 2, "size": [8, 64]}), registry)
    with pytest.raises(RecipeError, match=r"stages\[0\]\.video\.source: "):
        validate(rollout_recipe({"every": 2, "source": "hologram"}), registry)
    with pytest.raises(RecipeError, match=r"stages\[0\]\.video\.evry: unknown key; did you mean every\?"):
        validate(rollout_recipe({"evry": 2}), registry)
    data = pointmass_recipe([{"name": "seek", "evaluator": "goal-seeker", "video": {"every": 1}}])
    with pytest.raises(RecipeError, match=r"stages\[0\]\.video: evaluator 'goal-seeker' films no episodes"):
        validate(data, registry)


# -- the real MuJoCo env, headless ----------------------------------------------------------------------------


def test_a_real_env_episode_is_filmed_to_mp4_and_tensorboard_without_changing_its_record(pm, tmp_path):
    plain = run(pm, tmp_path / "plain", rollout_recipe())
    filmed = run(pm, tmp_path / "filmed", rollout_recipe(SMALL, loggers=("tensorboard",)))
    assert records(filmed) == records(plain)  # rendering reads the simulator; it never changes an episode

    lengths = {r["index"]: r["length"] for r in records(filmed)}
    written = sorted((filmed / "eval" / "videos").glob("*.mp4"))
    assert [p.name for p in written] == ["episode-000000.mp4", "episode-000002.mp4"]  # every 2nd episode
    for path in written:
        frames, fps = read_video(path)
        index = int(path.stem.split("-")[1])
        assert frames.shape == (lengths[index] + 1, 64, 96, 3)  # after the reset, then after every step
        assert fps == 5  # the env's control rate: real time
        moved = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
        assert (moved > 0).mean() > 0.9  # the robot moves in (nearly) every frame
        assert frames.std() > 10  # a picture, not a blank frame

    videos = tb_videos(filmed / "tb" / "eval")
    assert [(step, n, size) for step, n, size in videos] == [
        (i, lengths[i] + 1, (96, 64)) for i in (0, 2)
    ]  # TensorBoard's copy: every frame of each episode, as an animated GIF


def test_top_down_videos_need_no_opengl_and_change_no_record_either(pm, tmp_path):
    plain = run(pm, tmp_path / "plain", rollout_recipe())
    topdown = run(pm, tmp_path / "topdown", rollout_recipe({**SMALL, "source": "topdown", "size": [64, 64]}))
    assert records(topdown) == records(plain)
    frames, _ = read_video(topdown / "eval" / "videos" / "episode-000000.mp4")
    assert frames.shape[1:] == (64, 64, 3) and len(frames) == records(plain)[0]["length"] + 1


def test_an_env_that_cannot_render_asks_for_top_down_videos(pm, tmp_path):
    data = rollout_recipe({"every": 1}, episodes=1, env={"kind": "pointmass", "layout_seed": 8, "max_steps": 25})
    runner = Runner.create(validate(data, pm.registry), pm, tmp_path)
    with pytest.raises(SportError, match=r"cannot film episodes with a camera .*use video.source = \"topdown\""):
        runner.run()


def test_when_no_opengl_backend_works_the_error_is_one_line_and_says_what_to_install(monkeypatch):
    from sport_safety_gym.rendering import ensure_gl_backend

    for var in ("SPORT_GL_BACKEND", "MUJOCO_GL", "PYOPENGL_PLATFORM", "EGL_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SPORT_GL_BACKENDS", "glfw")  # a window-system backend: never works without a display
    with pytest.raises(SportError) as caught:
        ensure_gl_backend()
    message = str(caught.value)
    assert "\n" not in message and message.startswith("no OpenGL backend can render MuJoCo here (tried glfw: ")
    assert "libegl1" in message and 'video.source = "topdown"' in message
    monkeypatch.setenv("MUJOCO_GL", "glfw")  # a backend the user chose is the only one tried
    with pytest.raises(SportError, match=r"^MuJoCo cannot render with MUJOCO_GL=glfw here \("):
        ensure_gl_backend()


# -- trainers and the α sweep ---------------------------------------------------------------------------------


SAC = {
    "total_steps": 240,
    "learning_starts": 60,
    "batch_size": 16,
    "critic_hidden": [16, 16],
    "policy_config": {"hidden": [16, 16]},
    "log_every": 120,
}


def test_sac_films_training_episodes_and_trains_exactly_as_without_video(pm, tmp_path):
    def recipe(video):
        stage = {"name": "train", "trainer": "sac", "config": SAC}
        if video:
            stage["video"] = video
        return {"run": {"name": "sac", "seed": 1}, "env": SAFETY_ENV, "executor": {"kind": "inline"}, "stages": [stage]}

    plain = run(pm, tmp_path / "plain", recipe(None))
    filmed = run(pm, tmp_path / "filmed", recipe({"every": 1, "size": [64, 48]}))
    weights = "train/policy.safetensors"
    assert sha256_file(filmed / weights) == sha256_file(plain / weights)
    episodes = json.loads((filmed / "train" / "train_summary.json").read_text())["episodes"]
    written = sorted(p.name for p in (filmed / "train" / "videos").glob("*.mp4"))
    assert written == [f"episode-{i:06d}.mp4" for i in range(episodes)] and episodes >= 2


def test_projected_ppo_and_the_sweep_film_each_alpha_as_its_own_series(sport_plugin_manager, tmp_path):
    pm = sport_plugin_manager()
    finetune = {
        "alphas": [1.0, 2.0],
        "total_steps": 128,
        "warmup_steps": 64,
        "num_envs": 2,
        "num_steps": 32,
        "critic_hidden": [16, 16],
    }
    video = {"every": 4, "source": "topdown", "size": [48, 48]}

    def recipe(with_video):
        stages = [
            {"name": "base", "evaluator": "goal-seeker"},
            {"name": "certify", "certifier": "scenario", "inputs": {"policy": "base"}, "config": {"episodes": 60}},
            {
                "name": "finetune",
                "trainer": "projected-ppo",
                "inputs": {"base": "base", "certificate": "certify"},
                "config": finetune,
            },
            {
                "name": "sweep",
                "evaluator": "projected-sweep",
                "inputs": {"certificate": "certify", "base": "base", "task": "finetune:policies"},
                "config": {"alphas": [1.0, 2.0], "episodes": 6, "paths": 2},
            },
        ]
        if with_video:
            for stage in stages[1:]:
                stage["video"] = video
        return pointmass_recipe(stages, loggers=[{"kind": "tensorboard"}, {"kind": "jsonl"}])

    plain = run(pm, tmp_path / "plain", recipe(False))
    filmed = run(pm, tmp_path / "filmed", recipe(True))
    for a in (alpha_tag(1.0), alpha_tag(2.0)):
        policy = f"finetune/policies/{a}/policy.safetensors"
        assert sha256_file(filmed / policy) == sha256_file(plain / policy)
        assert sha256_file(filmed / f"sweep/alphas/{a}.bin") == sha256_file(plain / f"sweep/alphas/{a}.bin")
    assert (
        json.loads((filmed / "sweep/sweep.json").read_text())["rows"][0]["failures"]
        == json.loads((plain / "sweep/sweep.json").read_text())["rows"][0]["failures"]
    )

    assert sorted(p.name for p in (filmed / "certify" / "videos").glob("*.mp4"))[:3] == [
        "episode-000000.mp4",
        "episode-000004.mp4",
        "episode-000008.mp4",
    ]
    for alpha in (1.0, 2.0):
        # the sweep films episodes 0 and 4 of every α, with the same random numbers (common random numbers)
        assert video_path(filmed / "sweep", 4, {"alpha": alpha}).is_file()
        assert video_path(filmed / "finetune", 0, {"alpha": alpha}).is_file()
        series = f"alpha={alpha:g}"
        assert [step for step, _, _ in tb_videos(filmed / "tb" / "sweep" / series)] == [0, 4]
        assert tb_videos(filmed / "tb" / "finetune" / series)[0][0] == 0
    # α = 1 projects onto the base itself, so its sweep episode is the base's own: the same film as certify's
    swept, _ = read_video(video_path(filmed / "sweep", 0, {"alpha": 1.0}))
    certified, _ = read_video(video_path(filmed / "certify", 0))
    assert swept.shape == certified.shape and np.abs(swept.astype(int) - certified).mean() < 1
    lines = [json.loads(line) for line in (filmed / "metrics.jsonl").read_text().splitlines()]
    assert {json.dumps(line.get("labels")) for line in lines if line["stage"] == "sweep"} == {
        "null",
        '{"alpha": 1.0}',
        '{"alpha": 2.0}',
    }


def test_a_config_with_video_reads_back_from_the_resolved_recipe(registry):
    recipe = validate(rollout_recipe(SMALL), registry)
    assert recipe.stages[0].video == VideoConfig(every=2, size=(96, 64))
    again = validate(recipe.to_dict(), registry)
    assert again.stages[0].video == recipe.stages[0].video
