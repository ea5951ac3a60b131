"""Modbus RTU over a real serial line: a pymodbus serial server on one end of a pty pair."""

from __future__ import annotations

import pytest
from fractal.devices.device import Device
from fractal.devices.errors import DeviceUnavailable
from fractal.devices.gateway import Gateway, SerialEndpoint
from fractal.devices.regmap import load_shipped_map

from tests.fractal.devices.modbus_emulator import (
    SILENT,
    EmulatedDevice,
    EmulatorServer,
    plug_in_serial_line,
    unplug_serial_line,
)


async def test_meters_and_a_charger_on_one_rs485_line(serial_line: tuple[str, str]) -> None:
    server_end, client_end = serial_line
    sdm630, sdm230 = load_shipped_map("eastron_sdm630"), load_shipped_map("eastron_sdm230")
    evse_map = load_shipped_map("generic_evse")
    server = EmulatorServer(
        {1: EmulatedDevice(sdm630), 2: EmulatedDevice(sdm230), 3: EmulatedDevice(evse_map)}
    )
    server.devices[1].set("power", 4321.5)
    server.devices[2].set("voltage", 241.0)
    await server.start_serial(server_end, baudrate=115200)
    gateway = Gateway(SerialEndpoint(client_end, baudrate=115200), timeout=0.5)
    try:
        three_phase = Device(gateway, 1, sdm630)
        single_phase = Device(gateway, 2, sdm230)

        first = await three_phase.poll("fast")
        second = await single_phase.poll("fast")
        server.set_fault(2, SILENT)
        with pytest.raises(DeviceUnavailable, match="no answer"):
            await single_phase.poll("energy")
        after_fault = await three_phase.poll("energy")
        written = await Device(gateway, 3, evse_map).write("charge_current_setpoint", 40)
    finally:
        await gateway.close()
        await server.stop()

    assert first["power"].value == 4321.5
    assert second["voltage"].value == 241.0
    assert after_fault["energy_import"].value is not None
    assert (written.written, written.read_back) == (32, 32)  # clamped, verified over RS485
    assert server.devices[3].raw("charge_current_setpoint") == [32]
    assert str(gateway.endpoint) == f"{client_end}@115200"


async def test_unplugged_adapter_is_reported_and_replugging_recovers(tmp_path) -> None:
    server_end, client_end = str(tmp_path / "server-tty"), str(tmp_path / "client-tty")
    regmap = load_shipped_map("eastron_sdm230")
    clock = Clock()
    gateway = Gateway(SerialEndpoint(client_end, baudrate=115200), timeout=0.5, clock=clock)
    device = Device(gateway, 1, regmap, clock=clock)
    line = await plug_in_serial_line(server_end, client_end)
    server = EmulatorServer({1: EmulatedDevice(regmap)})
    await server.start_serial(server_end, baudrate=115200)
    try:
        before = await device.poll("fast")
        await server.stop()
        await unplug_serial_line(line)
        with pytest.raises(DeviceUnavailable):
            await device.poll("fast")
        clock.now += 100
        with pytest.raises(DeviceUnavailable, match="cannot connect"):
            await device.poll("fast")  # the tty is gone: it cannot be opened

        line = await plug_in_serial_line(server_end, client_end)
        server = EmulatorServer({1: EmulatedDevice(regmap)})
        server.devices[1].set("voltage", 233.0)
        await server.start_serial(server_end, baudrate=115200)
        clock.now += 100
        after = await device.poll("fast")
    finally:
        await gateway.close()
        await server.stop()
        await unplug_serial_line(line)

    assert before["voltage"].value is not None
    assert after["voltage"].value == 233.0
    assert device.availability.available


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now
