"""Blueprints that work with a real Fractal Node (the integration set up in the test harness,
its battery and grid meter real pymodbus servers): the plan calendar a best window comes from,
and the override an opt-out makes; and the flexibility event's conversation with the phone.

A flexibility-event run waits (for a tap or the end of the event), and the harness's
`async_block_till_done` would wait for it too, so these tests wait for what they expect instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from freezegun.api import TickingDateTimeFactory
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
)

from custom_components.fractal_node.const import (
    CONF_CHEAP_CHARGE_W,
    CONF_CHEAP_WINDOW,
    CONF_DEFAULT_PLAN,
    CONF_TAGS,
    DOMAIN,
)
from tests.blueprints.blueprint_support import (
    AUTOMATION,
    automation_from,
    capture_notifications,
    capture_overrides,
    move_to,
    set_state,
)
from tests.fractal.devices.modbus_emulator import EmulatorServer
from tests.fractal_node.helpers import node_entry, until
from tests.fractal_node.test_device_runtime import BATTERY_LIMITS, device, emulated

LONDON = dt_util.get_time_zone("Europe/London")
PLAN_SOURCE = "sensor.elm_road_12_plan_source"
EXPORTED = "sensor.elm_road_12_energy_exported"


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=LONDON)


@pytest.fixture
def ticking(request: pytest.FixtureRequest) -> Iterator[TickingDateTimeFactory]:
    """The clock at the test's start time, ticking on from there: the node's Modbus reads wait
    on the event loop's clock, which a stopped clock would never let time out."""
    with freeze_time(request.param, tick=True) as clock:
        assert isinstance(clock, TickingDateTimeFactory)
        yield clock


@pytest.fixture
async def server(socket_enabled: None) -> AsyncIterator[EmulatorServer]:
    """A grid meter importing 500 W (unit 1) and a battery at 57.5 % (unit 3)."""
    emulator = EmulatorServer(
        {
            1: emulated("eastron_sdm230", power=500.0),
            3: emulated("generic_battery", power=0, soc=57.5),
        }
    )
    await emulator.start_tcp(0)
    yield emulator
    await emulator.stop()


async def home(hass: HomeAssistant, server: EmulatorServer, **options: Any) -> MockConfigEntry:
    """A standalone home with that meter and battery; its default plan in `options`."""
    entry = node_entry(
        devices=[
            device(server.port, 1, "eastron_sdm230", "grid_meter"),
            device(server.port, 3, "generic_battery", "battery", limits=BATTERY_LIMITS),
        ]
    )
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={CONF_TAGS: {}, **options})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    executor = entry.runtime_data.executor
    assert executor is not None
    await executor.async_tick(dt_util.utcnow())  # its plans in force, on the calendar too
    await hass.async_block_till_done()
    return entry


def battery_of(hass: HomeAssistant, entry: MockConfigEntry) -> tuple[str, str]:
    """(the battery's subentry id, its Home Assistant device id)."""
    subentry_id = next(s.subentry_id for s in entry.subentries.values() if s.data["unit"] == 3)
    found = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, subentry_id)})
    assert found is not None
    return subentry_id, found.id


def plan_calendar(hass: HomeAssistant) -> str:
    (entity_id,) = (s.entity_id for s in hass.states.async_all("calendar"))
    return entity_id


# --- Run it when the sun shines or power is cheapest ---------------------------------------


@pytest.mark.parametrize("ticking", [at(23, 10, 52)], indirect=True)
async def test_the_plans_cheap_window_on_the_real_calendar_starts_the_dishwasher(
    ticking: TickingDateTimeFactory, blueprint_hass: HomeAssistant, server: EmulatorServer
) -> None:
    hass, freezer = blueprint_hass, ticking
    window = {CONF_CHEAP_WINDOW: "11:00-13:00", CONF_CHEAP_CHARGE_W: 2000}
    await home(hass, server, **{CONF_DEFAULT_PLAN: window})
    phone = capture_notifications(hass, "mobile_app_phone")
    switched = capture_notifications(hass)  # any other notify service: must stay unused
    plugs: list[ServiceCall] = []
    hass.services.async_register("switch", "turn_on", plugs.append)
    await automation_from(
        hass,
        "run_when_cheap_or_sunny",
        plan_calendar=plan_calendar(hass),
        notify_action="notify.mobile_app_phone",
        load_switches=["switch.dishwasher_plug"],
        once_a_day=False,
    )

    await move_to(hass, freezer, at(23, 10, 59))
    assert phone == []
    await move_to(hass, freezer, at(23, 11, 0, 1))  # the battery's charge run begins

    (call,) = phone
    assert call.data["title"] == "Good time to run the dishwasher"
    assert call.data["message"].startswith("Start the dishwasher now: power is cheap or green")
    assert "charge 2 kW" in call.data["message"]  # the calendar event's own title
    assert [c.data["entity_id"] for c in plugs] == [["switch.dishwasher_plug"]]
    assert switched == []

    # The battery goes back to balance: no good time for a dishwasher.
    await move_to(hass, freezer, at(23, 12, 50))
    await move_to(hass, freezer, at(23, 13, 0, 1))
    assert len(phone) == 1

    # The next day's window.
    await move_to(hass, freezer, at(24, 10, 30))  # the executor ticks: the day's default plan
    await move_to(hass, freezer, at(24, 10, 52))  # the trigger looks ahead and sees its window
    await move_to(hass, freezer, at(24, 11, 0, 1))
    assert len(phone) == 2


@pytest.mark.parametrize("ticking", [at(23, 12, 0)], indirect=True)
async def test_a_sunny_surplus_is_a_good_time_too_once_a_day(
    ticking: TickingDateTimeFactory, blueprint_hass: HomeAssistant, server: EmulatorServer
) -> None:
    hass, freezer = blueprint_hass, ticking
    await home(hass, server)
    phone = capture_notifications(hass)
    await set_state(hass, "sensor.export_power", 0, unit_of_measurement="W")
    await automation_from(
        hass,
        "run_when_cheap_or_sunny",
        plan_calendar=plan_calendar(hass),
        export_sensor="sensor.export_power",
        load_name="the washing machine",
    )
    await move_to(hass, freezer, at(23, 12, 20))
    assert phone == []

    await set_state(hass, "sensor.export_power", 2200)
    await move_to(hass, freezer, at(23, 12, 25, 1))  # five sunny minutes
    await set_state(hass, "sensor.export_power", 100)
    await set_state(hass, "sensor.export_power", 2500)
    await move_to(hass, freezer, at(23, 12, 31))  # sunny again, the same day

    (call,) = phone
    assert call.data["title"] == "Good time to run the washing machine"
    assert "the sun is shining: your home is exporting 2200 W" in call.data["message"]


# --- Flexibility event -------------------------------------------------------------------


def flexibility_inputs(**extra: Any) -> dict[str, Any]:
    return {
        "event_signal": PLAN_SOURCE,
        "delivered_energy": EXPORTED,
        "notify_action": "notify.mobile_app_phone",
        **extra,
    }


def opt_out_button(notification: ServiceCall) -> str:
    (button,) = notification.data["data"]["actions"]
    assert button["title"] == "Opt out"
    action: str = button["action"]
    return action


@pytest.mark.parametrize(
    ("signal", "running", "over"),
    [
        (PLAN_SOURCE, "dso", "aggregator"),  # the node's Plan source: a DSO event's plan
        ("binary_sensor.street_flex_event", "on", "off"),  # the community's own announcement
    ],
)
async def test_a_flexibility_event_ends_with_thanks_for_the_energy_delivered(
    blueprint_hass: HomeAssistant, signal: str, running: str, over: str
) -> None:
    hass = blueprint_hass
    phone = capture_notifications(hass, "mobile_app_phone")
    overrides = capture_overrides(hass)
    await set_state(hass, signal, over)
    await set_state(hass, EXPORTED, 1520.4, unit_of_measurement="kWh", device_class="energy")
    inputs = flexibility_inputs(devices=["a-device"], event_signal=signal, event_state=running)
    await automation_from(hass, "flexibility_event", **inputs)

    hass.states.async_set(signal, running)
    await until(lambda: len(phone) == 1)
    assert phone[0].data["title"] == "Your community is helping the network"
    assert opt_out_button(phone[0]).startswith("FRACTAL_OPT_OUT_")

    hass.states.async_set(EXPORTED, "1522.95", {"unit_of_measurement": "kWh"})
    hass.states.async_set(signal, over)  # the event is over
    await until(lambda: len(phone) == 2)

    assert phone[1].data["title"] == "Thank you!"
    assert "Your home delivered 2.55 kWh" in phone[1].data["message"]
    assert overrides == []
    await hass.async_block_till_done()
    automation = hass.states.get(AUTOMATION)
    assert automation is not None
    assert automation.attributes["current"] == 0  # nothing left waiting


async def test_a_counter_in_watt_hours_is_reported_in_kilowatt_hours(
    blueprint_hass: HomeAssistant,
) -> None:
    hass = blueprint_hass
    phone = capture_notifications(hass, "mobile_app_phone")
    await set_state(hass, PLAN_SOURCE, "aggregator")
    await set_state(hass, EXPORTED, 800, unit_of_measurement="Wh", device_class="energy")
    await automation_from(hass, "flexibility_event", **flexibility_inputs(devices=["a-device"]))

    hass.states.async_set(PLAN_SOURCE, "dso")
    await until(lambda: len(phone) == 1)
    hass.states.async_set(EXPORTED, "2050", {"unit_of_measurement": "Wh"})
    hass.states.async_set(PLAN_SOURCE, "default")
    await until(lambda: len(phone) == 2)

    assert "Your home delivered 1.25 kWh" in phone[1].data["message"]


async def test_opting_out_of_a_flexibility_event_really_returns_the_battery_to_balance(
    blueprint_hass: HomeAssistant, server: EmulatorServer
) -> None:
    hass = blueprint_hass
    entry = await home(hass, server)
    battery_subentry, battery = battery_of(hass, entry)
    phone = capture_notifications(hass, "mobile_app_phone")
    await set_state(hass, PLAN_SOURCE, "aggregator")
    await set_state(hass, EXPORTED, 10, unit_of_measurement="kWh", device_class="energy")
    await automation_from(
        hass,
        "flexibility_event",
        **flexibility_inputs(devices=[battery], opt_out_duration={"hours": 2}),
    )

    hass.states.async_set(PLAN_SOURCE, "dso")
    await until(lambda: len(phone) == 1)
    hass.bus.async_fire("mobile_app_notification_action", {"action": "FRACTAL_OPT_OUT_1"})
    hass.bus.async_fire("mobile_app_notification_action", {"action": opt_out_button(phone[0])})
    await until(lambda: len(phone) == 2)

    assert phone[1].data["title"] == "You are opted out"
    executor = entry.runtime_data.executor
    assert executor is not None
    assert set(executor.overrides) == {battery_subentry}  # the real override, on the battery
    title = entry.subentries[battery_subentry].title.replace(" ", "_")
    await until(lambda: _attribute(hass, f"sensor.{title}_current_mode", "source") == "override")
    mode = hass.states.get(f"sensor.{title}_current_mode")
    assert mode is not None
    assert mode.state == "balance"
    plan = executor.overrides[battery_subentry]
    assert plan.expiry - dt_util.utcnow() <= timedelta(hours=2)
    assert plan.expiry - dt_util.utcnow() > timedelta(hours=1, minutes=59)

    hass.states.async_set(PLAN_SOURCE, "aggregator")
    await hass.async_block_till_done()
    assert len(phone) == 2  # no thank-you for an event the home left


def _attribute(hass: HomeAssistant, entity_id: str, name: str) -> Any:
    state = hass.states.get(entity_id)
    return state.attributes.get(name) if state is not None else None
