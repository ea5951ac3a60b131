"""dispatch_event_plans against a real SQLite registry and the real shadow service: the nodes of
a DSO event's group planned together (plans with source dso), the turn-down checked against
plan_fleet run independently on the same homes, a turn-up planned with a floor, an impossible
request answered honestly."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fractal.planner import Planner, parse_scenario
from fractal.planner.fleet import event_slots, plan_fleet
from fractal.planner.scenario import FlexEvent
from fractal.protocol import FlexibilityEvent, NodeDescriptor, Plan, TelemetrySnapshot, parse

from aggregator_cloud.handlers.event_dispatch import dispatch_event_plans
from aggregator_cloud.handlers.plan_dispatch import IotDataPlanShadows, dispatch_plans
from aggregator_cloud.planning.inputs import PlanningInputs, parse_inputs
from aggregator_cloud.planning.registry_fleet import RegistryFleet
from aggregator_cloud.store import SqliteStore
from tests.support.local_aggregator import LocalAggregator, iot_data

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
SLOTS = 48
PEAK = range(4, 12)  # 10:00-14:00 at 40 p: where each battery's stored energy is worth most
WINDOW = (datetime(2026, 11, 22, 17, tzinfo=UTC), datetime(2026, 11, 22, 19, tzinfo=UTC))
LOAD_KW = 2.0
SOC_PCT = 50.0


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


def prices() -> list[float]:
    return [40.0 if slot in PEAK else 20.0 for slot in range(SLOTS)]


def inputs() -> PlanningInputs:
    def series(values: list[float]) -> dict[str, Any]:
        return {"start": NOW.isoformat(), "step_seconds": 1800, "values": values}

    return parse_inputs(
        {
            "schema": "fractal.planning_inputs.v1",
            "import_p_per_kwh": series(prices()),
            "export_p_per_kwh": series([0.0] * SLOTS),
            "load_kw": series([LOAD_KW] * SLOTS),
        }
    )


def register(store: SqliteStore, node: str, tags: dict[str, str]) -> None:
    """A home with a 10 kWh battery (1 kW each way, 10 % floor) at 50 %."""
    descriptor = parse(
        NodeDescriptor,
        {
            "schema": "fractal.node.v1",
            "node": node,
            "name": "Home",
            "software": "0.1.0",
            "link": "local",
            "tags": tags,
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
    assert descriptor.document is not None, descriptor.problems
    store.record_descriptor(descriptor.document)
    snapshot = parse(
        TelemetrySnapshot,
        {
            "schema": "fractal.telemetry.v1",
            "node": node,
            "seq": 1,
            "ts": NOW.isoformat(),
            "soc_pct": SOC_PCT,
        },
    )
    assert snapshot.document is not None
    store.record_snapshot(snapshot.document)


def flex_event(power_w: int, direction: str = "down") -> FlexibilityEvent:
    parsed = parse(
        FlexibilityEvent,
        {
            "schema": "fractal.flex_event.v1",
            "id": f"f12-{uuid.uuid4().hex[:6]}",
            "issued": NOW.isoformat(),
            "source": "SSEN",
            "group": {"feeder": "F12"},
            "direction": direction,
            "power_w": power_w,
            "start": WINDOW[0].isoformat(),
            "end": WINDOW[1].isoformat(),
        },
    )
    assert parsed.document is not None, parsed.problems
    return parsed.document


def fleet_of_three(store: SqliteStore) -> tuple[list[str], list[str]]:
    tag = uuid.uuid4().hex[:6]
    tagged = [f"f12-a-{tag}", f"f12-b-{tag}"]
    for node in tagged:
        register(store, node, {"feeder": "F12"})
    other = f"f13-{tag}"
    register(store, other, {"feeder": "F13"})
    return tagged, [*tagged, other]


def desired(shadows: IotDataPlanShadows, node: str) -> Plan:
    raw = shadows.desired_plan(node)
    assert raw is not None
    parsed = parse(Plan, dict(raw))
    assert parsed.document is not None, parsed.problems
    return parsed.document


def window_import_kw(plans: list[Plan]) -> np.ndarray[Any, Any]:
    """The plans' expected grid power summed, kW, in the event's four slots (17:00-19:00)."""
    first = int((WINDOW[0] - NOW).total_seconds() // 1800)
    rows = []
    for plan in plans:
        assert plan.start == NOW
        assert plan.expected is not None
        assert plan.expected.grid_w is not None
        rows.append([float(w or 0) / 1000 for w in plan.expected.grid_w[first : first + 4]])
    return np.sum(rows, axis=0)


def independent_fleet(nodes: list[str], request_kw: float) -> tuple[float, float]:
    """plan_fleet on the same homes written out by hand: the group's import in the window
    without the event (the mean over its slots) and with it (the same cap per slot)."""
    homes = [
        {
            "id": node,
            "tags": {"feeder": "F12"},
            "pv_kw": [0.0] * SLOTS,
            "load_kw": [LOAD_KW] * SLOTS,
            "import_p_per_kwh": prices(),
            "export_p_per_kwh": [0.0] * SLOTS,
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
        for node in nodes
    ]
    document = {"start": NOW.isoformat(), "step_seconds": 1800, "homes": homes}
    scenario = parse_scenario(document)
    window = FlexEvent(
        id="w", tag="feeder", value="F12", start=WINDOW[0], end=WINDOW[1], import_max_kw=0
    )
    in_window = event_slots(scenario, window) > 0
    baseline, _ = plan_fleet(scenario, Planner())
    before = np.sum([plan.grid_kw for plan in baseline], axis=0)[in_window]
    caps = [
        FlexEvent(
            id=f"cap-{slot}",
            tag="feeder",
            value="F12",
            start=NOW + timedelta(minutes=30 * slot),
            end=NOW + timedelta(minutes=30 * (slot + 1)),
            import_max_kw=max(0.0, float(before[index]) - request_kw),
        )
        for index, slot in enumerate(int(s) for s in np.flatnonzero(in_window))
    ]
    capped = parse_scenario({**document, "events": [cap.model_dump(mode="json") for cap in caps]})
    plans, outcomes = plan_fleet(capped, Planner())
    after = np.sum([plan.grid_kw for plan in plans], axis=0)[in_window]
    assert len(outcomes) == 4
    return float(np.mean(before)), float(np.mean(after))


def test_the_tagged_nodes_are_planned_together_for_the_event_with_source_dso(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    tagged, nodes = fleet_of_three(store)
    fleet = RegistryFleet(store)
    # The plans without an event: the baseline the DSO's turn-down is measured against.
    alone = dispatch_plans(nodes, fleet=fleet, inputs=inputs(), shadows=shadows, now=NOW)
    assert alone.ok, alone
    before = window_import_kw([desired(shadows, node) for node in tagged])
    untouched = desired(shadows, nodes[2])

    event = flex_event(power_w=1500)
    result = dispatch_event_plans(
        nodes, events=[event], fleet=fleet, inputs=inputs(), shadows=shadows, now=NOW
    )

    assert result.ok, result
    plans = [desired(shadows, node) for node in tagged]
    assert [(plan.source, plan.event) for plan in plans] == [("dso", event.id)] * 2
    after = window_import_kw(plans)
    assert np.all(before - after >= 1.5 - 1e-3)  # every slot of the window, both homes together
    (answer,) = result.events
    assert answer.event == event.id
    assert answer.nodes == tuple(tagged)
    assert answer.requested_kw == 1.5
    assert answer.met
    assert answer.deliverable_kw == 1.5
    assert answer.delivered_kwh == pytest.approx(1.5 * 2)
    assert len(answer.delivered_kw) == 4
    assert answer.planned_kw == pytest.approx(tuple(after), abs=2e-3)
    independent_before, independent_after = independent_fleet(tagged, 1.5)
    assert np.mean(answer.baseline_kw) == pytest.approx(independent_before, abs=1e-3)
    assert np.mean(answer.planned_kw) == pytest.approx(independent_after, abs=1e-3)
    # The untagged node is planned alone, as before: no event, the same expected grid power.
    third = desired(shadows, nodes[2])
    assert (third.source, third.event) == ("aggregator", None)
    assert third.expected == untouched.expected


def test_an_impossible_request_is_answered_with_what_the_group_can_deliver(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    _tagged, nodes = fleet_of_three(store)
    event = flex_event(power_w=10_000)  # the group imports 4 kW; each battery gives 1 kW
    result = dispatch_event_plans(
        nodes,
        events=[event],
        fleet=RegistryFleet(store),
        inputs=inputs(),
        shadows=shadows,
        now=NOW,
    )

    (answer,) = result.events
    assert not answer.met
    assert answer.deliverable_kw == pytest.approx(2.0, abs=1e-3)
    assert answer.status == "can deliver 2.000 of 10.000 kW"
    assert answer.delivered_kw == pytest.approx((2.0,) * 4, abs=1e-3)
    assert [desired(shadows, node).source for node in nodes] == ["dso", "dso", "aggregator"]


def test_a_turn_up_is_planned_with_source_dso_and_delivers_more_import(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    tagged, nodes = fleet_of_three(store)
    fleet = RegistryFleet(store)
    alone = dispatch_plans(nodes, fleet=fleet, inputs=inputs(), shadows=shadows, now=NOW)
    assert alone.ok, alone
    before = window_import_kw([desired(shadows, node) for node in tagged])
    event = flex_event(power_w=1000, direction="up")
    result = dispatch_event_plans(
        nodes, events=[event], fleet=fleet, inputs=inputs(), shadows=shadows, now=NOW
    )

    assert result.ok, result
    plans = [desired(shadows, node) for node in tagged]
    assert [(plan.source, plan.event) for plan in plans] == [("dso", event.id)] * 2
    after = window_import_kw(plans)
    assert np.all(after - before >= 1.0 - 1e-3)  # every slot: the group imports 1 kW more
    (answer,) = result.events
    assert (answer.direction, answer.nodes, answer.met) == ("up", tuple(tagged), True)
    assert answer.status == "met"
    assert len(answer.delivered_kw) == 4
    assert min(answer.delivered_kw) >= 1.0 - 1e-3
    assert answer.delivered_kw == pytest.approx(tuple(after - before), abs=2e-3)
    assert answer.deliverable_kw == 1.0
    assert answer.delivered_kwh == pytest.approx(1.0 * 2)
    assert desired(shadows, nodes[2]).source == "aggregator"


def test_a_turn_up_beyond_the_batteries_says_how_much_the_group_can_take(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    _tagged, nodes = fleet_of_three(store)
    event = flex_event(power_w=10_000, direction="up")  # each battery charges 1 kW at most
    result = dispatch_event_plans(
        nodes,
        events=[event],
        fleet=RegistryFleet(store),
        inputs=inputs(),
        shadows=shadows,
        now=NOW,
    )

    (answer,) = result.events
    assert not answer.met
    assert answer.deliverable_kw == pytest.approx(2.0, abs=1e-3)
    assert answer.status == "can deliver 2.000 of 10.000 kW"
    assert answer.delivered_kw == pytest.approx((2.0,) * 4, abs=1e-3)
    assert [desired(shadows, node).source for node in nodes] == ["dso", "dso", "aggregator"]


def test_an_event_outside_the_horizon_changes_nothing(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    _, nodes = fleet_of_three(store)
    past = flex_event(power_w=1000).model_copy(
        update={"start": NOW - timedelta(hours=3), "end": NOW - timedelta(hours=1)}
    )
    result = dispatch_event_plans(
        nodes,
        events=[past],
        fleet=RegistryFleet(store),
        inputs=inputs(),
        shadows=shadows,
        now=NOW,
    )

    assert result.ok
    assert result.events == ()
    assert {desired(shadows, node).source for node in nodes} == {"aggregator"}


class RefusingShadows:
    """The real plan shadows, except that writes to one node fail (a throttled or lost call)."""

    def __init__(self, shadows: IotDataPlanShadows, refused: str) -> None:
        self.shadows, self.refused = shadows, refused

    def desired_plan(self, node: str) -> Any:
        return self.shadows.desired_plan(node)

    def write_plan(self, node: str, payload: str) -> None:
        if node == self.refused:
            raise ConnectionError("the shadow service did not answer")
        self.shadows.write_plan(node, payload)


def test_a_failed_write_for_one_member_is_that_node_s_problem_only(
    store: SqliteStore, shadows: IotDataPlanShadows
) -> None:
    tagged, nodes = fleet_of_three(store)
    event = flex_event(power_w=1500)
    result = dispatch_event_plans(
        nodes,
        events=[event],
        fleet=RegistryFleet(store),
        inputs=inputs(),
        shadows=RefusingShadows(shadows, refused=tagged[1]),
        now=NOW,
    )

    assert result.written == (tagged[0], nodes[2])
    (failed,) = [entry for entry in result.nodes if not entry.written]
    assert failed.problems == ("ConnectionError: the shadow service did not answer",)
    assert desired(shadows, tagged[0]).event == event.id
    assert shadows.desired_plan(tagged[1]) is None
