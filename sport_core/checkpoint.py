"""Resumable training checkpoints for any trainer: one directory per checkpoint, published atomically.

A checkpoint ``step-<N>/`` holds three files:

* ``learner.pt``: nested dicts of tensors and plain values (networks, optimiser states, generator states),
  written with ``torch.save`` and read back with ``torch.load(weights_only=True)``, so it cannot run code;
* ``replay.npz``: named numpy arrays (a replay buffer, rollout arrays, episode records; no pickle);
* ``state.json``: small JSON state (loop counters, curricula, numpy generator states) plus the format tag
  and the SHA-256 of the two binary files, checked on load.

It is written into a temporary directory that is renamed into place when complete; then ``latest.json`` is
atomically replaced to point at it, and older checkpoints are deleted. A crash at any moment leaves the
previous checkpoint intact and pointed to. Trainers call :func:`save_checkpoint` at points where their loop
state is exactly these three parts (SAC at episode ends, PPO between updates) so that a resumed stage
continues bit for bit.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from sport_core.artifacts import (
    atomic_write_bytes,
    atomic_write_json,
    fsync_dir,
    load_npz,
    read_json,
    save_npz,
    sha256_file,
)
from sport_core.errors import ArtifactError

FORMAT = "sport-checkpoint-v1"
LATEST = "latest.json"


def save_checkpoint(
    directory: Path, step: int, tensors: dict[str, Any], arrays: dict[str, Any], state: dict[str, Any]
) -> Path:
    """Write checkpoint ``step`` into ``directory`` and point ``latest.json`` at it; returns its folder.

    ``tensors`` go to ``learner.pt`` (weights-only torch), ``arrays`` to ``replay.npz``, ``state`` (JSON
    values) to ``state.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:09d}"
    final = directory / name
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    blob = io.BytesIO()
    torch.save(tensors, blob)
    atomic_write_bytes(tmp / "learner.pt", blob.getvalue())
    save_npz(tmp / "replay.npz", **arrays)
    files = {f: sha256_file(tmp / f) for f in ("learner.pt", "replay.npz")}
    atomic_write_json(tmp / "state.json", {"format": FORMAT, "step": step, "sha256": files, **state})
    shutil.rmtree(final, ignore_errors=True)  # a leftover of a crash between rename and pointer update
    os.replace(tmp, final)
    fsync_dir(directory)
    atomic_write_json(directory / LATEST, {"format": FORMAT, "checkpoint": name, "step": step})
    _remove(p for p in directory.iterdir() if p.name not in (name, LATEST))
    return final


def _remove(paths: Any) -> None:
    for path in paths:
        if path.name.startswith("step-") or path.name.endswith(".tmp"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def latest_checkpoint(directory: Path) -> Path | None:
    """The folder ``latest.json`` points to, or None when there is no checkpoint yet."""
    pointer = Path(directory) / LATEST
    if not pointer.is_file():
        return None
    data = read_json(pointer, what="checkpoint pointer")
    if data.get("format") != FORMAT:
        raise ArtifactError(f"{pointer} is not a {FORMAT} pointer")
    folder = Path(directory) / data["checkpoint"]
    if not folder.is_dir():
        raise ArtifactError(f"{pointer} points to {folder}, which is missing")
    return folder


def load_checkpoint(folder: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(tensors, arrays, state) of a checkpoint folder, after checking its hashes and format."""
    folder = Path(folder)
    state = read_json(folder / "state.json", what="checkpoint state")
    if state.get("format") != FORMAT:
        raise ArtifactError(f"{folder / 'state.json'} is not a {FORMAT} file")
    for fname, digest in state["sha256"].items():
        if not (folder / fname).is_file() or sha256_file(folder / fname) != digest:
            raise ArtifactError(f"checkpoint file {folder / fname} is missing or altered (hash mismatch)")
    # on the CPU whatever device saved it: load_state_dict moves each tensor to its module's device
    learner = torch.load(folder / "learner.pt", weights_only=True, map_location="cpu")
    replay = load_npz(folder / "replay.npz", what="replay checkpoint")
    return learner, replay, state


def clear_checkpoints(directory: Path) -> None:
    """Remove every checkpoint in ``directory`` (a fresh, non-resumed start)."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    (directory / LATEST).unlink(missing_ok=True)
    _remove(directory.iterdir())
