"""Shadow documents messages into the registry: each document judged on its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator_cloud.handlers import THING_NAME, handle_plan_documents, handle_shadow_documents
from aggregator_cloud.store import PENDING, SqliteStore
from tests.support.fleet_documents import (
    T0,
    ack,
    descriptor,
    documents_message,
    plan,
    snapshot,
)

STAMP = int(T0.timestamp()) + 600
SEEN = datetime.fromtimestamp(STAMP, UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "fleet.sqlite") as opened:
        yield opened


def event(message: dict[str, Any], thing: str = "n1") -> dict[str, Any]:
    """What the rule `SELECT *, topic(3) AS thing_name` hands the Lambda."""
    return {**message, THING_NAME: thing}


def classic(**reported: Any) -> dict[str, Any]:
    return event(documents_message(reported=reported, timestamp=STAMP))


def test_descriptor_and_snapshot_are_recorded_and_the_node_seen(store: SqliteStore) -> None:
    message = classic(
        node=descriptor("n1", "No. 4", {"feeder": "F12"}),
        telemetry=snapshot("n1", 7, grid_w=-321.0, soc_pct=64),
    )

    result = handle_shadow_documents(message, store)

    assert result.ok, result.problems
    assert result.stored == 2
    record = store.node("n1")
    assert record is not None
    assert (record.name, record.tags, record.last_seen) == ("No. 4", {"feeder": "F12"}, SEEN)
    assert record.snapshot is not None
    assert (record.snapshot["grid_w"], record.snapshot["soc_pct"]) == (-321, 64)


def test_a_bad_descriptor_is_refused_and_the_snapshot_still_kept(store: SqliteStore) -> None:
    bad = {**descriptor("n1"), "link": "pigeon"}

    result = handle_shadow_documents(classic(node=bad, telemetry=snapshot("n1", 7)), store)

    assert not result.ok
    assert result.stored == 1
    assert any(problem.startswith("reported.node.link:") for problem in result.problems)
    record = store.node("n1")
    assert record is not None
    assert record.descriptor is None
    assert record.snapshot is not None


def test_documents_of_another_node_are_refused(store: SqliteStore) -> None:
    result = handle_shadow_documents(
        classic(node=descriptor("n2"), telemetry=snapshot("n2", 1)), store
    )

    assert result.stored == 0
    assert len(result.problems) == 2
    assert all("'n2'" in problem for problem in result.problems)
    record = store.node("n1")
    assert record is not None
    assert (record.descriptor, record.snapshot) == (None, None)
    assert store.node("n2") is None


def test_an_older_snapshot_does_not_replace_a_newer_one(store: SqliteStore) -> None:
    handle_shadow_documents(classic(telemetry=snapshot("n1", 9)), store)

    result = handle_shadow_documents(classic(telemetry=snapshot("n1", 8)), store)

    assert (result.ok, result.stored, result.duplicates) == (True, 0, 1)
    record = store.node("n1")
    assert record is not None
    assert record.snapshot is not None
    assert record.snapshot["seq"] == 9


def test_plan_written_then_acknowledged(store: SqliteStore) -> None:
    written = documents_message(desired={"plan": plan("n1", "p2")}, timestamp=STAMP)
    answered = documents_message(
        desired={"plan": plan("n1", "p2")},
        reported={"plan": ack("p2", "executing", 30)},
        timestamp=STAMP + 60,
    )

    first = handle_plan_documents(event(written), store)
    pending = store.node("n1")
    second = handle_plan_documents(event(answered), store)
    executing = store.node("n1")

    assert (first.ok, first.stored, second.ok, second.stored) == (True, 1, True, 2)
    assert pending is not None
    assert executing is not None
    assert pending.plan.status == PENDING
    assert pending.last_seen is None
    assert executing.plan.status == "executing"
    assert executing.last_seen == SEEN + timedelta(seconds=60)


def test_only_a_change_of_reported_state_means_the_node_was_seen(store: SqliteStore) -> None:
    reported = {"plan": ack("p1", "executing", 0)}
    message = documents_message(
        desired={"plan": plan("n1", "p2")}, reported=reported, timestamp=STAMP
    )
    message["previous"]["state"] = {"reported": reported}

    handle_plan_documents(event(message), store)

    record = store.node("n1")
    assert record is not None
    assert record.last_seen is None
    assert record.plan.status == PENDING


def test_a_bad_acknowledgement_is_refused_with_its_path(store: SqliteStore) -> None:
    rejected_without_reason = ack("p1", "executing", 0) | {"status": "rejected"}
    message = documents_message(reported={"plan": rejected_without_reason}, timestamp=STAMP)

    result = handle_plan_documents(event(message), store)

    assert result.problems == ("reported.plan.reason: is required when the plan is rejected",)
    record = store.node("n1")
    assert record is not None
    assert record.plan.ack_status is None


BAD_EVENTS: dict[str, tuple[object, str]] = {
    "not an object": ("documents", "not a JSON object"),
    "no thing name": (documents_message(reported={}), THING_NAME),
    "no current": (event({"previous": {}, "timestamp": STAMP}), "current.state"),
    "state not an object": (event({"current": {"state": []}}), "current.state"),
    "reported not an object": (
        event({"current": {"state": {"reported": "yes"}}}),
        "current.state.reported",
    ),
}


@pytest.mark.parametrize("name", BAD_EVENTS)
@pytest.mark.parametrize("handler", [handle_shadow_documents, handle_plan_documents])
def test_a_bad_event_is_refused_with_a_reason(store: SqliteStore, name: str, handler: Any) -> None:
    garbage, where = BAD_EVENTS[name]
    handle_shadow_documents(classic(node=descriptor("n1", "Kept")), store)

    result = handler(garbage, store)

    assert not result.ok
    assert any(where in problem for problem in result.problems), result.problems
    record = store.node("n1")
    assert record is not None
    assert record.name == "Kept"


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ('{"schema": "fractal.node.v1"}', "reported.node: expected an object"),
        ({}, "reported.node.schema: Field required"),
        ({**descriptor("n1"), "tags": {"Feeder": "F1"}}, "reported.node.tags.Feeder"),
    ],
)
def test_a_bad_descriptor_keeps_the_one_stored(
    store: SqliteStore, document: object, where: str
) -> None:
    handle_shadow_documents(classic(node=descriptor("n1", "Kept")), store)

    result = handle_shadow_documents(classic(node=document), store)

    assert any(problem.startswith(where) for problem in result.problems), result.problems
    record = store.node("n1")
    assert record is not None
    assert record.name == "Kept"


def test_the_nodes_link_report_is_recorded(store: SqliteStore) -> None:
    link = {"buffered": 120, "dropped": 0, "lost": 3, "storage_error": "disk full", "new": 1}

    result = handle_shadow_documents(classic(telemetry=snapshot("n1", 1), link=link), store)

    assert (result.ok, result.stored) == (True, 2)
    record = store.node("n1")
    assert record is not None
    assert record.link_state == {
        "buffered": 120,
        "dropped": 0,
        "lost": 3,
        "storage_error": "disk full",
    }


@pytest.mark.parametrize(
    ("link", "problem"),
    [
        ({"buffered": -1}, "reported.link.buffered: Input should be greater than or equal to 0"),
        ({"lost": "many"}, "reported.link.lost: Input should be a valid integer"),
        ("up", "reported.link: Input should be a valid dictionary"),
    ],
)
def test_a_bad_link_report_is_refused_and_the_snapshot_kept(
    store: SqliteStore, link: object, problem: str
) -> None:
    result = handle_shadow_documents(classic(telemetry=snapshot("n1", 1), link=link), store)

    assert result.stored == 1
    assert len(result.problems) == 1
    assert result.problems[0].startswith(problem), result.problems
    record = store.node("n1")
    assert record is not None
    assert record.link_state is None
    assert record.snapshot is not None
