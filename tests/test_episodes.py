"""The episode store: compact, append-only, crash-safe, resumable, and readable without pickle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from sport_core.bounds import failures_by_horizon
from sport_core.collect import EpisodeRecord, outcome_of
from sport_core.episodes import (
    HEADER_SIZE,
    RECORD_DTYPE,
    RECORD_SIZE,
    EpisodeStore,
    pack_record,
    read_episodes,
)
from sport_core.errors import ArtifactError

ROOT = Path(__file__).resolve().parents[1]


def record(i: int, seed: int = 7) -> EpisodeRecord:
    """A varied, self-consistent record for episode ``i`` (goal, violation, same-step and timeout cases)."""
    goal, violation = [(5 + i % 9, -1), (-1, 3 + i % 4), (4, 4), (-1, -1), (6, 9)][i % 5]
    length = max(goal, violation) if max(goal, violation) > 0 else 30
    return EpisodeRecord(i, seed, outcome_of(goal, violation), goal, violation, length, 0.1 * i - 2.5)


def test_records_round_trip_in_32_bytes_each(tmp_path):
    path = tmp_path / "episodes.bin"
    with EpisodeStore.open(path, seed=7, context="policy A") as store:
        for i in range(50):
            store.append(record(i))
    assert RECORD_SIZE == RECORD_DTYPE.itemsize == 32
    assert path.stat().st_size == HEADER_SIZE + 50 * 32
    back = read_episodes(path)
    assert back.header.seed == 7 and back.torn_bytes == 0
    assert back.episode_records() == [record(i) for i in range(50)]
    # The returns are kept exactly (float64), the outcomes as codes.
    assert back.records["ret"].tolist() == [record(i).ret for i in range(50)]


def test_the_file_is_plain_numpy_without_pickle(tmp_path):
    path = tmp_path / "episodes.bin"
    with EpisodeStore.open(path, seed=7) as store:
        store.extend(record(i) for i in range(10))
    rows = np.fromfile(path, dtype=RECORD_DTYPE, offset=HEADER_SIZE)
    assert rows["index"].tolist() == list(range(10))
    assert rows.tobytes()[:32] == pack_record(record(0))
    assert failures_by_horizon(rows, 20).tolist() == failures_by_horizon([record(i) for i in range(10)], 20).tolist()


def test_records_may_arrive_in_any_order_and_read_back_sorted(tmp_path):
    path = tmp_path / "episodes.bin"
    order = [3, 0, 4, 1, 2]
    with EpisodeStore.open(path, seed=7) as store:
        for i in order:
            store.append(record(i))
    assert np.fromfile(path, RECORD_DTYPE, offset=HEADER_SIZE)["index"].tolist() == order
    assert read_episodes(path).indices.tolist() == [0, 1, 2, 3, 4]


def test_reopening_continues_at_the_missing_indices(tmp_path):
    path = tmp_path / "episodes.bin"
    with EpisodeStore.open(path, seed=7, context="c") as store:
        store.extend(record(i) for i in (0, 1, 2, 5, 6))
    with EpisodeStore.open(path, seed=7, context="c") as store:
        assert len(store) == 5 and 5 in store and 3 not in store
        assert store.next_index() == 3
        assert store.missing(8) == [3, 4, 7]
        store.extend(record(i) for i in store.missing(8))
        assert store.missing(8) == []
    assert read_episodes(path).indices.tolist() == list(range(8))


def test_no_episode_is_counted_twice(tmp_path):
    path = tmp_path / "episodes.bin"
    with EpisodeStore.open(path, seed=7) as store:
        store.append(record(0))
        with pytest.raises(ValueError, match="already"):
            store.append(record(0))
        with pytest.raises(ValueError, match="already"):
            store.extend([record(1), record(1)])
    assert len(read_episodes(path)) == 1


def test_inconsistent_or_foreign_records_are_refused(tmp_path):
    with EpisodeStore.open(tmp_path / "e.bin", seed=7) as store:
        with pytest.raises(ValueError, match="contradicts"):
            store.append(EpisodeRecord(0, 7, "goal", 5, 5, 5, 0.0))  # same step: a violation, not a goal
        with pytest.raises(ValueError, match="seed"):
            store.append(record(0, seed=8))


def test_a_torn_last_record_is_ignored_and_cut_off_on_reopen(tmp_path):
    path = tmp_path / "episodes.bin"
    with EpisodeStore.open(path, seed=7) as store:
        store.extend(record(i) for i in range(4))
    with open(path, "ab") as fh:
        fh.write(pack_record(record(4))[:13])  # killed mid-write
    back = read_episodes(path)
    assert len(back) == 4 and back.torn_bytes == 13
    with pytest.raises(ArtifactError, match="torn"):
        read_episodes(path, strict=True)
    with EpisodeStore.open(path, seed=7) as store:
        assert store.missing(6) == [4, 5]
        store.extend(record(i) for i in (4, 5))
    assert read_episodes(path, strict=True).indices.tolist() == list(range(6))


def test_zero_filled_trailing_records_after_a_power_loss_are_treated_as_torn(tmp_path):
    path = tmp_path / "episodes.bin"
    with EpisodeStore.open(path, seed=7) as store:
        store.extend(record(i) for i in range(3))
    with open(path, "ab") as fh:
        fh.write(bytes(2 * RECORD_SIZE))  # the size grew but the data never reached the disk
    assert len(read_episodes(path)) == 3
    with EpisodeStore.open(path, seed=7) as store:
        store.append(record(3))
    assert read_episodes(path, strict=True).indices.tolist() == [0, 1, 2, 3]


def test_a_damaged_record_before_good_ones_is_refused(tmp_path):
    path = tmp_path / "episodes.bin"
    with EpisodeStore.open(path, seed=7) as store:
        store.extend(record(i) for i in range(5))
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + 2 * RECORD_SIZE + 4] ^= 0x01  # flip one bit of episode 2's goal step
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"record 2 .*corrupt"):
        read_episodes(path)
    with pytest.raises(ArtifactError, match="corrupt"):
        EpisodeStore.open(path, seed=7)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a store at all", json.dumps({"format": "sport-policy-v1"}).encode(), os.urandom(200)],
    ids=["empty", "text", "json", "random"],
)
def test_a_foreign_file_is_refused(tmp_path, content):
    path = tmp_path / "episodes.bin"
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match="not a sport episode store"):
        read_episodes(path)
    with pytest.raises(ArtifactError, match="not a sport episode store"):
        EpisodeStore.open(path, seed=7)


def test_a_corrupt_header_and_a_missing_file_are_refused(tmp_path):
    path = tmp_path / "episodes.bin"
    with EpisodeStore.open(path, seed=7) as store:
        store.append(record(0))
    data = bytearray(path.read_bytes())
    data[16] ^= 0xFF  # the seed
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="header is corrupt"):
        read_episodes(path)
    with pytest.raises(ArtifactError, match="does not exist"):
        read_episodes(tmp_path / "nothing.bin")


def test_a_store_of_another_collection_is_not_continued(tmp_path):
    path = tmp_path / "episodes.bin"
    with EpisodeStore.open(path, seed=7, context="policy A on env X") as store:
        store.append(record(0))
    with pytest.raises(ArtifactError, match=r"another collection .*seed"):
        EpisodeStore.open(path, seed=8, context="policy A on env X")
    with pytest.raises(ArtifactError, match=r"another collection .*context"):
        EpisodeStore.open(path, seed=7, context="policy B on env X")


def test_a_million_episodes_stay_well_under_50_megabytes():
    assert HEADER_SIZE + 10**6 * RECORD_SIZE < 50 * 2**20


WRITER = textwrap.dedent(
    """
    import sys
    from sport_core.collect import EpisodeRecord, outcome_of
    from sport_core.episodes import EpisodeStore
    with EpisodeStore.open(sys.argv[1], seed=7, context="crash test") as store:
        i = 0
        while True:
            g = 3 + i % 7
            store.append(EpisodeRecord(i, 7, outcome_of(g, -1), g, -1, g, float(i)))
            if i == 200:
                print("ready", flush=True)
            i += 1
    """
)


def test_a_killed_writer_loses_at_most_the_record_being_written(tmp_path):
    path = tmp_path / "episodes.bin"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with EpisodeStore.open(path, seed=7, context="crash test") as store:
        n = store.next_index()
        assert n > 200 and len(store) == n  # a contiguous prefix survived
        store.append(EpisodeRecord(n, 7, "timeout", -1, -1, 30, 0.0))
    back = read_episodes(path, strict=True)
    assert back.indices.tolist() == list(range(n + 1))
    assert back.records["ret"][:n].tolist() == [float(i) for i in range(n)]
