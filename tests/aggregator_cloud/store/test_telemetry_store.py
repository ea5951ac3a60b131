"""The SQLite telemetry store: samples in, samples out, nothing twice, nothing lost on a crash."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from fractal.protocol import Reading, TelemetryBatch, parse

from aggregator_cloud.store import SqliteStore
from aggregator_cloud.views import rollup as views_rollup
from tests.support.fleet_documents import T0, batch, reading


def samples(*readings: dict[str, object]) -> tuple[Reading, ...]:
    parsed = parse(TelemetryBatch, batch("n1", 1, readings))
    assert parsed.document is not None
    return parsed.document.samples


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "fleet.sqlite") as opened:
        yield opened


def test_samples_come_back_with_their_values_and_extras(store: SqliteStore) -> None:
    energy = {"import_wh": 1234.5, "pv_wh": 99.0}
    devices = {"hydro": {"flow_m3_s": 1.25}}
    result = store.add_samples(
        "n1",
        samples(
            reading(1, grid_w=-250.5, soc_pct=55.5, energy=energy, devices=devices),
            reading(2, ev_w=7200.0),
        ),
    )

    assert (result.inserted, result.duplicates, result.conflicts) == (2, 0, ())
    frame = store.samples("n1", extra=True)
    assert list(frame["seq"]) == [1, 2]
    assert frame.index[0] == T0 + timedelta(seconds=10)
    assert frame["grid_w"].iloc[0] == -250.5
    assert frame["soc_pct"].iloc[0] == 55.5
    assert frame["ev_w"].iloc[1] == 7200.0
    assert json.loads(frame["extra"].iloc[0]) == {"energy": energy, "devices": devices}
    assert pd.isna(frame["extra"].iloc[1])


def test_time_range_is_start_inclusive_end_exclusive(store: SqliteStore) -> None:
    store.add_samples("n1", samples(*(reading(seq) for seq in range(1, 7))))

    frame = store.samples("n1", T0 + timedelta(seconds=20), T0 + timedelta(seconds=50))

    assert list(frame["seq"]) == [2, 3, 4]


def test_replayed_and_overlapping_batches_store_each_sample_once(store: SqliteStore) -> None:
    first = samples(reading(1), reading(2), reading(3))
    store.add_samples("n1", first)

    replay = store.add_samples("n1", first)
    overlap = store.add_samples("n1", samples(reading(3), reading(4), reading(5)))

    assert (replay.inserted, replay.duplicates) == (0, 3)
    assert (overlap.inserted, overlap.duplicates) == (2, 1)
    assert list(store.samples("n1")["seq"]) == [1, 2, 3, 4, 5]
    assert store.latest_seq("n1") == 5


def test_counts_are_the_batchs_own_with_the_dashboards_rollup_installed(
    store: SqliteStore,
) -> None:
    # The rollup's triggers write rows of their own for every sample; the counts are the
    # samples', or the handler would report a batch of 3 as 6 stored.
    views_rollup.install(store)
    first = store.add_samples("n1", samples(reading(1), reading(2), reading(3)))
    overlap = store.add_samples("n1", samples(reading(3), reading(4)))

    assert (first.inserted, first.duplicates) == (3, 0)
    assert (overlap.inserted, overlap.duplicates) == (1, 1)


def test_same_seq_from_another_node_is_not_a_duplicate(store: SqliteStore) -> None:
    store.add_samples("n1", samples(reading(1)))

    result = store.add_samples("n2", samples(reading(1)))

    assert result.inserted == 1
    assert store.sample_count() == 2


def test_seq_reused_with_another_time_is_reported_and_the_stored_sample_kept(
    store: SqliteStore,
) -> None:
    store.add_samples("n1", samples(reading(1, grid_w=1.0)))

    result = store.add_samples(
        "n1", samples(reading(1, seconds=3600, grid_w=2.0), reading(2, seconds=3610))
    )

    assert (result.inserted, result.duplicates, result.conflicts) == (1, 1, (1,))
    assert store.samples("n1")["grid_w"].iloc[0] == 1.0


CRASHING_WRITER = """
import os, signal, sys
from aggregator_cloud.store import SqliteStore
from fractal.protocol import TelemetryBatch, parse
from tests.support.fleet_documents import batch, reading

store = SqliteStore(sys.argv[1])
for first in range(1, 50, 10):
    document = batch("n1", first, [reading(seq) for seq in range(first, first + 10)])
    store.add_samples("n1", parse(TelemetryBatch, document).document.samples)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_every_committed_batch_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "fleet.sqlite"
    root = Path(__file__).resolve().parents[3]

    writer = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(path)], cwd=root, check=False
    )

    assert writer.returncode == -signal.SIGKILL
    with SqliteStore(path) as reopened:
        assert list(reopened.samples("n1")["seq"]) == list(range(1, 51))
        again = reopened.add_samples("n1", samples(reading(50), reading(51)))
        assert (again.inserted, again.duplicates) == (1, 1)


def test_a_store_written_by_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fleet.sqlite"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    db.close()

    with pytest.raises(RuntimeError, match="schema 99"):
        SqliteStore(path)


def test_the_store_uses_a_write_ahead_log(store: SqliteStore) -> None:
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_latest_samples_are_each_nodes_highest_seq(store: SqliteStore) -> None:
    store.add_samples("n1", samples(reading(1), reading(2, grid_w=-5.0)))
    store.add_samples("n2", samples(reading(7, soc_pct=40)))

    latest = store.latest_samples()

    assert sorted(latest) == ["n1", "n2"]
    assert (latest["n1"]["seq"], latest["n1"]["grid_w"]) == (2, -5.0)
    assert latest["n1"]["ts"] == T0 + timedelta(seconds=20)
    assert "soc_pct" not in latest["n1"]
    assert latest["n2"]["soc_pct"] == 40
