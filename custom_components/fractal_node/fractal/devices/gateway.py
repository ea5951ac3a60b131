"""One Modbus client per gateway (TCP, RTU over TCP, or a serial port), shared by its units.

Requests are serialised: an RS485 bus and most TCP gateways answer one request at a time, and
single-client devices accept one connection only. Connecting backs off exponentially after
failures so a dead gateway costs nothing between attempts; a timeout resets the connection so a
late answer cannot be mistaken for the next one.

pymodbus logs an ERROR or WARNING of its own on every failed request ("No response
received...", "Failed to connect...", "Exception response..."). Each of those failures reaches
the caller as an exception, and the device logs "stopped answering" once per outage, so the
first Gateway demotes these known per-request lines to DEBUG on pymodbus's loggers: they stay
visible with debug logging for pymodbus, and a device that is down no longer floods the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType

from .backoff import Backoff
from .errors import DeviceException, DeviceTimeout, GatewayUnavailable, ProtocolError
from .planner import ReadBlock
from .regmap import Table

_LOGGER = logging.getLogger(__name__)

PYMODBUS_LOGGERS = ("pymodbus", "pymodbus.logging")
"""Where pymodbus logs: its `Log` helper uses `pymodbus.logging`. A logger's filters only see
records made on that very logger, not its children's, hence both."""
PER_REQUEST_MESSAGES = (
    "No response received",  # a timeout: raised to the caller as DeviceTimeout
    "Failed to connect",  # raised as GatewayUnavailable, with back-off
    "Not connected, trying to connect",
    "Cancel send, because not connected",
    "Exception response",  # raised as DeviceException, with the code's meaning
)


@dataclass(frozen=True)
class TcpEndpoint:
    """A Modbus TCP gateway; `framer="rtu"` for RTU frames over a TCP socket."""

    host: str
    port: int = 502
    framer: Literal["socket", "rtu"] = "socket"

    def __str__(self) -> str:
        suffix = " (RTU over TCP)" if self.framer == "rtu" else ""
        return f"{self.host}:{self.port}{suffix}"


@dataclass(frozen=True)
class SerialEndpoint:
    """A serial port with RTU framing (RS485 adapters)."""

    port: str
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = 1
    bytesize: int = 8

    def __str__(self) -> str:
        return f"{self.port}@{self.baudrate}"


Endpoint = TcpEndpoint | SerialEndpoint


def _make_client(endpoint: Endpoint, timeout: float) -> Any:
    # retries=0 and reconnect_delay=0: this class owns retrying and back-off.
    common: dict[str, Any] = {"timeout": timeout, "retries": 0, "reconnect_delay": 0}
    if isinstance(endpoint, TcpEndpoint):
        framer = FramerType.RTU if endpoint.framer == "rtu" else FramerType.SOCKET
        return AsyncModbusTcpClient(endpoint.host, port=endpoint.port, framer=framer, **common)
    return AsyncModbusSerialClient(
        endpoint.port,
        framer=FramerType.RTU,
        baudrate=endpoint.baudrate,
        parity=endpoint.parity,
        stopbits=endpoint.stopbits,
        bytesize=endpoint.bytesize,
        **common,
    )


class PerRequestNoise(logging.Filter):
    """Demotes pymodbus's per-request failure lines (PER_REQUEST_MESSAGES) to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not record.getMessage().startswith(
            PER_REQUEST_MESSAGES
        ):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        # The logger passed the record at its first level: ask again at DEBUG.
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_NOISE_FILTER = PerRequestNoise()


def quiet_pymodbus() -> None:
    """Install the filter on pymodbus's loggers, once (every Gateway calls this)."""
    for name in PYMODBUS_LOGGERS:
        logger = logging.getLogger(name)
        if _NOISE_FILTER not in logger.filters:
            logger.addFilter(_NOISE_FILTER)


class Gateway:
    """The single connection to one endpoint, shared by every unit id behind it."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.backoff = Backoff(clock, backoff_initial, backoff_max)
        self.requests = 0
        self._client: Any = None
        self._lock = asyncio.Lock()
        quiet_pymodbus()

    async def read(self, unit: int, block: ReadBlock[Any]) -> list[int]:
        """Read one block; coils come back as 0/1."""
        readers = {
            Table.INPUT: "read_input_registers",
            Table.HOLDING: "read_holding_registers",
            Table.COIL: "read_coils",
        }
        response = await self._execute(readers[block.table], unit, block.start, count=block.count)
        values = response.bits if block.table is Table.COIL else response.registers
        if len(values) < block.count:
            raise ProtocolError(f"unit {unit}: asked {block.count} values, got {len(values)}")
        return [int(value) for value in values[: block.count]]

    async def write_registers(self, unit: int, address: int, words: list[int]) -> None:
        """Write holding registers (function 6 for one word, 16 for more)."""
        if len(words) == 1:
            await self._execute("write_register", unit, address, words[0])
        else:
            await self._execute("write_registers", unit, address, words)

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        """Write one coil (function 5)."""
        await self._execute("write_coil", unit, address, value)

    async def close(self) -> None:
        """Close the connection; the next request reconnects."""
        async with self._lock:
            self._disconnect()

    async def _execute(
        self, method: str, unit: int, address: int, *args: Any, **kwargs: Any
    ) -> Any:
        request = f"{method}(unit {unit}, address {address}) at {self.endpoint}"
        async with self._lock:
            client = await self._connected()
            self.requests += 1
            try:
                response = await getattr(client, method)(address, *args, slave=unit, **kwargs)
            except ModbusIOException as err:
                self._disconnect()  # a late answer must not be taken for the next one
                raise DeviceTimeout(f"{request}: no answer within {self.timeout} s") from err
            except (ConnectionException, OSError) as err:
                self._disconnect()
                self.backoff.failed()
                raise GatewayUnavailable(f"{request}: connection lost ({err})") from err
            except asyncio.CancelledError:
                self._disconnect()  # the answer may still come; it must not meet the next request
                raise
        if response.isError():
            raise DeviceException(response.exception_code, request)
        return response

    async def _connected(self) -> Any:
        if self._client is not None and self._client.connected:
            return self._client
        self._disconnect()
        if not self.backoff.ready():
            retry_in = self.backoff.retry_in()
            raise GatewayUnavailable(f"{self.endpoint}: reconnecting in {retry_in:.1f} s")
        client = _make_client(self.endpoint, self.timeout)
        if not await client.connect():
            client.close()
            self.backoff.failed()
            raise GatewayUnavailable(f"{self.endpoint}: cannot connect")
        if self.backoff.failures:
            _LOGGER.info("Modbus gateway %s connected again", self.endpoint)
        self.backoff.succeeded()
        self._client = client
        return client

    def _disconnect(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class GatewayPool:
    """Hands out one `Gateway` per endpoint, so units behind it share one connection."""

    def __init__(self, **gateway_options: Any) -> None:
        self._gateways: dict[Endpoint, Gateway] = {}
        self._options = gateway_options

    def get(self, endpoint: Endpoint) -> Gateway:
        """The gateway for `endpoint`, created on first use."""
        if endpoint not in self._gateways:
            self._gateways[endpoint] = Gateway(endpoint, **self._options)
        return self._gateways[endpoint]

    async def close(self) -> None:
        """Close every connection."""
        for gateway in self._gateways.values():
            await gateway.close()
