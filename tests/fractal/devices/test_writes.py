"""Writes go through the safety envelope, reach a real device, and are verified by read-back."""

from __future__ import annotations

import math

import pytest
from fractal.devices.device import Device
from fractal.devices.errors import DeviceException, WriteNotVerified, WriteRefused
from fractal.devices.regmap import Range, Table, load_shipped_map

pytestmark = pytest.mark.enable_socket


async def evse(start_server, gateways, envelope: dict[str, Range] | None = None):
    server = await start_server({3: "generic_evse"})
    device = Device(gateways(server.port), 3, load_shipped_map("generic_evse"), envelope=envelope)
    return server, server.devices[3], device


async def test_set_point_inside_the_range_is_written_and_verified(start_server, gateways) -> None:
    _, emulated, device = await evse(start_server, gateways)

    result = await device.write("charge_current_setpoint", 16)

    assert (result.requested, result.written, result.read_back, result.clamped) == (
        16,
        16,
        16,
        False,
    )
    assert emulated.raw("charge_current_setpoint") == [16]


@pytest.mark.parametrize(("asked", "written"), [(40, 32), (2, 6), (-5, 6)])
async def test_set_point_outside_the_map_range_is_clamped(
    start_server, gateways, asked: float, written: float
) -> None:
    _, emulated, device = await evse(start_server, gateways)

    result = await device.write("charge_current_setpoint", asked)

    assert (result.requested, result.written, result.clamped) == (asked, written, True)
    assert emulated.raw("charge_current_setpoint") == [written]


async def test_installer_envelope_narrows_but_never_widens(start_server, gateways) -> None:
    envelope = {"charge_current_setpoint": Range(min=0, max=16)}
    _, emulated, device = await evse(start_server, gateways, envelope)

    high = await device.write("charge_current_setpoint", 20)
    low = await device.write("charge_current_setpoint", 1)

    assert high.written == 16  # the installer's maximum
    assert low.written == 6  # the map's minimum still holds: 0 would widen it
    assert emulated.raw("charge_current_setpoint") == [6]


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("charge_current_setpoint", math.nan, "not a finite number"),
        ("charge_current_setpoint", math.inf, "not a finite number"),
        ("power", 1000, "not a writable register"),
        ("no_such_register", 1, "not a writable register"),
    ],
)
async def test_invalid_writes_are_refused_before_the_wire(
    start_server, gateways, name: str, value: float, reason: str
) -> None:
    _, emulated, device = await evse(start_server, gateways)

    with pytest.raises(WriteRefused, match=reason):
        await device.write(name, value)

    assert emulated.image.writes == []


async def test_options_are_written_by_label_and_unknown_labels_refused(
    start_server, gateways
) -> None:
    server = await start_server({2: "generic_battery"})
    device = Device(gateways(server.port), 2, load_shipped_map("generic_battery"))

    result = await device.write("mode", "discharge")
    with pytest.raises(WriteRefused, match="'turbo' is not one of"):
        await device.write("mode", "turbo")
    with pytest.raises(WriteRefused, match="not an allowed mode"):
        await device.write("mode", 7)

    assert result.written == 2
    assert server.devices[2].raw("mode") == [2]


async def test_signed_32_bit_set_point_round_trips(start_server, gateways) -> None:
    server = await start_server({2: "generic_battery"})
    device = Device(gateways(server.port), 2, load_shipped_map("generic_battery"))

    result = await device.write("power_setpoint", -3000)

    assert result.read_back == -3000
    assert server.devices[2].raw("power_setpoint") == [0xFFFF, 0xF448]  # -3000, high word first


async def test_scaled_set_point_is_quantised_to_the_register(start_server, gateways) -> None:
    server = await start_server({4: "generic_hydro"})
    device = Device(gateways(server.port), 4, load_shipped_map("generic_hydro"))

    result = await device.write("river_level_setpoint", 1.2504)

    assert result.written == 1.25
    assert result.read_back == 1.25
    assert server.devices[4].raw("river_level_setpoint") == [1250]  # millimetres on the wire


async def test_coil_is_switched_and_verified(start_server, gateways) -> None:
    _, emulated, device = await evse(start_server, gateways)

    result = await device.write("charging_enabled", True)

    assert result.read_back == 1
    assert emulated.image.tables[Table.COIL][0] == 1


async def test_refused_write_is_reported_once_not_retried(start_server, gateways) -> None:
    server, emulated, device = await evse(start_server, gateways)
    server.set_fault(3, 4)

    with pytest.raises(DeviceException, match=r"exception code 4 \(device failure\)"):
        await device.write("charge_current_setpoint", 10)

    assert emulated.image.faulted == 1


async def test_write_that_does_not_stick_is_not_verified(start_server, gateways) -> None:
    _, emulated, device = await evse(start_server, gateways)
    emulated.image.ignores_writes_to.add((Table.HOLDING, 0))
    before = emulated.raw("charge_current_setpoint")

    with pytest.raises(WriteNotVerified, match=r"wrote 10\.0 to charge_current_setpoint"):
        await device.write("charge_current_setpoint", 10)

    assert emulated.raw("charge_current_setpoint") == before != [10]
