"""``rollout``: collect episodes of one policy and summarise outcomes.

Inputs: ``policy`` (a saved policy from an earlier stage); without it the actor samples uniform random
actions. Outputs: ``episodes`` (one JSON line per episode, appended as episodes finish, so a resumed stage
continues at the first missing index) and ``summary`` (rates of goal / violation / timeout, mean length of
successful episodes, mean return).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np

from sport_core import Component, hookimpl
from sport_core.actors import PolicyActor, RandomActor
from sport_core.artifacts import atomic_write_json, atomic_write_text, writing
from sport_core.collect import OUTCOMES, EpisodeRecord, iter_collect
from sport_core.progress import progress_bar
from sport_core.stages import StageInput
from sport_core.video import VideoSink
from sport_core.weights import load_policy


@attrs.frozen
class RolloutConfig:
    """``episodes`` to collect; ``deterministic`` acts with the mean action; ``trajectory`` keeps x-y paths."""

    episodes: int = attrs.field(default=100, validator=attrs.validators.gt(0))
    deterministic: bool = False
    trajectory: bool = False


def _record_to_json(r: EpisodeRecord) -> str:
    d = attrs.asdict(r, filter=lambda a, v: a.name != "trajectory")
    if r.trajectory is not None:
        d["trajectory"] = np.round(r.trajectory, 6).tolist()
    return json.dumps(d)


def read_records(path: Path) -> dict[int, EpisodeRecord]:
    """Records of a JSONL episode file; a torn last line (a kill mid-write) is ignored."""
    out: dict[int, EpisodeRecord] = {}
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue
        traj = d.pop("trajectory", None)
        out[d["index"]] = EpisodeRecord(**d, trajectory=None if traj is None else np.asarray(traj))
    return out


def summarise(records: list[EpisodeRecord]) -> dict[str, Any]:
    n = len(records)
    lengths = np.array([r.length for r in records if r.outcome == "goal"], dtype=float)
    summary: dict[str, Any] = {"episodes": n}
    for outcome in OUTCOMES:
        summary[f"{outcome}_rate"] = sum(r.outcome == outcome for r in records) / n
    summary["success_length_mean"] = float(lengths.mean()) if lengths.size else None
    summary["success_length_std"] = float(lengths.std()) if lengths.size else None
    summary["return_mean"] = float(np.mean([r.ret for r in records]))
    return summary


class RolloutEvaluator:
    needs_env = True
    films = True
    inputs: ClassVar[dict[str, StageInput]] = {
        "policy": StageInput(("policy",), required=False, description="the policy (default: random actions)")
    }
    outputs = ("episodes", "summary")

    def __init__(self, config: RolloutConfig) -> None:
        self.config = config

    def run(self, ctx: Any) -> dict[str, Path]:
        cfg = self.config
        if "policy" in ctx.inputs:
            actor = PolicyActor(load_policy(ctx.input("policy"), ctx.registry), deterministic=cfg.deterministic)
        else:
            space = ctx.env.make().action_space
            actor = RandomActor(space.low, space.high)
        ctx.stage_dir.mkdir(parents=True, exist_ok=True)
        path = ctx.stage_dir / "episodes.jsonl"
        if not ctx.resumed:  # only an interrupted attempt of this very stage may contribute episodes
            path.unlink(missing_ok=True)
        done = read_records(path)
        # Rewrite only the complete records so that a torn line never sits before new ones.
        if done and path.read_text(encoding="utf-8").count("\n") != len(done):
            atomic_write_text(path, "".join(_record_to_json(done[i]) + "\n" for i in sorted(done)))
        todo = [i for i in range(cfg.episodes) if i not in done]
        with (
            writing(path),  # a full disk is a one-line error naming the file; complete lines stay readable
            open(path, "a", encoding="utf-8") as fh,
            progress_bar(cfg.episodes, f"{ctx.name}: episodes", len(done)) as advance,
        ):
            for record in iter_collect(
                actor,
                ctx.env,
                todo,
                ctx.seed,
                ctx.executor,
                trajectory=cfg.trajectory,
                video=ctx.video,
                on_film=VideoSink(ctx.stage_dir, ctx.log),
            ):
                fh.write(_record_to_json(record) + "\n")
                fh.flush()
                done[record.index] = record
                advance(1)
        records = [done[i] for i in range(cfg.episodes)]
        summary = summarise(records)
        ctx.log.scalars(cfg.episodes, {f"eval/{k}": v for k, v in summary.items() if isinstance(v, (int, float))})
        atomic_write_json(ctx.stage_dir / "summary.json", summary)
        return {"episodes": path, "summary": ctx.stage_dir / "summary.json"}


@hookimpl
def sport_register_evaluators():
    return [Component("rollout", RolloutEvaluator, RolloutConfig, "episodes of one policy (or random actions)")]
