"""The shadow benchmark's measurements at a tiny size, against a real `serve`: every message
sent is accounted for and every figure is well formed. Timings are printed by the benchmark,
never asserted here."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import pytest

from benchmarks.shadow import (
    check_documents,
    enroll,
    measure_ingest,
    measure_plan_push,
    measure_throughput,
    schedule,
)
from tests.support.local_aggregator import LocalAggregator


@pytest.fixture(scope="module")
def aggregator() -> Iterator[LocalAggregator]:
    with LocalAggregator.started() as running:
        yield running


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """boto3 and the MQTT clients need loopback sockets (see tests/support/local_aggregator)."""


def test_documents_sent_are_valid_protocol_documents() -> None:
    check_documents()


def test_every_update_and_publish_is_answered(aggregator: LocalAggregator) -> None:
    nodes = enroll(aggregator, "smoke", 2)
    result = asyncio.run(measure_throughput(aggregator, nodes, messages=5, window=2))
    assert (result.acknowledged, result.accepted, result.rejected) == (5, 5, 0)
    assert result.updates_per_second > 0
    assert result.publishes_per_second > 0
    assert math.isfinite(result.ratio)


def test_every_home_acknowledges_its_plan(aggregator: LocalAggregator) -> None:
    homes = enroll(aggregator, "smoke-home", 3)
    result = asyncio.run(measure_plan_push(aggregator, homes))
    assert result.acknowledged == 3
    assert len(result.writes) == len(result.hops) == 3
    assert all(latency > 0 for latency in result.latencies)
    assert result.wave_seconds >= max(result.latencies)


def test_every_offered_sample_is_stored(aggregator: LocalAggregator) -> None:
    result = asyncio.run(measure_ingest(aggregator, homes=20, seconds=2.0, connections=2))
    assert result.offered == len(schedule(20, 2.0)) == 4
    assert result.stored == result.offered
    assert result.lost == 0
    assert 0 <= result.backlog <= result.offered


def test_the_schedule_spreads_each_home_over_ten_seconds() -> None:
    entries = schedule(4, 20.0)
    assert [due for due, _, _ in entries] == [0.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5]
    assert {(home, seq) for _, home, seq in entries} == {(h, s) for h in range(4) for s in (0, 1)}
