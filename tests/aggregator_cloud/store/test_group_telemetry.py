"""A tag group is a node: its telemetry is its members' summed per time bucket."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from fractal.protocol import NodeDescriptor, TelemetryBatch, parse

from aggregator_cloud.store import RESAMPLED_COLUMNS, SqliteStore, group_totals
from tests.support.fleet_documents import T0, batch, descriptor, reading

MINUTE = timedelta(minutes=1)


def add(store: SqliteStore, node: str, readings: list[dict[str, object]]) -> None:
    parsed = parse(TelemetryBatch, batch(node, 1, readings))
    assert parsed.document is not None
    store.add_samples(node, parsed.document.samples)


def register(store: SqliteStore, node: str, feeder: str, capacity_wh: int = 0) -> None:
    parsed = parse(
        NodeDescriptor, descriptor(node, tags={"feeder": feeder}, capacity_wh=capacity_wh)
    )
    assert parsed.document is not None
    store.record_descriptor(parsed.document)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[SqliteStore]:
    """a and b on feeder F12 (a: 10 kWh battery, b: 5 kWh), c alone on F13.

    a: grid 100 W for the first minute, 200 W the second; SoC 50 %.
    b: grid -40 W (exporting) for the first minute only; SoC 80 %.
    c: grid 1000 W for the first minute."""
    with SqliteStore(tmp_path / "fleet.sqlite") as store:
        register(store, "a", "F12", capacity_wh=10_000)
        register(store, "b", "F12", capacity_wh=5_000)
        register(store, "c", "F13")
        add(
            store,
            "a",
            [reading(s, grid_w=100.0 if s < 6 else 200.0, soc_pct=50) for s in range(12)],
        )
        add(store, "b", [reading(s, grid_w=-40.0, soc_pct=80) for s in range(6)])
        add(store, "c", [reading(s, grid_w=1000.0) for s in range(6)])
        yield store


def test_group_sums_members_per_bucket(fleet: SqliteStore) -> None:
    group = fleet.group_telemetry("feeder", "F12", T0, T0 + 2 * MINUTE, MINUTE)

    assert list(group.index) == [T0, T0 + MINUTE]
    assert list(group["grid_w"]) == [60.0, 200.0]
    assert list(group["pv_w"]) == [4000.0, 2000.0]
    assert list(group["nodes"]) == [2, 1]
    assert math.isnan(group["ev_w"].iloc[0])


def test_group_state_of_charge_is_weighted_by_battery_capacity(fleet: SqliteStore) -> None:
    group = fleet.group_telemetry("feeder", "F12", T0, T0 + 2 * MINUTE, MINUTE)

    assert list(group["soc_pct"]) == [pytest.approx(60.0), 50.0]


def test_without_every_capacity_the_state_of_charge_is_a_plain_mean(fleet: SqliteStore) -> None:
    samples = fleet.tag_samples("feeder", "F12", T0, T0 + MINUTE)

    group = group_totals(samples, MINUTE, {"a": 10_000})

    assert list(group["soc_pct"]) == [65.0]


def test_a_group_of_one_is_that_node(fleet: SqliteStore) -> None:
    group = fleet.group_telemetry("feeder", "F13", T0, T0 + 2 * MINUTE, MINUTE)
    node = fleet.node_telemetry("c", T0, T0 + 2 * MINUTE, MINUTE)

    pd.testing.assert_frame_equal(group, node)
    assert list(node.columns) == list(RESAMPLED_COLUMNS)
    assert list(node["grid_w"]) == [1000.0]


def test_the_time_range_selects_buckets(fleet: SqliteStore) -> None:
    group = fleet.group_telemetry("feeder", "F12", T0 + MINUTE, T0 + 2 * MINUTE, MINUTE)

    assert list(group.index) == [T0 + MINUTE]
    assert list(group["grid_w"]) == [200.0]


def test_tag_samples_hold_only_the_members(fleet: SqliteStore) -> None:
    samples = fleet.tag_samples("feeder", "F12")

    assert sorted(set(samples["node"])) == ["a", "b"]
    assert len(samples) == 18


def test_an_unknown_group_has_no_rows_but_the_same_columns(fleet: SqliteStore) -> None:
    group = fleet.group_telemetry("feeder", "F99", T0, T0 + MINUTE, MINUTE)

    assert group.empty
    assert list(group.columns) == list(RESAMPLED_COLUMNS)
