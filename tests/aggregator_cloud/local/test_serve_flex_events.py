"""DSO flexibility events in a real `serve`: three nodes on the real link (awsiotsdk, mutual TLS),
two tagged feeder=F12. Storing an event (POST /api/flex-events) re-plans the two together: their
plans carry source dso, their expected grid power in the window drops by the delivered amount
(the amount plan_fleet gives, run independently on the same homes), the third node keeps its
plan; an impossible request is answered with what the group can deliver."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fractal.link.buffer import TelemetryBuffer
from fractal.link.plan_inbox import PlanDecision
from fractal.link.reporting import SnapshotPolicy
from fractal.link.shadow_link import LinkConfig, ShadowLink
from fractal.planner import Planner, parse_scenario
from fractal.planner.fleet import plan_fleet
from fractal.planner.scenario import FlexEvent
from fractal.protocol import NodeDescriptor, Plan, TelemetrySnapshot, parse

from tests.fractal.link.link_support import until
from tests.support.local_aggregator import LocalAggregator, NodeCredentials

LOAD_KW = 2.0
SLOTS = 100
STEP = timedelta(minutes=30)


@pytest.fixture(scope="module")
def flex_aggregator() -> Iterator[LocalAggregator]:
    """An aggregator of its own: these tests store events that re-plan every node."""
    with LocalAggregator.started() as running:
        yield running


@pytest.fixture
def aggregator(flex_aggregator: LocalAggregator, socket_enabled: None) -> LocalAggregator:
    return flex_aggregator


def inputs_start() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def peak(slot: int) -> bool:
    """40 p from 2 to 6 hours after the inputs start, 20 p otherwise: the batteries' energy
    is worth most there, so without an event they hold it until then."""
    return 6 <= slot < 14


def write_inputs(aggregator: LocalAggregator) -> None:
    start = inputs_start().isoformat()

    def series(values: list[float]) -> dict[str, Any]:
        return {"start": start, "step_seconds": 1800, "values": values}

    document = {
        "schema": "fractal.planning_inputs.v1",
        "import_p_per_kwh": series([40.0 if peak(s) else 20.0 for s in range(SLOTS)]),
        "export_p_per_kwh": series([0.0] * SLOTS),
        "load_kw": series([LOAD_KW] * SLOTS),
    }
    folder = aggregator.data_dir / "inputs"
    temporary = folder / ".flex.json.tmp"
    temporary.write_text(json.dumps(document))
    os.replace(temporary, folder / "flex.json")


def descriptor(node: str, feeder: str) -> NodeDescriptor:
    """A 10 kWh battery, 1 kW each way, 10 % floor."""
    parsed = parse(
        NodeDescriptor,
        {
            "schema": "fractal.node.v1",
            "node": node,
            "name": "Home",
            "software": "0.1.0",
            "link": "local",
            "tags": {"feeder": feeder},
            "devices": [
                {
                    "id": "battery",
                    "kind": "battery",
                    "capabilities": ["balance", "charge", "discharge", "hold"],
                    "envelope": {
                        "capacity_wh": 10_000,
                        "max_charge_w": 1000,
                        "max_discharge_w": 1000,
                        "soc_min_pct": 10,
                    },
                }
            ],
            "envelope": {"import_max_w": 15000, "export_max_w": 5000},
        },
    )
    assert parsed.document is not None, parsed.problems
    return parsed.document


def snapshot(node: str) -> TelemetrySnapshot:
    parsed = parse(
        TelemetrySnapshot,
        {
            "schema": "fractal.telemetry.v1",
            "node": node,
            "seq": 1,
            "ts": datetime.now(UTC).isoformat(),
            "soc_pct": 50.0,
        },
    )
    assert parsed.document is not None, parsed.problems
    return parsed.document


class Node:
    def __init__(self, node_id: str) -> None:
        self.id = node_id
        self.plans: list[Plan] = []

    def take(self, decision: PlanDecision) -> None:
        if decision.in_force is not None and decision.in_force not in self.plans:
            self.plans.append(decision.in_force)

    @property
    def latest(self) -> Plan | None:
        return self.plans[-1] if self.plans else None


@asynccontextmanager
async def linked_node(
    aggregator: LocalAggregator, credentials: NodeCredentials, feeder: str, tmp_path: Path
) -> AsyncIterator[Node]:
    config = LinkConfig(
        node_id=credentials.node_id,
        endpoint="127.0.0.1",
        port=aggregator.mqtt_port,
        ca_pem=credentials.ca.read_text(),
        certificate_pem=credentials.certificate.read_text(),
        private_key_pem=credentials.private_key.read_text(),
        min_reconnect_s=0.05,
        max_reconnect_s=0.5,
        plan_check_interval_s=1,
        snapshot_policy=lambda: SnapshotPolicy(min_interval=timedelta(seconds=0)),
    )
    buffer = TelemetryBuffer(tmp_path / f"{credentials.node_id}.db")
    node = Node(credentials.node_id)
    link = ShadowLink(config, buffer, node.take, lambda: datetime.now(UTC))
    link.report_descriptor(descriptor(credentials.node_id, feeder))
    link.report_snapshot(snapshot(credentials.node_id))
    await link.start()
    try:
        yield node
    finally:
        await link.stop()
        buffer.close()


def http(aggregator: LocalAggregator, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(aggregator.http_endpoint + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def window() -> tuple[datetime, datetime]:
    """Two hours, from 8 hours after the inputs start: after the peak, at 20 p."""
    start = inputs_start() + timedelta(hours=8)
    return start, start + timedelta(hours=2)


def flex_event(power_w: int, feeder: str) -> dict[str, Any]:
    start, end = window()
    return {
        "schema": "fractal.flex_event.v1",
        "id": f"{feeder}-{uuid.uuid4().hex[:8]}",
        "issued": datetime.now(UTC).isoformat(),
        "source": "SSEN",
        "group": {"feeder": feeder},
        "direction": "down",
        "power_w": power_w,
        "start": start.isoformat(),
        "end": end.isoformat(),
    }


def window_grid_kw(plan: Plan) -> np.ndarray[Any, Any]:
    """The plan's expected grid power, kW, in each of the window's four slots."""
    first = int((window()[0] - plan.start) / STEP)
    assert plan.expected is not None
    assert plan.expected.grid_w is not None
    return np.array([float(w or 0) / 1000 for w in plan.expected.grid_w[first : first + 4]])


def independent_delivery(plans: list[Plan], request_kw: float) -> np.ndarray[Any, Any]:
    """plan_fleet on the same two homes, written out by hand from the plans' own start: what
    the group delivers in each of the window's slots when capped at baseline - request."""
    start = plans[0].start
    slots = plans[0].slots
    offset = int((start - inputs_start()) / STEP)
    prices = [40.0 if peak(offset + s) else 20.0 for s in range(slots)]
    homes = [
        {
            "id": f"home-{index}",
            "tags": {"feeder": "F12"},
            "pv_kw": [0.0] * slots,
            "load_kw": [LOAD_KW] * slots,
            "import_p_per_kwh": prices,
            "export_p_per_kwh": [0.0] * slots,
            "grid": {"import_max_kw": 15.0, "export_max_kw": 5.0},
            "battery": {
                "capacity_kwh": 10.0,
                "soc_kwh": 5.0,
                "soc_min_kwh": 1.0,
                "soc_max_kwh": 10.0,
                "charge_kw": 1.0,
                "discharge_kw": 1.0,
            },
        }
        for index in range(2)
    ]
    document = {"start": start.isoformat(), "step_seconds": 1800, "homes": homes}
    first = int((window()[0] - start) / STEP)
    baseline, _ = plan_fleet(parse_scenario(document), Planner())
    before = np.sum([plan.grid_kw for plan in baseline], axis=0)[first : first + 4]
    caps = [
        FlexEvent(
            id=f"cap-{slot}",
            tag="feeder",
            value="F12",
            start=start + STEP * (first + slot),
            end=start + STEP * (first + slot + 1),
            import_max_kw=max(0.0, float(before[slot]) - request_kw),
        ).model_dump(mode="json")
        for slot in range(4)
    ]
    capped, _ = plan_fleet(parse_scenario({**document, "events": caps}), Planner())
    after = np.sum([plan.grid_kw for plan in capped], axis=0)[first : first + 4]
    return np.asarray(before - after)


async def three_nodes(
    aggregator: LocalAggregator, stack: AsyncExitStack, tmp_path: Path, feeder: str = "F12"
) -> tuple[list[Node], Node]:
    """Two nodes on `feeder` and one on F13, each with its first plan."""
    run = uuid.uuid4().hex[:6]
    tagged = []
    for name in ("a", "b"):
        credentials = aggregator.enroll(f"f12-{name}-{run}")
        tagged.append(
            await stack.enter_async_context(linked_node(aggregator, credentials, feeder, tmp_path))
        )
    other_credentials = aggregator.enroll(f"f13-{run}")
    other = await stack.enter_async_context(
        linked_node(aggregator, other_credentials, "F13", tmp_path)
    )
    for node in (*tagged, other):
        await until(lambda node=node: node.latest is not None, f"a first plan for {node.id}")
    return tagged, other


def dso_plans(nodes: list[Node], event_id: str) -> list[Plan] | None:
    found = [
        next((p for p in node.plans if p.source == "dso" and p.event == event_id), None)
        for node in nodes
    ]
    return None if None in found else [p for p in found if p is not None]


async def test_a_stored_event_replans_the_tagged_nodes_together_with_source_dso(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    write_inputs(aggregator)
    async with AsyncExitStack() as stack:
        tagged, other = await three_nodes(aggregator, stack, tmp_path)
        before = [node.latest for node in tagged]
        other_before = other.latest
        event = flex_event(power_w=1500, feeder="F12")

        assert http(aggregator, "POST", "/api/flex-events", event)[0] == 201
        await until(lambda: dso_plans(tagged, event["id"]) is not None, "plans with source dso")
        plans = dso_plans(tagged, event["id"])
        assert plans is not None
        status, answer = http(aggregator, "GET", f"/api/flex-events/{event['id']}")

    assert status == 200
    assert answer["event"]["id"] == event["id"]
    planned = answer["planning"]
    assert planned["nodes"] == [node.id for node in tagged]
    assert planned["requested_kw"] == 1.5
    assert planned["met"] is True
    assert planned["deliverable_kw"] == 1.5
    # The group's expected grid power in the window drops by what plan_fleet delivers on the
    # same homes, run here on its own; at least the 1.5 kW asked for, in every slot.
    assert all(plan is not None for plan in before)
    dropped = sum(window_grid_kw(p) for p in before if p is not None) - sum(
        window_grid_kw(p) for p in plans
    )
    assert np.all(dropped >= 1.5 - 2e-3)
    assert dropped == pytest.approx(independent_delivery(plans, 1.5), abs=2e-3)
    assert planned["delivered_kw"] == pytest.approx(list(dropped), abs=2e-3)
    # The F13 node is planned as before: no event, source aggregator.
    assert other.latest is not None
    assert other_before is not None
    assert {p.source for p in other.plans} == {"aggregator"}
    assert window_grid_kw(other.latest) == pytest.approx(window_grid_kw(other_before))
    status_file = json.loads((aggregator.data_dir / "planning.json").read_text())
    assert status_file["events"][event["id"]]["deliverable_kw"] == 1.5


async def test_an_impossible_request_is_answered_with_the_deliverable_kw(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    write_inputs(aggregator)
    async with AsyncExitStack() as stack:
        # A feeder of its own: the first test's F12 nodes stay registered (and planned).
        tagged, _ = await three_nodes(aggregator, stack, tmp_path, feeder="F7")
        # The two homes import 4 kW in the window; their batteries give 1 kW each.
        event = flex_event(power_w=10_000, feeder="F7")
        assert http(aggregator, "POST", "/api/flex-events", event)[0] == 201
        await until(lambda: dso_plans(tagged, event["id"]) is not None, "plans with source dso")

        def answered() -> dict[str, Any] | None:
            planning: dict[str, Any] | None = http(
                aggregator, "GET", f"/api/flex-events/{event['id']}"
            )[1]["planning"]
            return planning if planning and planning["nodes"] else None

        await until(lambda: answered() is not None, "the event's answer")
        planned = answered()

    assert planned is not None
    assert planned["met"] is False
    assert planned["deliverable_kw"] == pytest.approx(2.0, abs=2e-3)
    assert planned["status"] == "can deliver 2.000 of 10.000 kW"


async def test_an_unknown_event_is_not_found(aggregator: LocalAggregator) -> None:
    status, answer = http(aggregator, "GET", "/api/flex-events/no-such-event")
    assert status == 404
    assert answer == {"error": "no flexibility event 'no-such-event'"}
