"""The node's shadow link end to end: the real awsiotsdk client, over mutual TLS, against the
local aggregator (`fractal-aggregator serve`: mosquitto + our shadow service), with plans
written through the unchanged boto3 `iot-data` client."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fractal.executor import Envelope
from fractal.link.buffer import TelemetryBuffer
from fractal.link.plan_inbox import PlanDecision
from fractal.link.reporting import SnapshotPolicy
from fractal.link.shadow_link import LinkConfig, LinkState, LinkStatus, ShadowLink
from fractal.protocol import NodeDescriptor, PlanStatus, TelemetryBatch, TelemetrySnapshot, parse

from tests.fractal.link.link_support import Cable, TelemetryObserver, until
from tests.support.certificates import make_ca
from tests.support.local_aggregator import LocalAggregator, NodeCredentials, iot_data


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> None:
    """Loopback sockets back after the Home Assistant plugin disabled them (see
    tests/aggregator_cloud/local/conftest.py); connections stay limited to 127.0.0.1."""


def now() -> datetime:
    return datetime.now(UTC)


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def plan_doc(node: str, plan_id: str, **changes: Any) -> dict[str, Any]:
    start = now().replace(microsecond=0) - timedelta(minutes=5)
    document: dict[str, Any] = {
        "schema": "fractal.plan.v1",
        "id": plan_id,
        "node": node,
        "issued": iso(start - timedelta(minutes=1)),
        "start": iso(start),
        "step": 1800,
        "slots": 4,
        "expiry": iso(start + timedelta(hours=2)),
        "source": "aggregator",
        "devices": {
            "battery": {"kind": "battery", "windows": [{"start": 0, "end": 4, "mode": "hold"}]}
        },
    }
    document.update(changes)
    return document


def write_desired_plan(aggregator: LocalAggregator, node: str, plan: object) -> None:
    payload = json.dumps({"state": {"desired": {"plan": plan}}})
    iot_data(aggregator).update_thing_shadow(thingName=node, shadowName="plan", payload=payload)


def reported_plan(aggregator: LocalAggregator, node: str) -> dict[str, Any]:
    response = iot_data(aggregator).get_thing_shadow(thingName=node, shadowName="plan")
    document = json.loads(response["payload"].read())
    plan: dict[str, Any] = document["state"].get("reported", {}).get("plan", {})
    return plan


class Node:
    """What a node's owner of the link sees: every plan decision and status change."""

    def __init__(self) -> None:
        self.decisions: list[PlanDecision] = []
        self.statuses: list[LinkStatus] = []

    @property
    def status(self) -> LinkStatus:
        return self.statuses[-1]

    def acked(self, plan_id: str | None, status: PlanStatus) -> bool:
        ack = self.statuses[-1].plan_ack if self.statuses else None
        return ack is not None and (ack.id, ack.status) == (plan_id, status)


@pytest.fixture(scope="module")
def aggregator() -> Iterator[LocalAggregator]:
    with LocalAggregator.started() as running:
        yield running


def config(node: NodeCredentials, port: int, ca_pem: str | None = None) -> LinkConfig:
    return LinkConfig(
        node_id=node.node_id,
        endpoint="127.0.0.1",
        port=port,
        ca_pem=ca_pem or node.ca.read_text(),
        certificate_pem=node.certificate.read_text(),
        private_key_pem=node.private_key.read_text(),
        min_reconnect_s=0.05,
        max_reconnect_s=0.5,
        operation_timeout_s=10,
        plan_check_interval_s=1,
    )


@asynccontextmanager
async def running_link(
    link_config: LinkConfig, buffer_path: Path, node: Node
) -> AsyncIterator[ShadowLink]:
    buffer = TelemetryBuffer(buffer_path, batch_samples=7)
    link = ShadowLink(
        link_config, buffer, node.decisions.append, now, on_status=node.statuses.append
    )
    await link.start()
    try:
        yield link
    finally:
        await link.stop()
        buffer.close()


@asynccontextmanager
async def observing(aggregator: LocalAggregator) -> AsyncIterator[TelemetryObserver]:
    observer = TelemetryObserver(aggregator.data_dir)
    await observer.start()
    try:
        yield observer
    finally:
        await observer.stop()


async def test_plans_are_fetched_acknowledged_and_superseded(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-1")
    write_desired_plan(aggregator, "home-1", plan_doc("home-1", "p1"))  # waiting before connect
    node = Node()
    async with running_link(config(credentials, aggregator.mqtt_port), tmp_path / "b.db", node):
        await until(lambda: node.acked("p1", PlanStatus.EXECUTING), "p1 acknowledged")
        assert node.status.state is LinkState.CONNECTED
        assert reported_plan(aggregator, "home-1")["status"] == "executing"

        write_desired_plan(aggregator, "home-1", plan_doc("home-1", "p2"))  # via the delta
        await until(lambda: node.acked("p2", PlanStatus.EXECUTING), "p2 acknowledged")
    first, second = node.decisions
    assert first.in_force is not None
    assert first.in_force.id == "p1"
    assert second.in_force is not None
    assert second.in_force.id == "p2"
    assert second.superseded is not None
    assert (second.superseded.id, second.superseded.status) == ("p1", PlanStatus.SUPERSEDED)
    assert reported_plan(aggregator, "home-1")["id"] == "p2"


async def test_a_malformed_plan_is_rejected_with_its_reason_and_the_old_one_stays(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-2")
    node = Node()
    async with running_link(config(credentials, aggregator.mqtt_port), tmp_path / "b.db", node):
        write_desired_plan(aggregator, "home-2", plan_doc("home-2", "good"))
        await until(lambda: node.acked("good", PlanStatus.EXECUTING), "good plan acknowledged")
        write_desired_plan(aggregator, "home-2", plan_doc("home-2", "bad", step=7, slots=0))
        await until(lambda: node.acked("bad", PlanStatus.REJECTED), "bad plan rejected")
    reported = reported_plan(aggregator, "home-2")
    assert (reported["id"], reported["status"]) == ("bad", "rejected")
    assert "step" in reported["reason"]
    assert "slots" in reported["reason"]
    assert {issue["path"] for issue in reported["issues"]} == {"step", "slots"}
    assert node.decisions[-1].in_force is not None
    assert node.decisions[-1].in_force.id == "good"  # never half-applied: the old plan runs on


async def test_telemetry_batches_arrive_in_order_and_valid(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-3")
    node = Node()
    async with (
        observing(aggregator) as observer,
        running_link(config(credentials, aggregator.mqtt_port), tmp_path / "b.db", node) as link,
    ):
        seqs = [link.record({"ts": iso(now()), "grid_w": i}) for i in range(30)]
        await until(lambda: observer.unique_samples() == seqs, "every sample delivered")
        await until(lambda: node.status.delivered_seq == 30, "delivery acknowledged")
    assert seqs == list(range(1, 31))
    for batch in observer.batches:
        assert parse(TelemetryBatch, batch).ok
        assert batch["node"] == "home-3"
    assert [batch["seq"] for batch in observer.batches] == sorted(
        {batch["seq"] for batch in observer.batches}
    )


async def test_a_pulled_cable_and_a_broker_restart_lose_nothing(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-4")
    node = Node()
    async with Cable(aggregator.mqtt_port) as cable:
        link_config = config(credentials, cable.port)
        observer = TelemetryObserver(aggregator.data_dir)
        await observer.start()
        try:
            async with running_link(link_config, tmp_path / "b.db", node) as link:
                record = lambda i: link.record({"ts": iso(now()), "grid_w": i})  # noqa: E731
                await until(lambda: node.status.state is LinkState.CONNECTED, "connected")
                seqs = [record(i) for i in range(10)]

                cable.pull()  # the network cable, mid-stream
                await until(lambda: node.status.state is not LinkState.CONNECTED, "noticed")
                seqs += [record(i) for i in range(10, 25)]  # buffered while offline
                cable.plug()
                await until(lambda: observer.unique_samples() == seqs, "delivered after cable")

                cable.pull()  # the aggregator restarts while the node keeps measuring
                await observer.stop()
                aggregator.restart()
                seqs += [record(i) for i in range(25, 40)]
                await observer.start()
                cable.plug()
                seqs += [record(i) for i in range(40, 45)]
                await until(lambda: observer.unique_samples() == seqs, "delivered after restart")
        finally:
            await observer.stop()
    assert seqs == list(range(1, 46))  # no gap, in order, each once after deduplication


async def test_a_restarted_node_continues_from_the_next_seq(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-5")
    path = tmp_path / "b.db"
    async with observing(aggregator) as observer:
        node = Node()
        async with running_link(config(credentials, aggregator.mqtt_port), path, node) as link:
            for i in range(5):
                link.record({"ts": iso(now()), "grid_w": i})
            await until(lambda: node.status.delivered_seq == 5, "first run delivered")
        offline = TelemetryBuffer(path)  # Home Assistant down: the buffer fills on its own
        assert offline.append({"ts": iso(now()), "grid_w": 5}) == 6
        offline.close()
        node = Node()
        async with running_link(config(credentials, aggregator.mqtt_port), path, node) as link:
            assert link.record({"ts": iso(now()), "grid_w": 6}) == 7
            await until(lambda: observer.unique_samples() == list(range(1, 8)), "all delivered")


async def test_a_broker_it_cannot_trust_is_an_error_with_a_reason(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-6")
    wrong_ca = make_ca().certificate_pem
    node = Node()
    link_config = config(credentials, aggregator.mqtt_port, ca_pem=wrong_ca)
    async with running_link(link_config, tmp_path / "b.db", node) as link:
        # s2n-tls delays a failed handshake by 10-30 s on purpose (blinding against timing
        # attacks), so this guard is longer than the others.
        await until(lambda: node.status.state is LinkState.ERROR, "refused", limit=90)
        assert node.status.reason is not None
        assert "TLS" in node.status.reason
        assert link.record({"ts": iso(now()), "grid_w": 1}) == 1  # still buffering


def classic_reported(aggregator: LocalAggregator, node: str) -> dict[str, Any]:
    try:
        response = iot_data(aggregator).get_thing_shadow(thingName=node)
    except iot_data(aggregator).exceptions.ResourceNotFoundException:
        return {}
    reported: dict[str, Any] = json.loads(response["payload"].read())["state"].get("reported", {})
    return reported


def snapshot(node: str, seq: int, **values: float) -> TelemetrySnapshot:
    document = {"schema": "fractal.telemetry.v1", "node": node, "seq": seq, "ts": iso(now())}
    parsed = parse(TelemetrySnapshot, {**document, **values})
    assert parsed.document is not None, parsed.problems
    return parsed.document


async def test_descriptor_and_snapshots_replace_what_the_classic_shadow_reported(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-7")
    descriptor = parse(
        NodeDescriptor,
        {
            "schema": "fractal.node.v1",
            "node": "home-7",
            "name": "Home",
            "software": "0.1.0",
            "link": "local",
        },
    ).document
    assert descriptor is not None
    every_change = SnapshotPolicy(min_interval=timedelta(0), max_silence=timedelta(hours=1))
    link_config = replace(
        config(credentials, aggregator.mqtt_port), snapshot_policy=lambda: every_change
    )
    node = Node()
    async with running_link(link_config, tmp_path / "b.db", node) as link:
        link.report_descriptor(descriptor)
        link.report_snapshot(snapshot("home-7", 1, grid_w=500, pv_w=1200))
        await until(
            lambda: classic_reported(aggregator, "home-7").get("telemetry", {}).get("seq") == 1,
            "first snapshot reported",
        )
        link.report_snapshot(snapshot("home-7", 2, grid_w=2500))  # the PV meter went away
        await until(
            lambda: classic_reported(aggregator, "home-7")["telemetry"]["seq"] == 2,
            "second snapshot reported",
        )
    reported = classic_reported(aggregator, "home-7")
    assert reported["telemetry"]["grid_w"] == 2500
    assert "pv_w" not in reported["telemetry"]  # replaced, not merged
    assert reported["node"]["name"] == "Home"
    assert reported["link"] == {"buffered": 0, "dropped": 0, "lost": 0}


@pytest.mark.parametrize(
    ("sample", "fragment"),
    [
        ({"grid_w": 5}, "ts"),
        ({"ts": "yesterday", "grid_w": 5}, "ts"),
        ({"ts": "2026-01-01T00:00:00Z", "pv_w": -3}, "pv_w"),
        ({"ts": "2026-01-01T00:00:00Z", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_reading_is_refused_and_nothing_is_buffered(
    tmp_path: Path, sample: dict[str, Any], fragment: str
) -> None:
    buffer = TelemetryBuffer(tmp_path / "b.db")
    link_config = LinkConfig("home-8", "127.0.0.1", 1, "", "", "")
    link = ShadowLink(link_config, buffer, lambda _decision: None, now)
    with pytest.raises(ValueError, match=fragment):
        link.record(sample)
    assert buffer.status().last_seq == 0
    assert link.record({"ts": "2026-01-01T00:00:00Z", "grid_w": 5}) == 1
    buffer.close()


async def test_unusable_credentials_are_a_clear_error(tmp_path: Path) -> None:
    buffer = TelemetryBuffer(tmp_path / "b.db")
    link_config = LinkConfig("home-9", "127.0.0.1", 1, "not a CA", "not a cert", "not a key")
    node = Node()
    link = ShadowLink(
        link_config, buffer, node.decisions.append, now, on_status=node.statuses.append
    )
    with pytest.raises(ValueError, match="TLS credentials cannot be used"):
        await link.start()
    assert node.status.state is LinkState.ERROR
    await link.stop()  # nothing was started: nothing to stop, and no error
    buffer.close()


async def test_a_plan_that_expires_is_reported_expired_and_dropped(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-10")
    soon = iso(now().replace(microsecond=0) + timedelta(seconds=3))
    node = Node()
    async with running_link(config(credentials, aggregator.mqtt_port), tmp_path / "b.db", node):
        write_desired_plan(aggregator, "home-10", plan_doc("home-10", "short", expiry=soon))
        await until(lambda: node.acked("short", PlanStatus.EXECUTING), "short plan running")
        await until(lambda: node.acked("short", PlanStatus.EXPIRED), "short plan expired")
    assert node.decisions[-1].in_force is None  # back to the node's default plan
    reported = reported_plan(aggregator, "home-10")
    assert (reported["id"], reported["status"]) == ("short", "expired")
    assert reported["reason"] == f"expired at {soon.replace('Z', '+00:00')}"


async def test_a_plan_written_while_offline_is_fetched_after_the_reconnect(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-11")
    node = Node()
    async with Cable(aggregator.mqtt_port) as cable:
        link_config = config(credentials, cable.port)
        assert "PRIVATE KEY" not in repr(link_config)
        async with running_link(link_config, tmp_path / "b.db", node):
            await until(lambda: node.status.state is LinkState.CONNECTED, "connected")
            cable.pull()
            await until(lambda: node.status.state is not LinkState.CONNECTED, "noticed")
            write_desired_plan(aggregator, "home-11", plan_doc("home-11", "while-away"))
            cable.plug()  # the delta was published while we were away: only a `get` finds it
            await until(lambda: node.acked("while-away", PlanStatus.EXECUTING), "fetched")
    assert reported_plan(aggregator, "home-11")["id"] == "while-away"


def stored_seqs(aggregator: LocalAggregator, node: str) -> list[int]:
    """Sample seqs the aggregator's own telemetry store kept for `node` in the last hour."""
    url = f"{aggregator.http_endpoint}/api/nodes/{node}/telemetry"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        if error.code == 404:  # not registered yet
            return []
        raise
    return [sample["seq"] for sample in body["samples"]]


async def test_telemetry_reaches_the_aggregators_store_once_each_across_a_dropout(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-12")
    descriptor = parse(
        NodeDescriptor,
        {
            "schema": "fractal.node.v1",
            "node": "home-12",
            "name": "Home",
            "software": "0.1.0",
            "link": "local",
        },
    ).document
    assert descriptor is not None
    node = Node()
    async with Cable(aggregator.mqtt_port) as cable:
        link_config = config(credentials, cable.port)
        async with running_link(link_config, tmp_path / "b.db", node) as link:
            link.report_descriptor(descriptor)
            seqs = [link.record({"ts": iso(now()), "grid_w": i}) for i in range(12)]
            await until(lambda: node.status.delivered_seq >= 1, "some delivered")
            cable.pull()
            seqs += [link.record({"ts": iso(now()), "grid_w": i}) for i in range(12, 20)]
            cable.plug()
            await until(lambda: stored_seqs(aggregator, "home-12") == seqs, "stored once each")
    assert seqs == list(range(1, 21))


async def test_an_hour_offline_at_ten_second_data_reaches_the_store_once_each_in_order(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-13")
    hour_ago = now() - timedelta(minutes=59)
    node = Node()
    async with Cable(aggregator.mqtt_port) as cable:
        link_config = config(credentials, cable.port)
        async with running_link(link_config, tmp_path / "b.db", node) as link:
            await until(lambda: node.status.state is LinkState.CONNECTED, "connected")
            cable.pull()
            await until(lambda: node.status.state is not LinkState.CONNECTED, "noticed")
            # 59 minutes of 10-second samples measured while the cable is out.
            seqs = [
                link.record({"ts": iso(hour_ago + timedelta(seconds=10 * i)), "grid_w": i})
                for i in range(354)
            ]
            cable.plug()
            seqs.append(link.record({"ts": iso(now()), "grid_w": 354}))
            await until(lambda: stored_seqs(aggregator, "home-13") == seqs, "stored once each")
    assert seqs == list(range(1, 356))


async def test_telemetry_the_broker_refuses_stays_buffered_with_the_reason(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-13")
    impostor = replace(config(credentials, aggregator.mqtt_port), node_id="home-14")
    node = Node()
    async with running_link(impostor, tmp_path / "b.db", node) as link:
        link.record({"ts": iso(now()), "grid_w": 1})
        await until(
            lambda: "refused by the broker" in (node.status.reason or ""), "refusal reported"
        )
        assert node.status.reason is not None
        assert "NOT_AUTHORIZED" in node.status.reason
        assert node.status.delivered_seq == 0
        assert node.status.buffer is not None
        assert node.status.buffer.pending == 1  # kept for when the identity is fixed


async def test_several_nodes_in_one_process_each_deliver_their_own_telemetry(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    """What `fractal-aggregator simulate` does: many links side by side in one event loop."""
    names = [f"street-{i}" for i in range(5)]
    nodes = {name: Node() for name in names}
    async with observing(aggregator) as observer, contextlib.AsyncExitStack() as stack:
        links = [
            await stack.enter_async_context(
                running_link(
                    config(aggregator.enroll(name), aggregator.mqtt_port),
                    tmp_path / f"{name}.db",
                    nodes[name],
                )
            )
            for name in names
        ]
        for link in links:
            for i in range(3):
                link.record({"ts": iso(now()), "grid_w": i})

        def per_node() -> dict[str, list[int]]:
            seen: dict[str, list[int]] = {name: [] for name in names}
            for batch in observer.batches:
                seen[batch["node"]].extend(sample["seq"] for sample in batch["samples"])
            return {name: list(dict.fromkeys(seqs)) for name, seqs in seen.items()}

        await until(lambda: per_node() == {name: [1, 2, 3] for name in names}, "all delivered")


async def test_a_plan_over_the_envelope_is_acknowledged_with_its_clamped_parts(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    credentials = aggregator.enroll("home-clamped")
    descriptor = parse(
        NodeDescriptor,
        {
            "schema": "fractal.node.v1",
            "node": "home-clamped",
            "name": "Home",
            "software": "0.1.0",
            "link": "local",
            "devices": [
                {
                    "id": "battery",
                    "kind": "battery",
                    "capabilities": ["charge", "hold"],
                    "envelope": {"max_charge_w": 3000},
                }
            ],
        },
    ).document
    assert descriptor is not None
    envelope = Envelope(descriptor)
    charge = [{"start": 0, "end": 2, "mode": "charge", "value": 4500}]
    hold = [{"start": 2, "end": 4, "mode": "hold"}]
    plan = plan_doc(
        "home-clamped", "over", devices={"battery": {"kind": "battery", "windows": charge + hold}}
    )
    write_desired_plan(aggregator, "home-clamped", plan)
    node = Node()
    buffer = TelemetryBuffer(tmp_path / "b.db")
    link = ShadowLink(
        config(credentials, aggregator.mqtt_port),
        buffer,
        node.decisions.append,
        now,
        on_status=node.statuses.append,
        envelope_check=envelope.envelope_check,
        clamp_check=envelope.clamped_parts,
    )
    await link.start()
    try:
        await until(lambda: node.acked("over", PlanStatus.EXECUTING), "the plan acknowledged")
    finally:
        await link.stop()
        buffer.close()
    reported = reported_plan(aggregator, "home-clamped")
    assert (reported["id"], reported["status"]) == ("over", "executing")
    assert reported["clamped"] == [
        {
            "path": "devices.battery.windows[0].value",
            "message": "charge 4500 W limited to max_charge_w 3000 W",
        }
    ]
    assert link.plan_in_force is not None
    assert link.plan_in_force.id == "over"


async def test_a_paced_link_gathers_samples_into_fewer_batches_and_loses_none(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    # As on AWS (batch_every_s): after a batch the link waits, so the samples recorded
    # meanwhile travel together; every one still arrives, once and in order.
    credentials = aggregator.enroll("home-paced")
    node = Node()
    paced = replace(config(credentials, aggregator.mqtt_port), batch_every_s=1.5)
    async with (
        observing(aggregator) as observer,
        running_link(paced, tmp_path / "b.db", node) as link,
    ):
        first = link.record({"ts": iso(now()), "grid_w": 0})
        await until(lambda: observer.unique_samples() == [first], "the first sample at once")
        seqs = [first] + [link.record({"ts": iso(now()), "grid_w": i}) for i in range(1, 6)]
        await until(lambda: observer.unique_samples() == seqs, "every sample delivered")

    assert [len(batch["samples"]) for batch in observer.batches] == [1, 5]
