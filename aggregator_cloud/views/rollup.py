"""Incremental rollups of the telemetry store: per node and per tag group, per 5-minute bucket.

Every sample the store inserts (or deletes) is also appended, by SQLite triggers in the same
transaction, to `view_pending`. `refresh()` folds the pending samples into

* `view_node_buckets`: per node and bucket, the number of samples and the sum of each flow
  (`flows.FLOW_COLUMNS`, derived per sample) and of the state of charge;
* `view_group_buckets`: per tag (key, value) and bucket, the sum over members of each member's
  mean flow in the bucket (a group is a node: its telemetry is the sum of its members'), the
  number of members that reported and the sum of their mean states of charge;

and then deletes them. Work is proportional to the samples stored since the last refresh, never
to a group's history: a page view reads a group's buckets, not its members' samples. When a
node's tags change, the next refresh adds its buckets to the groups it joined and takes them
out of the groups it left (`view_group_members` is the membership the rollup was built with).

A member's mean over a bucket is updated by subtracting its old mean and adding its new one, so
samples may arrive late, out of order or twice (the store ignores duplicates; the trigger only
sees real inserts) and the buckets stay exact sums."""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import pandas as pd

from aggregator_cloud.store import SqliteStore

from .flows import FLOW_COLUMNS, MEASURED, derive

STEP_SECONDS: Final = 300
"""The rollup's bucket: charts at a day show 288 points, a week 2 016."""
CHUNK: Final = 20_000
"""Pending samples folded per transaction (~0.4 s here): bounds memory, and how long ingest
waits for the store while a refresh holds it."""
VALUE_COLUMNS: Final = (*FLOW_COLUMNS, "soc_pct")
_PENDING_COLUMNS: Final = (*MEASURED, "soc_pct")

_SUMS = ", ".join(f"{name} REAL NOT NULL" for name in VALUE_COLUMNS)
_SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS view_pending (
    id INTEGER PRIMARY KEY,
    sign INTEGER NOT NULL,
    node TEXT NOT NULL,
    ts TEXT NOT NULL,
    {", ".join(f"{name} REAL" for name in _PENDING_COLUMNS)}
);
CREATE TABLE IF NOT EXISTS view_node_buckets (
    node TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    n INTEGER NOT NULL,
    n_soc INTEGER NOT NULL,
    {_SUMS},
    PRIMARY KEY (node, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS view_group_buckets (
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    members INTEGER NOT NULL,
    soc_members INTEGER NOT NULL,
    {_SUMS},
    PRIMARY KEY (key, value, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS view_group_members (
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    node TEXT NOT NULL,
    PRIMARY KEY (key, value, node)
) WITHOUT ROWID;
"""
_PENDING_INSERT = (
    f"INSERT INTO view_pending (sign, node, ts, {', '.join(_PENDING_COLUMNS)}) VALUES "
)


def _trigger(name: str, event: str, sign: int, row: str) -> str:
    values = ", ".join(f"{row}.{column}" for column in ("node", "ts", *_PENDING_COLUMNS))
    return (
        f"CREATE TRIGGER {name} AFTER {event} ON samples BEGIN "
        f"{_PENDING_INSERT}({sign}, {values}); END;"
    )


_TRIGGERS: Final = (
    _trigger("view_rollup_insert", "INSERT", 1, "NEW"),
    _trigger("view_rollup_delete", "DELETE", -1, "OLD"),
    _trigger("view_rollup_update_old", "UPDATE", -1, "OLD"),
    _trigger("view_rollup_update_new", "UPDATE", 1, "NEW"),
)


_INSTALLED: weakref.WeakSet[SqliteStore] = weakref.WeakSet()
"""Stores whose rollup this process has checked: a refresh does not check again."""


@dataclass(frozen=True)
class RefreshStats:
    """What one refresh did."""

    samples: int
    """Pending samples folded (inserted minus nothing: deletions count too)."""
    node_buckets: int
    """Node buckets written or deleted."""
    group_buckets: int
    """Group buckets changed."""
    memberships: int
    """Memberships gained or lost since the last refresh."""


def install(store: SqliteStore) -> bool:
    """Create the rollup tables and triggers if missing; True if they were just created (the
    samples stored until now are then queued for the first refresh)."""
    created = _create(store)
    _INSTALLED.add(store)
    return created


def _create(store: SqliteStore) -> bool:
    with store.atomic() as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        # Not executescript: it would COMMIT the transaction atomic() opened.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        if "view_rollup_insert" in names:
            return False
        for trigger in _TRIGGERS:
            db.execute(trigger)
        columns = ", ".join(("node", "ts", *_PENDING_COLUMNS))
        db.execute(
            f"INSERT INTO view_pending (sign, node, ts, {', '.join(_PENDING_COLUMNS)}) "
            f"SELECT 1, {columns} FROM samples"
        )
    return True


def refresh(store: SqliteStore) -> RefreshStats:
    """Fold every pending sample into the buckets (one transaction per CHUNK samples);
    installs the rollup first if the store has none yet."""
    if store not in _INSTALLED:
        install(store)
    with store.atomic() as db:
        memberships, groups = _sync_membership(db)
    samples = nodes = 0
    while True:
        with store.atomic() as db:
            chunk = _pending_chunk(db)
            if chunk.empty:
                break
            touched, changed = _fold(db, chunk)
            db.execute("DELETE FROM view_pending WHERE id <= ?", (int(chunk["id"].max()),))
        samples, nodes, groups = samples + len(chunk), nodes + touched, groups + changed
    return RefreshStats(samples, nodes, groups, memberships)


def pending_count(store: SqliteStore) -> int:
    with store.atomic() as db:
        return int(db.execute("SELECT count(*) FROM view_pending").fetchone()[0])


# --- reading ------------------------------------------------------------------------------


def node_buckets(store: SqliteStore, node: str, start: datetime, end: datetime) -> pd.DataFrame:
    """A node's buckets in [start, end): index `ts` (bucket start, UTC), the mean of each
    VALUE_COLUMNS over the bucket and `nodes` (1)."""
    query = (
        f"SELECT bucket, n, n_soc, {', '.join(VALUE_COLUMNS)} FROM view_node_buckets "
        "WHERE node = ? AND bucket >= ? AND bucket < ? ORDER BY bucket"
    )
    frame = _read(store, query, (node, _epoch(start), _epoch(end)))
    means = _member_means(frame)
    means["nodes"] = (frame["n"] > 0).astype("int64")
    return _time_indexed(frame["bucket"], means)


def group_buckets(
    store: SqliteStore, key: str, value: str, start: datetime, end: datetime
) -> pd.DataFrame:
    """A tag group's buckets in [start, end): the same columns as `node_buckets`, each the
    sum of the members' means (the state of charge: the members' mean), `nodes` members."""
    query = (
        f"SELECT bucket, members, soc_members, {', '.join(VALUE_COLUMNS)} "
        "FROM view_group_buckets WHERE key = ? AND value = ? AND bucket >= ? AND bucket < ? "
        "ORDER BY bucket"
    )
    frame = _read(store, query, (key, value, _epoch(start), _epoch(end)))
    sums = frame.loc[:, list(VALUE_COLUMNS)].copy()
    sums["soc_pct"] = _ratio(frame["soc_pct"], frame["soc_members"])
    sums["nodes"] = frame["members"].astype("int64")
    return _time_indexed(frame["bucket"], sums)


def member_energy(
    store: SqliteStore,
    group: tuple[str, str],
    start: datetime,
    end: datetime,
    *,
    columns: Sequence[str],
) -> pd.DataFrame:
    """Each member's energy (Wh) of `columns` over [start, end), from its buckets: index
    `node`, one column each."""
    hours = STEP_SECONDS / 3600
    sums = ", ".join(f"sum({name} * 1.0 / n) * {hours} AS {name}" for name in columns)
    query = (
        f"SELECT node, {sums} FROM view_node_buckets JOIN view_group_members USING (node) "
        "WHERE key = ? AND value = ? AND bucket >= ? AND bucket < ? AND n > 0 "
        "GROUP BY node ORDER BY node"
    )
    frame = _read(store, query, (*group, _epoch(start), _epoch(end)))
    return frame.set_index("node").astype("float64")


def _read(store: SqliteStore, query: str, params: tuple[object, ...]) -> pd.DataFrame:
    with store.atomic() as db:
        return _frame(db, query, params)


def _time_indexed(buckets: pd.Series, values: pd.DataFrame) -> pd.DataFrame:
    index = pd.DatetimeIndex(pd.to_datetime(buckets.astype("int64"), unit="s", utc=True), name="ts")
    return values.set_axis(index).astype("float64").astype({"nodes": "int64"})


def _epoch(when: datetime) -> int:
    return int(when.timestamp())


# --- folding ------------------------------------------------------------------------------

_KEY: Final = ["node", "bucket"]
_GROUP_KEY: Final = ["key", "value", "bucket"]
_GROUP_COLUMNS: Final = ("members", "soc_members", *VALUE_COLUMNS)


def _pending_chunk(db: sqlite3.Connection) -> pd.DataFrame:
    columns = ["id", "sign", "node", "ts", *_PENDING_COLUMNS]
    rows = db.execute(
        f"SELECT {', '.join(columns)} FROM view_pending ORDER BY id LIMIT ?", (CHUNK,)
    ).fetchall()
    frame = pd.DataFrame([tuple(row) for row in rows], columns=columns)
    return frame.astype(dict.fromkeys(_PENDING_COLUMNS, "float64"))


def _fold(db: sqlite3.Connection, chunk: pd.DataFrame) -> tuple[int, int]:
    """Add the chunk's samples to their node buckets and the members' change of mean to their
    groups' buckets; returns (node buckets, group buckets) changed."""
    delta = _bucket_sums(chunk)
    old = _node_rows(db, pd.MultiIndex.from_frame(delta.index.to_frame()))
    new = old.add(delta, fill_value=0.0)
    _write_node_rows(db, new)
    change = _contribution(new).sub(_contribution(old), fill_value=0.0)
    membership = _frame(db, "SELECT key, value, node FROM view_group_members", ())
    return len(new), _add_to_groups(db, change, membership)


def _bucket_sums(chunk: pd.DataFrame) -> pd.DataFrame:
    """Per (node, bucket): signed sample counts and sums of each VALUE_COLUMNS."""
    sign = chunk["sign"].to_numpy(dtype="float64")
    flows = derive(chunk)
    stamps = pd.to_datetime(chunk["ts"], format="ISO8601", utc=True)
    seconds = stamps.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype("int64")
    sums = pd.DataFrame(
        {
            "node": chunk["node"].to_numpy(),
            "bucket": seconds // STEP_SECONDS * STEP_SECONDS,
            "n": sign * flows["grid_w"].notna().to_numpy(),
            "n_soc": sign * chunk["soc_pct"].notna().to_numpy(),
            **{name: sign * flows[name].fillna(0.0).to_numpy() for name in FLOW_COLUMNS},
            "soc_pct": sign * chunk["soc_pct"].fillna(0.0).to_numpy(),
        }
    )
    return sums.groupby(_KEY).sum()


def _node_rows(db: sqlite3.Connection, keys: pd.MultiIndex) -> pd.DataFrame:
    """The stored buckets at `keys` (zeros where there is none yet)."""
    db.execute("CREATE TEMP TABLE IF NOT EXISTS view_keys (node TEXT, bucket INTEGER)")
    db.execute("DELETE FROM temp.view_keys")
    db.executemany("INSERT INTO temp.view_keys VALUES (?, ?)", _python_rows(keys.to_frame()))
    stored = _frame(
        db,
        f"SELECT node, bucket, n, n_soc, {', '.join(VALUE_COLUMNS)} "
        "FROM view_node_buckets JOIN temp.view_keys USING (node, bucket)",
        (),
    )
    columns = ["n", "n_soc", *VALUE_COLUMNS]
    return stored.set_index(_KEY)[columns].astype("float64").reindex(keys, fill_value=0.0)


def _write_node_rows(db: sqlite3.Connection, rows: pd.DataFrame) -> None:
    # Counts are whole numbers summed as floats: round before comparing with zero.
    rows = rows.assign(n=rows["n"].round(), n_soc=rows["n_soc"].round())
    empty = (rows["n"] <= 0) & (rows["n_soc"] <= 0)
    db.executemany(
        "DELETE FROM view_node_buckets WHERE node = ? AND bucket = ?",
        _python_rows(rows.index[empty].to_frame()),
    )
    kept = rows[~empty].reset_index()
    columns = [*_KEY, "n", "n_soc", *VALUE_COLUMNS]
    kept = kept.astype({"n": "int64", "n_soc": "int64"})
    db.executemany(
        f"INSERT OR REPLACE INTO view_node_buckets ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)})",
        _python_rows(kept[columns]),
    )


def _member_means(rows: pd.DataFrame) -> pd.DataFrame:
    """Each bucket's mean flows (NaN without samples) and mean state of charge."""
    means = rows.loc[:, list(FLOW_COLUMNS)].div(rows["n"].where(rows["n"] > 0), axis=0)
    means["soc_pct"] = _ratio(rows["soc_pct"], rows["n_soc"])
    return means


def _contribution(rows: pd.DataFrame) -> pd.DataFrame:
    """What a node bucket adds to each of its groups' bucket."""
    n, n_soc = rows["n"].round(), rows["n_soc"].round()
    share = _member_means(rows.assign(n=n, n_soc=n_soc)).fillna(0.0)
    share["members"] = (n > 0).astype("float64")
    share["soc_members"] = (n_soc > 0).astype("float64")
    return share


def _add_to_groups(db: sqlite3.Connection, change: pd.DataFrame, membership: pd.DataFrame) -> int:
    """Add `change` (per node and bucket) to the buckets of each group the node is in."""
    if change.empty or membership.empty:
        return 0
    merged = change.reset_index().merge(membership, on="node")
    if merged.empty:
        return 0
    sums = merged.groupby(_GROUP_KEY)[list(_GROUP_COLUMNS)].sum().reset_index()
    sums["members"] = sums["members"].round().astype("int64")
    sums["soc_members"] = sums["soc_members"].round().astype("int64")
    columns = [*_GROUP_KEY, *_GROUP_COLUMNS]
    updates = ", ".join(f"{name} = {name} + excluded.{name}" for name in _GROUP_COLUMNS)
    db.executemany(
        f"INSERT INTO view_group_buckets ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT (key, value, bucket) DO UPDATE SET {updates}",
        _python_rows(sums[columns]),
    )
    db.executemany(
        "DELETE FROM view_group_buckets WHERE key = ? AND value = ? AND bucket = ? "
        "AND members <= 0 AND soc_members <= 0",
        _python_rows(sums[_GROUP_KEY]),
    )
    return len(sums)


def _sync_membership(db: sqlite3.Connection) -> tuple[int, int]:
    """Bring the groups' buckets in line with the nodes' tags: a node that joined a group adds
    all its buckets to it, one that left takes them out. Returns (memberships, buckets)."""
    current = set(map(tuple, db.execute("SELECT key, value, node FROM node_tags")))
    rolled = set(map(tuple, db.execute("SELECT key, value, node FROM view_group_members")))
    changed = 0
    for rows, sign in ((rolled - current, -1.0), (current - rolled, 1.0)):
        if not rows:
            continue
        membership = pd.DataFrame(sorted(rows), columns=["key", "value", "node"])
        stored = _all_node_rows(db, sorted(set(membership["node"])))
        changed += _add_to_groups(db, _contribution(stored) * sign, membership)
    db.executemany(
        "DELETE FROM view_group_members WHERE key = ? AND value = ? AND node = ?",
        sorted(rolled - current),
    )
    db.executemany("INSERT INTO view_group_members VALUES (?, ?, ?)", sorted(current - rolled))
    return len(rolled ^ current), changed


def _all_node_rows(db: sqlite3.Connection, nodes: Sequence[str]) -> pd.DataFrame:
    db.execute("CREATE TEMP TABLE IF NOT EXISTS view_nodes (node TEXT PRIMARY KEY)")
    db.execute("DELETE FROM temp.view_nodes")
    db.executemany("INSERT INTO temp.view_nodes VALUES (?)", [(node,) for node in nodes])
    stored = _frame(
        db,
        f"SELECT node, bucket, n, n_soc, {', '.join(VALUE_COLUMNS)} "
        "FROM view_node_buckets JOIN temp.view_nodes USING (node)",
        (),
    )
    return stored.set_index(_KEY).astype("float64")


def _ratio(total: pd.Series, count: pd.Series) -> pd.Series:
    return total / count.where(count > 0)


def _frame(db: sqlite3.Connection, query: str, params: tuple[object, ...]) -> pd.DataFrame:
    cursor = db.execute(query, params)
    columns = [description[0] for description in cursor.description]
    return pd.DataFrame([tuple(row) for row in cursor.fetchall()], columns=columns)


def _python_rows(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    """Rows as tuples of Python scalars (sqlite3 does not bind numpy types)."""
    return [
        tuple(value.item() if isinstance(value, np.generic) else value for value in row)
        for row in frame.itertuples(index=False, name=None)
    ]
