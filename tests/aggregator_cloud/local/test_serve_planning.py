"""The planning scheduler in a real `serve`: a node on the real link (awsiotsdk, mutual TLS) gets
a plan when it reports, a new one when the tariff changes and when it reports a deviation, and
a broken inputs file is refused with its reasons while the previous inputs stay in force."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fractal.link.buffer import TelemetryBuffer
from fractal.link.plan_inbox import PlanDecision
from fractal.link.reporting import SnapshotPolicy
from fractal.link.shadow_link import LinkConfig, ShadowLink
from fractal.protocol import Mode, NodeDescriptor, Plan, TelemetrySnapshot, parse

from tests.fractal.link.link_support import until
from tests.support.local_aggregator import LocalAggregator, NodeCredentials

CHEAP, DEAR = 5.0, 40.0


@pytest.fixture(scope="module")
def planning_aggregator() -> Iterator[LocalAggregator]:
    """An aggregator of its own: these tests change the inputs every node is planned from."""
    with LocalAggregator.started() as running:
        yield running


@pytest.fixture
def aggregator(planning_aggregator: LocalAggregator, socket_enabled: None) -> LocalAggregator:
    return planning_aggregator


def utc_now() -> datetime:
    return datetime.now(UTC)


def write_inputs(aggregator: LocalAggregator, name: str, content: str) -> None:
    """Write a file into DATA/inputs as an editor would: whole, then renamed into place."""
    folder = aggregator.data_dir / "inputs"
    temporary = folder / f".{name}.tmp"
    temporary.write_text(content)
    os.replace(temporary, folder / name)


def tariff(cheap_hours: range) -> str:
    """Half-hourly import prices from the last hour on, for 50 hours: cheap in `cheap_hours`
    (hours from now), dear otherwise; a flat 2 p export; a flat 0.4 kW load."""
    start = utc_now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    prices = [CHEAP if slot // 2 - 1 in cheap_hours else DEAR for slot in range(100)]
    return json.dumps(
        {
            "schema": "fractal.planning_inputs.v1",
            "import_p_per_kwh": series(start, prices),
            "export_p_per_kwh": series(start, [2.0] * 100),
            "load_kw": series(start, [0.4] * 100),
            "tolerance": {"soc_pct": 5},
        }
    )


def series(start: datetime, values: list[float]) -> dict[str, Any]:
    return {"start": start.isoformat(), "step_seconds": 1800, "values": values}


def descriptor(node: str) -> NodeDescriptor:
    parsed = parse(
        NodeDescriptor,
        {
            "schema": "fractal.node.v1",
            "node": node,
            "name": "Home",
            "software": "0.1.0",
            "link": "local",
            "devices": [
                {
                    "id": "battery",
                    "kind": "battery",
                    "capabilities": ["balance", "charge", "discharge", "hold"],
                    "envelope": {
                        "capacity_wh": 10_000,
                        "max_charge_w": 2500,
                        "max_discharge_w": 2500,
                        "soc_min_pct": 10,
                    },
                }
            ],
        },
    )
    assert parsed.document is not None, parsed.problems
    return parsed.document


def snapshot(node: str, seq: int, soc_pct: float, *deviations: str) -> TelemetrySnapshot:
    parsed = parse(
        TelemetrySnapshot,
        {
            "schema": "fractal.telemetry.v1",
            "node": node,
            "seq": seq,
            "ts": utc_now().isoformat(),
            "soc_pct": soc_pct,
            "grid_w": 400,
            "deviations": list(deviations),
        },
    )
    assert parsed.document is not None, parsed.problems
    return parsed.document


class Node:
    """A node on the real link that keeps every plan it is given."""

    def __init__(self) -> None:
        self.link: ShadowLink
        self.plans: list[Plan] = []

    def take(self, decision: PlanDecision) -> None:
        if decision.in_force is not None and decision.in_force not in self.plans:
            self.plans.append(decision.in_force)

    async def plan_where(self, condition: Callable[[Plan], bool], what: str) -> Plan:
        """Wait until the node was given a plan meeting `condition` (other plans may come
        first: every inputs change re-plans every node); that plan."""
        await until(lambda: any(condition(plan) for plan in self.plans), what)
        return next(plan for plan in self.plans if condition(plan))


@asynccontextmanager
async def linked_node(
    aggregator: LocalAggregator, credentials: NodeCredentials, tmp_path: Path
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
    node = Node()
    node.link = link = ShadowLink(config, buffer, node.take, utc_now)
    link.report_descriptor(descriptor(credentials.node_id))
    link.report_snapshot(snapshot(credentials.node_id, 1, soc_pct=30))
    await link.start()
    try:
        yield node
    finally:
        await link.stop()
        buffer.close()


def charge_slots(plan: Plan) -> set[int]:
    battery = plan.devices["battery"]
    return {slot for slot in range(plan.slots) if battery.mode_at(slot) is Mode.CHARGE}


def charge_times(plan: Plan) -> list[datetime]:
    return sorted(plan.slot_start(slot) for slot in charge_slots(plan))


def charges_early(plan: Plan) -> bool:
    """Charges, and only in the next 7 hours (the first tariff's cheap hours)."""
    times = charge_times(plan)
    return bool(times) and times[-1] < utc_now() + timedelta(hours=7)


def charges_late(plan: Plan) -> bool:
    """Charges, and only from 18 hours on (the second tariff's cheap hours)."""
    times = charge_times(plan)
    return bool(times) and times[0] > utc_now() + timedelta(hours=18)


def first_soc(plan: Plan) -> float:
    """The SoC the plan expects at the end of its first slot."""
    assert plan.expected is not None
    assert plan.expected.soc_pct is not None
    soc = plan.expected.soc_pct[0]
    assert soc is not None
    return soc


def planning_status(aggregator: LocalAggregator) -> dict[str, Any]:
    path = aggregator.data_dir / "planning.json"
    status: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    return status


async def test_a_tariff_change_brings_every_node_a_new_plan(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    write_inputs(aggregator, "tariff.json", tariff(cheap_hours=range(2, 6)))
    credentials = aggregator.enroll("plan-tariff")
    async with linked_node(aggregator, credentials, tmp_path) as node:
        first = await node.plan_where(charges_early, "a plan once the node reported")
        assert first.node == "plan-tariff"
        assert first.tolerance is not None
        assert first.tolerance.soc_pct == 5

        write_inputs(aggregator, "tariff.json", tariff(cheap_hours=range(20, 24)))
        # Charging follows the cheap hours: 2-6 h from now first, then 20-24 h from now.
        second = await node.plan_where(charges_late, "a new plan after the tariff changed")

    assert second.id != first.id
    assert second.issued > first.issued


async def test_a_reported_deviation_brings_a_new_plan(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    write_inputs(aggregator, "tariff.json", tariff(cheap_hours=range(2, 6)))
    credentials = aggregator.enroll("plan-deviation")
    async with linked_node(aggregator, credentials, tmp_path) as node:
        first = await node.plan_where(lambda _: True, "a first plan")
        assert first_soc(first) < 50  # from the 30 % reported

        # The battery is at 90 %, not ~30 %: the node says it is off its plan.
        node.link.report_snapshot(snapshot("plan-deviation", 2, 90.0, "soc_pct"))
        second = await node.plan_where(lambda plan: first_soc(plan) > 50, "a plan from 90 %")

    assert second.id != first.id
    assert "planning (deviation): 1 of 1 node(s) planned" in aggregator.log


async def test_a_broken_inputs_file_is_refused_and_the_previous_inputs_stay(
    aggregator: LocalAggregator, tmp_path: Path
) -> None:
    write_inputs(aggregator, "tariff.json", tariff(cheap_hours=range(2, 6)))
    credentials = aggregator.enroll("plan-broken")
    async with linked_node(aggregator, credentials, tmp_path) as node:
        await node.plan_where(charges_early, "a first plan")
        broken = json.loads(tariff(cheap_hours=range(20, 24)))
        broken["import_p_per_kwh"]["step_seconds"] = 1234
        broken["load_kw"]["values"] = "lots"
        write_inputs(aggregator, "tariff.json", json.dumps(broken))
        await until(lambda: "tariff.json refused" in aggregator.log, "the refusal logged")

        asked = utc_now()
        node.link.request_replan(asked)  # a reason to plan: it must use the old tariff
        second = await node.plan_where(lambda plan: plan.issued >= asked, "a plan after asking")

    assert charges_early(second)  # the previous tariff's cheap hours
    refused = planning_status(aggregator)["inputs"]["problems"]["tariff.json"]
    assert sorted(refused) == [
        "import_p_per_kwh.step_seconds: step_seconds must be one of [300, 600, 900, 1800, 3600]",
        "load_kw.values: Input should be a valid list",
    ]
    assert (
        "planning inputs: tariff.json refused (keeping its previous content): "
        "import_p_per_kwh.step_seconds" in aggregator.log
    )
