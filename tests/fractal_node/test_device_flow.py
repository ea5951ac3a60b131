"""The "Add device" subentry flow against real pymodbus servers emulating the devices."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from fractal.devices.regmap import load_shipped_map, parse_map
from homeassistant.config_entries import ConfigSubentry, ConfigSubentryData
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResult, FlowResultType
from homeassistant.helpers import entity_registry as er
from pymodbus.framer import FramerType
from pytest_homeassistant_custom_component.common import MockConfigEntry
from serial.tools import list_ports  # type: ignore[import-untyped]

from custom_components.fractal_node import device_flow, device_runtime
from custom_components.fractal_node.const import DOMAIN
from tests.fractal.devices.modbus_emulator import EmulatedDevice, EmulatedSunSpec, EmulatorServer
from tests.fractal_node.conftest import StartEmulator
from tests.fractal_node.helpers import NODE_ID, node_entry, setup_entry

SUNSPEC_INVERTER = {
    1: {"Mn": "Fronius", "Md": "Symo 5.0-3-M", "SN": "30123456", "Vr": "1.2.3"},
    103: {"W_SF": 0, "W": 4200, "WH_SF": 0, "WH": 1234567, "Hz_SF": -2, "Hz": 50.01, "St": 4},
}
# A PLC no shipped map describes: one input register far from any shipped map's.
CUSTOM_MAP = """\
version: 1
manufacturer: Osney
model: Hydro PLC
poll_groups: {fast: 5}
registers:
  - name: river_level_upstream
    table: input
    address: 5000
    type: u16
    scale: 0.01
    unit: m
    group: fast
    plausible: {min: 0, max: 20}
"""


def emulated(name: str, **values: Any) -> EmulatedDevice:
    device = EmulatedDevice(load_shipped_map(name))
    for register, value in values.items():
        device.set(register, value)
    return device


@pytest.fixture
async def node(hass: HomeAssistant) -> MockConfigEntry:
    entry = node_entry()
    await setup_entry(hass, entry)
    return entry


@pytest.fixture(autouse=True)
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A silent unit is reported after 0.3 s instead of 3 s: the tests wait less."""
    monkeypatch.setattr(device_flow, "MODBUS_TIMEOUT", 0.3)
    monkeypatch.setattr(device_runtime, "MODBUS_TIMEOUT", 0.3)


async def start_flow(hass: HomeAssistant, entry: MockConfigEntry, transport: str) -> FlowResult:
    flows = hass.config_entries.subentries
    result = await flows.async_init((entry.entry_id, "modbus_device"), context={"source": "user"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    return await flows.async_configure(result["flow_id"], {"transport": transport})


async def at_model_step(
    hass: HomeAssistant, entry: MockConfigEntry, port: int, unit: int = 1, transport: str = "tcp"
) -> FlowResult:
    result = await start_flow(hass, entry, transport)
    assert result["step_id"] == "tcp"
    settings = {"host": "127.0.0.1", "port": port, "unit": unit}
    result = await hass.config_entries.subentries.async_configure(result["flow_id"], settings)
    assert result["step_id"] == "model", result
    return result


async def configure(
    hass: HomeAssistant, result: FlowResult, user_input: dict[str, Any]
) -> FlowResult:
    return await hass.config_entries.subentries.async_configure(result["flow_id"], user_input)


def only_device(entry: MockConfigEntry) -> ConfigSubentry:
    (subentry,) = entry.subentries.values()
    return subentry


async def test_a_meter_chosen_from_the_library_is_identified_and_added(
    hass: HomeAssistant, node: MockConfigEntry, modbus_server: StartEmulator
) -> None:
    server = await modbus_server({3: emulated("eastron_sdm230", serial_number=12345678)})
    result = await at_model_step(hass, node, server.port, unit=3)

    result = await configure(hass, result, {"model": "eastron_sdm230"})
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"]["device"] == "Eastron SDM230, serial 12345678"
    result = await configure(hass, result, {"role": "grid_meter"})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()  # the node reloads with its new device
    device = only_device(node)
    energy = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{NODE_ID}_{device.subentry_id}_energy_import"
    )
    assert energy is not None
    assert hass.states.get(energy) is not None
    assert device.title == "Eastron SDM230, serial 12345678"
    assert device.unique_id == f"127.0.0.1:{server.port}/3"
    assert dict(device.data) == {
        "transport": "tcp",
        "host": "127.0.0.1",
        "port": server.port,
        "unit": 3,
        "model": "eastron_sdm230",
        "role": "grid_meter",
    }


async def test_auto_detect_finds_a_battery_and_the_installer_sets_its_envelope(
    hass: HomeAssistant, node: MockConfigEntry, modbus_server: StartEmulator
) -> None:
    server = await modbus_server({1: emulated("generic_battery", serial_number="BAT00042")})
    result = await at_model_step(hass, node, server.port)

    result = await configure(hass, result, {"model": "auto"})
    assert result["description_placeholders"]["device"] == "Generic Battery, serial BAT00042"
    result = await configure(hass, result, {"role": "battery"})
    assert result["step_id"] == "limits"
    limits = {"max_charge_w": 3000, "max_discharge_w": 2500, "soc_min": 80, "soc_max": 20}
    result = await configure(hass, result, limits)
    assert result["errors"] == {"soc_max": "limits_out_of_order"}
    result = await configure(hass, result, limits | {"soc_min": 10, "soc_max": 95})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    data = only_device(node).data
    assert data["model"] == "generic_battery"
    assert data["limits"] == {
        "max_charge_w": 3000,
        "max_discharge_w": 2500,
        "soc_min": 10,
        "soc_max": 95,
    }


async def test_an_ev_charger_and_a_hydro_plant_ask_for_their_own_limits(
    hass: HomeAssistant, node: MockConfigEntry, modbus_server: StartEmulator
) -> None:
    server = await modbus_server({1: emulated("generic_evse"), 2: emulated("generic_hydro")})
    asked: dict[str, set[str]] = {}
    for unit, model, role, limits in (
        (1, "generic_evse", "ev_charger", {"ev_current_min": 6, "ev_current_max": 16}),
        (
            2,
            "generic_hydro",
            "hydro",
            {"river_level_min": 1.2, "river_level_max": 1.5, "river_level_max_rate": 0.05},
        ),
    ):
        result = await at_model_step(hass, node, server.port, unit=unit)
        result = await configure(hass, result, {"model": model})
        result = await configure(hass, result, {"role": role})
        asked[role] = {str(key) for key in result["data_schema"].schema}
        result = await configure(hass, result, limits)
        assert result["type"] is FlowResultType.CREATE_ENTRY

    assert asked == {
        "ev_charger": {"ev_current_min", "ev_current_max"},
        "hydro": {"river_level_min", "river_level_max", "river_level_max_rate"},
    }
    roles = {device.data["role"]: device.data["limits"] for device in node.subentries.values()}
    assert roles["ev_charger"] == {"ev_current_min": 6, "ev_current_max": 16}


async def test_auto_detect_recognises_a_sunspec_inverter(
    hass: HomeAssistant, node: MockConfigEntry, modbus_server: StartEmulator
) -> None:
    server = await modbus_server({1: EmulatedSunSpec(SUNSPEC_INVERTER)})
    result = await at_model_step(hass, node, server.port)

    result = await configure(hass, result, {"model": "auto"})
    assert result["description_placeholders"]["device"] == "Fronius Symo 5.0-3-M, serial 30123456"
    result = await configure(hass, result, {"role": "pv_inverter"})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert only_device(node).data["model"] == "sunspec"


async def test_ambiguous_detection_names_the_other_candidates(
    hass: HomeAssistant, node: MockConfigEntry, modbus_server: StartEmulator
) -> None:
    # An SDM630 explains more registers than an SDM230, which also reads plausibly from it.
    server = await modbus_server({1: emulated("eastron_sdm630")})
    result = await at_model_step(hass, node, server.port)

    result = await configure(hass, result, {"model": "auto"})

    assert result["step_id"] == "confirm"
    assert result["description_placeholders"]["device"].startswith("Eastron SDM630")
    assert result["description_placeholders"]["alternatives"] == "eastron_sdm230"


async def test_a_custom_map_is_validated_with_line_and_field_then_used(
    hass: HomeAssistant, node: MockConfigEntry, modbus_server: StartEmulator
) -> None:
    plc = EmulatedDevice(parse_map(CUSTOM_MAP, "osney.yaml"))
    plc.set("river_level_upstream", 1.37)
    server = await modbus_server({5: plc})
    result = await at_model_step(hass, node, server.port, unit=5)

    broken = CUSTOM_MAP.replace("type: u16", "type: u12")
    result = await configure(hass, result, {"model": "custom", "custom_map": broken})
    assert result["errors"] == {"custom_map": "invalid_custom_map"}
    assert result["description_placeholders"]["detail"].startswith(
        "custom map:9: registers[0].type: Input should be"
    )
    result = await configure(hass, result, {"model": "custom", "custom_map": CUSTOM_MAP})
    assert result["description_placeholders"]["device"] == "Osney Hydro PLC"
    result = await configure(hass, result, {"role": "sub_meter"})

    assert result["type"] is FlowResultType.CREATE_ENTRY
    data = only_device(node).data
    assert (data["model"], data["custom_map"]) == ("custom", CUSTOM_MAP)


async def test_an_empty_custom_map_is_an_error_in_the_form(
    hass: HomeAssistant, node: MockConfigEntry, modbus_server: StartEmulator
) -> None:
    server = await modbus_server({1: emulated("eastron_sdm230")})
    result = await at_model_step(hass, node, server.port)

    result = await configure(hass, result, {"model": "custom"})

    assert result["errors"] == {"custom_map": "invalid_custom_map"}
    assert (
        result["description_placeholders"]["detail"]
        == "custom map:1: (document): expected a mapping"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_nothing_listening_is_cannot_connect(
    hass: HomeAssistant, node: MockConfigEntry, socket_enabled: None
) -> None:
    result = await at_model_step(hass, node, free_port())

    result = await configure(hass, result, {"model": "eastron_sdm230"})

    assert result["errors"] == {"base": "cannot_connect"}
    assert "cannot connect" in result["description_placeholders"]["detail"]
    assert not node.subentries


@pytest.mark.parametrize(
    "case",
    [
        ("absent unit", "eastron_sdm230", {}, "timeout", "no answer within 0.3 s"),
        (11, "eastron_sdm230", {}, "wrong_unit", "exception code 11"),
        (None, "generic_battery", {}, "wrong_model", "exception code 2 (illegal data address)"),
        (None, "eastron_sdm230", {"frequency": 12.0}, "implausible", "frequency: implausible"),
    ],
)
async def test_each_failed_connection_test_has_its_own_message(
    hass: HomeAssistant,
    node: MockConfigEntry,
    modbus_server: StartEmulator,
    case: tuple[int | str | None, str, dict[str, float], str, str],
) -> None:
    fault, model, values, error, detail = case
    server = await modbus_server({1: emulated("eastron_sdm230", **values)})
    unit = 9 if fault == "absent unit" else 1  # nothing answers at unit 9
    if isinstance(fault, int):
        server.set_fault(1, fault)
    result = await at_model_step(hass, node, server.port, unit=unit)

    result = await configure(hass, result, {"model": model})

    assert result["step_id"] == "model"
    assert result["errors"] == {"base": error}
    assert detail in result["description_placeholders"]["detail"]
    assert not node.subentries


async def test_auto_detect_says_so_when_no_model_fits(
    hass: HomeAssistant, node: MockConfigEntry, modbus_server: StartEmulator
) -> None:
    server = await modbus_server({1: EmulatedDevice(parse_map(CUSTOM_MAP, "osney.yaml"))})
    result = await at_model_step(hass, node, server.port)

    result = await configure(hass, result, {"model": "auto"})

    assert result["errors"] == {"base": "not_detected"}


async def test_a_host_with_scheme_is_refused_and_the_same_device_twice_aborts(
    hass: HomeAssistant, node: MockConfigEntry, modbus_server: StartEmulator
) -> None:
    server = await modbus_server({1: emulated("eastron_sdm230")})
    result = await start_flow(hass, node, "tcp")
    result = await configure(hass, result, {"host": "http://127.0.0.1", "port": 502, "unit": 1})
    assert result["errors"] == {"host": "invalid_host"}
    result = await configure(hass, result, {"host": " 127.0.0.1 ", "port": server.port, "unit": 1})
    result = await configure(hass, result, {"model": "eastron_sdm230"})
    await configure(hass, result, {"role": "sub_meter"})

    # The same address and unit, even framed as RTU over TCP, is the same device.
    result = await start_flow(hass, node, "rtu_over_tcp")
    result = await configure(hass, result, {"host": "127.0.0.1", "port": server.port, "unit": 1})

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_rtu_frames_through_a_serial_gateway(
    hass: HomeAssistant, node: MockConfigEntry, modbus_server: StartEmulator
) -> None:
    server = await modbus_server({2: emulated("eastron_sdm230", serial_number=777)}, FramerType.RTU)
    result = await at_model_step(hass, node, server.port, unit=2, transport="rtu_over_tcp")

    result = await configure(hass, result, {"model": "eastron_sdm230"})
    assert result["description_placeholders"]["device"] == "Eastron SDM230, serial 777"
    result = await configure(hass, result, {"role": "pv_meter"})

    assert only_device(node).data["transport"] == "rtu_over_tcp"


async def test_a_meter_on_an_rs485_adapter_typed_in_by_path(
    hass: HomeAssistant, serial_line: tuple[str, str]
) -> None:
    """The node is not loaded (e.g. set up failed): the test opens a connection of its own."""
    node = node_entry()
    node.add_to_hass(hass)
    device_end, adapter_end = serial_line
    meter = emulated("eastron_sdm230", serial_number=4242)
    server = EmulatorServer({1: meter})
    await server.start_serial(device_end, baudrate=19200)
    try:
        result = await start_flow(hass, node, "serial")
        assert result["step_id"] == "serial"
        port_selector = result["data_schema"].schema["serial_port"].config
        found = await hass.async_add_executor_job(list_ports.comports)
        assert port_selector["options"] == sorted(port.device for port in found)
        assert port_selector["custom_value"] is True  # the pty is not listed: typed in
        line = {"baudrate": "19200", "parity": "N", "stopbits": "1", "unit": 1}
        result = await configure(hass, result, {"serial_port": "  ", **line})
        assert result["errors"] == {"serial_port": "invalid_serial_port"}
        result = await configure(hass, result, {"serial_port": adapter_end, **line})
        result = await configure(hass, result, {"model": "eastron_sdm230"})
        assert result["description_placeholders"]["device"] == "Eastron SDM230, serial 4242"
        result = await configure(hass, result, {"role": "grid_meter"})
    finally:
        await server.stop()

    device = only_device(node)
    assert device.unique_id == f"{adapter_end}/1"
    assert device.data["baudrate"] == "19200"


async def start_reconfigure(hass: HomeAssistant, entry: MockConfigEntry) -> FlowResult:
    (subentry_id,) = entry.subentries
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, "modbus_device"),
        context={"source": "reconfigure", "subentry_id": subentry_id},
    )


async def test_reconfigure_changes_the_envelope_starting_from_the_one_in_force(
    hass: HomeAssistant, modbus_server: StartEmulator
) -> None:
    server = await modbus_server({1: emulated("generic_battery")})
    limits = {"max_charge_w": 3000, "max_discharge_w": 2500, "soc_min": 10, "soc_max": 95}
    data = {"transport": "tcp", "host": "127.0.0.1", "port": server.port, "unit": 1}
    battery = ConfigSubentryData(
        data=data | {"model": "generic_battery", "role": "battery", "limits": limits},
        subentry_type="modbus_device",
        title="Generic Battery, serial EMUSER",
        unique_id=f"127.0.0.1:{server.port}/1",
    )
    node = node_entry(devices=[battery])
    await setup_entry(hass, node)

    result = await start_reconfigure(hass, node)
    assert result["step_id"] == "reconfigure"
    result = await configure(hass, result, {"role": "battery"})
    suggested = {
        str(key): key.description["suggested_value"] for key in result["data_schema"].schema
    }
    result = await configure(hass, result, limits | {"max_charge_w": 2000})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    changed = dict(only_device(node).data)

    result = await start_reconfigure(hass, node)
    result = await configure(hass, result, {"role": "sub_meter"})
    await hass.async_block_till_done()

    assert suggested == limits
    assert changed["limits"]["max_charge_w"] == 2000
    assert result["reason"] == "reconfigure_successful"
    assert "limits" not in only_device(node).data
    assert only_device(node).data["role"] == "sub_meter"
    assert only_device(node).data["model"] == "generic_battery"


async def test_a_map_pasted_before_choosing_a_library_model_is_not_kept(
    hass: HomeAssistant, node: MockConfigEntry, modbus_server: StartEmulator
) -> None:
    server = await modbus_server({1: emulated("eastron_sdm230")})
    result = await at_model_step(hass, node, server.port)

    result = await configure(hass, result, {"model": "custom", "custom_map": CUSTOM_MAP})
    assert result["errors"] == {"base": "wrong_model"}  # no register 5000 on a meter
    result = await configure(hass, result, {"model": "eastron_sdm230", "custom_map": CUSTOM_MAP})
    await configure(hass, result, {"role": "sub_meter"})

    assert "custom_map" not in only_device(node).data
