"""Devices at run time: entities from the maps, writes within the envelope, outages, flows.

Every device is a real pymodbus server emulating the map; values are scripted on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from datetime import timedelta
from typing import Any

import pytest
from fractal.devices.regmap import load_shipped_map
from homeassistant.config_entries import ConfigEntryState, ConfigSubentryData
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.fractal_node import device_runtime
from custom_components.fractal_node.const import DOMAIN
from tests.fractal.devices.modbus_emulator import (
    SILENT,
    EmulatedDevice,
    EmulatedSunSpec,
    EmulatorServer,
)
from tests.fractal_node.conftest import StartEmulator
from tests.fractal_node.helpers import NODE_ID, node_entry, setup_entry
from tests.fractal_node.test_device_flow import SUNSPEC_INVERTER

BATTERY_LIMITS = {"max_charge_w": 3000, "max_discharge_w": 2500, "soc_min": 10, "soc_max": 95}


def emulated(name: str, **values: Any) -> EmulatedDevice:
    device = EmulatedDevice(load_shipped_map(name))
    for register, value in values.items():
        device.set(register, value)
    return device


def device(port: int, unit: int, model: str, role: str, **extra: Any) -> ConfigSubentryData:
    data = {"transport": "tcp", "host": "127.0.0.1", "port": port, "unit": unit}
    return ConfigSubentryData(
        data=data | {"model": model, "role": role, **extra},
        subentry_type="modbus_device",
        title=f"{model} {unit}",
        unique_id=f"127.0.0.1:{port}/{unit}",
    )


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device_runtime, "MODBUS_TIMEOUT", 0.3)


@pytest.fixture
async def home(hass: HomeAssistant, modbus_server: StartEmulator) -> tuple[MockConfigEntry, Any]:
    """A home with a grid meter, a PV meter and a battery on one Modbus TCP gateway."""
    server = await modbus_server(
        {
            1: emulated("eastron_sdm230", power=500.0),
            2: emulated("eastron_sdm230", power=3000.0),
            3: emulated("generic_battery", power=1500, soc=57.5),
        }
    )
    entry = node_entry(
        devices=[
            device(server.port, 1, "eastron_sdm230", "grid_meter"),
            device(server.port, 2, "eastron_sdm230", "pv_meter"),
            device(server.port, 3, "generic_battery", "battery", limits=BATTERY_LIMITS),
        ]
    )
    await setup_entry(hass, entry)
    return entry, server


def subentry_id(entry: MockConfigEntry, unit: int) -> str:
    return next(s.subentry_id for s in entry.subentries.values() if s.data["unit"] == unit)


def entity_id(hass: HomeAssistant, entry: MockConfigEntry, unit: int, key: str) -> str:
    registry = er.async_get(hass)
    unique_id = f"{NODE_ID}_{subentry_id(entry, unit)}_{key}"
    found = [
        registry.async_get_entity_id(domain, DOMAIN, unique_id)
        for domain in ("sensor", "number", "select", "switch")
    ]
    (entity,) = [entity for entity in found if entity is not None]
    return entity


def state(hass: HomeAssistant, entity: str) -> State:
    found = hass.states.get(entity)
    assert found is not None, entity
    return found


def node_power(hass: HomeAssistant) -> dict[str, str]:
    return {
        flow: state(hass, f"sensor.elm_road_12_{flow}_power").state
        for flow in ("grid", "pv", "battery", "load")
    }


async def poll(hass: HomeAssistant, entry: MockConfigEntry, unit: int, group: str = "fast") -> None:
    await entry.runtime_data.devices[subentry_id(entry, unit)].coordinators[group].async_refresh()
    await hass.async_block_till_done()


async def test_energy_sensors_are_ready_for_the_energy_dashboard(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, _ = home

    energy = state(hass, entity_id(hass, entry, 1, "energy_import"))
    power = state(hass, entity_id(hass, entry, 1, "power"))
    soc = state(hass, entity_id(hass, entry, 3, "soc"))

    assert energy.attributes["device_class"] == "energy"
    assert energy.attributes["state_class"] == "total_increasing"
    assert energy.attributes["unit_of_measurement"] == "Wh"
    assert (power.state, power.attributes["device_class"]) == ("500.0", "power")
    assert power.attributes["state_class"] == "measurement"
    assert (soc.state, soc.attributes["unit_of_measurement"]) == ("57.5", "%")


async def test_devices_sit_under_the_node_in_the_device_registry(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, _ = home
    devices = dr.async_get(hass)
    node = devices.async_get_device(identifiers={(DOMAIN, NODE_ID)})
    battery = devices.async_get_device(identifiers={(DOMAIN, subentry_id(entry, 3))})

    assert node is not None
    assert battery is not None
    assert battery.via_device_id == node.id
    assert (battery.manufacturer, battery.model) == ("Generic", "Battery")
    assert subentry_id(entry, 3) in battery.config_entries_subentries[entry.entry_id]


async def test_controls_exist_only_for_writable_registers_within_the_envelope(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, _ = home
    registry = er.async_get(hass)
    numbers = {
        entity.unique_id
        for entity in er.async_entries_for_config_entry(registry, entry.entry_id)
        if entity.domain == "number"
    }
    setpoint = state(hass, entity_id(hass, entry, 3, "power_setpoint"))
    min_soc = state(hass, entity_id(hass, entry, 3, "min_soc"))

    battery = subentry_id(entry, 3)
    assert numbers == {f"{NODE_ID}_{battery}_power_setpoint", f"{NODE_ID}_{battery}_min_soc"}
    # The map allows -5000..5000 W; the installer's envelope narrows it.
    assert (setpoint.attributes["min"], setpoint.attributes["max"]) == (-2500, 3000)
    assert (min_soc.attributes["min"], min_soc.attributes["max"]) == (10, 95)


async def test_writes_reach_the_device_and_never_leave_the_envelope(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, server = home
    setpoint = entity_id(hass, entry, 3, "power_setpoint")

    await hass.services.async_call(
        "number", "set_value", {"entity_id": setpoint, "value": 3000}, blocking=True
    )
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            "number", "set_value", {"entity_id": setpoint, "value": 4000}, blocking=True
        )

    assert server.devices[3].raw("power_setpoint") == [0, 3000]
    assert state(hass, setpoint).state == "3000.0"


async def test_a_write_the_device_refuses_is_a_translated_error(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, server = home
    server.set_fault(3, 4)  # device failure

    with pytest.raises(HomeAssistantError) as raised:
        await hass.services.async_call(
            "number",
            "set_value",
            {"entity_id": entity_id(hass, entry, 3, "min_soc"), "value": 20},
            blocking=True,
        )

    assert raised.value.translation_key == "write_failed"
    assert "exception code 4" in str(raised.value.translation_placeholders["reason"])


async def test_power_flows_follow_the_devices_by_role(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, server = home
    assert node_power(hass) == {
        "grid": "500.0",
        "pv": "3000.0",
        "battery": "1500.0",
        "load": "2000.0",
    }

    server.devices[1].set("power", -1200.0)  # exporting
    server.devices[3].set("power", -800)  # discharging
    await poll(hass, entry, 1)
    await poll(hass, entry, 3)

    assert node_power(hass) == {
        "grid": "-1200.0",
        "pv": "3000.0",
        "battery": "-800.0",
        "load": "2600.0",
    }


async def test_a_device_that_stops_answering_is_unavailable_logged_once_and_repaired(
    hass: HomeAssistant,
    home: tuple[MockConfigEntry, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    entry, server = home
    monkeypatch.setattr(device_runtime, "DEVICE_DOWN_ISSUE_AFTER", timedelta(0))
    issues = ir.async_get(hass)
    issue_id = device_runtime.down_issue_id(entry, subentry_id(entry, 1))
    power = entity_id(hass, entry, 1, "power")
    caplog.set_level(logging.INFO)

    server.set_fault(1, SILENT)
    await poll(hass, entry, 1)
    await poll(hass, entry, 1, "energy")
    down = (state(hass, power).state, node_power(hass)["grid"], node_power(hass)["load"])
    issue = issues.async_get_issue(DOMAIN, issue_id)
    server.set_fault(1, None)
    await asyncio.sleep(1.1)  # the device's back-off after its first failure
    await poll(hass, entry, 1)

    assert down == (STATE_UNAVAILABLE, STATE_UNAVAILABLE, STATE_UNAVAILABLE)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["name"] == "eastron_sdm230 1"
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    assert state(hass, power).state == "500.0"
    assert caplog.text.count("stopped answering") == 1
    assert caplog.text.count("answers again") == 1


async def test_a_short_outage_raises_no_repair_issue(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, server = home
    server.set_fault(2, SILENT)
    await poll(hass, entry, 2)

    assert state(hass, entity_id(hass, entry, 2, "power")).state == STATE_UNAVAILABLE
    assert not ir.async_get(hass).async_get_issue(
        DOMAIN, device_runtime.down_issue_id(entry, subentry_id(entry, 2))
    )


async def test_unloading_closes_the_gateway_connection(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, server = home
    assert server.connections == 1  # three devices, one connection

    assert await hass.config_entries.async_unload(entry.entry_id)
    for _ in range(50):
        if server.connections == 0:
            break
        await asyncio.sleep(0.02)

    assert entry.state is ConfigEntryState.NOT_LOADED
    assert server.connections == 0


async def test_an_ev_charger_switch_and_a_sunspec_inverter(
    hass: HomeAssistant, modbus_server: StartEmulator
) -> None:
    server: EmulatorServer = await modbus_server(
        {
            1: emulated("generic_evse"),
            2: EmulatedSunSpec(SUNSPEC_INVERTER),
            3: emulated("generic_hydro"),
        }
    )
    hydro_limits = {"river_level_min": 1.2, "river_level_max": 1.5, "river_level_max_rate": 0.05}
    entry = node_entry(
        devices=[
            device(
                server.port,
                1,
                "generic_evse",
                "ev_charger",
                limits={"ev_current_min": 6, "ev_current_max": 16},
            ),
            device(server.port, 2, "sunspec", "pv_inverter"),
            device(server.port, 3, "generic_hydro", "hydro", limits=hydro_limits),
        ]
    )
    await setup_entry(hass, entry)
    switch = entity_id(hass, entry, 1, "charging_enabled")
    current = state(hass, entity_id(hass, entry, 1, "charge_current_setpoint"))

    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True)
    on = state(hass, switch).state
    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    inverter_power = state(hass, entity_id(hass, entry, 2, "inverter_three_phase_w"))

    assert on == "on"
    assert state(hass, switch).state == "off"
    assert server.devices[1].raw("charging_enabled") == [0]
    assert (current.attributes["min"], current.attributes["max"]) == (6, 16)
    level = state(hass, entity_id(hass, entry, 3, "river_level_setpoint"))
    assert (level.attributes["min"], level.attributes["max"]) == (1.2, 1.5)
    assert inverter_power.attributes["device_class"] == "power"
    assert node_power(hass)["pv"] == "4200.0"
    assert (
        state(hass, entity_id(hass, entry, 2, "inverter_three_phase_wh")).attributes["state_class"]
        == "total_increasing"
    )


async def test_deleting_a_device_removes_it_and_its_entities(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, _ = home
    battery = subentry_id(entry, 3)
    soc = entity_id(hass, entry, 3, "soc")

    assert hass.config_entries.async_remove_subentry(entry, battery)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert battery not in entry.runtime_data.devices
    assert er.async_get(hass).async_get(soc) is None
    assert dr.async_get(hass).async_get_device(identifiers={(DOMAIN, battery)}) is None
    assert node_power(hass)["battery"] == STATE_UNAVAILABLE
    assert node_power(hass)["load"] == "3500.0"  # 500 from the grid + 3000 from PV


async def test_a_sunspec_inverter_off_at_start_up_makes_the_node_retry(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    entry = node_entry(devices=[device(port, 1, "sunspec", "pv_inverter")])

    await setup_entry(hass, entry)

    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert "did not answer at start-up" in entry.reason


async def test_a_damaged_custom_map_is_a_configuration_error(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    broken = device(502, 1, "custom", "sub_meter", custom_map="version: 2\n")
    entry = node_entry(devices=[broken])

    await setup_entry(hass, entry)

    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.reason is not None
    assert "custom map:1: version" in entry.reason


async def test_the_descriptor_tells_the_aggregator_the_devices_and_their_envelopes(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, _ = home

    descriptor = await hass.services.async_call(
        DOMAIN,
        "get_descriptor",
        {"config_entry_id": entry.entry_id},
        blocking=True,
        return_response=True,
    )

    assert descriptor is not None
    devices = {device["id"]: device for device in descriptor["devices"]}  # type: ignore[union-attr]
    battery = devices[subentry_id(entry, 3)]
    assert (battery["kind"], battery["manufacturer"], battery["model"]) == (
        "battery",
        "Generic",
        "Battery",
    )
    assert battery["envelope"] == {
        "max_charge_w": 3000,
        "max_discharge_w": 2500,
        "soc_min_pct": 10,
        "soc_max_pct": 95,
    }
    assert devices[subentry_id(entry, 1)]["kind"] == "grid_meter"
    assert devices[subentry_id(entry, 2)]["kind"] == "pv"


async def test_removing_the_node_removes_its_device_repairs(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, server = home
    monkeypatch.setattr(device_runtime, "DEVICE_DOWN_ISSUE_AFTER", timedelta(0))
    issue_id = device_runtime.down_issue_id(entry, subentry_id(entry, 2))
    server.set_fault(2, SILENT)
    await poll(hass, entry, 2)
    raised = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)

    assert await hass.config_entries.async_remove(entry.entry_id)

    assert raised is not None
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_diagnostics_show_each_device_without_its_address(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    home: tuple[MockConfigEntry, Any],
) -> None:
    entry, server = home
    server.devices[1].set("frequency", 12.0)  # garbage
    await poll(hass, entry, 1)
    server.set_fault(2, SILENT)
    await poll(hass, entry, 2)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)

    grid, pv, battery = diagnostics["devices"]
    assert grid["data"]["host"] == "**REDACTED**"
    assert grid["data"]["role"] == "grid_meter"
    assert grid["rejected_readings"] == {"frequency": "implausible 12.0 (expected 40.0..70.0)"}
    assert (pv["available"], "no answer" in pv["reason"]) == (False, True)
    assert battery["data"]["limits"] == BATTERY_LIMITS
    assert "127.0.0.1" not in json.dumps(diagnostics)


async def test_a_meter_on_an_rs485_line_feeds_the_grid_power(
    hass: HomeAssistant, serial_line: tuple[str, str]
) -> None:
    device_end, adapter_end = serial_line
    server = EmulatorServer({4: emulated("eastron_sdm230", power=-350.0)})
    await server.start_serial(device_end, baudrate=19200)
    line = {"serial_port": adapter_end, "baudrate": "19200", "parity": "N", "stopbits": "1"}
    meter = ConfigSubentryData(
        data={
            "transport": "serial",
            **line,
            "unit": 4,
            "model": "eastron_sdm230",
            "role": "grid_meter",
        },
        subentry_type="modbus_device",
        title="Eastron SDM230",
        unique_id=f"{adapter_end}/4",
    )
    entry = node_entry(devices=[meter])
    try:
        await setup_entry(hass, entry)
        grid = node_power(hass)["grid"]
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await server.stop()

    assert grid == "-350.0"


async def test_a_sunspec_battery_charge_limit_is_a_number_within_the_envelope(
    hass: HomeAssistant, modbus_server: StartEmulator
) -> None:
    storage = {
        1: {"Mn": "Acme", "Md": "Store 10", "SN": "B-1", "Vr": "1.0"},
        124: {"WChaMax_SF": 0, "WChaMax": 5000, "ChaState_SF": -1, "ChaState": 57.5, "ChaSt": 3},
    }
    server = await modbus_server({1: EmulatedSunSpec(storage)})
    entry = node_entry(
        devices=[device(server.port, 1, "sunspec", "battery", limits=BATTERY_LIMITS)]
    )
    await setup_entry(hass, entry)
    limit = entity_id(hass, entry, 1, "storage_basic_wchamax")
    bounds = state(hass, limit).attributes

    await hass.services.async_call(
        "number", "set_value", {"entity_id": limit, "value": 2400}, blocking=True
    )
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            "number", "set_value", {"entity_id": limit, "value": 3500}, blocking=True
        )

    assert (bounds["min"], bounds["max"]) == (0, 3000)  # the installer's max charge power
    assert state(hass, limit).state == "2400.0"
    sensors = {
        e.domain
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if e.unique_id.endswith("_storage_basic_wchamax")
    }
    assert sensors == {"number"}  # not also a sensor


async def test_each_poll_group_is_polled_on_its_own_interval_from_the_map(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, _ = home

    meter = entry.runtime_data.devices[subentry_id(entry, 1)].coordinators
    battery = entry.runtime_data.devices[subentry_id(entry, 3)].coordinators

    # eastron_sdm230 and generic_battery: fast every 5 s, energy every minute.
    assert {group: c.update_interval for group, c in meter.items()} == {
        "fast": timedelta(seconds=5),
        "energy": timedelta(seconds=60),
    }
    assert set(battery) == {"fast", "energy"}


async def test_a_battery_mode_is_a_select_showing_the_device_state(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, server = home
    server.devices[3].set("mode", 2)
    await poll(hass, entry, 3)

    mode = entity_id(hass, entry, 3, "mode")  # exactly one entity: a select, not a sensor too

    assert mode.startswith("select.")
    assert state(hass, mode).attributes["options"] == ["auto", "charge", "discharge", "hold"]
    assert state(hass, mode).state == "discharge"


async def test_selecting_a_mode_writes_its_code_to_the_device(
    hass: HomeAssistant, home: tuple[MockConfigEntry, Any]
) -> None:
    entry, server = home
    mode = entity_id(hass, entry, 3, "mode")

    await hass.services.async_call(
        "select", "select_option", {"entity_id": mode, "option": "charge"}, blocking=True
    )

    assert server.devices[3].raw("mode") == [1]
    assert state(hass, mode).state == "charge"
