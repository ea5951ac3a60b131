"""handle_telemetry_batch: the rule's event in, new samples stored, bad batches refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fractal.protocol import TelemetryBatch, parse

from aggregator_cloud.handlers import THING_NAME, handle_telemetry_batch
from aggregator_cloud.handlers.result import MAX_PROBLEMS
from aggregator_cloud.store import SqliteStore
from tests.support.fleet_documents import T0, batch, reading

NOW = T0 + timedelta(hours=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "fleet.sqlite") as opened:
        yield opened


def event(document: dict[str, Any], thing: str = "n1") -> dict[str, Any]:
    """What the rule `SELECT *, topic(3) AS thing_name` hands the Lambda."""
    return {**document, THING_NAME: thing}


def good_batch(seq: int, first: int, count: int = 3, node: str = "n1") -> dict[str, Any]:
    return batch(node, seq, [reading(s) for s in range(first, first + count)])


def test_a_valid_batch_is_stored_and_the_node_seen(store: SqliteStore) -> None:
    result = handle_telemetry_batch(event(good_batch(1, 1)), store, now=NOW)

    assert result.ok
    assert (result.node, result.stored, result.duplicates) == ("n1", 3, 0)
    assert list(store.samples("n1")["seq"]) == [1, 2, 3]
    record = store.node("n1")
    assert record is not None
    assert record.last_seen == NOW


def test_a_replayed_buffer_stores_only_what_is_new(store: SqliteStore) -> None:
    handle_telemetry_batch(event(good_batch(1, 1)), store, now=NOW)

    replay = handle_telemetry_batch(event(good_batch(1, 1)), store, now=NOW)
    overlap = handle_telemetry_batch(event(good_batch(2, 2, count=4)), store, now=NOW)

    assert (replay.ok, replay.stored, replay.duplicates) == (True, 0, 3)
    assert (overlap.stored, overlap.duplicates) == (2, 2)
    assert list(store.samples("n1")["seq"]) == [1, 2, 3, 4, 5]


def test_a_batch_for_another_node_is_refused(store: SqliteStore) -> None:
    result = handle_telemetry_batch(event(good_batch(1, 1, node="n2"), thing="n1"), store)

    assert not result.ok
    assert "'n2'" in result.problems[0]
    assert "'n1'" in result.problems[0]
    assert store.sample_count() == 0
    assert store.nodes() == []


def mutated(change: dict[str, Any]) -> dict[str, Any]:
    return {**good_batch(1, 1), **change}


GARBAGE: dict[str, tuple[object, str]] = {
    "not an object": (["samples"], "not a JSON object"),
    "no thing name": (good_batch(1, 1), THING_NAME),
    "empty thing name": ({**good_batch(1, 1), THING_NAME: ""}, THING_NAME),
    "wrong schema": (event(mutated({"schema": "fractal.plan.v1"})), "schema"),
    "no samples": (event(mutated({"samples": []})), "samples"),
    "text for a power": (
        event(mutated({"samples": [{**reading(1), "grid_w": "lots"}]})),
        "samples[0].grid_w",
    ),
    "unknown field": (event(mutated({"extra": 1})), "extra"),
    "seq going back": (
        event(mutated({"samples": [reading(2), reading(1, seconds=30)]})),
        "samples[1].seq",
    ),
    "naive timestamp": (
        event(mutated({"samples": [{**reading(1), "ts": "2026-03-01T12:00:00"}]})),
        "samples[0].ts",
    ),
}


@pytest.mark.parametrize("name", GARBAGE)
def test_garbage_is_refused_with_a_reason_and_loses_nothing_else(
    store: SqliteStore, name: str
) -> None:
    garbage, where = GARBAGE[name]
    handle_telemetry_batch(event(good_batch(1, 1)), store, now=NOW)

    refused = handle_telemetry_batch(garbage, store, now=NOW + timedelta(hours=1))  # type: ignore[arg-type]
    after = handle_telemetry_batch(event(good_batch(2, 4)), store, now=NOW)

    assert not refused.ok
    assert refused.stored == 0
    assert any(where in problem for problem in refused.problems), refused.problems
    assert after.ok
    assert list(store.samples("n1")["seq"]) == [1, 2, 3, 4, 5, 6]
    record = store.node("n1")
    assert record is not None
    assert record.last_seen == NOW


def test_a_very_bad_batch_reports_a_bounded_number_of_problems(store: SqliteStore) -> None:
    samples = [{**reading(seq), "grid_w": "x"} for seq in range(1, 51)]

    document = mutated({"samples": samples})
    found = len(parse(TelemetryBatch, document).problems)

    result = handle_telemetry_batch(event(document), store)

    assert found >= 50
    assert len(result.problems) == MAX_PROBLEMS
    assert result.problems[:3] == tuple(
        f"samples[{index}].grid_w: Input should be a valid number" for index in range(3)
    )
    assert result.problems[-1] == f"... and {found - MAX_PROBLEMS + 1} more problems"


def test_the_result_is_what_a_lambda_can_return(store: SqliteStore) -> None:
    handle_telemetry_batch(event(good_batch(1, 1)), store, now=NOW)
    clash = batch("n1", 2, [reading(1, seconds=999), reading(9, seconds=1000)])

    result = handle_telemetry_batch(event(clash), store, now=NOW)

    assert json.loads(json.dumps(result.as_dict())) == {
        "node": "n1",
        "stored": 1,
        "duplicates": 1,
        "conflicts": [1],
        "problems": [],
        "ok": True,
    }
