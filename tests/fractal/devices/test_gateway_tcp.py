"""Polling real emulated devices over Modbus TCP: values, merged reads, one shared connection."""

from __future__ import annotations

import asyncio
import struct

import pytest
from fractal.devices.device import Device
from fractal.devices.regmap import Table, load_shipped_map

pytestmark = pytest.mark.enable_socket


async def test_sdm630_readings_decode_as_the_meter_sends_them(start_server, gateways) -> None:
    server = await start_server({1: "eastron_sdm630"})
    meter = server.devices[1]
    # Raw words exactly as an SDM630 sends them: IEEE-754 float32, high word first, in kWh.
    high, low = struct.unpack(">HH", struct.pack(">f", -1520.25))
    meter.set_raw("power", [high, low])
    meter.set_raw("energy_import", list(struct.unpack(">HH", struct.pack(">f", 12.5))))
    meter.set_raw("serial_number", [0x0001, 0xE240])  # 123456
    device = Device(gateways(server.port), 1, load_shipped_map("eastron_sdm630"))

    identity = await device.read_identity()
    fast = await device.poll("fast")
    energy = await device.poll("energy")

    assert identity["serial_number"].value == 123456
    assert fast["power"].value == -1520.25
    assert fast["power"].unit == "W"
    assert energy["energy_import"].value == 12500.0
    assert energy["energy_import"].unit == "Wh"


async def test_poll_uses_the_planned_merged_reads_on_the_wire(start_server, gateways) -> None:
    server = await start_server({1: "eastron_sdm630"})
    device = Device(gateways(server.port), 1, load_shipped_map("eastron_sdm630"))

    readings = await device.poll("fast")

    assert len(readings) == len(device.regmap.group("fast")) == 17
    assert server.devices[1].image.requests == [(Table.INPUT, 0, 72)]


async def test_scripted_change_is_seen_on_the_next_poll(start_server, gateways) -> None:
    server = await start_server({2: "generic_battery"})
    device = Device(gateways(server.port), 2, load_shipped_map("generic_battery"))
    server.devices[2].set("soc", 41.5)
    server.devices[2].set("power", -2300)
    first = await device.poll("fast")
    server.devices[2].set("soc", 40.9)
    server.devices[2].set("mode", 2)
    second = await device.poll("fast")

    assert (first["soc"].value, first["power"].value) == (41.5, -2300)
    assert (second["soc"].value, second["mode"].value) == (40.9, "discharge")


async def test_units_behind_one_gateway_share_one_connection(start_server, gateways) -> None:
    server = await start_server(
        {1: "eastron_sdm630", 2: "generic_battery", 3: "generic_evse", 4: "generic_hydro"}
    )
    gateway = gateways(server.port)
    names = {1: "eastron_sdm630", 2: "generic_battery", 3: "generic_evse", 4: "generic_hydro"}
    devices = [Device(gateway, unit, load_shipped_map(name)) for unit, name in names.items()]
    server.devices[4].set("river_level_upstream", 2.345)
    server.devices[3].set("state", 2)

    # All polls at once: the gateway serialises them on its single connection.
    results = await asyncio.gather(*(device.poll("fast") for device in devices))

    assert server.connections == 1
    assert results[3]["river_level_upstream"].value == 2.345
    assert results[3]["river_level_upstream"].unit == "m"
    assert results[2]["state"].value == "charging"
    assert gateway.requests == sum(len(device.plan("fast")) for device in devices)


async def test_rtu_framing_over_tcp(start_server, gateways) -> None:
    from pymodbus.framer import FramerType

    server = await start_server({5: "eastron_sdm230"}, framer=FramerType.RTU)
    server.devices[5].set("voltage", 239.5)
    device = Device(gateways(server.port, framer="rtu"), 5, load_shipped_map("eastron_sdm230"))

    readings = await device.poll("fast")

    assert readings["voltage"].value == 239.5
    assert str(device.gateway.endpoint).endswith("(RTU over TCP)")


async def test_pool_gives_every_unit_of_an_endpoint_the_same_connection(start_server) -> None:
    # Single-client devices (many inverter dongles) accept one TCP connection: the pool makes
    # sure polling, detection and writes all share it.
    from fractal.devices.detect import detect
    from fractal.devices.gateway import GatewayPool, TcpEndpoint

    server = await start_server({1: "eastron_sdm630", 3: "generic_evse"})
    pool = GatewayPool(timeout=0.5)
    endpoint = TcpEndpoint("127.0.0.1", server.port)
    try:
        meter = Device(pool.get(endpoint), 1, load_shipped_map("eastron_sdm630"))
        await meter.poll("fast")
        detection = await detect(pool.get(TcpEndpoint("127.0.0.1", server.port)), 3)
        charger = Device(pool.get(endpoint), 3, load_shipped_map("generic_evse"))
        await charger.write("charge_current_setpoint", 10)
        connections = server.connections
    finally:
        await pool.close()

    assert pool.get(endpoint) is meter.gateway is charger.gateway
    assert detection.maps == ["generic_evse"]
    assert connections == 1
