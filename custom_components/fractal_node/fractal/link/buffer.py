"""A durable, bounded telemetry buffer on SQLite: samples wait here until the aggregator has them.

* Every sample gets the next per-node sequence number (`seq`, from 1). The high-water mark is
  SQLite's AUTOINCREMENT counter, so numbers are never reused, even after every sample was sent
  and the process restarted.
* Samples leave in batches. A batch, once formed, is stored with its own batch seq and its exact
  sample range, and is resent unchanged until it is acknowledged: a batch seq never names two
  different contents, so the aggregator may deduplicate by batch seq as well as by sample seq.
* A batch never goes back in time: if the clock was set back between two samples, the batch
  ends before the later one (the protocol requires non-decreasing `ts` within a batch).
* Delivery is at least once: a batch whose PUBACK was lost is sent again; the aggregator drops
  the duplicate.
* WAL with `synchronous=NORMAL`: a killed process loses nothing that `append` returned for; a
  power cut may roll back the last few appends (never reorder them).

Policy when full (`max_samples` waiting): drop the OLDEST. Recent data is what the planner and
the householder need, and readings carry cumulative energy counters, so energy totals across a
gap stay exact; only the shape inside the gap is lost. Dropped samples are counted (persisted,
`BufferStatus.dropped`) and the gap is visible in the seq numbers. If the oldest samples belong
to the batch in flight, that whole batch is dropped, so no sample is ever sent under two batch
numbers.

Storage errors (full disk, read-only or corrupt file) never raise out of `append`: the sample is
kept in a small in-memory overflow, in order, written out as soon as the storage works again;
`BufferStatus.error` says what is wrong and `lost` counts what the overflow could not hold.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

DEFAULT_MAX_SAMPLES: Final = 100_000
"""About 11 days of 10-second readings; at ~400 bytes each about 40 MB on disk."""
DEFAULT_BATCH_SAMPLES: Final = 500
DEFAULT_BATCH_BYTES: Final = 64 * 1024
"""Samples' JSON per batch: half of AWS IoT's 128 KB message limit, leaving room to spare."""
DEFAULT_OVERFLOW: Final = 1_000
SEQ_FIELD_ALLOWANCE: Final = 32
"""Bytes `"seq":<n>,` adds to a sample, plus the comma between samples."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def _timestamp(sample: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(sample["ts"])
    except (KeyError, TypeError, ValueError):
        return None


def _goes_back(previous: Mapping[str, Any], sample: Mapping[str, Any]) -> bool:
    """True when `sample` is timed before `previous` (the clock was set back, e.g. a device
    without a real-time clock rebooted): a batch never goes back in time, so one ends here."""
    before, after = _timestamp(previous), _timestamp(sample)
    return before is not None and after is not None and after < before


class SampleTooLarge(ValueError):
    """A single sample would not fit in a batch: a caller bug, never a storage problem."""


@dataclass(frozen=True)
class PendingBatch:
    """Samples to publish together; `seq` is the batch's own number, stable across resends."""

    seq: int
    samples: tuple[dict[str, Any], ...]

    @property
    def first_seq(self) -> int:
        return int(self.samples[0]["seq"])

    @property
    def last_seq(self) -> int:
        return int(self.samples[-1]["seq"])


@dataclass(frozen=True)
class BufferStatus:
    pending: int
    """Samples not yet acknowledged (on disk and in the memory overflow)."""
    dropped: int
    """Samples dropped, oldest first, because the buffer was full (ever, persisted)."""
    lost: int
    """Samples lost because storage failed and the memory overflow was full (this run)."""
    last_seq: int
    """The seq of the latest sample (0 before the first)."""
    error: str | None
    """The last storage error, None once storage works again."""


class TelemetryBuffer:
    """Thread-safe: the event loop may call it directly or hand calls to an executor."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        batch_samples: int = DEFAULT_BATCH_SAMPLES,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        overflow: int = DEFAULT_OVERFLOW,
    ) -> None:
        if max_samples < 1 or batch_samples < 1 or batch_bytes < 256 or overflow < 0:
            raise ValueError("buffer bounds must be positive (batch_bytes at least 256)")
        self._max_samples = max_samples
        self._batch_samples = batch_samples
        self._batch_bytes = batch_bytes
        self._lock = threading.Lock()
        self._overflow: deque[tuple[int, str]] = deque()
        self._overflow_limit = overflow
        self._lost = 0
        self._error: str | None = None
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._last_seq = self._stored_last_seq()
        self._stored = self._scalar("SELECT COUNT(*) FROM samples")

    # --- writing -------------------------------------------------------------------------

    def append(self, sample: Mapping[str, Any]) -> int:
        """Store a JSON-ready sample (without `seq`) and return the seq given to it."""
        if "seq" in sample:
            raise ValueError("the buffer numbers samples itself: pass a sample without 'seq'")
        body = json.dumps(sample, separators=(",", ":"), allow_nan=False)
        if len(body.encode()) + SEQ_FIELD_ALLOWANCE > self._batch_bytes:
            raise SampleTooLarge(f"sample is {len(body)} bytes, over the batch limit")
        with self._lock:
            self._last_seq += 1
            self._overflow.append((self._last_seq, body))
            self._flush_overflow()
            return self._last_seq

    def _flush_overflow(self) -> None:
        """Write the overflow to disk in order; on failure keep it (bounded) and say why."""
        try:
            with self._transaction():
                for seq, body in self._overflow:
                    self._make_room()
                    self._db.execute("INSERT INTO samples (seq, body) VALUES (?, ?)", (seq, body))
                    self._stored += 1
        except sqlite3.Error as error:
            self._stored = self._scalar_or("SELECT COUNT(*) FROM samples", self._stored)
            self._note_error(error)
            while len(self._overflow) > self._overflow_limit:
                self._overflow.popleft()
                self._lost += 1
            return
        self._overflow.clear()
        self._error = None

    def _make_room(self) -> None:
        if self._stored < self._max_samples:
            return
        batch = self._db.execute("SELECT first_seq, last_seq FROM batches").fetchone()
        if batch is not None:  # the batch in flight holds the oldest samples
            removed = self._delete_samples_through(batch[1])
            self._db.execute("DELETE FROM batches")
        else:
            oldest = self._scalar("SELECT MIN(seq) FROM samples")
            removed = self._delete_samples_through(oldest)
        self._db.execute(
            "INSERT INTO counters (name, value) VALUES ('dropped', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (removed,),
        )

    def _delete_samples_through(self, last_seq: int) -> int:
        removed = self._db.execute("DELETE FROM samples WHERE seq <= ?", (last_seq,)).rowcount
        self._stored -= removed
        return removed

    # --- reading and acknowledging -------------------------------------------------------

    def next_batch(self) -> PendingBatch | None:
        """The oldest unacknowledged batch (the same one until `mark_sent`), or None."""
        with self._lock:
            if self._overflow:
                self._flush_overflow()
            try:
                with self._transaction():
                    return self._open_batch() or self._form_batch()
            except sqlite3.Error as error:
                self._note_error(error)
                return None

    def _open_batch(self) -> PendingBatch | None:
        row = self._db.execute("SELECT seq, first_seq, last_seq FROM batches").fetchone()
        if row is None:
            return None
        samples = self._samples("WHERE seq BETWEEN ? AND ?", (row[1], row[2]), row[2] - row[1] + 1)
        return PendingBatch(row[0], samples) if samples else None

    def _form_batch(self) -> PendingBatch | None:
        self._db.execute("DELETE FROM batches")  # an open batch whose samples were dropped
        candidates = self._samples("", (), self._batch_samples)
        chosen: list[dict[str, Any]] = []
        size = 0
        for sample, body_size in zip(candidates, self._sizes(candidates), strict=True):
            if chosen and (size + body_size > self._batch_bytes or _goes_back(chosen[-1], sample)):
                break
            chosen.append(sample)
            size += body_size
        if not chosen:
            return None
        cursor = self._db.execute(
            "INSERT INTO batches (first_seq, last_seq) VALUES (?, ?)",
            (chosen[0]["seq"], chosen[-1]["seq"]),
        )
        assert cursor.lastrowid is not None
        return PendingBatch(cursor.lastrowid, tuple(chosen))

    @staticmethod
    def _sizes(samples: tuple[dict[str, Any], ...]) -> list[int]:
        return [len(json.dumps(sample, separators=(",", ":")).encode()) + 1 for sample in samples]

    def _samples(
        self, where: str, params: tuple[int, ...], limit: int
    ) -> tuple[dict[str, Any], ...]:
        rows = self._db.execute(
            f"SELECT seq, body FROM samples {where} ORDER BY seq LIMIT ?", (*params, limit)
        ).fetchall()
        return tuple({"seq": seq, **json.loads(body)} for seq, body in rows)

    def mark_sent(self, batch: PendingBatch) -> bool:
        """Forget a batch the aggregator acknowledged. False if storage failed (it is resent)."""
        with self._lock:
            try:
                with self._transaction():
                    self._delete_samples_through(batch.last_seq)
                    self._db.execute("DELETE FROM batches WHERE seq = ?", (batch.seq,))
            except sqlite3.Error as error:
                self._stored = self._scalar_or("SELECT COUNT(*) FROM samples", self._stored)
                self._note_error(error)
                return False
            return True

    # --- status and lifecycle ------------------------------------------------------------

    @property
    def batch_samples(self) -> int:
        """The most samples one batch carries."""
        return self._batch_samples

    def status(self) -> BufferStatus:
        with self._lock:
            dropped = self._scalar_or("SELECT value FROM counters WHERE name = 'dropped'", 0)
            return BufferStatus(
                pending=self._stored + len(self._overflow),
                dropped=dropped,
                lost=self._lost,
                last_seq=self._last_seq,
                error=self._error,
            )

    def close(self) -> None:
        """Close the file. Samples still in the memory overflow are counted as lost."""
        with self._lock:
            if self._overflow:
                self._flush_overflow()
            self._lost += len(self._overflow)
            self._overflow.clear()
            self._db.close()

    # --- helpers -------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # a failed COMMIT may leave it open
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    def _stored_last_seq(self) -> int:
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'samples'").fetchone()
        return int(row[0]) if row else 0

    def _scalar(self, query: str) -> int:
        row = self._db.execute(query).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def _scalar_or(self, query: str, default: int) -> int:
        try:
            row = self._db.execute(query).fetchone()
        except sqlite3.Error:
            return default
        return int(row[0]) if row and row[0] is not None else default

    def _note_error(self, error: sqlite3.Error) -> None:
        self._error = f"telemetry buffer storage failed: {error}"


def pending_samples(path: Path | str) -> tuple[dict[str, Any], ...]:
    """Every sample still waiting in the buffer file at `path`, oldest first, for the
    householder's data export. Read-only (the link may be writing it); samples held in memory
    while storage fails are not in the file."""
    db = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT seq, body FROM samples ORDER BY seq").fetchall()
    finally:
        db.close()
    return tuple({"seq": seq, **json.loads(body)} for seq, body in rows)
