"""The householder's override and the replan request, through the services, on a home whose
battery and grid meter are real pymodbus servers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fractal_node import executor_runtime
from custom_components.fractal_node.const import DOMAIN
from tests.fractal.devices.modbus_emulator import EmulatedDevice, EmulatorServer
from tests.fractal_node.conftest import StartEmulator
from tests.fractal_node.helpers import node_entry, setup_entry
from tests.fractal_node.test_device_runtime import BATTERY_LIMITS, device, emulated
from tests.fractal_node.test_node_link import battery_setpoint


@pytest.fixture
async def server(modbus_server: StartEmulator) -> EmulatorServer:
    """A grid meter importing 500 W (unit 1) and a battery at 57.5 % (unit 3)."""
    return await modbus_server(
        {
            1: emulated("eastron_sdm230", power=500.0),
            3: emulated("generic_battery", power=0, soc=57.5),
        }
    )


@pytest.fixture
async def home(
    hass: HomeAssistant, server: EmulatorServer
) -> tuple[MockConfigEntry, EmulatedDevice, str]:
    """A standalone home with that meter and battery."""
    battery = server.devices[3]
    entry = node_entry(
        devices=[
            device(server.port, 1, "eastron_sdm230", "grid_meter"),
            device(server.port, 3, "generic_battery", "battery", limits=BATTERY_LIMITS),
        ]
    )
    await setup_entry(hass, entry)
    battery_id = next(s.subentry_id for s in entry.subentries.values() if s.data["unit"] == 3)
    return entry, battery, battery_id


def ha_device(hass: HomeAssistant, subentry_id: str) -> str:
    found = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, subentry_id)})
    assert found is not None
    return found.id


async def override(hass: HomeAssistant, **data: Any) -> None:
    await hass.services.async_call(DOMAIN, "override", data, blocking=True)


def mode_state(hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str) -> Any:
    title = entry.subentries[subentry_id].title.replace(" ", "_")
    return hass.states.get(f"sensor.{title}_current_mode")


async def test_an_override_outranks_the_plan_within_the_envelope_until_it_ends(
    hass: HomeAssistant,
    home: tuple[MockConfigEntry, EmulatedDevice, str],
) -> None:
    entry, battery, battery_id = home
    device_id = ha_device(hass, battery_id)

    await override(hass, device_id=device_id, mode="charge", value=2000, duration={"minutes": 30})
    assert battery_setpoint(battery) == (2000, 1)  # written at once, not at the next tick
    state = mode_state(hass, entry, battery_id)
    assert state.state == "charge"
    assert state.attributes["source"] == "override"

    # Beyond the installer's maximum charge power: clamped, with the reason.
    await override(hass, device_id=device_id, mode="charge", value=5000, duration={"hours": 1})
    assert battery_setpoint(battery) == (3000, 1)
    reasons = mode_state(hass, entry, battery_id).attributes["reasons"]
    assert any("max_charge_w" in reason for reason in reasons)

    # A one-second override ends by itself: the default plan (balance) is back.
    await override(hass, device_id=device_id, mode="hold", duration={"seconds": 1})
    assert battery_setpoint(battery) == (0, 3)
    await asyncio.sleep(1.1)
    executor = entry.runtime_data.executor
    assert executor is not None
    await executor.async_tick()
    await hass.async_block_till_done()
    state = mode_state(hass, entry, battery_id)
    assert state.state == "balance"
    assert state.attributes["source"] == "default"
    assert executor.overrides == {}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"mode": "level", "value": 1.2}, "level is not valid for a battery"),
        ({"mode": "charge"}, "value"),
        ({"mode": "hold", "duration": {"hours": 49}}, "at most 48 hours"),
        ({"mode": "sideways"}, "mode"),
    ],
)
async def test_a_bad_override_is_refused_with_its_reason(
    hass: HomeAssistant,
    home: tuple[MockConfigEntry, EmulatedDevice, str],
    data: dict[str, Any],
    problem: str,
) -> None:
    entry, _, battery_id = home
    call = {"device_id": ha_device(hass, battery_id), "duration": {"minutes": 5}} | data
    with pytest.raises(ServiceValidationError) as raised:
        await override(hass, **call)
    assert raised.value.translation_key == "invalid_override"
    assert problem in str(raised.value.translation_placeholders)
    executor = entry.runtime_data.executor
    assert executor is not None
    assert executor.overrides == {}


async def test_an_override_for_an_unknown_device_is_refused(
    hass: HomeAssistant, home: tuple[MockConfigEntry, EmulatedDevice, str]
) -> None:
    with pytest.raises(ServiceValidationError) as raised:
        await override(hass, device_id="nope", mode="hold", duration={"minutes": 5})
    assert raised.value.translation_key == "device_not_found"


async def test_a_standalone_node_cannot_ask_for_a_plan(hass: HomeAssistant) -> None:
    entry = node_entry()
    await setup_entry(hass, entry)
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, "replan", {"config_entry_id": entry.entry_id}, blocking=True
        )
    assert raised.value.translation_key == "not_linked"


@pytest.fixture(autouse=True)
def _no_ticks_in_between(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests drive the executor through the services and `async_tick` only."""
    monkeypatch.setattr(executor_runtime, "TICK_INTERVAL", executor_runtime.TICK_INTERVAL * 720)


async def test_a_refused_write_is_logged_once_and_retried_until_it_works(
    hass: HomeAssistant,
    home: tuple[MockConfigEntry, EmulatedDevice, str],
    server: EmulatorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry, battery, battery_id = home
    executor = entry.runtime_data.executor
    assert executor is not None
    server.set_fault(3, 4)  # the battery answers every request with exception 4 (device failure)
    await override(
        hass,
        device_id=ha_device(hass, battery_id),
        mode="charge",
        value=1000,
        duration={"hours": 1},
    )
    await executor.async_tick()
    refused = [r for r in caplog.records if "not written" in r.getMessage()]
    assert len(refused) == 1  # two ticks, one log line
    assert "generic_battery 3" in refused[0].getMessage()

    server.set_fault(3, None)
    await executor.async_tick()
    assert battery_setpoint(battery) == (1000, 1)
    assert any("written again" in r.getMessage() for r in caplog.records)


async def test_overrides_of_two_devices_run_side_by_side(
    hass: HomeAssistant, modbus_server: StartEmulator
) -> None:
    battery, charger = emulated("generic_battery", power=0, soc=57.5), emulated("generic_evse")
    server = await modbus_server(
        {1: emulated("eastron_sdm230", power=500.0), 3: battery, 4: charger}
    )
    ev_limits = {"ev_current_min": 6, "ev_current_max": 16}
    entry = node_entry(
        devices=[
            device(server.port, 1, "eastron_sdm230", "grid_meter"),
            device(server.port, 3, "generic_battery", "battery", limits=BATTERY_LIMITS),
            device(server.port, 4, "generic_evse", "ev_charger", limits=ev_limits),
        ]
    )
    await setup_entry(hass, entry)
    ids = {s.data["unit"]: s.subentry_id for s in entry.subentries.values()}

    await override(
        hass, device_id=ha_device(hass, ids[3]), mode="charge", value=2000, duration={"hours": 1}
    )
    await override(
        hass, device_id=ha_device(hass, ids[4]), mode="ev_current", value=10, duration={"hours": 2}
    )

    assert battery_setpoint(battery) == (2000, 1)  # not replaced by the charger's override
    assert charger.raw("charging_enabled") == [1]
    assert mode_state(hass, entry, ids[3]).attributes["source"] == "override"
    charging = mode_state(hass, entry, ids[4])
    assert (charging.state, charging.attributes["setpoint"]) == ("ev_current", 10)


async def test_an_immersion_relay_is_switched_on_and_off(
    hass: HomeAssistant, modbus_server: StartEmulator
) -> None:
    relay = emulated("generic_immersion")
    server = await modbus_server({1: emulated("eastron_sdm230", power=500.0), 5: relay})
    entry = node_entry(
        devices=[
            device(server.port, 1, "eastron_sdm230", "grid_meter"),
            device(
                server.port, 5, "generic_immersion", "immersion", limits={"heater_power_w": 3000}
            ),
        ]
    )
    await setup_entry(hass, entry)
    (relay_id,) = (s.subentry_id for s in entry.subentries.values() if s.data["unit"] == 5)
    described = entry.runtime_data.runtime.descriptor().device(relay_id)
    assert described is not None
    assert (described.kind, described.envelope.power_max_w) == ("immersion", 3000)

    await override(hass, device_id=ha_device(hass, relay_id), mode="on", duration={"hours": 1})
    assert relay.raw("heater_on") == [1]
    assert mode_state(hass, entry, relay_id).state == "on"

    await override(hass, device_id=ha_device(hass, relay_id), mode="off", duration={"hours": 1})
    assert relay.raw("heater_on") == [0]


async def test_the_override_select_holds_the_battery_and_gives_it_back_to_the_plan(
    hass: HomeAssistant,
    home: tuple[MockConfigEntry, EmulatedDevice, str],
) -> None:
    entry, battery, battery_id = home
    title = entry.subentries[battery_id].title.replace(" ", "_")
    select_id = f"select.{title}_override"
    state = hass.states.get(select_id)
    assert state is not None
    assert state.state == "follow_plan"
    assert state.attributes["options"] == ["follow_plan", "balance", "hold", "off"]

    await hass.services.async_call(
        "select", "select_option", {"entity_id": select_id, "option": "hold"}, blocking=True
    )
    assert battery_setpoint(battery) == (0, 3)  # written at once
    assert hass.states.get(select_id).state == "hold"
    assert mode_state(hass, entry, battery_id).attributes["source"] == "override"
    until = dt_util.parse_datetime(hass.states.get(select_id).attributes["until"])
    assert until is not None
    assert timedelta(hours=1, minutes=59) < until - dt_util.utcnow() <= timedelta(hours=2)

    await hass.services.async_call(
        "select", "select_option", {"entity_id": select_id, "option": "follow_plan"}, blocking=True
    )
    assert hass.states.get(select_id).state == "follow_plan"
    state = mode_state(hass, entry, battery_id)
    assert (state.state, state.attributes["source"]) == ("balance", "default")
    assert entry.runtime_data.executor.overrides == {}
