"""Faults on real sockets: silence, exception codes, dropped connections, restarts, garbage."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import struct

import pytest
from fractal.devices.device import Device
from fractal.devices.errors import DeviceException, DeviceTimeout, DeviceUnavailable
from fractal.devices.regmap import load_shipped_map

from tests.fractal.devices.modbus_emulator import SILENT

pytestmark = pytest.mark.enable_socket


class Clock:
    """Monotonic time that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def meter(gateway, clock: Clock, unit: int = 1) -> Device:
    return Device(gateway, unit, load_shipped_map("eastron_sdm630"), clock=clock)


async def test_silent_device_is_unavailable_logged_once_and_recovers(
    start_server, gateways, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fractal.devices")
    clock = Clock()
    server = await start_server({1: "eastron_sdm630"})
    device = meter(gateways(server.port, clock=clock), clock)
    await device.poll("fast")
    server.set_fault(1, SILENT)

    with pytest.raises(DeviceUnavailable, match=r"no answer within 0\.5 s") as caught:
        await device.poll("fast")
    assert isinstance(caught.value.__cause__, DeviceTimeout)
    requests_when_down = len(server.devices[1].image.requests)
    clock.now += 0.5  # still backing off: no request reaches the wire
    with pytest.raises(DeviceUnavailable, match=r"retrying in 0\.5 s"):
        await device.poll("fast")
    clock.now += 1.0
    with pytest.raises(DeviceUnavailable):
        await device.poll("fast")
    clock.now += 30

    assert not device.availability.available
    assert device.availability.down_for(clock()) == 31.5
    assert len(server.devices[1].image.requests) == requests_when_down
    down_logs = [r for r in caplog.records if "stopped answering" in r.getMessage()]
    assert len(down_logs) == 1

    server.set_fault(1, None)
    readings = await device.poll("fast")

    assert readings["frequency"].value is not None
    assert device.availability.available
    up_logs = [r for r in caplog.records if "answers again after 32 s" in r.getMessage()]
    assert len(up_logs) == 1


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(2, "illegal data address"), (4, "device failure"), (11, "gateway target failed")],
)
async def test_exception_codes_are_reported_with_their_meaning(
    start_server, gateways, code: int, meaning: str
) -> None:
    clock = Clock()
    server = await start_server({1: "eastron_sdm630"})
    device = meter(gateways(server.port, clock=clock), clock)
    server.set_fault(1, code)

    with pytest.raises(DeviceUnavailable, match=f"exception code {code} \\({meaning}") as caught:
        await device.poll("fast")

    assert isinstance(caught.value.__cause__, DeviceException)
    assert caught.value.__cause__.code == code
    assert device.availability.reason is not None
    assert f"exception code {code}" in device.availability.reason
    server.set_fault(1, None)
    clock.now += 1
    assert (await device.poll("fast"))["power"].value is not None


async def test_a_silent_unit_does_not_take_down_its_neighbours(start_server, gateways) -> None:
    clock = Clock()
    server = await start_server({1: "eastron_sdm630", 2: "generic_battery"})
    gateway = gateways(server.port, clock=clock)
    silent = meter(gateway, clock)
    battery = Device(gateway, 2, load_shipped_map("generic_battery"), clock=clock)
    server.set_fault(1, SILENT)

    with pytest.raises(DeviceUnavailable):
        await silent.poll("fast")
    readings = await battery.poll("fast")

    assert readings["soc"].value is not None
    assert battery.availability.available
    assert not silent.availability.available


async def test_dropped_connection_is_reestablished(start_server, gateways, proxies) -> None:
    server = await start_server({1: "eastron_sdm630"})
    proxy = await proxies(server.port)
    clock = Clock()
    device = meter(gateways(proxy.port, clock=clock), clock)
    await device.poll("fast")
    server.devices[1].set("power", 777.0)

    await proxy.drop()
    outcomes = []
    for _ in range(3):  # the first poll may find the socket half-closed; none may hang
        try:
            outcomes.append((await device.poll("fast"))["power"].value)
            break
        except DeviceUnavailable as err:
            outcomes.append(str(err))
            clock.now += 60

    assert outcomes[-1] == 777.0
    assert device.availability.available


async def test_server_restart_backs_off_then_recovers(start_server, gateways) -> None:
    clock = Clock()
    server = await start_server({1: "eastron_sdm630"})
    port = server.port
    gateway = gateways(port, clock=clock)
    device = meter(gateway, clock)
    await device.poll("fast")
    await server.stop()

    # The open socket may time out or be reset first; then connecting is refused.
    refused = []
    for _ in range(3):
        clock.now += 100
        with pytest.raises(DeviceUnavailable) as caught:
            await device.poll("fast")
        if "cannot connect" in str(caught.value):
            refused.append(gateway.backoff.retry_in())
            break
    with pytest.raises(DeviceUnavailable, match=r"reconnecting in 1\.0 s"):
        await device.poll("fast")  # backing off: no connection attempt
    clock.now += 1
    with pytest.raises(DeviceUnavailable, match="cannot connect"):
        await device.poll("fast")
    refused.append(gateway.backoff.retry_in())

    assert refused == [1.0, 2.0]  # exponential back-off
    assert not device.availability.available

    restarted = await start_server({1: "eastron_sdm630"}, port=port)
    restarted.devices[1].set("power", 321.0)
    clock.now += 2
    readings = await device.poll("fast")

    assert readings["power"].value == 321.0
    assert device.availability.available
    assert gateway.backoff.failures == 0


async def test_garbage_values_are_flagged_not_passed_on(start_server, gateways) -> None:
    server = await start_server({1: "eastron_sdm630"})
    clock = Clock()
    device = meter(gateways(server.port, clock=clock), clock)
    nan = list(struct.unpack(">HH", struct.pack(">f", math.nan)))
    server.devices[1].set_raw("voltage_l1", nan)
    server.devices[1].set("frequency", 5000.0)
    server.devices[1].set("power", 2500.0)

    readings = await device.poll("fast")

    assert readings["voltage_l1"].value is None
    assert readings["voltage_l1"].problem == "not a number (nan)"
    assert readings["frequency"].value is None
    assert readings["frequency"].problem == "implausible 5000.0 (expected 40.0..70.0)"
    assert readings["power"].value == 2500.0
    assert device.availability.available


async def test_unknown_state_code_is_garbage(start_server, gateways) -> None:
    server = await start_server({3: "generic_evse"})
    device = Device(gateways(server.port), 3, load_shipped_map("generic_evse"))
    server.devices[3].set_raw("state", [9])

    readings = await device.poll("fast")

    assert readings["state"].value is None
    assert readings["state"].problem == "unknown state code 9"


async def test_garbled_answer_is_reported_and_the_next_poll_reads_cleanly(
    start_server, gateways, proxies
) -> None:
    server = await start_server({1: "eastron_sdm630"})
    proxy = await proxies(server.port)
    clock = Clock()
    device = meter(gateways(proxy.port, clock=clock), clock)
    server.devices[1].set("power", 1500.0)
    proxy.garble_answers = 1

    with pytest.raises(DeviceUnavailable):
        await device.poll("fast")
    clock.now += 1
    readings = await device.poll("fast")

    assert readings["power"].value == 1500.0
    assert device.availability.available


async def test_write_to_a_device_known_to_be_down_fails_fast(start_server, gateways) -> None:
    clock = Clock()
    server = await start_server({3: "generic_evse"})
    device = Device(
        gateways(server.port, clock=clock), 3, load_shipped_map("generic_evse"), clock=clock
    )
    server.set_fault(3, SILENT)
    with pytest.raises(DeviceUnavailable):
        await device.poll("fast")
    server.set_fault(3, None)

    with pytest.raises(DeviceUnavailable, match="retrying in"):
        await device.write("charge_current_setpoint", 10)

    assert server.devices[3].image.writes == []


@pytest.mark.parametrize("name", ["eastron_sdm630", "generic_battery", "generic_evse"])
async def test_random_register_contents_never_break_a_poll(start_server, gateways, name) -> None:
    server = await start_server({1: name})
    regmap = load_shipped_map(name)
    device = Device(gateways(server.port), 1, regmap)
    rng = random.Random(20261122)
    flagged = 0

    for _ in range(40):
        for register in regmap.registers:
            server.devices[1].set_raw(
                register.name, [rng.randrange(0x10000) for _ in range(register.words)]
            )
        for group in regmap.poll_groups:
            readings = await device.poll(group)
            for reading in readings.values():
                assert (reading.value is None) == (reading.problem is not None)
                if isinstance(reading.value, float):
                    assert math.isfinite(reading.value)
                flagged += reading.problem is not None

    assert flagged > 0  # random words are mostly implausible: the check is exercised
    assert device.availability.available


async def test_cancelled_poll_leaves_no_stale_answer_for_the_next(start_server, gateways) -> None:
    # pymodbus 3.8.3 does not match answers to requests by transaction id: an answer arriving
    # after its request was abandoned would be taken for the next request's answer.
    server = await start_server({1: "eastron_sdm630", 2: "generic_battery"})
    gateway = gateways(server.port)
    meter_device = Device(gateway, 1, load_shipped_map("eastron_sdm630"))
    battery = Device(gateway, 2, load_shipped_map("generic_battery"))
    await battery.poll("fast")  # connected: the next request goes straight on the wire
    server.devices[1].image.delay = 0.2  # the meter answers late...
    server.devices[2].image.delay = 0.4  # ...while the battery's answer is still awaited
    server.devices[2].set("soc", 64.5)

    polling = asyncio.create_task(meter_device.poll("fast"))
    await server.devices[1].image.seen.wait()  # the meter's request is on the wire
    polling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await polling
    readings = await battery.poll("fast")

    assert readings["soc"].value == 64.5
    assert set(readings) == {r.name for r in battery.regmap.group("fast")}


async def test_late_answer_after_a_timeout_is_not_taken_for_the_next(
    start_server, gateways
) -> None:
    server = await start_server({1: "eastron_sdm630", 2: "generic_battery"})
    gateway = gateways(server.port)  # timeout 0.5 s
    meter_device = Device(gateway, 1, load_shipped_map("eastron_sdm630"))
    battery = Device(gateway, 2, load_shipped_map("generic_battery"))
    server.devices[1].image.delay = 0.7  # answers 0.2 s after the client gave up...
    server.devices[2].image.delay = 0.3  # ...while the battery's answer is awaited
    server.devices[2].set("soc", 71.5)

    with pytest.raises(DeviceUnavailable, match="no answer"):
        await meter_device.poll("fast")
    readings = await battery.poll("fast")

    assert readings["soc"].value == 71.5
