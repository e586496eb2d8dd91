"""The trainer toolkit in the core: stage seeds, space checks, episode bookkeeping, the metrics window,
policy sets, devices, and the rule that plugins talk to each other only through the core."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from sport_core.artifacts import sha256_file
from sport_core.devices import resolve_device
from sport_core.errors import ArtifactError, SportError
from sport_core.metrics import MetricsWindow
from sport_core.policyset import SetEntry, alpha_tag, is_policy_set, read_policy_set, write_policy_set
from sport_core.seeding import stage_seeds
from sport_core.spaces import box_spaces
from sport_core.tracking import EpisodeTracker
from sport_core.weights import ModelCard, save_policy
from tests.support.hand_policy import goal_seeking_policy

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def test_stage_seeds_are_independent_per_stage_and_stable_when_names_are_added():
    a = stage_seeds(0, "base", ("init", "act"))
    assert a.items() <= stage_seeds(0, "base", ("init", "act", "more")).items()
    assert stage_seeds(0, "other", ("init", "act")) != a
    assert stage_seeds(1, "base", ("init", "act")) != a
    assert all(0 <= v < 2**63 for v in a.values()) and len(set(a.values())) == 2


def test_box_spaces_reads_the_affine_action_map_and_refuses_other_spaces():
    class Env:
        observation_space = gym.spaces.Box(-np.inf, np.inf, (5,))
        action_space = gym.spaces.Box(np.array([-2.0, 0.0]), np.array([2.0, 1.0]), dtype=np.float64)

    sp = box_spaces(Env(), "s", "ppo")
    assert (sp.obs_dim, sp.act_dim, sp.action_scale, sp.action_bias) == (5, 2, (2.0, 0.5), (0.0, 0.5))
    Env.action_space = gym.spaces.Discrete(3)
    with pytest.raises(SportError, match="stage 's': ppo needs a bounded Box action space"):
        box_spaces(Env(), "s", "ppo")
    Env.action_space = gym.spaces.Box(-1, 1, (2,))
    Env.observation_space = gym.spaces.Box(0, 1, (2, 2))
    with pytest.raises(SportError, match="flat Box observation"):
        box_spaces(Env(), "s", "ppo")


@pytest.mark.parametrize(
    ("events", "outcome", "goal", "violation"),
    [
        ([{}, {"goal_met": True}], "goal", 2, -1),
        ([{"constraint_violated": True}, {"goal_met": True}], "violation", 2, 1),
        ([{}, {"goal_met": True, "constraint_violated": True}], "violation", 2, 2),  # same step: a failure
        ([{"goal_met": True}, {"constraint_violated": True}], "goal", 1, 2),
        ([{}, {}], "timeout", -1, -1),
    ],
)
def test_episode_tracker_classifies_like_collection(events, outcome, goal, violation):
    tracker = EpisodeTracker()
    for info in events:
        tracker.step(0.5, info)
    record = tracker.record(7, 3)
    assert (record.outcome, record.goal_step, record.violation_step) == (outcome, goal, violation)
    assert (record.index, record.seed, record.length, record.ret) == (7, 3, len(events), 0.5 * len(events))
    tracker.reset()
    assert (tracker.length, tracker.ret, tracker.goal_step, tracker.outcome) == (0, 0.0, -1, "timeout")


def test_metrics_window_means_leave_out_what_never_happened():
    w = MetricsWindow()
    w.steps = 10
    w.add_episode("goal", 2.0, 4)
    w.add_episode("violation", 0.0, 6)
    w.add("loss/critic", 3.0)
    w.add("loss/critic", 1.0)
    w.add("loss/actor", 6.0, 3)  # a total over 3 actor steps
    w.add("loss/alpha", 5.0, 0)  # nothing happened: left out
    out = w.scalars()
    assert out["train/episodes"] == 2 and out["train/return"] == 1.0 and out["train/length"] == 5.0
    assert out["train/success_rate"] == 0.5 and out["train/violation_rate"] == 0.5
    assert out["loss/critic"] == 2.0 and out["loss/actor"] == 2.0 and "loss/alpha" not in out
    assert out["perf/steps_per_s"] > 0
    assert set(MetricsWindow().scalars()) == {"perf/steps_per_s"}


def _policy_set(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    entries = []
    for alpha in (1.0, 2.5):
        policy = goal_seeking_policy(std=1.0 / alpha)
        card = ModelCard("gaussian-mlp", {"hidden": [4]}, 7, 2, (1.0, 1.0), (0.0, 0.0))
        w = save_policy(folder / alpha_tag(alpha) / "policy.safetensors", policy, card)
        entries.append(SetEntry(alpha, w, sha256_file(w), {"training": {"episodes": 3}}))
    write_policy_set(folder, entries, {"made_by": {"stage": "t"}})
    return folder


def test_policy_sets_round_trip_with_relative_paths_and_refuse_altered_weights(tmp_path):
    folder = _policy_set(tmp_path)
    index = json.loads((folder / "policies.json").read_text())
    assert [p["weights"] for p in index["policies"]] == ["alpha-1.0/policy.safetensors", "alpha-2.5/policy.safetensors"]
    moved = tmp_path / "elsewhere"
    folder.rename(moved)  # relative paths: the set moves as a whole
    assert is_policy_set(moved) and is_policy_set(moved / "policies.json") and not is_policy_set(tmp_path)
    entries = read_policy_set(moved)
    assert sorted(entries) == [1.0, 2.5] and entries[2.5].extra == {"training": {"episodes": 3}}
    weights = moved / "alpha-2.5" / "policy.safetensors"
    blob = weights.read_bytes()
    weights.write_bytes(blob[:-1] + bytes([blob[-1] ^ 0xFF]))
    with pytest.raises(ArtifactError, match=r"alpha 2.5 .* missing or altered"):
        read_policy_set(moved)
    (moved / "policies.json").write_text('{"format": "something-else"}')
    with pytest.raises(ArtifactError, match="not a sport-policy-set-v1 index"):
        read_policy_set(moved)


def test_devices_auto_is_cpu_here_and_cuda_without_a_gpu_is_one_line():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto", "s") == torch.device("cpu")
    assert resolve_device("cpu", "s") == torch.device("cpu")
    with pytest.raises(SportError, match=r'stages\.s\.config\.device: "cuda" was asked for'):
        resolve_device("cuda", "s")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("plugin", sorted(p.name for p in PLUGINS.iterdir() if (p / "__init__.py").is_file()))
def test_a_plugin_imports_only_the_core_and_itself(plugin):
    """Plugins talk through the core's protocols and registry: no plugin imports another (DESIGN §2)."""
    others = {p.name for p in PLUGINS.iterdir() if (p / "__init__.py").is_file()} - {plugin}
    for path in (PLUGINS / plugin).rglob("*.py"):
        assert not (_imports(path) & others), f"{path} imports {_imports(path) & others}"
