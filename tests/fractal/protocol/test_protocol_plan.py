"""Plan helpers the executor relies on, and the 8 KB budget of a full 48-hour plan."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from fractal.protocol import (
    MODES_BY_KIND,
    PLAN_BUDGET,
    SHADOW_STATE_LIMIT,
    VALUE_RULES,
    Command,
    Device,
    DeviceKind,
    DevicePlan,
    FlexDirection,
    FlexibilityEvent,
    LinkMode,
    Mode,
    NodeDescriptor,
    Plan,
    PlanSource,
    Quantity,
    Setpoints,
    Window,
    dump,
    parse,
    parse_any,
    shadow_payload,
    shadow_size,
)
from hypothesis import given, settings

from tests.fractal.protocol.protocol_strategies import full_home_plan, plans

ISSUED = datetime(2026, 11, 22, 9, 55, tzinfo=UTC)
START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def plan_with(devices: dict[str, DevicePlan], *, slots: int = 8, expiry_h: float = 3) -> Plan:
    return Plan(
        id="p1",
        node="home-17",
        issued=ISSUED,
        start=START,
        step=1800,
        slots=slots,
        expiry=START + timedelta(hours=expiry_h),
        source=PlanSource.AGGREGATOR,
        devices=devices,
    )


def test_slot_at_maps_instants_to_slots_until_expiry() -> None:
    plan = plan_with({}, slots=8, expiry_h=3)

    assert plan.end == START + timedelta(hours=4)
    assert plan.slot_at(START - timedelta(seconds=1)) is None
    assert plan.slot_at(START) == 0
    assert plan.slot_at(START + timedelta(minutes=29, seconds=59)) == 0
    assert plan.slot_at(START + timedelta(minutes=30)) == 1
    assert plan.slot_at(START + timedelta(hours=2, minutes=59)) == 5
    # Slots past the expiry are never executed: the node falls back to its default plan.
    assert plan.slot_at(START + timedelta(hours=3)) is None
    assert plan.slot_start(5) == START + timedelta(hours=2, minutes=30)


def test_slot_at_handles_other_offsets() -> None:
    plan = plan_with({})
    in_paris = datetime(2026, 11, 22, 11, 45, tzinfo=UTC).astimezone(
        datetime.fromisoformat("2026-11-22T12:45:00+01:00").tzinfo
    )

    assert plan.slot_at(in_paris) == 3


def test_windows_resolve_to_commands_and_gaps_to_the_default() -> None:
    battery = DevicePlan(
        kind=DeviceKind.BATTERY,
        windows=(
            Window(start=1, end=3, mode=Mode.CHARGE, value=2500),
            Window(start=5, end=8, mode=Mode.BALANCE),
        ),
    )

    assert battery.command_at(0) is None
    assert battery.command_at(1) == Command(Mode.CHARGE, 2500)
    assert battery.mode_at(2) is Mode.CHARGE
    assert battery.value_at(2) == 2500
    assert battery.command_at(3) is None
    assert battery.command_at(7) == Command(Mode.BALANCE)
    assert battery.command_at(8) is None


def test_setpoints_resolve_to_the_mode_a_window_would_give() -> None:
    def series(kind: DeviceKind, quantity: Quantity, *values: float | None) -> DevicePlan:
        return DevicePlan(kind=kind, setpoints=Setpoints(quantity=quantity, values=values))

    battery = series(DeviceKind.BATTERY, Quantity.BATTERY_W, 1500, -2000, 0, None)
    ev = series(DeviceKind.EV_CHARGER, Quantity.EV_CURRENT_A, 16, 0, None)
    immersion = series(DeviceKind.IMMERSION, Quantity.IMMERSION_ON, 1, 0)
    hydro = series(DeviceKind.HYDRO, Quantity.HYDRO_LEVEL_M, 1.234)
    export = series(DeviceKind.GRID_METER, Quantity.EXPORT_LIMIT_W, 0)

    assert [battery.command_at(slot) for slot in range(5)] == [
        Command(Mode.CHARGE, 1500),
        Command(Mode.DISCHARGE, 2000),
        Command(Mode.HOLD),
        None,
        None,
    ]
    assert [ev.command_at(slot) for slot in range(3)] == [
        Command(Mode.EV_CURRENT, 16),
        Command(Mode.OFF),
        None,
    ]
    assert [immersion.mode_at(slot) for slot in range(2)] == [Mode.ON, Mode.OFF]
    assert hydro.command_at(0) == Command(Mode.LEVEL, 1.234)
    assert export.command_at(0) == Command(Mode.EXPORT_LIMIT, 0)


def test_a_full_48_hour_home_plan_at_30_minutes_fits_the_shadow() -> None:
    plan = full_home_plan(1800, random.Random(2026))
    payload = shadow_payload(plan)

    # Every one of the 96 slots carries a value for all six series, all non-trivial.
    assert plan.slots == 96
    assert all(len(p.setpoints.values) == 96 for p in plan.devices.values() if p.setpoints)
    assert payload.startswith('{"state":{"desired":{"plan":{"schema":"fractal.plan.v1"')
    assert len(payload.encode()) == shadow_size(plan)
    # Measured: 3,263 bytes (docs/protocol.md, "Size budget").
    assert shadow_size(plan) <= SHADOW_STATE_LIMIT // 2
    assert parse(Plan, dump(plan)).document == plan


def test_a_full_48_hour_home_plan_at_15_minutes_still_fits() -> None:
    plan = full_home_plan(900, random.Random(2026))

    assert plan.slots == 192
    # Measured: 5,821 bytes, within the plan's share of the shadow (6,144 bytes).
    assert shadow_size(plan) <= PLAN_BUDGET
    assert parse(Plan, dump(plan)).ok


def test_at_5_minute_steps_such_a_plan_is_refused_as_too_big() -> None:
    with pytest.raises(ValueError, match="over the 6144-byte limit"):
        full_home_plan(300, random.Random(2026))


def test_a_flexibility_event_selects_nodes_whose_tags_include_its_group() -> None:
    event = FlexibilityEvent(
        id="ssen-1",
        issued=ISSUED,
        source="SSEN",
        group={"feeder": "F12", "community": "Osney"},
        direction=FlexDirection.DOWN,
        power_w=50_000,
        start=START,
        end=START + timedelta(hours=1),
    )
    everyone = event.model_copy(update={"group": {}})

    assert event.selects({"feeder": "F12", "community": "Osney", "street": "Elm Road"})
    assert not event.selects({"feeder": "F12"})
    assert not event.selects({"feeder": "F13", "community": "Osney"})
    assert everyone.selects({})


def test_parse_any_names_the_schemas_it_knows() -> None:
    parsed = parse_any('{"schema": "fractal.recipe.v1"}')

    assert not parsed.ok
    assert [problem.path for problem in parsed.problems] == ["schema"]
    assert "fractal.plan.v1" in parsed.problems[0].message
    assert [p.path for p in parse_any("[]").problems] == ["schema"]


def test_a_descriptor_finds_its_devices_by_id() -> None:
    battery = Device(id="battery", kind=DeviceKind.BATTERY)
    descriptor = NodeDescriptor(
        node="home-17",
        name="17 Elm Road",
        software="0.1.0",
        link=LinkMode.LOCAL,
        devices=(battery,),
    )

    assert descriptor.device("battery") is battery
    assert descriptor.device("ev") is None


@settings(max_examples=60, deadline=None)
@given(plans())
def test_every_slot_of_a_valid_plan_resolves_to_a_command_its_device_accepts(plan: Plan) -> None:
    for device_plan in plan.devices.values():
        for slot in range(plan.slots):
            command = device_plan.command_at(slot)
            if command is None:
                continue
            assert command.mode in MODES_BY_KIND[device_plan.kind]
            rule = VALUE_RULES.get(command.mode)
            if rule is None:
                assert command.value is None
            else:
                assert command.value is not None
                assert rule.problem(command.value) is None
