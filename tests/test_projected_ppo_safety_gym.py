"""Projected PPO on the real safety-gymnasium task, from the committed Experiment 1 base and certificate.

The certificate fixes the env (the paper's layout, 5 Hz, level 5); a short fine-tuning at α = 1.2 must keep
the projected policy's log-ratio to the base at most log α at every rollout, with no projection fallback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sport_core.recipe import validate
from sport_core.runner import Runner

pytestmark = pytest.mark.safety
EXP1 = Path(__file__).resolve().parents[1] / "artifacts" / "exp1-seed0"
CERT = EXP1 / "certify-20261125-191746" / "certify-base" / "certificate.json"
BASE = EXP1 / "base-20261125-183948" / "base" / "policy.safetensors"


def test_projected_ppo_keeps_every_projected_action_within_alpha_on_the_real_task(pm, tmp_path):
    data = {
        "run": {"name": "exp2-short", "seed": 0},
        "executor": {"kind": "inline"},
        "loggers": [{"kind": "jsonl"}],
        "stages": [
            {
                "name": "finetune",
                "trainer": "projected-ppo",
                "inputs": {"base": f"file:{BASE}", "certificate": f"file:{CERT}"},
                "config": {
                    "alphas": [1.2],
                    "total_steps": 768,
                    "warmup_steps": 128,
                    "num_envs": 2,
                    "num_steps": 64,
                    "learning_rate": 3e-4,
                },
            }
        ],
    }
    runner = Runner.create(validate(data, pm.registry), pm, tmp_path)
    assert runner.run() == "completed"
    lines = [json.loads(line) for line in (runner.run_dir / "metrics.jsonl").read_text().splitlines()]
    metrics = [line["scalars"] for line in lines if line.get("labels") == {"alpha": 1.2}]  # the α = 1.2 series
    rollouts = [m for m in metrics if "projection/projected_max_log_ratio" in m]
    assert len(rollouts) == 1 + 768 // 128
    for m in rollouts:
        assert m["projection/projected_max_log_ratio"] <= math.log(1.2) + 1e-9
        assert m["projection/fallbacks"] == 0
    # the task policy itself left the ratio set (its log-ratio exceeds log α), the projection pulled it back
    trained = [m for m in rollouts if m["train/warmup"] == 0.0]
    assert any(m.get("projection/task_max_log_ratio", math.inf) > math.log(1.2) for m in trained[1:])
    training = json.loads((runner.run_dir / "finetune" / "training.json").read_text())
    (row,) = training["rows"]
    assert training["horizon"] == 27 and row["episodes"] > 40 and row["projection_fallbacks"] == 0


def test_the_committed_experiment_2_policies_are_intact_and_name_their_alpha_and_base():
    from sport_core.artifacts import sha256_file
    from sport_core.policyset import read_policy_set

    run = Path(__file__).resolve().parents[1] / "artifacts" / "exp2-seed0" / "exp2-from-exp1-20261130-185235"
    entries = read_policy_set(run / "finetune" / "policies")  # checks every policy's SHA-256
    assert sorted(entries) == [1.0, 1.05, 1.1, 1.2, 1.35, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0]
    sweep = json.loads((run / "evaluate" / "sweep.json").read_text())
    for row in sweep["rows"]:
        card = json.loads(entries[row["alpha"]].weights.with_suffix(".json").read_text())
        assert card["extra"]["alpha"] == row["alpha"] and card["extra"]["base_sha256"] == sha256_file(BASE)
        assert row["training"] == entries[row["alpha"]].extra["training"]
        assert row["failures"] <= row["episodes"] == 1000 and row["fallbacks"] == 0
