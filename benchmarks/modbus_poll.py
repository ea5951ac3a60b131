"""Modbus polling cost for one node: requests per poll against the minimum, CPU per poll.

The node has an Eastron SDM630 (unit 1), a SunSpec inverter + battery (unit 2) and the generic
hydro plant map (unit 3) behind one Modbus TCP gateway. The emulated gateway runs in a child
process so the CPU time measured here is the node's alone. The reference, measured in the same
run, is naive polling: one request per register (per model for SunSpec).

Minimum requests: the fewest reads of at most the device's block size (alignment respected)
that cover the registers needed, holes allowed; "bound" is registers needed / block size.
"RS485 ms" estimates the bus time those reads take at 9600 baud, where the Eastron meters
usually sit: on a serial line, bytes and turnarounds, not CPU, limit how often a node can poll.
Exit status 1 if the planned requests exceed the minimum.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the emulator lives with the tests

from fractal.devices.codec import decode  # noqa: E402
from fractal.devices.device import Device  # noqa: E402
from fractal.devices.gateway import Gateway, TcpEndpoint  # noqa: E402
from fractal.devices.planner import ReadBlock, plan_reads  # noqa: E402
from fractal.devices.regmap import Register, RegisterMap, Table, load_shipped_map  # noqa: E402
from fractal.devices.sunspec import TRANSPORT, SunSpecDevice, decode_model, discover  # noqa: E402

POLLS = 200
SUNSPEC_POINTS: dict[int, dict[str, object]] = {
    1: {"Mn": "Fronius", "Md": "Symo", "SN": "1"},
    103: {"W_SF": 0, "W": 4200, "WH_SF": 0, "WH": 1234567, "Hz_SF": -2, "Hz": 50.0, "St": 4},
    124: {"ChaState_SF": 0, "ChaState": 57, "WChaMax_SF": 0, "WChaMax": 5000, "ChaSt": 4},
}


async def serve() -> None:
    """Child process: the emulated gateway; prints its port, runs until stdin closes."""
    from tests.fractal.devices.modbus_emulator import (
        EmulatedDevice,
        EmulatedSunSpec,
        EmulatorServer,
    )

    server = EmulatorServer(
        {
            1: EmulatedDevice(load_shipped_map("eastron_sdm630")),
            2: EmulatedSunSpec(SUNSPEC_POINTS),
            3: EmulatedDevice(load_shipped_map("generic_hydro")),
        }
    )
    await server.start_tcp()
    print(server.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.stop()


def minimum(registers: list[Register], regmap: RegisterMap) -> tuple[int, int]:
    """(fewest reads of the device's block size covering the registers, needed / block)."""
    block = regmap.transport.max_registers_per_read
    holes_allowed = regmap.transport.model_copy(update={"max_gap": block})
    needed = sum(r.words for r in registers)
    return len(plan_reads(registers, holes_allowed)), math.ceil(needed / block)


def naive_blocks(device: Device) -> list[ReadBlock[Register]]:
    """One read per polled register, as a naive integration does."""
    polled = [r for r in device.regmap.registers if r.group != "identity"]
    return [ReadBlock(r.table, r.address, r.words, (r,)) for r in polled]


def model_blocks(sunspec: SunSpecDevice) -> list[ReadBlock[Any]]:
    """One read per SunSpec model, as a naive integration does."""
    models = sunspec.polled_models
    return [ReadBlock(Table.HOLDING, m.address, m.end - m.address, ()) for m in models]


async def naive_poll(gateway: Gateway, devices: list[Device], sunspec: SunSpecDevice) -> None:
    for device in devices:
        for block in naive_blocks(device):
            register = block.registers[0]
            words = await gateway.read(device.unit, block)
            decode(words, register.type, device.regmap.word_order(register))
    for model, block in zip(sunspec.polled_models, model_blocks(sunspec), strict=True):
        decode_model(model, await gateway.read(sunspec.unit, block))


async def planned_poll(devices: list[Device], sunspec: SunSpecDevice) -> None:
    for device in devices:
        for group in device.regmap.poll_groups:
            await device.poll(group)
    await sunspec.poll()


async def measure(
    label: str, gateway: Gateway, poll: Callable[[], Awaitable[None]]
) -> tuple[float, float]:
    before_requests, before_cpu = gateway.requests, time.process_time()
    for _ in range(POLLS):
        await poll()
    cpu_ms = (time.process_time() - before_cpu) * 1000 / POLLS
    requests = (gateway.requests - before_requests) / POLLS
    print(f"{label:<28} {requests:>10.1f} {cpu_ms:>14.3f}")
    return requests, cpu_ms


async def main() -> int:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert child.stdout is not None
    assert child.stdin is not None
    port = int(await child.stdout.readline())
    gateway = Gateway(TcpEndpoint("127.0.0.1", port))
    try:
        return await run(gateway)
    finally:
        await gateway.close()
        child.stdin.close()
        await child.wait()


async def run(gateway: Gateway) -> int:
    sdm630, hydro = load_shipped_map("eastron_sdm630"), load_shipped_map("generic_hydro")
    devices = [Device(gateway, 1, sdm630), Device(gateway, 3, hydro)]
    sunspec = SunSpecDevice(gateway, 2, await discover(gateway, 2))
    met = report_plans(devices, sunspec)
    await report_costs(gateway, devices, sunspec)
    print(f"target (requests equal to the minimum): {'met' if met else 'NOT met'}")
    return 0 if met else 1


def report_plans(devices: list[Device], sunspec: SunSpecDevice) -> bool:
    """Print planned requests against the minimum per device and group; True if equal."""
    print(f"{'device / group':<28} {'planned':>8} {'minimum':>8} {'bound':>6} {'RS485 ms':>9}")
    rows: list[tuple[str, list[ReadBlock[Any]], int, int]] = []
    for device in devices:
        for group in device.regmap.poll_groups:
            fewest, bound = minimum(device.regmap.group(group), device.regmap)
            rows.append((f"{device.regmap.model} / {group}", device.plan(group), fewest, bound))
    words = sum(m.end - m.address for m in sunspec.polled_models)
    sunspec_min = math.ceil(words / TRANSPORT.max_registers_per_read)
    rows.append(("SunSpec 103+124 / fast", sunspec.plan(sunspec.polled_models), sunspec_min, 1))
    for label, blocks, fewest, bound in rows:
        print(f"{label:<28} {len(blocks):>8} {fewest:>8} {bound:>6} {rs485_ms(blocks):>9.1f}")
    planned = sum(len(blocks) for _, blocks, _, _ in rows)
    fewest_total = sum(fewest for _, _, fewest, _ in rows)
    bus_ms = sum(rs485_ms(blocks) for _, blocks, _, _ in rows)
    print(f"{'node, all groups':<28} {planned:>8} {fewest_total:>8} {'':>6} {bus_ms:>9.1f}")
    naive = [b for device in devices for b in naive_blocks(device)] + model_blocks(sunspec)
    print(
        f"{'naive, one per register':<28} {len(naive):>8} {'':>8} {'':>6} {rs485_ms(naive):>9.1f}"
    )
    return planned <= fewest_total


def rs485_ms(blocks: list[ReadBlock[Any]]) -> float:
    """Estimated RS485 bus time at 9600 baud 8N1 (10 bits a byte): RTU request of 8 bytes,
    answer of 5 + 2 per register, 3.5 characters of silence after each frame."""
    byte_ms = 10 / 9600 * 1000
    return sum((8 + 5 + 2 * block.count + 7) * byte_ms for block in blocks)


async def report_costs(gateway: Gateway, devices: list[Device], sunspec: SunSpecDevice) -> None:
    """Measure requests and CPU per poll, merged against naive, in this run."""
    print(f"\n{POLLS} polls of every group    {'requests/poll':>13} {'CPU ms/poll':>14}")
    reference = await measure(
        "naive (one per register)", gateway, lambda: naive_poll(gateway, devices, sunspec)
    )
    merged = await measure(
        "planned (merged reads)", gateway, lambda: planned_poll(devices, sunspec)
    )
    requests_ratio, cpu_ratio = merged[0] / reference[0], merged[1] / reference[1]
    print(f"merged / naive: requests {requests_ratio:.2f}x, CPU {cpu_ratio:.2f}x")


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        asyncio.run(serve())
    else:
        sys.exit(asyncio.run(main()))
