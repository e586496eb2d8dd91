"""The episode store: an append-only binary file of fixed-size episode records.

Why: a certificate is only as good as the episodes behind it, so they are kept, compactly (32 bytes an
episode: 10⁶ episodes are 32 MB), in a file that a killed collection can continue and anyone can read
without pickle (``np.fromfile(path, RECORD_DTYPE, offset=HEADER_SIZE)``).

File layout (little-endian):

* Header, 64 bytes (:data:`HEADER_DTYPE`): magic ``b"SPORTEPS"``, format version (uint16, 1), record size
  (uint16, 32), header size (uint32, 64), the run seed (uint64; episode i used the random streams of
  (seed, i)), a 32-byte context digest (SHA-256 of a text naming what was collected, e.g. the policy's
  weight hash and the env config, so that a resumed collection cannot mix in episodes of something else),
  4 reserved zero bytes and the CRC-32 of the 60 bytes before it.
* Records, 32 bytes each (:data:`RECORD_DTYPE`), in the order they finished (not necessarily by index; a
  finished collection is rewritten in index order by :func:`sort_store`, so its bytes do not depend on the
  workers):
  ``index`` uint32, ``goal_step`` int32, ``violation_step`` int32, ``length`` int32 (steps; −1 = never for
  the two event steps), ``ret`` float64 (the undiscounted return, kept exactly), ``outcome`` uint8 (0 goal,
  1 violation, 2 timeout: the order of :data:`sport_core.collect.OUTCOMES`), 3 reserved zero bytes, and
  ``crc`` uint32, the CRC-32 of the record's first 28 bytes.

Crash safety: each record goes to the file in one ``write`` on an ``O_APPEND`` descriptor, so a killed
process loses at most the record being written; the file is fsync'ed at most every ``sync_seconds`` and on
close, so a power loss loses at most that much. On reopening, a torn tail (a partial record, or trailing
records whose CRC fails, as a power loss can leave) is cut off; a bad record *before* a good one means the
file was damaged and is refused, as are a foreign file, an unknown version, or a header CRC mismatch.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import struct
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from sport_core.artifacts import atomic_write_bytes, writing
from sport_core.collect import OUTCOMES, EpisodeRecord, outcome_of
from sport_core.errors import ArtifactError

MAGIC = b"SPORTEPS"
VERSION = 1
HEADER_SIZE = 64
RECORD_SIZE = 32

HEADER_DTYPE = np.dtype(
    [
        ("magic", "S8"),
        ("version", "<u2"),
        ("record_size", "<u2"),
        ("header_size", "<u4"),
        ("seed", "<u8"),
        ("context", "u1", (32,)),
        ("reserved", "<u4"),
        ("crc", "<u4"),
    ]
)
RECORD_DTYPE = np.dtype(
    [
        ("index", "<u4"),
        ("goal_step", "<i4"),
        ("violation_step", "<i4"),
        ("length", "<i4"),
        ("ret", "<f8"),
        ("outcome", "u1"),
        ("reserved", "u1", (3,)),
        ("crc", "<u4"),
    ]
)
assert HEADER_DTYPE.itemsize == HEADER_SIZE and RECORD_DTYPE.itemsize == RECORD_SIZE

_RECORD_BODY = struct.Struct("<IiiidB3x")  # the first 28 bytes of a record, i.e. everything but its CRC
_CODES = {name: code for code, name in enumerate(OUTCOMES)}


def context_digest(context: str | bytes) -> bytes:
    """The 32-byte digest stored in the header for a context text (or the digest itself, if given)."""
    if isinstance(context, bytes) and len(context) == 32:
        return context
    data = context.encode("utf-8") if isinstance(context, str) else bytes(context)
    return hashlib.sha256(data).digest()


@attrs.frozen
class StoreHeader:
    """What a store's header says: format version, run seed and the context digest (hex)."""

    version: int
    seed: int
    context: str


@attrs.frozen(eq=False)
class EpisodeFile:
    """A store read back: its header, its records (a :data:`RECORD_DTYPE` array sorted by index) and how
    many trailing bytes were a torn write that was ignored."""

    path: Path
    header: StoreHeader
    records: np.ndarray
    torn_bytes: int = 0

    def __len__(self) -> int:
        return int(self.records.size)

    @property
    def indices(self) -> np.ndarray:
        return self.records["index"].astype(np.int64)

    def episode_records(self) -> list[EpisodeRecord]:
        """The records as :class:`EpisodeRecord` objects (without trajectories), sorted by index."""
        return to_episode_records(self.records, self.header.seed)


def _header_bytes(seed: int, context: bytes) -> bytes:
    head = np.zeros(1, HEADER_DTYPE)
    head["magic"] = MAGIC
    head["version"] = VERSION
    head["record_size"] = RECORD_SIZE
    head["header_size"] = HEADER_SIZE
    head["seed"] = seed
    head["context"] = np.frombuffer(context, np.uint8)
    raw = bytearray(head.tobytes())
    raw[60:64] = struct.pack("<I", zlib.crc32(bytes(raw[:60])))
    return bytes(raw)


def pack_record(record: EpisodeRecord) -> bytes:
    """The 32 bytes of one record (see the module docstring)."""
    if record.outcome not in _CODES:
        raise ValueError(f"episode {record.index}: unknown outcome {record.outcome!r} (known: {', '.join(OUTCOMES)})")
    if record.outcome != outcome_of(record.goal_step, record.violation_step):
        raise ValueError(
            f"episode {record.index}: outcome {record.outcome!r} contradicts its goal step {record.goal_step} and "
            f"violation step {record.violation_step} (sport_core.collect.outcome_of gives "
            f"{outcome_of(record.goal_step, record.violation_step)!r})"
        )
    if not 0 <= record.index < 2**32:
        raise ValueError(f"episode index {record.index} does not fit the store (0 ≤ index < 2**32)")
    body = _RECORD_BODY.pack(
        record.index, record.goal_step, record.violation_step, record.length, float(record.ret), _CODES[record.outcome]
    )
    return body + struct.pack("<I", zlib.crc32(body))


def _parse_header(raw: bytes, path: Path) -> StoreHeader:
    if len(raw) < HEADER_SIZE or raw[:8] != MAGIC:
        raise ArtifactError(f"{path} is not a sport episode store (no {MAGIC.decode()} header): a foreign file")
    head = np.frombuffer(raw[:HEADER_SIZE], HEADER_DTYPE)[0]
    if zlib.crc32(raw[:60]) != int(head["crc"]):
        raise ArtifactError(f"{path}: the episode store's header is corrupt (CRC mismatch)")
    if int(head["version"]) != VERSION:
        raise ArtifactError(
            f"{path}: episode store format version {int(head['version'])} is not supported "
            f"(this sport reads version {VERSION})"
        )
    if int(head["record_size"]) != RECORD_SIZE or int(head["header_size"]) != HEADER_SIZE:
        raise ArtifactError(f"{path}: the episode store's header gives unexpected sizes (corrupt file)")
    return StoreHeader(VERSION, int(head["seed"]), bytes(head["context"]).hex())


def _record_crcs_ok(body: bytes, count: int) -> np.ndarray:
    view = memoryview(body)
    ok = np.empty(count, dtype=bool)
    for i in range(count):
        start = i * RECORD_SIZE
        ok[i] = zlib.crc32(view[start : start + 28]) == int.from_bytes(view[start + 28 : start + 32], "little")
    return ok


def _parse(raw: bytes, path: Path) -> tuple[StoreHeader, np.ndarray, int]:
    """Header, records in file order, and the number of torn trailing bytes."""
    header = _parse_header(raw, path)
    body = raw[HEADER_SIZE:]
    count = len(body) // RECORD_SIZE
    ok = _record_crcs_ok(body, count)
    good = count
    bad = np.flatnonzero(~ok)
    if bad.size:
        first_bad = int(bad[0])
        if ok[first_bad:].any():
            raise ArtifactError(
                f"{path}: episode record {first_bad} (byte {HEADER_SIZE + first_bad * RECORD_SIZE}) is corrupt "
                "(CRC mismatch) and is followed by good records: the file was damaged, not torn by a crash"
            )
        good = first_bad
    records = np.frombuffer(body, RECORD_DTYPE, count=good).copy()
    if np.any(records["outcome"] >= len(OUTCOMES)):
        raise ArtifactError(f"{path}: an episode record has an unknown outcome code (corrupt file)")
    return header, records, len(body) - good * RECORD_SIZE


def _sorted_unique(records: np.ndarray, path: Path) -> np.ndarray:
    order = np.argsort(records["index"], kind="stable")
    records = records[order]
    dup = np.flatnonzero(np.diff(records["index"].astype(np.int64)) == 0)
    if dup.size:
        raise ArtifactError(f"{path}: episode {int(records['index'][dup[0]])} is recorded twice (corrupt store)")
    return records


def read_episodes(path: str | os.PathLike, *, strict: bool = False, what: str = "episode store") -> EpisodeFile:
    """Read a store: its header and its records sorted by index.

    A torn tail is ignored (and reported in ``torn_bytes``) unless ``strict``, which refuses it, as
    ``sport verify`` does: a finished collection has none. A missing, foreign or damaged file raises
    :class:`ArtifactError` naming it.
    """
    p = Path(path)
    if not p.is_file():
        raise ArtifactError(f"{what} {p} does not exist")
    header, records, torn = _parse(p.read_bytes(), p)
    if strict and torn:
        raise ArtifactError(f"{p}: the episode store ends in {torn} bytes of a torn (unfinished) record")
    return EpisodeFile(p, header, _sorted_unique(records, p), torn)


def sort_store(path: str | os.PathLike) -> EpisodeFile:
    """Rewrite a finished store with its records in index order (atomically; same header and records; only if
    they are not in that order already), so that its bytes, and hash, do not depend on the order in which
    workers finished; returns it, read strictly (as :func:`read_episodes` with ``strict``)."""
    p = Path(path)
    raw = p.read_bytes()
    header, records, torn = _parse(raw, p)
    if torn:
        raise ArtifactError(f"{p}: the episode store ends in {torn} bytes of a torn (unfinished) record")
    ordered = _sorted_unique(records, p)
    if not np.array_equal(ordered["index"], records["index"]):
        atomic_write_bytes(p, raw[:HEADER_SIZE] + ordered.tobytes())
    return EpisodeFile(p, header, ordered, 0)


def to_episode_records(records: np.ndarray, seed: int) -> list[EpisodeRecord]:
    """:data:`RECORD_DTYPE` rows as :class:`EpisodeRecord` objects (trajectories are not stored here)."""
    columns = [records[name].tolist() for name in ("index", "outcome", "goal_step", "violation_step", "length", "ret")]
    return [
        EpisodeRecord(index=i, seed=int(seed), outcome=OUTCOMES[o], goal_step=g, violation_step=v, length=n, ret=r)
        for i, o, g, v, n, r in zip(*columns, strict=True)
    ]


class EpisodeStore:
    """An open store to append to: ``EpisodeStore.open(path, seed, context)`` creates it or continues it.

    Continuing checks that the file belongs to the same collection (seed and context), cuts off a torn
    tail, and remembers which indices are present: ``missing(n)`` lists the episodes still to collect.
    ``append`` refuses an index that is already stored (a record is never counted twice).
    """

    def __init__(self, path: Path, fd: int, header: StoreHeader, indices: Iterable[int], sync_seconds: float) -> None:
        self.path = path
        self.header = header
        self._fd = fd
        self._indices: set[int] = {int(i) for i in indices}
        self._sync_seconds = sync_seconds
        self._last_sync = time.monotonic()
        self._dirty = False

    @classmethod
    def open(
        cls, path: str | os.PathLike, seed: int, context: str | bytes = "", *, sync_seconds: float = 1.0
    ) -> EpisodeStore:
        """Create the store at ``path`` or continue the one there (same ``seed`` and ``context`` only)."""
        p = Path(path)
        digest = context_digest(context)
        if not p.exists():
            from sport_core.artifacts import atomic_write_bytes

            # The header appears atomically: a crash here leaves no file rather than half a header.
            atomic_write_bytes(p, _header_bytes(seed, digest))
        header, records, torn = _parse(p.read_bytes(), p)
        if header.seed != seed or header.context != digest.hex():
            which = "seed" if header.seed != seed else "context (policy / env / settings)"
            raise ArtifactError(
                f"{p} holds episodes of another collection (its {which} differs); "
                "delete it or collect into another file"
            )
        records = _sorted_unique(records, p)
        if torn:
            # Cut the torn tail so that new records start on a record boundary.
            os.truncate(p, p.stat().st_size - torn)
        fd = os.open(p, os.O_WRONLY | os.O_APPEND)
        return cls(p, fd, header, records["index"].tolist(), sync_seconds)

    def __len__(self) -> int:
        return len(self._indices)

    def __contains__(self, index: int) -> bool:
        return int(index) in self._indices

    def missing(self, n: int) -> list[int]:
        """Indices in ``range(n)`` not stored yet, in increasing order."""
        return [i for i in range(n) if i not in self._indices]

    def next_index(self) -> int:
        """The first index not stored yet."""
        i = 0
        while i in self._indices:
            i += 1
        return i

    def append(self, record: EpisodeRecord) -> None:
        """Append one record (one ``write``; see the module docstring for what a crash can lose)."""
        self.extend([record])

    def extend(self, records: Iterable[EpisodeRecord]) -> None:
        """Append several records in one ``write``."""
        if self._fd < 0:
            raise ValueError(f"episode store {self.path} is closed")
        blobs, new = [], set()
        for r in records:
            if r.seed != self.header.seed:
                raise ValueError(
                    f"episode {r.index} was collected with seed {r.seed}; the store holds seed {self.header.seed}"
                )
            if r.index in self._indices or r.index in new:
                raise ValueError(f"episode {r.index} is already in {self.path}")
            blobs.append(pack_record(r))
            new.add(r.index)
        if not blobs:
            return
        data = b"".join(blobs)
        with writing(self.path):
            written = os.write(self._fd, data)  # raises having written nothing, or writes short when full
            if written != len(data):
                with contextlib.suppress(OSError):  # leave no torn record behind (reopening would cut it off)
                    os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")
        self._indices |= new
        self._dirty = True
        if time.monotonic() - self._last_sync >= self._sync_seconds:
            self.sync()

    def sync(self) -> None:
        """fsync the file (done at most every ``sync_seconds`` while appending, and on close)."""
        if self._fd >= 0 and self._dirty:
            with writing(self.path):
                os.fsync(self._fd)
            self._dirty = False
        self._last_sync = time.monotonic()

    def close(self) -> None:
        if self._fd >= 0:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)
