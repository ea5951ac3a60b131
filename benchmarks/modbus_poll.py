"""Modbus polling cost for one node: requests per poll against the minimum, CPU per poll.

The node has an Eastron SDM630 (unit 1), a SunSpec inverter + battery (unit 2) and the generic
hydro plant map (unit 3) behind one Modbus TCP gateway. The emulated gateway runs in a child
process so the CPU time measured here is the node's alone. The reference, measured in the same
run, is naive polling: one request per register (per model for SunSpec).

Minimum requests: the fewest reads of at most the device's block size (alignment respected)
that cover the registers needed, holes allowed; "bound" is registers needed / block size.
Exit status 1 if the planned requests exceed the minimum.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

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


async def naive_poll(gateway: Gateway, devices: list[Device], sunspec: SunSpecDevice) -> None:
    for device in devices:
        for register in device.regmap.registers:
            if register.group != "identity":
                block = ReadBlock(register.table, register.address, register.words, (register,))
                words = await gateway.read(device.unit, block)
                decode(words, register.type, device.regmap.word_order(register))
    for model in sunspec.polled_models:
        count = model.end - model.address
        whole_model: ReadBlock[Register] = ReadBlock(Table.HOLDING, model.address, count, ())
        decode_model(model, await gateway.read(sunspec.unit, whole_model))


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

    print(f"{'device / group':<28} {'planned':>8} {'minimum':>8} {'bound':>6}")
    planned_total = minimum_total = 0
    for device in devices:
        for group in device.regmap.poll_groups:
            registers = device.regmap.group(group)
            planned = len(device.plan(group))
            fewest, bound = minimum(registers, device.regmap)
            planned_total, minimum_total = planned_total + planned, minimum_total + fewest
            print(f"{device.regmap.model + ' / ' + group:<28} {planned:>8} {fewest:>8} {bound:>6}")
    sunspec_words = sum(m.end - m.address for m in sunspec.polled_models)
    sunspec_min = math.ceil(sunspec_words / TRANSPORT.max_registers_per_read)
    sunspec_planned = len(sunspec.plan(sunspec.polled_models))
    planned_total, minimum_total = planned_total + sunspec_planned, minimum_total + sunspec_min
    print(f"{'SunSpec 103+124 / fast':<28} {sunspec_planned:>8} {sunspec_min:>8} {sunspec_min:>6}")
    print(f"{'node, all groups':<28} {planned_total:>8} {minimum_total:>8}")

    print(f"\n{POLLS} polls of every group    {'requests/poll':>13} {'CPU ms/poll':>14}")
    reference = await measure(
        "naive (one per register)", gateway, lambda: naive_poll(gateway, devices, sunspec)
    )
    merged = await measure(
        "planned (merged reads)", gateway, lambda: planned_poll(devices, sunspec)
    )
    requests_ratio, cpu_ratio = merged[0] / reference[0], merged[1] / reference[1]
    print(f"merged / naive: requests {requests_ratio:.2f}x, CPU {cpu_ratio:.2f}x")

    met = planned_total <= minimum_total
    print(f"target (requests equal to the minimum): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        asyncio.run(serve())
    else:
        sys.exit(asyncio.run(main()))
