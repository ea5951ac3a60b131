"""The plan's PV export limit on SunSpec inverters (model 704, or 123 on older ones), written to
an emulated device over Modbus TCP and read back; and the executor's choice reaching it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from fractal.devices.errors import WriteRefused
from fractal.devices.regmap import Range
from fractal.devices.sunspec import SunSpecDevice, discover
from fractal.devices.sunspec_controls import output_limit_w, write_export_limit
from fractal.executor import ExecutorState, Readings, Sources, decide

from tests.fractal.devices.modbus_emulator import EmulatedSunSpec, EmulatorServer
from tests.fractal.executor.executor_fixtures import START, envelope, plan

pytestmark = pytest.mark.enable_socket

COMMON = {"Mn": "Acme", "Md": "PV 5000", "SN": "42"}
OLD_INVERTER = {
    1: COMMON,
    103: {"W_SF": 0, "W": 3200},
    120: {"WRtg_SF": 0, "WRtg": 5000},
    123: {"WMaxLimPct_SF": -1, "WMaxLim_Ena": 0},
}
DER_INVERTER = {
    1: COMMON,
    701: {"W_SF": 0, "W": 3100},
    702: {"W_SF": 0, "WMaxRtg": 6000, "WMax": 4000},
    704: {"WMaxLimPct_SF": 0, "WMaxLimPctEna": 0},
}

Connect = Callable[[dict[int, dict[str, object]]], Awaitable[tuple[EmulatedSunSpec, SunSpecDevice]]]


@pytest.fixture
async def inverter(socket_enabled: None, gateways) -> AsyncIterator[Connect]:
    servers: list[EmulatorServer] = []

    async def connect(
        points: dict[int, dict[str, object]],
    ) -> tuple[EmulatedSunSpec, SunSpecDevice]:
        emulated = EmulatedSunSpec(points)
        server = EmulatorServer({1: emulated})
        await server.start_tcp()
        servers.append(server)
        gateway = gateways(server.port)
        return emulated, SunSpecDevice(gateway, 1, await discover(gateway, 1))

    yield connect
    for server in servers:
        await server.stop()


async def test_model_123_limits_output_to_the_export_limit_as_a_percentage(
    inverter: Connect,
) -> None:
    emulated, device = await inverter(OLD_INVERTER)

    results = await write_export_limit(device, 1250)

    assert [(r.name, r.written) for r in results] == [
        ("controls_wmaxlimpct", 25.0),  # 1250 W of the 5000 W rating
        ("controls_wmaxlim_ena", 1),
    ]
    readings = await device.poll()
    assert readings["controls_wmaxlimpct"].value == 25.0
    assert readings["controls_wmaxlim_ena"].value == "ENABLED"
    offset = emulated.models[123].points["WMaxLimPct"].offset
    assert emulated.image.tables["holding"][emulated.addresses[123] + offset] == 250  # SF -1

    await write_export_limit(device, None)  # no limit: switched off, the percentage kept
    assert (await device.poll())["controls_wmaxlim_ena"].value == "DISABLED"


async def test_model_704_is_preferred_and_uses_the_set_maximum_power(inverter: Connect) -> None:
    _, device = await inverter(DER_INVERTER)

    results = await write_export_limit(device, 1000)

    assert [(r.name, r.written) for r in results] == [
        ("derctlac_wmaxlimpct", 25),  # of WMax 4000 W, not the 6000 W rating
        ("derctlac_wmaxlimpctena", 1),
    ]
    assert (await device.poll())["derctlac_wmaxlimpctena"].value == "ENABLED"


async def test_a_limit_above_the_rating_is_100_percent_and_zero_exports_nothing(
    inverter: Connect,
) -> None:
    _, device = await inverter(OLD_INVERTER)
    above = await write_export_limit(device, 9000)
    zero = await write_export_limit(device, 0)
    assert (above[0].written, above[0].clamped) == (100.0, True)
    assert zero[0].written == 0


async def test_an_inverter_without_a_power_limit_or_a_rating_is_refused(inverter: Connect) -> None:
    _, plain = await inverter({1: COMMON, 103: {"W_SF": 0, "W": 3200}})
    _, unrated = await inverter({1: COMMON, 123: {"WMaxLimPct_SF": 0}})

    with pytest.raises(WriteRefused, match="no SunSpec power-limit control"):
        await write_export_limit(plain, 1000)
    with pytest.raises(WriteRefused, match="no maximum power to take a percentage of"):
        await write_export_limit(unrated, 1000)


async def test_the_installer_may_narrow_the_limit_points(inverter: Connect) -> None:
    _, device = await inverter(OLD_INVERTER)
    device.envelope["controls_wmaxlimpct"] = Range(min=0, max=60)
    (percent, _) = await write_export_limit(device, 5000)
    assert (percent.requested, percent.written) == (100.0, 60.0)


async def test_the_executor_s_export_limit_reaches_the_inverter(inverter: Connect) -> None:
    """A plan's export_limit window and the site's export cap, through decide, to model 123."""
    _, device = await inverter(OLD_INVERTER)
    windows = [{"start": 0, "end": 1, "mode": "export_limit", "value": 2000}]
    sources = Sources(aggregator=plan({"pv": {"kind": "pv_inverter", "windows": windows}}))

    decision = decide(
        START + timedelta(minutes=1), Readings(grid_w=-1500), sources, envelope(), ExecutorState()
    )
    setpoint = decision.setpoints["pv"]
    await write_export_limit(device, setpoint.value)

    assert setpoint.value == 2000
    assert (await device.poll())["controls_wmaxlimpct"].value == 40.0  # 2000 of 5000 W


@pytest.mark.parametrize(
    ("export_limit_w", "consumption_w", "output_w"),
    [
        (2000, 750, 2700),  # the house takes 750 W of the output: rounded down to 100 W
        (2000, None, 2000),  # unknown consumption: the export limit itself, the safe side
        (0, -300, 0),  # a negative reading counts as nothing
        (None, 500, None),  # no limit
    ],
)
def test_the_output_limit_adds_what_the_house_uses(
    export_limit_w: float | None, consumption_w: float | None, output_w: float | None
) -> None:
    assert output_limit_w(export_limit_w, consumption_w) == output_w
