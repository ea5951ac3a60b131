"""Real pymodbus servers emulating devices from their register maps, with fault injection.

Faults are injected where a real device would produce them: in the server's request handler,
which answers a faulty unit with a proper exception response (function code | 0x80) or not at
all. (pymodbus 3.8.3's own exception path answers function code 0x80, which no client decodes.)

The register image is encoded here with `struct`, independently of `fractal.devices.codec`,
so a decoding bug in the library cannot hide behind a matching encoding bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sunspec2.device as sunspec_device  # type: ignore[import-untyped]
from fractal.devices.regmap import Register, RegisterMap, Table
from pymodbus.datastore import ModbusServerContext
from pymodbus.datastore.context import ModbusBaseSlaveContext
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

SILENT = "silent"
"""Fault: the unit never answers (the client times out)."""

_TABLE_OF_FUNCTION = {1: Table.COIL, 5: Table.COIL, 15: Table.COIL, 4: Table.INPUT}
_PACK = {"u16": ">H", "s16": ">h", "u32": ">I", "s32": ">i", "float32": ">f"}


def raw_words(register: Register, value: Any, word_order: str) -> list[int]:
    """Words a real device would hold for `value` (already in the map's scaled unit)."""
    if register.table is Table.COIL:
        return [int(bool(value))]
    if register.type == "string":
        raw = str(value).encode("ascii").ljust(2 * (register.length or 1), b"\x00")
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    number = value / register.scale
    if register.type != "float32":
        number = round(number)
    data = struct.pack(_PACK[register.type], number)
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return words[::-1] if word_order == "little" else words


@dataclass
class RegisterImage(ModbusBaseSlaveContext):
    """One unit's tables. Addresses outside the image answer exception code 2."""

    tables: dict[Table, dict[int, int]] = field(
        default_factory=lambda: {table: {} for table in Table}
    )
    fault: int | str | None = None
    requests: list[tuple[Table, int, int]] = field(default_factory=list)
    writes: list[tuple[Table, int, list[int]]] = field(default_factory=list)
    faulted: int = 0
    delay: float = 0.0  # seconds before answering: a slow device or a busy RS485 bus
    seen: asyncio.Event = field(default_factory=asyncio.Event)  # a request reached the unit
    ignores_writes_to: set[tuple[Table, int]] = field(default_factory=set)

    def table_of(self, function_code: int) -> Table:
        return _TABLE_OF_FUNCTION.get(function_code, Table.HOLDING)

    def validate(self, function_code: int, address: int, count: int = 1) -> bool:
        table = self.tables[self.table_of(function_code)]
        return all(a in table for a in range(address, address + count))

    def getValues(self, function_code: int, address: int, count: int = 1) -> list[int]:
        self.requests.append((self.table_of(function_code), address, count))
        table = self.tables[self.table_of(function_code)]
        return [table[a] for a in range(address, address + count)]

    def setValues(self, function_code: int, address: int, values: Sequence[int]) -> None:
        table = self.tables[self.table_of(function_code)]
        self.writes.append((self.table_of(function_code), address, [int(v) for v in values]))
        for offset, value in enumerate(values):
            if (self.table_of(function_code), address + offset) not in self.ignores_writes_to:
                table[address + offset] = int(value)


class EmulatedDevice:
    """A register image built from a map, with values set by register name."""

    def __init__(self, regmap: RegisterMap, *, fill_gaps: bool = True) -> None:
        self.regmap = regmap
        self.image = RegisterImage()
        for register in regmap.registers:
            self.set(register.name, _default(register))
        if fill_gaps:
            self._fill_gaps()

    def set(self, name: str, value: Any) -> None:
        """Script a new value (in the map's unit); the next read returns it."""
        register = self.regmap.by_name[name]
        self.set_raw(name, raw_words(register, value, self.regmap.word_order(register)))

    def set_raw(self, name: str, words: list[int]) -> None:
        """Put raw words (garbage, NaN patterns) in a register."""
        register = self.regmap.by_name[name]
        table = self.image.tables[register.table]
        for offset, word in enumerate(words):
            table[register.address + offset] = word

    def raw(self, name: str) -> list[int]:
        register = self.regmap.by_name[name]
        table = self.image.tables[register.table]
        return [table[register.address + i] for i in range(register.words)]

    def _fill_gaps(self) -> None:
        """Unused registers between mapped ones read as zero, as on most meters."""
        limit = self.regmap.transport.max_gap + self.regmap.transport.alignment
        for table in self.image.tables.values():
            used = sorted(table)
            for before, after in itertools.pairwise(used):
                if after - before <= limit:
                    for address in range(before + 1, after):
                        table.setdefault(address, 0)
            if used and self.regmap.transport.alignment > 1:
                table.setdefault(used[-1] + 1, 0)


def _default(register: Register) -> Any:
    if register.type == "string":
        return "EMU" + register.name[:3].upper()
    if register.table is Table.COIL:
        return False
    if register.options:
        return min(register.options)
    bounds = register.writable or register.plausible
    if bounds is None:
        return 0
    middle = (bounds.min + bounds.max) / 2
    return middle if register.type == "float32" else math.floor(middle)


class _FaultyHandler(ServerRequestHandler):
    """Answers each request itself, as its unit's faults say.

    The request is captured before any delay: pymodbus' own handler reads `last_pdu` when it
    answers, which a second request on the same connection may have replaced by then.
    """

    async def handle_request(self) -> None:
        pdu = self.last_pdu
        image = self.server.context.units.get(pdu.dev_id) if pdu is not None else None
        if pdu is None or image is None:
            return  # no such unit on the line: silence, as on RS485
        image.seen.set()
        if image.delay:
            await asyncio.sleep(image.delay)
        if image.fault is not None:
            image.faulted += 1
        if image.fault == SILENT:
            return
        response: ModbusPDU
        if image.fault is not None:
            response = ExceptionResponse(pdu.function_code, int(image.fault))
        else:
            response = await pdu.update_datastore(image)
        response.transaction_id, response.dev_id = pdu.transaction_id, pdu.dev_id
        self.server_send(response, self.last_addr)  # type: ignore[no-untyped-call]


class _UnitsContext(ModbusServerContext):
    def __init__(self, units: dict[int, RegisterImage]) -> None:
        super().__init__(slaves=units, single=False)  # type: ignore[no-untyped-call]
        self.units = units


class _TcpServer(ModbusTcpServer):
    def callback_new_connection(self) -> ServerRequestHandler:
        return _FaultyHandler(self)  # type: ignore[no-untyped-call]


class _SerialServer(ModbusSerialServer):
    def callback_new_connection(self) -> ServerRequestHandler:
        return _FaultyHandler(self)  # type: ignore[no-untyped-call]


class EmulatorServer:
    """A running pymodbus server (TCP, RTU over TCP, or serial) for some emulated units."""

    def __init__(self, devices: dict[int, Any]) -> None:
        self.devices = devices
        self.context = _UnitsContext({u: d.image for u, d in devices.items()})
        self.server: Any = None
        self.port = 0

    async def start_tcp(self, port: int = 0, framer: FramerType = FramerType.SOCKET) -> None:
        self.server = _TcpServer(self.context, framer=framer, address=("127.0.0.1", port))
        await self.server.serve_forever(background=True)
        self.port = self.server.transport.sockets[0].getsockname()[1]

    async def start_serial(self, device_path: str, baudrate: int = 115200) -> None:
        self.server = _SerialServer(
            self.context, framer=FramerType.RTU, port=device_path, baudrate=baudrate
        )
        await self.server.serve_forever(background=True)

    def set_fault(self, unit: int, fault: int | str | None) -> None:
        """SILENT (no answer), an exception code (2, 4, 11) or None to heal."""
        self.devices[unit].image.fault = fault

    @property
    def connections(self) -> int:
        return len(self.server.active_connections)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None
            await asyncio.sleep(0)


class DroppingProxy:
    """A TCP proxy that relays real bytes; it can drop connections or garble answers."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.garble_answers = 0  # replace the next N answers from the device with junk

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def drop(self) -> None:
        """Close every relayed connection, as a flaky gateway or Wi-Fi bridge would."""
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        await self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.create_task(_pump(reader, up_writer)),
            asyncio.create_task(_pump(up_reader, writer, self._garble)),
        ]
        self._tasks.update(pumps)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
            self._tasks.discard(task)
        for stream in (writer, up_writer):
            stream.close()
            self._writers.discard(stream)

    def _garble(self, data: bytes) -> bytes:
        if self.garble_answers <= 0:
            return data
        self.garble_answers -= 1
        # Keep the MBAP header's transaction id so the client takes it as the answer.
        return data[:2] + bytes((b * 7 + 13) % 256 for b in data[2:])


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    alter: Callable[[bytes], bytes] = bytes,
) -> None:
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        while data := await reader.read(4096):
            writer.write(alter(data))
            await writer.drain()


class EmulatedSunSpec:
    """A SunSpec device image generated from pysunspec2's model definitions.

    `points` gives, per model id, point values in engineering units (scale factors applied by
    pysunspec2); unset points hold the SunSpec "not implemented" value.
    """

    def __init__(self, points: dict[int, dict[str, object]], base: int = 40000) -> None:
        self.base = base
        self.image = RegisterImage()
        self.addresses: dict[int, int] = {}
        self.models: dict[int, Any] = {}
        address = base + 2
        for model_id, values in points.items():
            model = sunspec_device.Model(model_id)
            model.ID.value, model.L.value = model_id, model.len - 2
            self.models[model_id], self.addresses[model_id] = model, address
            self._set(model_id, values)
            address += model.len
        self._store(base, [0x5375, 0x6E53])
        self._store(address, [0xFFFF, 0])

    def set(self, model_id: int, **values: Any) -> None:
        """Script new point values; the next read returns them."""
        self._set(model_id, values)

    def _set(self, model_id: int, values: dict[str, object]) -> None:
        model = self.models[model_id]
        for point in model.points.values():  # scale factors first: cvalue needs them
            if point.pdef["type"] == "sunssf" and point.value is None:
                point.value = 0
        for name, value in values.items():
            point = model.points[name]
            if point.pdef["type"] in ("string", "enum16", "bitfield16", "sunssf"):
                point.value = value
            else:
                point.cvalue = value
        data = model.get_mb()
        self._store(self.addresses[model_id], list(struct.unpack(f">{len(data) // 2}H", data)))

    def _store(self, address: int, words: list[int]) -> None:
        table = self.image.tables[Table.HOLDING]
        for offset, word in enumerate(words):
            table[address + offset] = word


async def plug_in_serial_line(server_end: str, client_end: str) -> asyncio.subprocess.Process:
    """Two linked pseudo-terminals made by socat, like an RS485 line between two adapters.

    socat gives both ends a stable path, so the pymodbus serial server and client each open a
    real tty by name, exactly as they would open /dev/ttyUSB0 (os.openpty leaves the master end
    without a path, which pymodbus cannot open). Terminating socat is unplugging the line.
    """
    socat = await asyncio.create_subprocess_exec(
        "socat",
        f"pty,raw,echo=0,link={server_end}",
        f"pty,raw,echo=0,link={client_end}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    for _ in range(500):  # socat creates the links within milliseconds
        if _all_exist(server_end, client_end):
            return socat
        await asyncio.sleep(0.01)
    await unplug_serial_line(socat)
    raise RuntimeError("socat did not create the pseudo-terminal pair")


async def unplug_serial_line(socat: asyncio.subprocess.Process) -> None:
    """Stop socat: both ttys disappear."""
    if socat.returncode is None:
        socat.terminate()
        await socat.wait()


def _all_exist(*paths: str) -> bool:
    return all(Path(path).exists() for path in paths)
