"""One snapshot per shipped map: entities, read plan and readings over TCP, RTU/TCP and serial.

A change to a map or to decoding shows up as a diff in `snapshots/<map>.json` that a reviewer
can read. Regenerate deliberately with ``UPDATE_SNAPSHOTS=1``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fractal.devices.device import Device
from fractal.devices.gateway import Gateway, SerialEndpoint
from fractal.devices.regmap import IDENTITY_GROUP, load_shipped_map, shipped_map_names
from pymodbus.framer import FramerType

from tests.fractal.devices.modbus_emulator import EmulatedDevice, EmulatorServer

pytestmark = pytest.mark.enable_socket

SNAPSHOTS = Path(__file__).parent / "snapshots"


def entities(name: str) -> list[dict[str, Any]]:
    fields = ("name", "table", "address", "type", "unit", "device_class", "state_class", "group")
    rows = []
    for register in load_shipped_map(name).registers:
        row = {field: register.model_dump(mode="json")[field] for field in fields}
        if register.writable is not None:
            row["writable"] = [register.writable.min, register.writable.max]
        rows.append(row)
    return rows


def check_snapshot(name: str, actual: dict[str, Any]) -> None:
    path = SNAPSHOTS / f"{name}.json"
    rendered = json.dumps(actual, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}; run with UPDATE_SNAPSHOTS=1 and review it"
    assert json.loads(rendered) == json.loads(path.read_text(encoding="utf-8"))


async def emulator_device(
    name: str, transport: str, serial_line: tuple[str, str], start_server, gateways
) -> tuple[Device, EmulatorServer | None]:
    """The map's emulator over `transport`; returns the device and a server to stop, if any."""
    regmap = load_shipped_map(name)
    if transport == "serial":
        server_end, client_end = serial_line
        server = EmulatorServer({1: EmulatedDevice(regmap)})
        await server.start_serial(server_end)
        gateway = Gateway(SerialEndpoint(client_end, baudrate=115200), timeout=0.5)
        return Device(gateway, 1, regmap), server
    framer = FramerType.RTU if transport == "rtu-over-tcp" else FramerType.SOCKET
    server = await start_server({1: name}, framer=framer)
    gateway = gateways(server.port, framer="rtu" if framer is FramerType.RTU else "socket")
    return Device(gateway, 1, regmap), None


@pytest.mark.parametrize("transport", ["tcp", "rtu-over-tcp", "serial"])
@pytest.mark.parametrize("name", shipped_map_names())
async def test_shipped_map_snapshot(
    name: str, transport: str, serial_line: tuple[str, str], start_server, gateways
) -> None:
    device, serial_server = await emulator_device(
        name, transport, serial_line, start_server, gateways
    )
    groups = [IDENTITY_GROUP, *device.regmap.poll_groups]
    plans, readings = {}, {}
    try:
        for group in groups:
            plans[group] = [[b.table, b.start, b.count] for b in device.plan(group)]
            polled = await device.poll(group)
            readings[group] = {k: [r.value, r.unit, r.problem] for k, r in sorted(polled.items())}
    finally:
        if serial_server is not None:
            await device.gateway.close()
            await serial_server.stop()

    # The same snapshot over every transport: framing must not change a single value.
    check_snapshot(name, {"entities": entities(name), "plans": plans, "readings": readings})
