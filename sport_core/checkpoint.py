"""Resumable training checkpoints for any trainer: one directory per checkpoint, published atomically.

A checkpoint ``step-<N>/`` holds three files:

* ``learner.pt``: nested dicts of tensors and plain values (networks, optimiser states, generator states),
  written with ``torch.save`` and read back with ``torch.load(weights_only=True)``, so it cannot run code;
* ``replay.npz``: named numpy arrays (a replay buffer, rollout arrays, episode records; no pickle);
* ``state.json``: small JSON state (loop counters, curricula, numpy generator states) plus the format tag,
  the SHA-256 of the two binary files and ``state_sha256``, the SHA-256 of the state itself (canonical
  JSON), all checked on load: a truncated or altered file in any of the three is detected.

It is written into a temporary directory that is renamed into place when complete; then ``latest.json`` is
atomically replaced to point at it, and checkpoints older than the previous one are deleted (the last
:data:`KEEP` are kept). A crash at any moment leaves the previous checkpoint intact and pointed to.

Resuming (:func:`resume_checkpoint`) takes the newest checkpoint that loads: a damaged one (a disk error,
a truncated copy, an edit) is skipped with a warning naming it and the previous one is used; if none
loads, the stage starts over, and says so. Trainers call :func:`save_checkpoint` at points where their loop
state is exactly these three parts (SAC at episode ends, PPO between updates) so that a resumed stage
continues bit for bit.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
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
    writing,
)
from sport_core.errors import ArtifactError

FORMAT = "sport-checkpoint-v1"
LATEST = "latest.json"
KEEP = 2  # checkpoints kept: the newest and the one before it, to fall back on if the newest is damaged

log = logging.getLogger("sport")


def _state_digest(state: dict[str, Any]) -> str:
    body = {k: v for k, v in state.items() if k != "state_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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
    try:
        with writing(tmp):
            tmp.mkdir()
        blob = io.BytesIO()
        torch.save(tensors, blob)
        atomic_write_bytes(tmp / "learner.pt", blob.getvalue())
        save_npz(tmp / "replay.npz", **arrays)
        files = {f: sha256_file(tmp / f) for f in ("learner.pt", "replay.npz")}
        full = {"format": FORMAT, "step": step, "sha256": files, **state}
        full = json.loads(json.dumps(full))  # as it will read back (tuples become lists)
        atomic_write_json(tmp / "state.json", {**full, "state_sha256": _state_digest(full)})
    except BaseException:  # a full disk, say: the previous checkpoint stays the latest; free what was written
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(final, ignore_errors=True)  # a leftover of a crash between rename and pointer update
    os.replace(tmp, final)
    fsync_dir(directory)
    atomic_write_json(directory / LATEST, {"format": FORMAT, "checkpoint": name, "step": step})
    keep = {p.name for p in _step_folders(directory)[:KEEP]} | {name, LATEST}
    _remove(p for p in directory.iterdir() if p.name not in keep)
    return final


def _step_folders(directory: Path) -> list[Path]:
    """The complete checkpoint folders of ``directory``, newest (highest step) first."""
    found = []
    for path in Path(directory).glob("step-*"):
        try:
            found.append((int(path.name[5:]), path))
        except ValueError:
            continue
    return [p for _, p in sorted(found, reverse=True) if p.is_dir()]


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
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ArtifactError(f"{folder / 'state.json'} is not a {FORMAT} file")
    if "state_sha256" in state and state["state_sha256"] != _state_digest(state):
        raise ArtifactError(f"checkpoint file {folder / 'state.json'} is altered (hash mismatch)")
    for fname, digest in state["sha256"].items():
        if not (folder / fname).is_file() or sha256_file(folder / fname) != digest:
            raise ArtifactError(f"checkpoint file {folder / fname} is missing or altered (hash mismatch)")
    # on the CPU whatever device saved it: load_state_dict moves each tensor to its module's device
    learner = torch.load(folder / "learner.pt", weights_only=True, map_location="cpu")
    replay = load_npz(folder / "replay.npz", what="replay checkpoint")
    return learner, replay, state


def resume_checkpoint(
    directory: Path, what: str = "the stage"
) -> tuple[Path, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] | None:
    """The newest checkpoint of ``directory`` that loads, as (folder, (tensors, arrays, state)), or None.

    Candidates, newest first: the folder ``latest.json`` points to, then the other complete ``step-*``
    folders by step. One that fails to load (hash mismatch, truncated or unreadable file) is skipped with a
    warning naming it; when checkpoints exist but none loads, the folder is cleared and a warning says that
    ``what`` starts over; with no checkpoint at all, None quietly."""
    directory = Path(directory)
    candidates = _step_folders(directory)
    try:
        pointed = latest_checkpoint(directory)
    except ArtifactError as exc:
        log.warning("%s: %s; looking for another checkpoint", what, exc)
        pointed = None
    if pointed is not None:
        candidates = [pointed] + [c for c in candidates if c != pointed]
    problems = []
    for folder in candidates:
        try:
            loaded = load_checkpoint(folder)
        except (ArtifactError, OSError, RuntimeError, ValueError, KeyError) as exc:
            problems.append(f"{folder.name}: {exc}")
            log.warning("%s: checkpoint %s cannot be used (%s)%s", what, folder, exc, "; trying an older one")
            continue
        if problems:
            log.warning("%s: resuming from the older checkpoint %s", what, folder.name)
        return folder, loaded
    if problems:
        log.warning("%s: no usable checkpoint in %s (%s); starting over", what, directory, "; ".join(problems))
        clear_checkpoints(directory)
    return None


def clear_checkpoints(directory: Path) -> None:
    """Remove every checkpoint in ``directory`` (a fresh, non-resumed start)."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    (directory / LATEST).unlink(missing_ok=True)
    _remove(directory.iterdir())
