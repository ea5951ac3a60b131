"""dispatch_plans against a real SQLite registry and the real shadow service (boto3 iot-data),
and nodes_to_replan on the documents messages AWS IoT sends."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fractal.planner import Planner
from fractal.protocol import NodeDescriptor, Plan, TelemetrySnapshot, parse
from hypothesis import given
from hypothesis import strategies as st

from aggregator_cloud.handlers.plan_dispatch import (
    IotDataPlanShadows,
    dispatch_plans,
    nodes_to_replan,
    replan_reasons,
)
from aggregator_cloud.planning.inputs import PlanningInputs, parse_inputs
from aggregator_cloud.planning.registry_fleet import RegistryFleet
from aggregator_cloud.store import SqliteStore
from tests.support.local_aggregator import LocalAggregator, iot_data

NOW = datetime(2026, 11, 22, 22, 10, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 23, tzinfo=UTC)


@pytest.fixture(scope="module")
def aggregator() -> Iterator[LocalAggregator]:
    with LocalAggregator.started() as running:
        yield running


@pytest.fixture
def shadows(aggregator: LocalAggregator, socket_enabled: None) -> IotDataPlanShadows:
    return IotDataPlanShadows(iot_data(aggregator))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    with SqliteStore(tmp_path / "fleet.sqlite3") as opened:
        yield opened


def node_id() -> str:
    return f"home-{uuid.uuid4().hex[:10]}"


def battery_descriptor(node: str, *, battery: bool = True) -> NodeDescriptor:
    devices = []
    if battery:
        devices.append(
            {
                "id": "garage_battery",
                "kind": "battery",
                "capabilities": ["balance", "charge", "discharge", "hold"],
                "envelope": {
                    "capacity_wh": 10_000,
                    "max_charge_w": 3000,
                    "max_discharge_w": 3000,
                    "soc_min_pct": 10,
                    "soc_max_pct": 100,
                },
            }
        )
    parsed = parse(
        NodeDescriptor,
        {
            "schema": "fractal.node.v1",
            "node": node,
            "name": "Home",
            "software": "0.1.0",
            "link": "local",
            "devices": devices,
            "envelope": {"import_max_w": 15000, "export_max_w": 5000},
        },
    )
    assert parsed.document is not None, parsed.problems
    return parsed.document


def register(store: SqliteStore, node: str, soc_pct: float | None = 50, **kwargs: Any) -> None:
    store.record_descriptor(battery_descriptor(node, **kwargs))
    if soc_pct is not None:
        snapshot = parse(
            TelemetrySnapshot,
            {
                "schema": "fractal.telemetry.v1",
                "node": node,
                "seq": 1,
                "ts": NOW.isoformat(),
                "soc_pct": soc_pct,
            },
        )
        assert snapshot.document is not None
        store.record_snapshot(snapshot.document)


def series(start: datetime, values: list[float], step: int = 1800) -> dict[str, Any]:
    return {"start": start.isoformat(), "step_seconds": step, "values": values}


def night_cheap_inputs(hours: int = 24, **extra: Any) -> PlanningInputs:
    """From 22:00: 5 p/kWh until 04:00, then 40 p/kWh; export 2 p; no PV; 0.5 kW load."""
    start = datetime(2026, 11, 22, 22, tzinfo=UTC)
    slots = hours * 2
    prices = [5.0 if slot < 12 else 40.0 for slot in range(slots)]
    return parse_inputs(
        {
            "schema": "fractal.planning_inputs.v1",
            "import_p_per_kwh": series(start, prices),
            "export_p_per_kwh": series(start, [2.0] * slots),
            "load_kw": series(start, [0.5] * hours, step=3600),
            **extra,
        }
    )


def desired_plan(shadows: IotDataPlanShadows, node: str) -> Plan:
    raw = shadows.desired_plan(node)
    assert raw is not None
    parsed = parse(Plan, dict(raw))
    assert parsed.document is not None, parsed.problems
    return parsed.document


def test_a_plan_for_the_node_s_own_battery_reaches_its_plan_shadow(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    node = node_id()
    register(store, node, soc_pct=20)

    result = dispatch_plans(
        [node], fleet=RegistryFleet(store), inputs=night_cheap_inputs(), shadows=shadows, now=NOW
    )

    assert result.ok, result
    assert result.written == (node,)
    plan = desired_plan(shadows, node)
    assert plan.id == result.nodes[0].plan_id
    assert plan.node == node
    assert plan.start == datetime(2026, 11, 22, 22, tzinfo=UTC)  # the slot NOW falls in
    assert plan.step == 1800
    assert plan.slots == 24 * 2  # as far as the inputs reach
    assert set(plan.devices) == {"garage_battery"}  # the node's own device id
    battery = plan.devices["garage_battery"]
    # Cheap until 04:00: the battery charges then (from 20 % towards full) for the dear day.
    night = [battery.command_at(slot) for slot in range(12)]
    assert sum(cmd.value or 0 for cmd in night if cmd and cmd.mode == "charge") > 0
    assert plan.tolerance is not None
    assert plan.tolerance.soc_pct == 10
    assert plan.expected is not None
    assert plan.expected.soc_pct is not None
    assert plan.expected.soc_pct[11] > 20


def test_a_new_plan_replaces_the_old_one_whole(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    """The shadow merges updates: a device the new plan lacks must not survive from the old."""
    node = node_id()
    register(store, node)
    fleet = RegistryFleet(store)
    first = dispatch_plans(
        [node], fleet=fleet, inputs=night_cheap_inputs(), shadows=shadows, now=NOW
    )
    store.record_descriptor(battery_descriptor(node, battery=False))

    later = NOW + timedelta(minutes=40)
    second = dispatch_plans(
        [node], fleet=fleet, inputs=night_cheap_inputs(), shadows=shadows, now=later
    )

    plan = desired_plan(shadows, node)
    assert plan.id == second.nodes[0].plan_id != first.nodes[0].plan_id
    assert plan.devices == {}
    assert plan.start == datetime(2026, 11, 22, 22, 30, tzinfo=UTC)
    assert plan.expected is not None
    assert plan.expected.soc_pct is None


def test_each_node_s_trouble_is_its_own(store: SqliteStore, shadows: IotDataPlanShadows) -> None:
    good, silent, bare = node_id(), node_id(), node_id()
    register(store, good)
    register(store, bare, soc_pct=None)
    start = datetime(2026, 11, 22, 22, tzinfo=UTC)
    inputs = night_cheap_inputs(
        nodes={bare: {"import_p_per_kwh": series(start - timedelta(days=1), [9.0] * 4)}}
    )

    result = dispatch_plans(
        [silent, good, bare], fleet=RegistryFleet(store), inputs=inputs, shadows=shadows, now=NOW
    )

    by_node = {entry.node: entry for entry in result.nodes}
    assert by_node[good].written
    assert not by_node[silent].written
    assert by_node[silent].problems == ("no descriptor yet: the node has not reported",)
    assert not by_node[bare].written
    assert by_node[bare].problems == (
        "the inputs have no import_p_per_kwh from 2026-11-22T22:00:00+00:00",
    )
    assert not result.ok
    assert result.as_dict()["written"] == [good]
    assert shadows.desired_plan(silent) is None


def test_an_unknown_soc_plans_from_the_minimum_and_says_so(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    node = node_id()
    register(store, node, soc_pct=None)

    result = dispatch_plans(
        [node], fleet=RegistryFleet(store), inputs=night_cheap_inputs(), shadows=shadows, now=NOW
    )

    assert result.written == (node,)
    assert result.nodes[0].problems == (
        "battery garage_battery: state of charge unknown, planned from its minimum",
    )
    plan = desired_plan(shadows, node)
    assert plan.expected is not None
    assert plan.expected.soc_pct is not None
    assert plan.expected.soc_pct[0] >= 10


def test_the_planner_is_reused_and_a_tolerance_from_the_inputs_is_sent(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    node = node_id()
    register(store, node)
    planner = Planner()
    # 49 hours of inputs: both plans are 48 hours long, the same model warm again.
    inputs = night_cheap_inputs(hours=49, tolerance={"soc_pct": 5, "grid_w": 800})
    for minutes in (0, 30):
        result = dispatch_plans(
            [node],
            fleet=RegistryFleet(store),
            inputs=inputs,
            shadows=shadows,
            now=NOW + timedelta(minutes=minutes),
            planner=planner,
        )
        assert result.ok
    assert planner.cache.builds == 1
    tolerance = desired_plan(shadows, node).tolerance
    assert tolerance is not None
    assert (tolerance.soc_pct, tolerance.grid_w) == (5, 800)


def test_inputs_that_end_before_now_plan_nothing(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    node = node_id()
    register(store, node)
    result = dispatch_plans(
        [node],
        fleet=RegistryFleet(store),
        inputs=night_cheap_inputs(hours=1),
        shadows=shadows,
        now=MIDNIGHT,
    )
    assert not result.written
    assert "the inputs have no import_p_per_kwh from 2026-11-23T00:00:00+00:00" in (
        result.nodes[0].problems
    )


# --- nodes_to_replan -------------------------------------------------------------------------


def documents(
    before: dict[str, Any], after: dict[str, Any], node: str = "home-1"
) -> dict[str, Any]:
    return {
        "previous": {"state": {"reported": before}, "version": 1},
        "current": {"state": {"reported": after}, "version": 2},
        "timestamp": 1_790_000_000,
        "thing_name": node,
    }


def telemetry(*deviations: str) -> dict[str, Any]:
    return {"schema": "fractal.telemetry.v1", "node": "home-1", "deviations": list(deviations)}


@pytest.mark.parametrize(
    ("before", "after", "reasons"),
    [
        ({"telemetry": telemetry()}, {"telemetry": telemetry("soc_pct")}, ("deviation",)),
        (
            {"telemetry": telemetry("soc_pct")},
            {"telemetry": telemetry("soc_pct", "grid_w")},
            ("deviation",),
        ),
        ({}, {"replan_requested": "2026-11-22T10:00:00Z"}, ("replan_requested",)),
        (
            {"replan_requested": "2026-11-22T10:00:00Z"},
            {"replan_requested": "2026-11-22T11:00:00Z"},
            ("replan_requested",),
        ),
        ({}, {"node": {"node": "home-1"}}, ("descriptor",)),
        ({}, {"plan": {"id": "p1", "status": "expired"}}, ("expired",)),
    ],
)
def test_what_makes_a_node_be_planned_again(
    before: dict[str, Any], after: dict[str, Any], reasons: tuple[str, ...]
) -> None:
    event = documents(before, after)
    assert nodes_to_replan(event) == ("home-1",)
    assert replan_reasons(event) == reasons


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"telemetry": telemetry("soc_pct")}, {"telemetry": telemetry("soc_pct")}),
        ({"telemetry": telemetry("soc_pct")}, {"telemetry": telemetry()}),
        (
            {"replan_requested": "2026-11-22T10:00:00Z", "node": {"node": "home-1"}},
            {"replan_requested": "2026-11-22T10:00:00Z", "node": {"node": "home-1"}},
        ),
        ({}, {"plan": {"id": "p1", "status": "rejected", "reason": "x"}}),
        ({"plan": {"id": "p1", "status": "expired"}}, {"plan": {"id": "p1", "status": "expired"}}),
        ({}, {"telemetry": "garbage", "plan": ["garbage"]}),
    ],
)
def test_what_does_not(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert nodes_to_replan(documents(before, after)) == ()


@pytest.mark.parametrize("event", [{}, {"thing_name": ""}, {"current": "x", "thing_name": "a"}])
def test_garbage_events_replan_nothing(event: dict[str, Any]) -> None:
    assert nodes_to_replan(event) == ()


def test_the_result_is_json_ready(store: SqliteStore, shadows: IotDataPlanShadows) -> None:
    node = node_id()
    register(store, node)
    result = dispatch_plans(
        [node], fleet=RegistryFleet(store), inputs=night_cheap_inputs(), shadows=shadows, now=NOW
    )
    decoded = json.loads(json.dumps(result.as_dict()))
    assert decoded["ok"] is True
    assert decoded["nodes"][0]["status"] == "optimal"
    assert decoded["nodes"][0]["cost_p"] == pytest.approx(result.nodes[0].cost_p)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)


@given(
    previous=json_values,
    current=json_values,
    thing=st.one_of(st.none(), st.text(max_size=8), st.integers()),
)
def test_any_event_is_read_without_an_exception(
    previous: object, current: object, thing: object
) -> None:
    event = {"previous": previous, "current": current, "thing_name": thing}
    found = nodes_to_replan(event)
    if isinstance(thing, str) and thing:
        assert found == ((thing,) if replan_reasons(event) else ())
    else:
        assert found == ()  # no node to re-plan without a thing name


def ev_descriptor(node: str, **envelope: float) -> NodeDescriptor:
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
                    "id": "drive_charger",
                    "kind": "ev_charger",
                    "capabilities": ["ev_current", "off", "on"],
                    "envelope": envelope,
                }
            ],
        },
    )
    assert parsed.document is not None, parsed.problems
    return parsed.document


def test_an_ev_session_is_planned_on_the_node_s_charger_within_its_current_range(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    node = node_id()
    store.record_descriptor(ev_descriptor(node, ev_current_min_a=6, ev_current_max_a=16))
    session = {
        "arrival": "2026-11-22T22:00:00Z",
        "departure": "2026-11-23T07:00:00Z",
        "energy_kwh": 12,
    }
    inputs = night_cheap_inputs(nodes={node: {"ev": session}})

    result = dispatch_plans(
        [node], fleet=RegistryFleet(store), inputs=inputs, shadows=shadows, now=NOW
    )

    assert result.ok, result
    charger = desired_plan(shadows, node).devices["drive_charger"]
    assert charger.setpoints is not None
    amps = [value or 0.0 for value in charger.setpoints.values]
    assert all(value == 0 or 6 <= value <= 16 for value in amps)
    # 12 kWh at 230 V, charged in the cheap night (slots 0-11 run 22:00-04:00).
    delivered_kwh = sum(value * 230 / 1000 * 0.5 for value in amps)
    assert delivered_kwh == pytest.approx(12 / 0.9, rel=0.02)  # the charger's 90 % efficiency
    assert all(value == 0 for value in amps[12:])


@pytest.mark.parametrize(
    ("envelope", "departure", "note"),
    [
        ({}, "2026-11-23T07:00:00Z", "EV charger drive_charger: no ev_current_max_a"),
        ({"ev_current_max_a": 16}, "2026-11-22T21:00:00Z", "the EV session ended at"),
    ],
)
def test_an_ev_session_that_cannot_be_planned_says_why(
    store: SqliteStore,
    shadows: IotDataPlanShadows,
    envelope: dict[str, float],
    departure: str,
    note: str,
) -> None:
    node = node_id()
    store.record_descriptor(ev_descriptor(node, **envelope))
    session = {"arrival": "2026-11-22T20:00:00Z", "departure": departure, "energy_kwh": 5}
    inputs = night_cheap_inputs(nodes={node: {"ev": session}})

    result = dispatch_plans(
        [node], fleet=RegistryFleet(store), inputs=inputs, shadows=shadows, now=NOW
    )

    assert result.written == (node,)  # planned without it
    assert any(problem.startswith(note) for problem in result.nodes[0].problems)
    assert desired_plan(shadows, node).devices == {}
