"""The rollup is incremental: a page view after a refresh reads the group's buckets, never the
members' samples; a new batch costs only its own samples; and whatever the order things arrive
in, the buckets equal a rollup built from scratch."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from fractal.protocol import NodeDescriptor, TelemetryBatch, parse

from aggregator_cloud.store import SqliteStore
from aggregator_cloud.store.sqlite import iso
from aggregator_cloud.views import Period, Subject, build_dashboard, install, refresh, rollup
from tests.support import dashboard_fleet as fleet
from tests.support.fleet_documents import batch, descriptor

ELM = ("street", "Elm Road")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "fleet.sqlite") as seeded:
        fleet.seed(seeded)
        yield seeded


def tables_read(store: SqliteStore) -> Iterator[set[str]]:
    """Record every table a statement on the store's connection reads (SQLite authorizer)."""
    read: set[str] = set()

    def authorizer(action: int, table: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_READ and table:
            read.add(table)
        return sqlite3.SQLITE_OK

    with store.atomic() as db:
        db.set_authorizer(authorizer)
    try:
        yield read
    finally:
        with store.atomic() as db:
            db.set_authorizer(None)


def add(store: SqliteStore, node: str, samples: list[dict[str, object]]) -> None:
    parsed = parse(TelemetryBatch, batch(node, 99, samples))
    assert parsed.document is not None
    store.add_samples(node, parsed.document.samples)


def period() -> Period:
    return Period.between(fleet.T0, fleet.END + timedelta(hours=1))


def from_scratch(store: SqliteStore, tmp_path: Path) -> SqliteStore:
    """A copy of the store whose rollup is rebuilt from every stored sample."""
    # A second connection sees every commit, WAL included; backup copies them all.
    with sqlite3.connect(store.path) as source, sqlite3.connect(tmp_path / "copy.sqlite") as target:
        source.backup(target)
    copy = SqliteStore(tmp_path / "copy.sqlite")
    with copy.atomic() as db:
        for table in ("view_pending", "view_node_buckets", "view_group_buckets"):
            db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute("DROP TABLE IF EXISTS view_group_members")
        for trigger in ("insert", "delete", "update_old", "update_new"):
            db.execute(f"DROP TRIGGER IF EXISTS view_rollup_{trigger}")
    install(copy)
    refresh(copy)
    return copy


def assert_same_groups(store: SqliteStore, tmp_path: Path) -> None:
    rebuilt = from_scratch(store, tmp_path)
    with rebuilt:
        for key, values in store.tag_values().items():
            for value in values:
                kept = rollup.group_buckets(store, key, value, fleet.T0, period().end)
                fresh = rollup.group_buckets(rebuilt, key, value, fleet.T0, period().end)
                pd.testing.assert_frame_equal(kept, fresh, rtol=1e-9, atol=1e-6)


def test_group_buckets_are_the_members_summed_as_the_store_sums_them(
    store: SqliteStore,
) -> None:
    refresh(store)
    buckets = rollup.group_buckets(store, *ELM, fleet.T0, fleet.END)
    reference = store.group_telemetry(*ELM, fleet.T0, fleet.END, timedelta(minutes=5))

    assert list(buckets.index) == list(reference.index)
    for name in ("grid_w", "pv_w", "ev_w"):
        assert list(buckets[name]) == pytest.approx(list(reference[name]))
    assert list(buckets["nodes"]) == [3] * 24
    demand = fleet.bucket_means(fleet.members("Elm Road"), "demand")
    assert list(buckets["demand_w"]) == pytest.approx([demand[t] for t in buckets.index])


def test_a_page_view_after_a_refresh_reads_no_sample(store: SqliteStore) -> None:
    refresh(store)
    watcher = tables_read(store)
    read = next(watcher)

    board = build_dashboard(store, Subject(group=ELM), period(), now=fleet.END, intensity=None)

    assert board.energy_wh["demand_wh"] > 0
    assert "samples" not in read
    assert "view_group_buckets" in read
    next(watcher, None)


def test_a_new_batch_costs_only_its_own_samples(store: SqliteStore, tmp_path: Path) -> None:
    refresh(store)
    later = [fleet.sample("elm-2", k) for k in range(fleet.SAMPLES, fleet.SAMPLES + 12)]
    add(store, "elm-2", later)
    watcher = tables_read(store)
    read = next(watcher)

    stats = refresh(store)

    assert "samples" not in read
    next(watcher, None)
    assert stats.samples == 12
    assert stats.node_buckets == 1  # two minutes: one new bucket of elm-2
    assert stats.group_buckets == 2  # that bucket of Elm Road and of F1
    assert refresh(store).samples == 0
    assert_same_groups(store, tmp_path)


def test_replayed_late_and_out_of_order_samples_keep_buckets_exact(
    store: SqliteStore, tmp_path: Path
) -> None:
    refresh(store)
    add(store, "elm-3", [fleet.sample("elm-3", k) for k in range(60)])  # replay: ignored
    assert refresh(store).samples == 0
    # A late sample, newer seq, into an old bucket that already has samples.
    late = {
        **fleet.sample("elm-3", 5),
        "seq": 5000,
        "ts": fleet.iso(fleet.T0 + timedelta(seconds=3)),
    }
    add(store, "elm-3", [late])

    assert refresh(store).samples == 1
    assert_same_groups(store, tmp_path)


def test_a_node_moving_street_moves_its_buckets(store: SqliteStore, tmp_path: Path) -> None:
    refresh(store)
    before = rollup.group_buckets(store, "street", "Oak Lane", fleet.T0, fleet.END)
    moved = parse(
        NodeDescriptor, descriptor("elm-3", "Elm 3", {"street": "Oak Lane", "feeder": "F1"})
    )
    assert moved.document is not None
    store.record_descriptor(moved.document)

    stats = refresh(store)

    assert stats.memberships == 2
    after = rollup.group_buckets(store, "street", "Oak Lane", fleet.T0, fleet.END)
    elm3 = rollup.node_buckets(store, "elm-3", fleet.T0, fleet.END)
    assert list(after["nodes"]) == [2] * 24
    assert list(after["pv_w"]) == pytest.approx(list(before["pv_w"] + elm3["pv_w"]))
    assert list(rollup.group_buckets(store, *ELM, fleet.T0, fleet.END)["nodes"]) == [2] * 24
    assert_same_groups(store, tmp_path)


def test_deleted_samples_leave_the_buckets(store: SqliteStore, tmp_path: Path) -> None:
    refresh(store)
    with store.atomic() as db:  # as a retention job would
        db.execute(
            "DELETE FROM samples WHERE node = 'oak-1' AND ts < ?",
            (iso(fleet.END - timedelta(hours=1)),),
        )

    assert refresh(store).samples == 360
    oak = rollup.group_buckets(store, "street", "Oak Lane", fleet.T0, fleet.END)
    assert len(oak) == 12
    assert_same_groups(store, tmp_path)


def test_installing_on_a_store_with_samples_queues_them_once(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "fleet.sqlite") as seeded:
        fleet.seed(seeded)
        assert install(seeded) is True
        assert install(seeded) is False
        assert rollup.pending_count(seeded) == 4 * fleet.SAMPLES
        assert refresh(seeded).samples == 4 * fleet.SAMPLES
        assert rollup.pending_count(seeded) == 0


def test_folding_in_many_small_transactions_gives_the_same_buckets(
    store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollup, "CHUNK", 500)

    stats = refresh(store)

    assert stats.samples == 4 * fleet.SAMPLES
    monkeypatch.undo()
    assert_same_groups(store, tmp_path)
