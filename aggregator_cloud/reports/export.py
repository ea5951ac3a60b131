"""A node's data, all of it, for its householder: every stored sample as CSV or Parquet, read from
the store a week at a time so a year of 10-second samples never sits in memory at once; and the
store's retention (samples older than N days deleted, a node at a time, in small transactions).

Columns: `ts` (UTC ISO 8601), `seq`, the store's FIELDS (W, %; empty: not reported) and
`extra` (the sample's energy counters and per-device readings as JSON text)."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from aggregator_cloud.store import FIELDS, SqliteStore
from aggregator_cloud.store.sqlite import iso

_LOGGER = logging.getLogger(__name__)
Format = Literal["csv", "parquet"]
CHUNK: Final = timedelta(days=7)
COLUMNS: Final = ("ts", "seq", *FIELDS, "extra")
DELETE_BATCH: Final = 5_000
"""Samples deleted per transaction: ingest never waits long behind the retention job."""


def sample_span(store: SqliteStore, node: str) -> tuple[datetime, datetime] | None:
    """The first and last sample time of `node`, or None when it has none."""
    with store.atomic() as db:
        first, last = db.execute(
            "SELECT min(ts), max(ts) FROM samples WHERE node = ?", (node,)
        ).fetchone()
    if first is None:
        return None
    return datetime.fromisoformat(first), datetime.fromisoformat(last)


def sample_chunks(store: SqliteStore, node: str) -> Iterator[pd.DataFrame]:
    """The node's samples in time order, a CHUNK of time per frame (columns COLUMNS)."""
    span = sample_span(store, node)
    if span is None:
        return
    start, last = span
    while start <= last:
        end = start + CHUNK
        frame = store.samples(node, start, end, extra=True).reset_index()
        if not frame.empty:
            yield frame[list(COLUMNS)]
        start = end


def csv_chunk(frame: pd.DataFrame, header: bool) -> bytes:
    text = frame.assign(ts=frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")).to_csv(
        index=False, header=header, lineterminator="\n"
    )
    return text.encode()


PARQUET_SCHEMA: Final = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("seq", pa.int64()),
        *(pa.field(name, pa.float64()) for name in FIELDS),
        pa.field("extra", pa.string()),
    ]
)


class _Drain(io.RawIOBase):
    """A write-only file whose bytes are taken out after each row group."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        chunk = bytes(data)  # type: ignore[call-overload]
        self._parts.append(chunk)
        self._written += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def export_blocks(store: SqliteStore, node: str, fmt: Format) -> Iterator[bytes]:
    """The whole export as blocks of bytes, a chunk of samples at a time."""
    if fmt == "csv":
        header = True
        for frame in sample_chunks(store, node):
            yield csv_chunk(frame, header)
            header = False
        if header:  # no samples: still a CSV with its header
            yield (",".join(COLUMNS) + "\n").encode()
        return
    drain = _Drain()
    with pq.ParquetWriter(drain, PARQUET_SCHEMA) as writer:
        for frame in sample_chunks(store, node):
            writer.write_table(pa.Table.from_pandas(frame, PARQUET_SCHEMA, preserve_index=False))
            yield drain.take()
    yield drain.take()


def delete_older_than(store: SqliteStore, cutoff: datetime) -> int:
    """Delete every sample before `cutoff`, in transactions of DELETE_BATCH; how many."""
    deleted = 0
    with store.atomic() as db:  # every node with samples, registered or not
        nodes = [row[0] for row in db.execute("SELECT DISTINCT node FROM samples")]
    for node in nodes:
        while True:
            with store.atomic() as db:
                cursor = db.execute(
                    "DELETE FROM samples WHERE node = ? AND seq IN (SELECT seq FROM samples "
                    "WHERE node = ? AND ts < ? LIMIT ?)",
                    (node, node, iso(cutoff), DELETE_BATCH),
                )
            deleted += cursor.rowcount
            if cursor.rowcount < DELETE_BATCH:
                break
    return deleted


async def retention_job(
    store: SqliteStore,
    days: float,
    every: timedelta = timedelta(hours=1),
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Forever: delete samples older than `days`, then wait `every`."""
    while True:
        try:
            deleted = await asyncio.to_thread(
                delete_older_than, store, clock() - timedelta(days=days)
            )
            if deleted:
                _LOGGER.info("retention: deleted %d samples older than %s days", deleted, days)
        except Exception:  # the next round tries again
            _LOGGER.exception("retention: deleting old samples failed")
        await asyncio.sleep(every.total_seconds())
