"""The fleet registry: who the nodes are, their tags, when they were last heard, their plans."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fractal.protocol import NodeDescriptor, PlanAck, TelemetrySnapshot, parse

from aggregator_cloud.store import PENDING, SqliteStore
from tests.support.fleet_documents import T0, ack, descriptor, snapshot


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "fleet.sqlite") as opened:
        yield opened


def node_descriptor(
    node: str, name: str = "Home", tags: dict[str, str] | None = None
) -> NodeDescriptor:
    document = parse(NodeDescriptor, descriptor(node, name, tags))
    assert document.document is not None
    return document.document


def telemetry_snapshot(node: str, seq: int, **values: object) -> TelemetrySnapshot:
    document = parse(TelemetrySnapshot, snapshot(node, seq, **values))
    assert document.document is not None
    return document.document


def plan_ack(plan_id: str, status: str, seconds: float, reason: str | None = None) -> PlanAck:
    document = parse(PlanAck, ack(plan_id, status, seconds, reason))
    assert document.document is not None
    return document.document


def test_a_descriptor_registers_the_node_with_its_tags_but_not_as_seen(store: SqliteStore) -> None:
    tags = {"street": "Elm Road", "feeder": "F12"}
    store.record_descriptor(node_descriptor("n1", "No. 4", tags))

    record = store.node("n1")

    assert record is not None
    assert (record.name, record.link, record.software) == ("No. 4", "local", "0.1.0")
    assert record.tags == tags
    assert record.descriptor is not None
    assert record.descriptor["tags"] == tags
    assert record.first_seen is None
    assert record.last_seen is None


def test_a_new_descriptor_replaces_the_tags(store: SqliteStore) -> None:
    store.record_descriptor(node_descriptor("n1", tags={"feeder": "F12", "street": "Elm"}))
    store.record_descriptor(node_descriptor("n1", tags={"feeder": "F13"}))

    assert store.nodes(tag=("feeder", "F12")) == []
    assert [record.node for record in store.nodes(tag=("feeder", "F13"))] == ["n1"]
    assert store.tag_values() == {"feeder": ["F13"]}


def test_nodes_filter_by_tag_and_list_the_groups(store: SqliteStore) -> None:
    store.record_descriptor(node_descriptor("n3", tags={"feeder": "F13"}))
    store.record_descriptor(node_descriptor("n1", tags={"feeder": "F12", "street": "Elm"}))
    store.record_descriptor(node_descriptor("n2", tags={"feeder": "F12"}))

    assert [record.node for record in store.nodes()] == ["n1", "n2", "n3"]
    assert [record.node for record in store.nodes(tag=("feeder", "F12"))] == ["n1", "n2"]
    assert [record.node for record in store.nodes(tag=("street", "Elm"))] == ["n1"]
    assert store.tag_values() == {"feeder": ["F12", "F13"], "street": ["Elm"]}


def test_last_seen_moves_forward_only_and_unknown_nodes_are_registered(
    store: SqliteStore,
) -> None:
    store.mark_seen("n9", T0 + timedelta(minutes=5))
    store.mark_seen("n9", T0)

    record = store.node("n9")

    assert record is not None
    assert record.last_seen == T0 + timedelta(minutes=5)
    assert record.first_seen == T0 + timedelta(minutes=5)
    assert record.descriptor is None
    assert store.node("nobody") is None


def test_only_a_newer_snapshot_replaces_the_latest(store: SqliteStore) -> None:
    assert store.record_snapshot(telemetry_snapshot("n1", 20, grid_w=-300.0))
    assert not store.record_snapshot(telemetry_snapshot("n1", 10, grid_w=999.0))

    record = store.node("n1")

    assert record is not None
    assert record.snapshot is not None
    assert (record.snapshot["seq"], record.snapshot["grid_w"]) == (20, -300)


def test_plan_status_is_pending_until_the_node_acknowledges_the_current_plan(
    store: SqliteStore,
) -> None:
    store.record_plan_ack("n1", plan_ack("p1", "executing", 0))
    store.record_desired_plan("n1", "p2", T0 + timedelta(hours=48))

    pending = store.node("n1")
    store.record_plan_ack("n1", plan_ack("p2", "rejected", 60, reason="expired"))
    answered = store.node("n1")

    assert pending is not None
    assert answered is not None
    assert pending.plan.status == PENDING
    assert pending.plan.ack_id == "p1"
    assert answered.plan.status == "rejected"
    assert answered.plan.ack_reason == "expired"
    assert answered.plan.desired_expiry == T0 + timedelta(hours=48)


def test_an_older_acknowledgement_does_not_overwrite_a_newer_one(store: SqliteStore) -> None:
    assert store.record_plan_ack("n1", plan_ack("p2", "executing", 120))
    assert not store.record_plan_ack("n1", plan_ack("p2", "accepted", 60))

    record = store.node("n1")

    assert record is not None
    assert record.plan.status == "executing"


def test_naive_times_are_refused(store: SqliteStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.mark_seen("n1", T0.replace(tzinfo=None))
