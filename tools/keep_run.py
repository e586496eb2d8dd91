"""Copy the part of a run folder worth committing: what its stages made, and how they were made.

    .venv/bin/python tools/keep_run.py RUN_DIR DEST [--drop ARTIFACT …]

Kept: ``manifest.json``, ``recipe.resolved.toml``, ``run.log`` if present, and every output the manifest
lists for a completed stage (policies with their model cards, certificates with their episode stores, sweep
results with their per-α stores and kept paths, …) and the JSON summaries in each stage folder. Left out:
checkpoints (optimiser state, replay buffers), TensorBoard files and ``metrics.jsonl``. ``--drop policies``
leaves out one kind of artifact (e.g. a policy set too large to commit). The copy keeps the run's layout,
so relative paths inside results still resolve, and each output's SHA-256 is checked against the manifest.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from sport_core.artifacts import sha256_tree


def keep(run: Path, dest: Path, drop: set[str]) -> list[Path]:
    manifest = json.loads((run / "manifest.json").read_text())
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in ("manifest.json", "recipe.resolved.toml", "run.log"):
        if (run / name).is_file():
            shutil.copy2(run / name, dest / name)
            copied.append(dest / name)
    for stage, entry in manifest.get("stages", {}).items():
        if entry.get("status") != "completed":
            continue
        for summary in sorted((run / stage).glob("*.json")):  # small summaries beside the outputs
            (dest / stage).mkdir(parents=True, exist_ok=True)
            shutil.copy2(summary, dest / stage / summary.name)
            copied.append(dest / stage / summary.name)
        for artifact, out in entry.get("outputs", {}).items():
            if artifact in drop:
                continue
            src = run / out["path"]
            if sha256_tree(src) != out["sha256"]:
                raise SystemExit(f"{src}: its hash differs from the manifest's; not copied")
            target = dest / out["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True)
            else:
                shutil.copy2(src, target)
                card = src.with_suffix(".json")
                if src.suffix == ".safetensors" and card.is_file():  # a policy's model card goes with its weights
                    shutil.copy2(card, target.with_suffix(".json"))
                    copied.append(target.with_suffix(".json"))
            copied.append(target)
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--drop", action="append", default=[], help="an artifact name to leave out")
    args = parser.parse_args(argv)
    for path in keep(args.run, args.dest, set(args.drop)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
