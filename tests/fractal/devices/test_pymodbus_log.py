"""A device that is down is logged once by us, not on every request by pymodbus.

Real pymodbus emulators over TCP; the clock only moves when the test says so, so each poll
after a back-off goes to the wire and fails there again."""

from __future__ import annotations

import logging

import pytest
from fractal.devices.device import Device
from fractal.devices.errors import DeviceUnavailable
from fractal.devices.regmap import load_shipped_map
from pymodbus.logging import Log

from tests.fractal.devices.modbus_emulator import SILENT

pytestmark = pytest.mark.enable_socket
FAILED_POLLS = 3
"""Polls that reach the wire while the device is down (the back-off is waited out)."""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def records(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith(logger) and record.levelno == level
    ]


def pymodbus_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """pymodbus's WARNING and ERROR lines (its INFO, e.g. the emulator's start, is fine)."""
    return [
        f"{record.levelname} {record.getMessage()}"
        for record in caplog.records
        if record.name.startswith("pymodbus") and record.levelno >= logging.WARNING
    ]


async def fail_polls(device: Device, clock: Clock) -> None:
    for _ in range(FAILED_POLLS):
        clock.now += 120  # past any back-off: this poll goes to the wire
        with pytest.raises(DeviceUnavailable):
            await device.poll("fast")


async def test_a_silent_device_is_one_warning_and_one_recovery_line(
    start_server, gateways, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fractal")
    caplog.set_level(logging.DEBUG, logger="pymodbus")  # demoted lines stay visible here
    clock = Clock()
    server = await start_server({1: "eastron_sdm630"})
    device = Device(
        gateways(server.port, clock=clock), 1, load_shipped_map("eastron_sdm630"), clock=clock
    )
    await device.poll("fast")
    server.set_fault(1, SILENT)

    await fail_polls(device, clock)
    server.set_fault(1, None)
    clock.now += 120
    await device.poll("fast")

    warnings = records(caplog, "fractal", logging.WARNING)
    assert len(warnings) == 1
    assert "stopped answering" in warnings[0]
    recovered = [m for m in records(caplog, "fractal", logging.INFO) if "answers again" in m]
    assert len(recovered) == 1
    assert pymodbus_warnings(caplog) == []
    timeouts = [m for m in records(caplog, "pymodbus", logging.DEBUG) if "No response" in m]
    assert len(timeouts) == FAILED_POLLS


async def test_a_gateway_that_refuses_connections_is_one_warning(
    start_server, gateways, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fractal")
    caplog.set_level(logging.DEBUG, logger="pymodbus")
    clock = Clock()
    server = await start_server({1: "eastron_sdm630"})
    device = Device(
        gateways(server.port, clock=clock), 1, load_shipped_map("eastron_sdm630"), clock=clock
    )
    await device.poll("fast")
    await server.stop()

    await fail_polls(device, clock)

    warnings = records(caplog, "fractal", logging.WARNING)
    assert len(warnings) == 1
    assert "stopped answering" in warnings[0]
    assert pymodbus_warnings(caplog) == []
    refused = [m for m in records(caplog, "pymodbus", logging.DEBUG) if "Failed to connect" in m]
    assert refused


async def test_other_pymodbus_lines_keep_their_level(
    gateways, caplog: pytest.LogCaptureFixture
) -> None:
    gateways(1)  # a Gateway installs the filter
    caplog.set_level(logging.INFO, logger="pymodbus")

    Log.warning("Unable to decode frame {}", "0x01")
    Log.error("No response received after 0 retries, continue with next request")

    assert pymodbus_warnings(caplog) == ["WARNING Unable to decode frame 0x01"]
    assert records(caplog, "pymodbus", logging.DEBUG) == []  # debug is off: dropped
