"""Resumable training checkpoints: one directory per checkpoint, published atomically.

A checkpoint ``step-<N>/`` holds ``learner.pt`` (networks, target critics, optimiser states, log α, the
update generator: tensors and plain values only, read back with ``torch.load(weights_only=True)``),
``replay.npz`` (the buffer's transitions and priorities, no pickle) and ``state.json`` (loop counters,
curriculum, the other random-generator states and the SHA-256 of the two binary files). It is written into
a temporary directory that is renamed into place when complete; then ``latest.json`` is atomically
replaced to point at it, and older checkpoints are deleted. A crash at any moment leaves the previous
checkpoint intact and pointed to.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from sport_core.artifacts import atomic_write_bytes, atomic_write_json, load_npz, read_json, save_npz, sha256_file
from sport_core.errors import ArtifactError

FORMAT = "sport-sac-checkpoint-v1"
LATEST = "latest.json"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    directory: Path, step: int, learner_state: dict[str, Any], replay_state: dict[str, Any], state: dict[str, Any]
) -> Path:
    """Write checkpoint ``step`` into ``directory`` and point ``latest.json`` at it; returns its folder."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:09d}"
    final = directory / name
    tmp = directory / f".{name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    blob = io.BytesIO()
    torch.save(learner_state, blob)
    atomic_write_bytes(tmp / "learner.pt", blob.getvalue())
    save_npz(tmp / "replay.npz", **replay_state)
    files = {f: sha256_file(tmp / f) for f in ("learner.pt", "replay.npz")}
    atomic_write_json(tmp / "state.json", {"format": FORMAT, "step": step, "sha256": files, **state})
    shutil.rmtree(final, ignore_errors=True)  # a leftover of a crash between rename and pointer update
    os.replace(tmp, final)
    _fsync_dir(directory)
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
    """(learner state, replay arrays, loop state) of a checkpoint folder, after checking its hashes."""
    folder = Path(folder)
    state = read_json(folder / "state.json", what="checkpoint state")
    if state.get("format") != FORMAT:
        raise ArtifactError(f"{folder / 'state.json'} is not a {FORMAT} file")
    for fname, digest in state["sha256"].items():
        if not (folder / fname).is_file() or sha256_file(folder / fname) != digest:
            raise ArtifactError(f"checkpoint file {folder / fname} is missing or altered (hash mismatch)")
    learner = torch.load(folder / "learner.pt", weights_only=True)
    replay = load_npz(folder / "replay.npz", what="replay checkpoint")
    return learner, replay, state


def clear_checkpoints(directory: Path) -> None:
    """Remove every checkpoint in ``directory`` (a fresh, non-resumed start)."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    (directory / LATEST).unlink(missing_ok=True)
    _remove(directory.iterdir())
