"""Standalone planning in a real Home Assistant: a home whose battery and grid meter are real
pymodbus servers plans from entities shaped like the Octopus Energy integration's rates and
Solcast's forecast; the plan runs in the executor and shows as a calendar and as sensors.

Times are relative to the real clock (a frozen clock stalls the Modbus I/O); the executor and
the planner take the time to act at, so the plan's later slots are reached without waiting.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from homeassistant.components.recorder.core import Recorder
from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import async_import_statistics
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.fractal_node.const import (
    CONF_BATTERY_CAPACITY,
    CONF_EXPORT_RATE,
    CONF_IMPORT_RATE,
    CONF_LOAD,
    CONF_PLANNING,
    CONF_PV_FORECAST,
    CONF_TAGS,
)
from custom_components.fractal_node.fractal.planner import Planner
from custom_components.fractal_node.fractal.planner.standalone import (
    PlanningInputs,
    Rates,
    load_profile,
    merged_rates,
    parse_pv_forecast,
    parse_rates,
    plan_standalone,
    slot_start,
)
from custom_components.fractal_node.fractal.protocol import Command, Mode, Plan
from tests.fractal.devices.modbus_emulator import EmulatorServer
from tests.fractal_node.conftest import StartEmulator
from tests.fractal_node.helpers import local_settings, node_entry
from tests.fractal_node.test_device_runtime import BATTERY_LIMITS, device, emulated
from tests.support.certificates import CertificateAuthority, Issued

TODAY_RATES = "event.octopus_energy_electricity_22l1234_1900000000001_current_day_rates"
TOMORROW_RATES = "event.octopus_energy_electricity_22l1234_1900000000001_next_day_rates"
EXPORT_RATE = "sensor.octopus_energy_electricity_22l1234_1900000000002_export_current_rate"
SOLCAST_TODAY = "sensor.solcast_pv_forecast_forecast_today"
LOAD = "sensor.house_load"
PLANNING = {
    CONF_IMPORT_RATE: [TODAY_RATES, TOMORROW_RATES],
    CONF_EXPORT_RATE: [EXPORT_RATE],
    CONF_PV_FORECAST: [SOLCAST_TODAY],
    CONF_BATTERY_CAPACITY: 10.0,
    CONF_LOAD: LOAD,
}
SLOTS = 62  # rates published for 31 hours, as Agile's at 16:00
PEAK = range(6)  # the first 3 hours
NIGHT = range(16, 26)  # 8 to 13 hours from now


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """The recorder (for the load's history) must start before Home Assistant."""


def load_w(hour: datetime) -> float:
    """The household's mean load in an hour: 400 W at night, 900 W by day."""
    return 400.0 if hour.hour < 6 else 900.0


async def record_load_history(hass: HomeAssistant) -> datetime:
    """A week of hourly statistics of the load sensor, as the recorder keeps them."""
    hass.states.async_set(
        LOAD,
        "650",
        {"unit_of_measurement": "W", "device_class": "power", "state_class": "measurement"},
    )
    this_hour = dt_util.utcnow().replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=h) for h in range(1, 7 * 24)]
    metadata = StatisticMetaData(
        mean_type=StatisticMeanType.ARITHMETIC,
        has_sum=False,
        name=None,
        source="recorder",
        statistic_id=LOAD,
        unit_of_measurement="W",
    )
    async_import_statistics(
        hass,
        metadata,
        [StatisticData(start=h, mean=load_w(h), min=load_w(h), max=load_w(h)) for h in hours],
    )
    await async_wait_recording_done(hass)
    return this_hour


def gbp_per_kwh(slot: int) -> float:
    return 0.35 if slot in PEAK else 0.05 if slot in NIGHT else 0.20


def octopus_rates(start: datetime, slots: range) -> list[dict[str, Any]]:
    """The rates attribute of Octopus Energy's rate event entities (GBP/kWh, datetimes as the
    integration stores them)."""
    return [
        {
            "start": start + timedelta(minutes=30 * i),
            "end": start + timedelta(minutes=30 * (i + 1)),
            "value_inc_vat": gbp_per_kwh(i),
            "is_capped": False,
        }
        for i in slots
    ]


def solcast_forecast(start: datetime) -> list[dict[str, Any]]:
    """Solcast's detailedForecast: kW per half hour, some sun tomorrow."""
    return [
        {
            "period_start": (start + timedelta(minutes=30 * i)).isoformat(),
            "pv_estimate": 1.5 if 36 <= i < 44 else 0.0,
            "pv_estimate10": 0.0,
        }
        for i in range(SLOTS)
    ]


def set_inputs(hass: HomeAssistant, start: datetime) -> None:
    """Today's and tomorrow's rates split at slot 20, a flat export rate, Solcast's forecast."""
    hass.states.async_set(
        TODAY_RATES, start.isoformat(), {"rates": octopus_rates(start, range(20))}
    )
    hass.states.async_set(
        TOMORROW_RATES, start.isoformat(), {"rates": octopus_rates(start, range(20, SLOTS))}
    )
    hass.states.async_set(EXPORT_RATE, "0.15", {"unit_of_measurement": "GBP/kWh"})
    hass.states.async_set(SOLCAST_TODAY, "9.0", {"detailedForecast": solcast_forecast(start)})


@pytest.fixture
async def server(modbus_server: StartEmulator) -> EmulatorServer:
    """A grid meter importing 500 W (unit 1) and a battery at 20 % (unit 3)."""
    return await modbus_server(
        {1: emulated("eastron_sdm230", power=500.0), 3: emulated("generic_battery", soc=20.0)}
    )


async def setup_planning_home(
    hass: HomeAssistant, modbus_port: int, link: str = "standalone", **settings: Any
) -> MockConfigEntry:
    """The home with its meter and battery, planning from PLANNING."""
    entry = node_entry(
        link,
        devices=[
            device(modbus_port, 1, "eastron_sdm230", "grid_meter"),
            device(modbus_port, 3, "generic_battery", "battery", limits=BATTERY_LIMITS),
        ],
        **settings,
    )
    entry.add_to_hass(hass)
    options = {CONF_TAGS: {}, CONF_PLANNING: PLANNING}
    hass.config_entries.async_update_entry(entry, options=options)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    return entry


async def start_home(hass: HomeAssistant, server: EmulatorServer) -> MockConfigEntry:
    await record_load_history(hass)
    set_inputs(hass, slot_start(dt_util.utcnow()))
    return await setup_planning_home(hass, server.port)


def battery_id(entry: MockConfigEntry) -> str:
    return next(s.subentry_id for s in entry.subentries.values() if s.data["unit"] == 3)


def state(hass: HomeAssistant, entity_id: str) -> Any:
    found = hass.states.get(entity_id)
    assert found is not None, entity_id
    return found


async def tick(hass: HomeAssistant, entry: MockConfigEntry, at: datetime | None = None) -> None:
    executor = entry.runtime_data.executor
    assert executor is not None
    await executor.async_tick(at)
    await hass.async_block_till_done()


async def test_the_home_plans_itself_and_runs_the_plan(
    hass: HomeAssistant, server: EmulatorServer
) -> None:
    entry = await start_home(hass, server)
    standalone = entry.runtime_data.standalone
    assert standalone is not None
    plan = standalone.plan
    assert plan is not None

    # The same inputs planned independently, without Home Assistant, give the same plan.
    recorded = plan.issued.replace(minute=0, second=0, microsecond=0)  # the history's last hour
    descriptor = entry.runtime_data.runtime.descriptor()
    expected = plan_standalone(
        Planner(),
        descriptor,
        PlanningInputs(
            import_rates=merged_rates(
                parse_rates("", {"rates": state(hass, e).attributes["rates"]})
                for e in (TODAY_RATES, TOMORROW_RATES)
            ),
            export_rates=Rates(flat=15.0),
            pv=parse_pv_forecast("", state(hass, SOLCAST_TODAY).attributes),
            load=load_profile(
                (hour, load_w(hour) / 1000)
                for hour in (recorded - timedelta(hours=h) for h in range(1, 7 * 24))
            ),
            soc_pct=20.0,
            capacity_kwh=10.0,
        ),
        plan.issued,
    ).plan
    assert expected is not None
    assert plan.devices == expected.devices
    assert plan.expected == expected.expected
    start = slot_start(plan.issued)
    assert plan.start == start
    assert plan.expiry == start + timedelta(minutes=30 * SLOTS)  # the last rate's end

    battery = plan.devices[battery_id(entry)]
    night = [battery.mode_at(slot) for slot in NIGHT]
    assert Mode.CHARGE in night
    assert Mode.DISCHARGE not in night

    status = state(hass, "sensor.elm_road_12_standalone_plan")
    assert status.state == "optimal"
    assert status.attributes["plan_id"] == plan.id
    assert status.attributes["problems"] == []

    # The executor runs it: the evening peak from the battery.
    await tick(hass, entry)
    mode = state(hass, "sensor.generic_battery_3_current_mode")
    assert mode.state == "discharge"
    assert mode.attributes["source"] == "standalone"
    assert state(hass, "sensor.elm_road_12_plan_source").state == "standalone"
    assert state(hass, "sensor.elm_road_12_plan_expiry").state == plan.expiry.isoformat()
    assert float(state(hass, "sensor.elm_road_12_state_of_charge").state) == 20.0
    expected_soc = float(state(hass, "sensor.elm_road_12_expected_state_of_charge").state)
    assert 10.0 <= expected_soc <= 20.0  # discharging from 20 % towards the 10 % floor
    change = state(hass, "sensor.elm_road_12_next_plan_change")
    assert change.attributes["changes"]["generic_battery 3"] != "discharge"


def command_runs(plan: Plan, device_id: str) -> list[tuple[int, int, Command]]:
    """The plan's runs of equal commands for the device: (first slot, end slot, command)."""
    runs: list[tuple[int, int, Command]] = []
    for slot in range(plan.slots):
        command = plan.devices[device_id].command_at(slot)
        assert command is not None
        if runs and runs[-1][2] == command:
            runs[-1] = (runs[-1][0], slot + 1, command)
        else:
            runs.append((slot, slot + 1, command))
    return runs


async def test_the_calendar_shows_the_plan_windows(
    hass: HomeAssistant, server: EmulatorServer
) -> None:
    entry = await start_home(hass, server)
    await tick(hass, entry)
    standalone = entry.runtime_data.standalone
    assert standalone is not None
    plan = standalone.plan
    assert plan is not None
    response = await hass.services.async_call(
        "calendar",
        "get_events",
        {
            "entity_id": "calendar.elm_road_12_plan",
            "start_date_time": plan.start,
            "end_date_time": plan.end,
        },
        blocking=True,
        return_response=True,
    )
    events = response["calendar.elm_road_12_plan"]["events"]  # type: ignore[index]
    runs = command_runs(plan, battery_id(entry))
    assert len(events) == len(runs)
    for event, (first, end, command) in zip(events, runs, strict=True):
        assert event["start"] == plan.slot_start(first).isoformat()
        assert event["end"] == plan.slot_start(end).isoformat()
        assert event["description"] == f"source standalone, plan {plan.id}"
        power = f" {command.value / 1000:g} kW" if command.value is not None else ""
        assert event["summary"] == f"generic_battery 3: {command.mode.value}{power}"
    assert any(e["summary"].startswith("generic_battery 3: charge") for e in events)

    current = state(hass, "calendar.elm_road_12_plan")
    assert current.state == "on"
    assert current.attributes["message"] == events[0]["summary"]


async def test_time_moves_the_plan_along(hass: HomeAssistant, server: EmulatorServer) -> None:
    entry = await start_home(hass, server)
    standalone = entry.runtime_data.standalone
    assert standalone is not None
    first = standalone.coordinator.data
    assert first is not None
    assert first.plan is not None

    # Re-planned every 30 minutes.
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=31))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert standalone.coordinator.data is not first

    # In the cheap night the battery charges, as the standalone plan says.
    battery = first.plan.devices[battery_id(entry)]
    charging = next(slot for slot in NIGHT if battery.mode_at(slot) is Mode.CHARGE)
    night = first.plan.slot_start(charging) + timedelta(minutes=10)
    await tick(hass, entry, night)
    mode = state(hass, "sensor.generic_battery_3_current_mode")
    assert mode.state == "charge"
    assert mode.attributes["source"] == "standalone"
    assert state(hass, "sensor.elm_road_12_plan_source").state == "standalone"

    # Past the last published rate nothing can be planned: the time-of-use default runs.
    after = first.plan.end + timedelta(minutes=10)
    await standalone.async_plan(after)
    await tick(hass, entry, after)
    status = state(hass, "sensor.elm_road_12_standalone_plan")
    assert status.state == "no_plan"
    assert any(
        p.startswith("no import rate for the half hour") for p in status.attributes["problems"]
    )
    assert state(hass, "sensor.elm_road_12_plan_source").state == "default"
    assert state(hass, "sensor.generic_battery_3_current_mode").attributes["source"] == "default"


async def test_garbage_inputs_fall_back_and_a_fix_replans_after_the_debounce(
    hass: HomeAssistant, server: EmulatorServer
) -> None:
    hass.states.async_set(TODAY_RATES, "unknown", {"rates": "cheap at night"})
    hass.states.async_set(EXPORT_RATE, "0.15", {"unit_of_measurement": "EUR/kWh"})
    hass.states.async_set(SOLCAST_TODAY, "unavailable", {})
    entry = await setup_planning_home(hass, server.port)
    assert entry.state is ConfigEntryState.LOADED

    status = state(hass, "sensor.elm_road_12_standalone_plan")
    assert status.state == "no_plan"
    problems = status.attributes["problems"]
    assert f"{TODAY_RATES}: attribute rates is not a list of {{start, end, value_inc_vat}}" in (
        problems
    )
    assert f"{TOMORROW_RATES}: no such entity" in problems
    assert any(p.startswith(f"{EXPORT_RATE}: unknown rate unit 'EUR/kWh'") for p in problems)
    assert f"{SOLCAST_TODAY}: unavailable" in problems
    assert any(p.startswith("no import rate for the half hour") for p in problems)
    await tick(hass, entry)
    assert state(hass, "sensor.elm_road_12_plan_source").state == "default"

    # The load changing (every few seconds, for a power sensor) does not start a new plan.
    standalone = entry.runtime_data.standalone
    assert standalone is not None
    last_run = standalone.coordinator.data
    hass.states.async_set(LOAD, "1234", {"unit_of_measurement": "W"})
    await hass.async_block_till_done()  # the change is handled
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert standalone.coordinator.data is last_run

    # The rates arrive: planned again once the changes settle (30 s), not at every change.
    set_inputs(hass, slot_start(dt_util.utcnow()))
    await hass.async_block_till_done()
    assert state(hass, "sensor.elm_road_12_standalone_plan").state == "no_plan"
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert state(hass, "sensor.elm_road_12_standalone_plan").state == "optimal"
    await tick(hass, entry)
    assert state(hass, "sensor.elm_road_12_plan_source").state == "standalone"


async def test_a_linked_node_without_an_aggregator_plan_runs_its_own(
    hass: HomeAssistant,
    server: EmulatorServer,
    local_ca: CertificateAuthority,
    node_credentials: Issued,
) -> None:
    """Its aggregator is out of reach (nothing listens at the broker's address): no plan
    arrives, so the standalone plan is the fallback, as it is once an aggregator plan expires."""
    await record_load_history(hass)
    set_inputs(hass, slot_start(dt_util.utcnow()))
    entry = await setup_planning_home(
        hass, server.port, "local", **local_settings(local_ca, node_credentials)
    )
    assert entry.runtime_data.link is not None
    assert entry.runtime_data.link.link.plan_in_force is None
    await tick(hass, entry)
    assert state(hass, "sensor.elm_road_12_plan_source").state == "standalone"
    assert state(hass, "sensor.generic_battery_3_current_mode").attributes["source"] == "standalone"
