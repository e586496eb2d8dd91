"""Atomic writes, content hashes and safe file formats (JSON, safetensors, npz without pickle).

Every write goes to a temporary file in the target's directory, is flushed and fsync'ed, then renamed over
the target (``os.replace`` is atomic on POSIX), and the directory is fsync'ed: a crash at any moment leaves
either the old file or the new one, never a torn one. Nothing here unpickles: a file from someone else
cannot run code.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from sport_core.errors import ArtifactError, DiskFullError

_CHUNK = 1 << 20


def relative_path(target: str | os.PathLike, start: str | os.PathLike) -> str:
    """``target`` relative to the folder ``start`` (POSIX separators), so that results can be moved whole."""
    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry (after a rename into it) so the rename survives a power loss."""
    with contextlib.suppress(OSError):  # not every filesystem allows opening a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


#: errno values that mean "no space left": the device is full, or the user's quota is.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Within the block, a write that fails for want of space (:data:`DISK_FULL`) raises
    :class:`sport_core.errors.DiskFullError` naming ``path`` (one line), not a bare ``OSError``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        raise DiskFullError(
            f"no space left on the device writing {path} ({exc.strerror or 'disk full'}); what was saved before "
            "is intact: free some space, then resume the run (`sport run --resume RUN_DIR`)"
        ) from None


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on a clean exit it replaces ``path`` atomically.

    If the block raises (or the process dies), ``path`` keeps its previous content and the temporary file
    is removed (or, after a kill, left as ``.<name>.*.tmp``, which readers ignore). A full disk is a
    :class:`sport_core.errors.DiskFullError` naming ``path``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    target = Path(path)
    with writing(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
            fsync_dir(target.parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (NaN/inf refused: they are not JSON) atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike, what: str = "file", made_by: str | None = None) -> Any:
    """Read a JSON file; a missing or corrupt file raises :class:`ArtifactError` naming it (and the stage or
    command ``made_by`` that should have written it)."""
    p = Path(path)
    origin = f" (it is written by {made_by})" if made_by else ""
    if not p.is_file():
        raise ArtifactError(f"{what} {p} does not exist{origin}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{what} {p} is not valid JSON ({exc}); it is corrupt or not a sport file") from exc


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_tree(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or of a directory (names and contents of every file below it, sorted)."""
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file() and not q.name.endswith(".tmp")):
        h.update(str(f.relative_to(p)).encode())
        h.update(b"\0")
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Save numeric arrays as an uncompressed ``.npz`` atomically (object arrays are refused)."""
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise TypeError(f"array {name!r} has dtype object, which would need pickle")
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return Path(path)


def load_npz(path: str | os.PathLike, what: str = "array file") -> dict[str, np.ndarray]:
    """Load an ``.npz`` without pickle; a missing, corrupt or pickled file raises :class:`ArtifactError`."""
    p = Path(path)
    if not p.is_file():
        raise ArtifactError(f"{what} {p} does not exist")
    try:
        with np.load(p, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (ValueError, OSError, EOFError) as exc:
        raise ArtifactError(f"{what} {p} is corrupt or not a numpy .npz file ({exc})") from exc
