"""The durable telemetry buffer: order, no loss within the bound, restarts, full disk."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from fractal.link.buffer import SampleTooLarge, TelemetryBuffer
from hypothesis import given, settings
from hypothesis import strategies as st


def sample(i: int, **extra: object) -> dict[str, object]:
    return {"ts": f"2026-01-01T00:00:{i % 60:02d}Z", "grid_w": i, **extra}


def drain(buffer: TelemetryBuffer) -> list[int]:
    """Send and acknowledge every batch; the sample seqs in the order they left."""
    sent: list[int] = []
    while (batch := buffer.next_batch()) is not None:
        sent.extend(s["seq"] for s in batch.samples)
        assert buffer.mark_sent(batch)
    return sent


def test_seqs_start_at_one_and_samples_come_back_whole(tmp_path: Path) -> None:
    buffer = TelemetryBuffer(tmp_path / "t.db")
    assert [buffer.append(sample(i)) for i in range(3)] == [1, 2, 3]
    batch = buffer.next_batch()
    assert batch is not None
    assert batch.samples == tuple({"seq": i + 1, **sample(i)} for i in range(3))
    assert (batch.first_seq, batch.last_seq) == (1, 3)
    buffer.close()


def test_a_batch_is_resent_unchanged_until_acknowledged(tmp_path: Path) -> None:
    buffer = TelemetryBuffer(tmp_path / "t.db", batch_samples=2)
    for i in range(3):
        buffer.append(sample(i))
    first = buffer.next_batch()
    buffer.append(sample(3))
    assert buffer.next_batch() == first  # PUBACK not seen yet: same number, same samples
    assert first is not None
    buffer.mark_sent(first)
    second = buffer.next_batch()
    assert second is not None
    assert second.seq > first.seq
    assert [s["seq"] for s in second.samples] == [3, 4]
    buffer.close()


def test_batches_stay_within_the_byte_bound(tmp_path: Path) -> None:
    buffer = TelemetryBuffer(tmp_path / "t.db", batch_bytes=1000)
    for i in range(20):
        buffer.append(sample(i, note="x" * 200))
    while (batch := buffer.next_batch()) is not None:
        body = json.dumps(list(batch.samples), separators=(",", ":"))
        assert len(body.encode()) <= 1000
        buffer.mark_sent(batch)
    assert buffer.status().pending == 0
    buffer.close()


def test_bad_samples_are_refused_with_a_reason(tmp_path: Path) -> None:
    buffer = TelemetryBuffer(tmp_path / "t.db", batch_bytes=300)
    with pytest.raises(SampleTooLarge, match="over the batch limit"):
        buffer.append(sample(0, note="x" * 400))
    with pytest.raises(ValueError, match="without 'seq'"):
        buffer.append({"seq": 5})
    with pytest.raises(ValueError, match="Out of range float"):
        buffer.append({"grid_w": float("nan")})
    assert buffer.status().last_seq == 0  # nothing was numbered for refused input
    buffer.close()


def test_seq_survives_a_restart_even_when_everything_was_sent(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    buffer = TelemetryBuffer(path)
    for i in range(5):
        buffer.append(sample(i))
    assert drain(buffer) == [1, 2, 3, 4, 5]
    buffer.close()
    reopened = TelemetryBuffer(path)
    assert reopened.append(sample(5)) == 6
    reopened.close()


def test_an_unacknowledged_batch_is_resent_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    buffer = TelemetryBuffer(path, batch_samples=2)
    for i in range(3):
        buffer.append(sample(i))
    in_flight = buffer.next_batch()
    buffer.close()
    reopened = TelemetryBuffer(path, batch_samples=2)
    assert reopened.next_batch() == in_flight
    assert drain(reopened) == [1, 2, 3]
    reopened.close()


KILLED_WRITER = """
import os, sys
from fractal.link.buffer import TelemetryBuffer
buffer = TelemetryBuffer(sys.argv[1])
for i in range(int(sys.argv[2])):
    buffer.append({"ts": "2026-01-01T00:00:00Z", "grid_w": i})
os._exit(0)  # no close(), no cleanup: like a killed process
"""


def test_samples_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path), "50"], check=True)
    reopened = TelemetryBuffer(path)
    assert drain(reopened) == list(range(1, 51))
    assert reopened.append(sample(0)) == 51
    reopened.close()


def test_when_full_the_oldest_are_dropped_and_counted(tmp_path: Path) -> None:
    buffer = TelemetryBuffer(tmp_path / "t.db", max_samples=10)
    for i in range(25):
        buffer.append(sample(i))
    status = buffer.status()
    assert (status.pending, status.dropped, status.lost) == (10, 15, 0)
    assert drain(buffer) == list(range(16, 26))
    buffer.close()
    assert TelemetryBuffer(tmp_path / "t.db").status().dropped == 15  # the count persists


def test_when_full_a_batch_in_flight_is_dropped_whole(tmp_path: Path) -> None:
    buffer = TelemetryBuffer(tmp_path / "t.db", max_samples=6, batch_samples=3)
    for i in range(6):
        buffer.append(sample(i))
    in_flight = buffer.next_batch()
    assert in_flight is not None
    buffer.append(sample(6))  # over the bound: seqs 1-3 (the whole batch) go
    assert buffer.status().dropped == 3
    buffer.mark_sent(in_flight)  # a late PUBACK for the dropped batch changes nothing
    following = buffer.next_batch()
    assert following is not None
    assert following.seq != in_flight.seq
    assert drain(buffer) == [4, 5, 6, 7]
    buffer.close()


def test_a_full_disk_is_reported_and_nothing_is_lost_once_it_recovers(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    buffer = TelemetryBuffer(path)
    # SQLite's page limit fails writes exactly as a full disk does (SQLITE_FULL).
    buffer._db.execute("PRAGMA max_page_count = 8")
    seqs = [buffer.append(sample(i, note="x" * 1000)) for i in range(40)]
    status = buffer.status()
    assert status.error is not None
    assert "full" in status.error
    assert status.pending == 40
    assert status.lost == 0
    buffer._db.execute("PRAGMA max_page_count = 100000")  # space again
    seqs.append(buffer.append(sample(40)))
    assert buffer.status().error is None
    assert drain(buffer) == seqs == list(range(1, 42))
    buffer.close()


def test_when_storage_and_overflow_are_exhausted_losses_are_counted(tmp_path: Path) -> None:
    buffer = TelemetryBuffer(tmp_path / "t.db", overflow=5)
    buffer._db.execute("PRAGMA max_page_count = 1")
    for i in range(12):
        buffer.append(sample(i, note="x" * 5000))  # needs a page the file cannot grow
    status = buffer.status()
    assert status.error is not None
    assert (status.pending, status.lost) == (5, 7)
    buffer._db.execute("PRAGMA max_page_count = 100000")
    assert drain(buffer) == [8, 9, 10, 11, 12]  # the newest survived, in order
    buffer.close()


operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 30)),
        st.tuples(st.just("send"), st.integers(0, 1)),  # 1: the PUBACK arrives
        st.just(("restart", 0)),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(operations)
def test_order_is_kept_without_loss_or_duplicates(ops: list[tuple[str, int]]) -> None:
    """Within the bound, every sample reaches the aggregator once (deduplicated by seq) and
    in order, whatever mix of appends, lost PUBACKs and restarts happens."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "t.db"
        buffer = TelemetryBuffer(path, batch_samples=7)
        appended: list[int] = []
        received: list[int] = []
        for op, arg in ops:
            if op == "append":
                appended.extend(buffer.append(sample(i)) for i in range(arg))
            elif op == "send" and (batch := buffer.next_batch()) is not None:
                received.extend(s["seq"] for s in batch.samples)
                if arg:
                    buffer.mark_sent(batch)
            elif op == "restart":
                buffer.close()
                buffer = TelemetryBuffer(path, batch_samples=7)
        received.extend(drain(buffer))
        buffer.close()
    unique = list(dict.fromkeys(received))
    assert unique == appended == list(range(1, len(appended) + 1))


def test_a_batch_ends_where_the_clock_went_back(tmp_path: Path) -> None:
    buffer = TelemetryBuffer(tmp_path / "t.db")
    for ts in ("2026-01-01T10:00:00Z", "2026-01-01T10:00:10.5Z", "2026-01-01T09:00:00Z"):
        buffer.append({"ts": ts})
    first = buffer.next_batch()
    assert first is not None
    assert [s["seq"] for s in first.samples] == [1, 2]
    assert drain(buffer) == [1, 2, 3]
    buffer.close()


@settings(max_examples=40, deadline=None)
@given(operations, st.integers(1, 12))
def test_beyond_the_bound_every_sample_is_delivered_or_counted_as_dropped(
    ops: list[tuple[str, int]], bound: int
) -> None:
    """Never silently lost: delivered + dropped accounts for every sample, oldest dropped first."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "t.db"
        open_buffer = lambda: TelemetryBuffer(path, batch_samples=5, max_samples=bound)  # noqa: E731
        buffer = open_buffer()
        appended: list[int] = []
        received: list[int] = []
        for op, arg in ops:
            if op == "append":
                appended.extend(buffer.append(sample(i)) for i in range(arg))
            elif op == "send" and (batch := buffer.next_batch()) is not None:
                received.extend(s["seq"] for s in batch.samples)
                if arg:
                    buffer.mark_sent(batch)
            elif op == "restart":
                buffer.close()
                buffer = open_buffer()
        received.extend(drain(buffer))
        dropped = buffer.status().dropped
        buffer.close()
    delivered = set(received)
    assert delivered <= set(appended)
    missing = [seq for seq in appended if seq not in delivered]
    assert len(missing) <= dropped  # a dropped batch may have been delivered before
    assert list(dict.fromkeys(received)) == sorted(delivered)  # in order
