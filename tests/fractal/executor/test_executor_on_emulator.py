"""A few executor ticks driving a real (emulated) generic battery over Modbus TCP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from fractal.devices.device import Device
from fractal.devices.gateway import Gateway, TcpEndpoint
from fractal.devices.regmap import load_shipped_map
from fractal.executor import ExecutorState, Readings, Setpoint, Sources, decide
from fractal.executor.registers import register_writes
from fractal.protocol import Quantity

from tests.fractal.devices.modbus_emulator import EmulatedDevice, EmulatorServer
from tests.fractal.executor.executor_fixtures import START, envelope, plan

UNIT = 1


@pytest.fixture
async def battery(socket_enabled: None) -> AsyncIterator[tuple[EmulatedDevice, Device]]:
    regmap = load_shipped_map("generic_battery")
    emulated = EmulatedDevice(regmap)
    server = EmulatorServer({UNIT: emulated})
    await server.start_tcp()
    gateway = Gateway(TcpEndpoint("127.0.0.1", server.port), timeout=0.5)
    try:
        yield emulated, Device(gateway, UNIT, regmap)
    finally:
        await gateway.close()
        await server.stop()


async def test_executor_ticks_write_the_batterys_registers(
    battery: tuple[EmulatedDevice, Device],
) -> None:
    emulated, device = battery
    sources = Sources(
        aggregator=plan(
            {
                "battery": {
                    "kind": "battery",
                    "windows": [
                        {"start": 0, "end": 1, "mode": "balance"},
                        {"start": 1, "end": 2, "mode": "discharge", "value": 4000},
                    ],
                }
            }
        )
    )
    # (minute, grid meter W, battery SoC %) per tick: balance, balance, discharge limited to
    # max_discharge_w, discharge stopped at soc_min_pct.
    ticks = [(0, -1200, 50.0), (1, 300, 50.0), (31, 200, 50.0), (32, 0, 10.0)]
    expected = [(1200, "charge"), (900, "charge"), (-2800, "discharge"), (0, "hold")]
    state, seen = ExecutorState(), []
    for (minute, grid_w, soc), _ in zip(ticks, expected, strict=True):
        emulated.set("soc", soc)
        polled = await device.poll("fast")
        readings = Readings(grid_w=grid_w, devices={"battery": {"soc_pct": polled["soc"].value}})
        now = START + timedelta(minutes=minute)
        decision = decide(now, readings, sources, envelope(), state)
        for name, value in register_writes(decision.setpoints["battery"]):
            await device.write(name, value)
        state = decision.state
        power = (await device.poll("fast"))["power_setpoint"].value
        seen.append((power, emulated.raw("mode")[0]))

    modes = {"charge": 1, "discharge": 2, "hold": 3}
    assert seen == [(power, modes[mode]) for power, mode in expected]


@pytest.mark.parametrize(
    ("quantity", "value", "writes"),
    [
        (Quantity.BATTERY_W, -1500.0, [("power_setpoint", -1500.0), ("mode", "discharge")]),
        (Quantity.BATTERY_W, 0.0, [("power_setpoint", 0.0), ("mode", "hold")]),
        (Quantity.EV_CURRENT_A, 16.0, [("charge_current_setpoint", 16.0), ("charging_enabled", 1)]),
        (Quantity.EV_CURRENT_A, 0.0, [("charging_enabled", 0)]),
        (Quantity.HYDRO_LEVEL_M, 1.45, [("river_level_setpoint", 1.45)]),
        (Quantity.HYDRO_LEVEL_M, None, []),
        (Quantity.IMMERSION_ON, 1.0, [("heater_on", 1)]),
        (Quantity.IMMERSION_ON, 0.0, [("heater_on", 0)]),
        (Quantity.EXPORT_LIMIT_W, 0.0, []),  # SunSpec inverters: sunspec_controls
    ],
)
def test_set_points_map_to_the_generic_register_names(
    quantity: Quantity, value: float | None, writes: list[tuple[str, float | str]]
) -> None:
    setpoint = Setpoint("d", quantity, value, None, "aggregator", "agg-1", ("why",))

    assert register_writes(setpoint) == writes


@pytest.fixture
async def immersion_relay(socket_enabled: None) -> AsyncIterator[tuple[EmulatedDevice, Device]]:
    regmap = load_shipped_map("generic_immersion")
    emulated = EmulatedDevice(regmap)
    server = EmulatorServer({UNIT: emulated})
    await server.start_tcp()
    gateway = Gateway(TcpEndpoint("127.0.0.1", server.port), timeout=0.5)
    try:
        yield emulated, Device(gateway, UNIT, regmap)
    finally:
        await gateway.close()
        await server.stop()


async def test_executor_ticks_switch_the_immersion_relay(
    immersion_relay: tuple[EmulatedDevice, Device],
) -> None:
    """On in slot 0, diverting surplus in slot 1, off in slot 2 (the relay's coil follows)."""
    emulated, device = immersion_relay
    windows = [
        {"start": 0, "end": 1, "mode": "on"},
        {"start": 1, "end": 2, "mode": "balance"},
        {"start": 2, "end": 3, "mode": "off"},
    ]
    sources = Sources(aggregator=plan({"immersion": {"kind": "immersion", "windows": windows}}))
    # (minute, grid meter W): on; an export of 3.5 kW covers the heater's 3 kW; off.
    ticks = [(0, 500), (31, -3500), (61, -3500)]
    state, seen = ExecutorState(), []
    for minute, grid_w in ticks:
        decision = decide(
            START + timedelta(minutes=minute), Readings(grid_w=grid_w), sources, envelope(), state
        )
        for name, value in register_writes(decision.setpoints["immersion"]):
            result = await device.write(name, value)
            assert result.read_back == value
        state = decision.state
        seen.append(((await device.poll("fast"))["heater_on"].value, emulated.raw("heater_on")))

    assert seen == [(True, [1]), (True, [1]), (False, [0])]
