"""`SqliteStore.atomic()`: one commit for a group of writes, all or nothing inside it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fractal.protocol import Reading, TelemetryBatch, parse

from aggregator_cloud.store import SqliteStore, TransactionLost
from tests.support.fleet_documents import T0, batch, reading
from tests.support.sqlite_faults import FAULT, fail_samples_of


def samples(node: str, *seqs: int) -> tuple[Reading, ...]:
    parsed = parse(TelemetryBatch, batch(node, 1, [reading(seq) for seq in seqs]))
    assert parsed.document is not None
    return parsed.document.samples


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "fleet.sqlite") as opened:
        yield opened


def stored_elsewhere(store: SqliteStore) -> int:
    """Samples another connection sees: only committed ones."""
    with sqlite3.connect(store.path) as other:
        count = int(other.execute("SELECT count(*) FROM samples").fetchone()[0])
    other.close()
    return count


def test_writes_in_a_group_share_one_commit(store: SqliteStore) -> None:
    with store.atomic():
        store.add_samples("n1", samples("n1", 1, 2), seen_at=T0)
        store.add_samples("n2", samples("n2", 1), seen_at=T0)
        store.mark_seen("n3", T0)
        assert stored_elsewhere(store) == 0  # nothing visible before the group commits

    assert store.commits == 1
    assert stored_elsewhere(store) == 3
    assert [record.node for record in store.nodes()] == ["n1", "n2", "n3"]


def test_without_a_group_each_write_commits(store: SqliteStore) -> None:
    store.add_samples("n1", samples("n1", 1), seen_at=T0)
    store.mark_seen("n1", T0 + timedelta(seconds=1))

    assert store.commits == 2


def test_a_failing_block_inside_a_group_undoes_only_its_own_writes(store: SqliteStore) -> None:
    def fails_after_writing() -> None:
        with store.atomic():
            store.add_samples("n2", samples("n2", 1), seen_at=T0)
            raise ValueError("bad")

    with store.atomic():
        store.add_samples("n1", samples("n1", 1), seen_at=T0)
        with pytest.raises(ValueError, match="bad"):
            fails_after_writing()
        store.add_samples("n3", samples("n3", 1), seen_at=T0)

    assert store.commits == 1
    assert [record.node for record in store.nodes()] == ["n1", "n3"]
    assert store.sample_count("n2") == 0


def test_a_failing_statement_inside_a_group_keeps_the_group(store: SqliteStore) -> None:
    fail_samples_of(store.path, "n2", rollback=False)

    with store.atomic():
        store.add_samples("n1", samples("n1", 1), seen_at=T0)
        with pytest.raises(sqlite3.IntegrityError, match=FAULT), store.atomic():
            store.add_samples("n2", samples("n2", 1), seen_at=T0)  # touches n2, then fails
        store.add_samples("n3", samples("n3", 1), seen_at=T0)

    assert [record.node for record in store.nodes()] == ["n1", "n3"]
    assert stored_elsewhere(store) == 2


def test_a_group_sqlite_rolled_back_is_lost_and_says_so(store: SqliteStore) -> None:
    fail_samples_of(store.path, "n2", rollback=True)

    def group() -> None:
        with store.atomic():
            store.add_samples("n1", samples("n1", 1), seen_at=T0)
            with store.atomic():
                store.add_samples("n2", samples("n2", 1), seen_at=T0)
            pytest.fail("the group went on after SQLite rolled it back")

    with pytest.raises(TransactionLost):
        group()

    assert store.commits == 0
    assert stored_elsewhere(store) == 0
    assert store.nodes() == []
    store.add_samples("n1", samples("n1", 1), seen_at=T0)  # the store is usable again
    assert stored_elsewhere(store) == 1
