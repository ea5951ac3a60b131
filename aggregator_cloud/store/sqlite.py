"""The local runtime's store: telemetry samples and the fleet registry in one SQLite file.

WAL journal, one connection guarded by a lock (the dispatcher and the web page share it).
Samples are keyed by (node, seq): a replayed batch inserts nothing twice. Timestamps are
stored as fixed-width UTC ISO-8601 text, which sorts in time order."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from fractal.protocol import (
    NodeDescriptor,
    Plan,
    PlanAck,
    Reading,
    TelemetrySnapshot,
    to_jsonable,
)

from .frames import FIELDS, group_totals
from .records import Insertion, NodeRecord, PlanState, TransactionLost

SCHEMA_VERSION = 1

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS samples (
    node TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts TEXT NOT NULL,
    {", ".join(f"{name} REAL" for name in FIELDS)},
    extra TEXT,
    PRIMARY KEY (node, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_by_time ON samples (node, ts);
CREATE TABLE IF NOT EXISTS nodes (
    node TEXT PRIMARY KEY,
    name TEXT,
    link TEXT,
    link_state TEXT,
    software TEXT,
    descriptor TEXT,
    first_seen TEXT,
    last_seen TEXT,
    snapshot TEXT,
    snapshot_ts TEXT,
    desired_plan_id TEXT,
    desired_plan_expiry TEXT,
    ack_id TEXT,
    ack_status TEXT,
    ack_reason TEXT,
    ack_ts TEXT
);
CREATE TABLE IF NOT EXISTS node_tags (
    node TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (node, key)
);
CREATE INDEX IF NOT EXISTS tags_by_value ON node_tags (key, value);
CREATE TABLE IF NOT EXISTS plans (
    node TEXT NOT NULL,
    id TEXT NOT NULL,
    issued TEXT NOT NULL,
    start TEXT NOT NULL,
    "end" TEXT NOT NULL,
    step INTEGER NOT NULL,
    expected TEXT,
    PRIMARY KEY (node, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS plans_by_time ON plans (node, "end");
"""


def iso(when: datetime) -> str:
    """Fixed-width UTC text (`2026-01-02T03:04:05.000000Z`): string order is time order."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: timestamps must carry a UTC offset")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_iso(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class SqliteStore:
    """Telemetry store and fleet registry; implements TelemetrySink and FleetRegistry."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # Re-entrant: the store's own writes nest inside a caller's `atomic()` group.
        self._lock = threading.RLock()
        self._depth = 0
        """Transactions and savepoints open (0: none)."""
        self.commits = 0
        """Transactions committed: with group commits, fewer than the messages stored."""
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed batch survives a power cut, not only a process crash.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} has store schema {version}; this version reads {SCHEMA_VERSION}"
            )
        with self._lock:
            self._db.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: a transaction (one commit, one fsync), or inside one, a savepoint.

        The rules dispatcher opens one around a group of messages and one per message inside
        it, so many messages share a commit and a failing one undoes only its own writes.
        Raises TransactionLost when SQLite has already rolled the enclosing transaction back
        (after a disk-full or I/O error, say): the whole group must then be redone."""
        with self._lock:
            manager = self._savepoint() if self._depth else self._outermost()
            with manager:
                yield self._db

    @contextmanager
    def _outermost(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0
        self.commits += 1

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        # Outside a transaction, SAVEPOINT would quietly start (and commit) one of its own.
        self._check_in_transaction()
        name = f"nested_{self._depth}"
        self._db.execute(f"SAVEPOINT {name}")
        self._depth += 1
        try:
            yield
        except BaseException:
            self._check_in_transaction()
            self._db.execute(f"ROLLBACK TO {name}")
            self._db.execute(f"RELEASE {name}")
            raise
        finally:
            self._depth -= 1
        self._check_in_transaction()
        self._db.execute(f"RELEASE {name}")

    def _check_in_transaction(self) -> None:
        if not self._db.in_transaction:
            raise TransactionLost("SQLite rolled back the enclosing transaction")

    # --- TelemetrySink -------------------------------------------------------------------

    def add_samples(
        self, node: str, samples: Sequence[Reading], seen_at: datetime | None = None
    ) -> Insertion:
        seqs = [sample.seq for sample in samples] or [0]
        # One transaction, one fsync (or a savepoint in the caller's group): the commit is
        # what bounds the ingest rate.
        with self.atomic() as db:
            if seen_at is not None:
                _touch(db, node, seen_at)
            stored = dict(
                db.execute(
                    "SELECT seq, ts FROM samples WHERE node = ? AND seq BETWEEN ? AND ?",
                    (node, min(seqs), max(seqs)),
                ).fetchall()
            )
            # rowcount counts the rows this statement inserted, not the rows the views'
            # triggers write (total_changes would count those too).
            inserted = db.executemany(
                f"INSERT OR IGNORE INTO samples (node, seq, ts, {', '.join(FIELDS)}, extra) "
                f"VALUES (?, ?, ?, {', '.join('?' for _ in FIELDS)}, ?)",
                [_sample_row(node, sample) for sample in samples],
            ).rowcount
        conflicts = tuple(
            sample.seq
            for sample in samples
            if sample.seq in stored and stored[sample.seq] != iso(sample.ts)
        )
        return Insertion(inserted, len(samples) - inserted, conflicts)

    def mark_seen(self, node: str, when: datetime) -> None:
        with self.atomic() as db:
            _touch(db, node, when)

    # --- FleetRegistry -------------------------------------------------------------------

    def record_descriptor(self, descriptor: NodeDescriptor) -> None:
        with self.atomic() as db:
            _ensure_node(db, descriptor.node)
            db.execute(
                "UPDATE nodes SET name = ?, link = ?, software = ?, descriptor = ? WHERE node = ?",
                (
                    descriptor.name,
                    descriptor.link.value,
                    descriptor.software,
                    json.dumps(to_jsonable(descriptor)),
                    descriptor.node,
                ),
            )
            db.execute("DELETE FROM node_tags WHERE node = ?", (descriptor.node,))
            db.executemany(
                "INSERT INTO node_tags (node, key, value) VALUES (?, ?, ?)",
                [(descriptor.node, key, value) for key, value in descriptor.tags.items()],
            )

    def record_snapshot(self, snapshot: TelemetrySnapshot) -> bool:
        with self.atomic() as db:
            _ensure_node(db, snapshot.node)
            cursor = db.execute(
                "UPDATE nodes SET snapshot = ?, snapshot_ts = ? "
                "WHERE node = ? AND (snapshot_ts IS NULL OR snapshot_ts <= ?)",
                (
                    json.dumps(to_jsonable(snapshot)),
                    iso(snapshot.ts),
                    snapshot.node,
                    iso(snapshot.ts),
                ),
            )
            return cursor.rowcount == 1

    def record_link_state(self, node: str, state: Mapping[str, Any]) -> None:
        with self.atomic() as db:
            _ensure_node(db, node)
            db.execute(
                "UPDATE nodes SET link_state = ? WHERE node = ?", (json.dumps(dict(state)), node)
            )

    def record_desired_plan(self, node: str, plan_id: str, expiry: datetime) -> None:
        with self.atomic() as db:
            _ensure_node(db, node)
            db.execute(
                "UPDATE nodes SET desired_plan_id = ?, desired_plan_expiry = ? WHERE node = ?",
                (plan_id, iso(expiry), node),
            )

    def record_plan(self, plan: Plan) -> None:
        expected = None if plan.expected is None else json.dumps(to_jsonable(plan.expected))
        with self.atomic() as db:
            db.execute(
                "INSERT OR IGNORE INTO plans "
                '(node, id, issued, start, "end", step, expected) VALUES (?, ?, ?, ?, ?, ?, ?)',
                (
                    plan.node,
                    plan.id,
                    iso(plan.issued),
                    iso(plan.start),
                    iso(min(plan.end, plan.expiry)),
                    plan.step,
                    expected,
                ),
            )

    def plans(self, nodes: Sequence[str], start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The plans of `nodes` covering any of [start, end), oldest issued first: `node`,
        `id`, `issued`, `start`, `end` (the earlier of the last slot's end and the expiry),
        `step` (s) and `expected` (the trajectories as in the plan, or None)."""
        found: list[dict[str, Any]] = []
        with self._lock:
            for node in nodes:
                rows = self._db.execute(
                    'SELECT * FROM plans WHERE node = ? AND "end" > ? AND start < ?',
                    (node, iso(start), iso(end)),
                ).fetchall()
                found.extend(_plan_row(row) for row in rows)
        return sorted(found, key=lambda plan: (plan["issued"], plan["node"], plan["id"]))

    def record_plan_ack(self, node: str, ack: PlanAck) -> bool:
        with self.atomic() as db:
            _ensure_node(db, node)
            cursor = db.execute(
                "UPDATE nodes SET ack_id = ?, ack_status = ?, ack_reason = ?, ack_ts = ? "
                "WHERE node = ? AND (ack_ts IS NULL OR ack_ts <= ?)",
                (ack.id, ack.status.value, ack.reason, iso(ack.ts), node, iso(ack.ts)),
            )
            return cursor.rowcount == 1

    # --- registry queries ----------------------------------------------------------------

    def nodes(self, tag: tuple[str, str] | None = None) -> list[NodeRecord]:
        """Every node, or those carrying tag `(key, value)`, ordered by node id."""
        with self._lock:
            if tag is None:
                rows = self._db.execute("SELECT * FROM nodes ORDER BY node").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT nodes.* FROM nodes JOIN node_tags USING (node) "
                    "WHERE key = ? AND value = ? ORDER BY node",
                    tag,
                ).fetchall()
            tags = self._tags_by_node()
        return [_node_record(row, tags.get(row["node"], {})) for row in rows]

    def node(self, node: str) -> NodeRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM nodes WHERE node = ?", (node,)).fetchone()
            tags = self._tags_by_node()
        return None if row is None else _node_record(row, tags.get(node, {}))

    def tag_values(self) -> dict[str, list[str]]:
        """Each tag key in use and its values, sorted: the groups the fleet forms."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT key, value FROM node_tags ORDER BY key, value"
            ).fetchall()
        values: dict[str, list[str]] = {}
        for key, value in rows:
            values.setdefault(key, []).append(value)
        return values

    def _tags_by_node(self) -> dict[str, dict[str, str]]:
        tags: dict[str, dict[str, str]] = {}
        for node, key, value in self._db.execute("SELECT node, key, value FROM node_tags"):
            tags.setdefault(node, {})[key] = value
        return tags

    def latest_seq(self, node: str) -> int | None:
        """The highest sample seq stored for `node`."""
        with self._lock:
            row = self._db.execute("SELECT max(seq) FROM samples WHERE node = ?", (node,))
            value = row.fetchone()[0]
        return None if value is None else int(value)

    def latest_samples(self) -> dict[str, dict[str, Any]]:
        """Each node's newest stored sample (by seq): `ts`, `seq` and the FIELDS it has."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT node, seq, ts, {', '.join(FIELDS)} FROM samples "
                "JOIN (SELECT node, max(seq) AS seq FROM samples GROUP BY node) USING (node, seq)"
            ).fetchall()
        return {
            row["node"]: {
                "seq": row["seq"],
                "ts": datetime.fromisoformat(row["ts"]),
                **{name: row[name] for name in FIELDS if row[name] is not None},
            }
            for row in rows
        }

    def sample_count(self, node: str | None = None) -> int:
        with self._lock:
            if node is None:
                row = self._db.execute("SELECT count(*) FROM samples").fetchone()
            else:
                row = self._db.execute(
                    "SELECT count(*) FROM samples WHERE node = ?", (node,)
                ).fetchone()
        return int(row[0])

    # --- pandas queries ------------------------------------------------------------------

    def samples(
        self,
        node: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        extra: bool = False,
    ) -> pd.DataFrame:
        """A node's samples in [start, end): index `ts`, columns `seq`, FIELDS (and `extra`,
        the other values as JSON text, if asked)."""
        frame = self._sample_rows("node = ?", (node,), start, end, extra=extra)
        return frame.drop(columns="node").set_index("ts")

    def tag_samples(
        self, key: str, value: str, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """Samples of every node tagged `key=value` in [start, end), long form: columns
        `node`, `ts`, `seq` and FIELDS, ordered by node then time."""
        return self._sample_rows(
            "node IN (SELECT node FROM node_tags WHERE key = ? AND value = ?)",
            (key, value),
            start,
            end,
        )

    def node_telemetry(
        self, node: str, start: datetime, end: datetime, step: timedelta
    ) -> pd.DataFrame:
        """A node's telemetry resampled to `step`: the same columns as a group's."""
        samples = self._sample_rows("node = ?", (node,), start, end)
        record = self.node(node)
        return group_totals(samples, step, _capacities([record] if record else []))

    def group_telemetry(
        self, key: str, value: str, start: datetime, end: datetime, step: timedelta
    ) -> pd.DataFrame:
        """The tag group `key=value` as one node: its members' telemetry summed per `step`."""
        samples = self.tag_samples(key, value, start, end)
        return group_totals(samples, step, _capacities(self.nodes(tag=(key, value))))

    def _sample_rows(
        self,
        where: str,
        params: tuple[str, ...],
        start: datetime | None,
        end: datetime | None,
        *,
        extra: bool = False,
    ) -> pd.DataFrame:
        conditions, values = [where], list(params)
        if start is not None:
            conditions.append("ts >= ?")
            values.append(iso(start))
        if end is not None:
            conditions.append("ts < ?")
            values.append(iso(end))
        columns = ["node", "ts", "seq", *FIELDS, *(["extra"] if extra else [])]
        query = (
            f"SELECT {', '.join(columns)} FROM samples "
            f"WHERE {' AND '.join(conditions)} ORDER BY node, ts, seq"
        )
        with self._lock:
            rows = self._db.execute(query, values).fetchall()
        frame = pd.DataFrame([tuple(row) for row in rows], columns=columns)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
        return frame.astype({"seq": "int64", **dict.fromkeys(FIELDS, "float64")})


def _capacities(records: Sequence[NodeRecord]) -> dict[str, float]:
    """Battery capacity per node (Wh), for nodes whose descriptor states one."""
    capacities: dict[str, float] = {}
    for record in records:
        devices = (record.descriptor or {}).get("devices", [])
        total = sum(
            device.get("envelope", {}).get("capacity_wh", 0.0)
            for device in devices
            if device.get("kind") == "battery"
        )
        if total > 0:
            capacities[record.node] = float(total)
    return capacities


def _sample_row(node: str, sample: Reading) -> tuple[Any, ...]:
    values = [getattr(sample, name) for name in FIELDS]
    extras: dict[str, Any] = {}
    if sample.energy is not None:
        extras["energy"] = to_jsonable(sample.energy)
    if sample.devices is not None:
        extras["devices"] = sample.devices
    return (node, sample.seq, iso(sample.ts), *values, json.dumps(extras) if extras else None)


def _ensure_node(db: sqlite3.Connection, node: str) -> None:
    db.execute("INSERT OR IGNORE INTO nodes (node) VALUES (?)", (node,))


def _touch(db: sqlite3.Connection, node: str, when: datetime) -> None:
    """Register the node if new; move `last_seen` forward (never back)."""
    seen = iso(when)
    db.execute(
        "INSERT INTO nodes (node, first_seen, last_seen) VALUES (?, ?, ?) "
        "ON CONFLICT (node) DO UPDATE SET "
        "first_seen = coalesce(first_seen, excluded.first_seen), "
        "last_seen = max(coalesce(last_seen, ''), excluded.last_seen)",
        (node, seen, seen),
    )


def _node_record(row: sqlite3.Row, tags: dict[str, str]) -> NodeRecord:
    return NodeRecord(
        node=row["node"],
        name=row["name"],
        tags=tags,
        link=row["link"],
        link_state=_json(row["link_state"]),
        software=row["software"],
        descriptor=_json(row["descriptor"]),
        first_seen=_from_iso(row["first_seen"]),
        last_seen=_from_iso(row["last_seen"]),
        snapshot=_json(row["snapshot"]),
        plan=PlanState(
            desired_id=row["desired_plan_id"],
            desired_expiry=_from_iso(row["desired_plan_expiry"]),
            ack_id=row["ack_id"],
            ack_status=row["ack_status"],
            ack_reason=row["ack_reason"],
            ack_ts=_from_iso(row["ack_ts"]),
        ),
    )


def _plan_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "node": row["node"],
        "id": row["id"],
        "issued": datetime.fromisoformat(row["issued"]),
        "start": datetime.fromisoformat(row["start"]),
        "end": datetime.fromisoformat(row["end"]),
        "step": int(row["step"]),
        "expected": _json(row["expected"]),
    }


def _json(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value: dict[str, Any] = json.loads(text)
    return value
