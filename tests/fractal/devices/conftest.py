"""Fixtures: real pymodbus servers emulating the shipped maps, torn down after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from fractal.devices.gateway import Gateway, TcpEndpoint
from fractal.devices.regmap import load_shipped_map
from pymodbus.framer import FramerType

from tests.fractal.devices.modbus_emulator import (
    DroppingProxy,
    EmulatedDevice,
    EmulatorServer,
)

StartServer = Callable[..., Awaitable[EmulatorServer]]


@pytest.fixture
async def start_server(socket_enabled: None) -> AsyncIterator[StartServer]:
    """Start an emulator over TCP for {unit: map name}; every server is stopped afterwards."""
    servers: list[EmulatorServer] = []

    async def start(
        units: dict[int, str], framer: FramerType = FramerType.SOCKET, port: int = 0
    ) -> EmulatorServer:
        devices = {unit: EmulatedDevice(load_shipped_map(name)) for unit, name in units.items()}
        server = EmulatorServer(devices)
        await server.start_tcp(port, framer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def gateways() -> AsyncIterator[Callable[..., Gateway]]:
    """Make gateways with short timeouts; every connection is closed afterwards."""
    made: list[Gateway] = []

    def make(port: int, framer: str = "socket", **options: object) -> Gateway:
        endpoint = TcpEndpoint("127.0.0.1", port, framer)  # type: ignore[arg-type]
        gateway = Gateway(endpoint, timeout=0.5, **options)  # type: ignore[arg-type]
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        await gateway.close()


@pytest.fixture
async def proxies(socket_enabled: None) -> AsyncIterator[Callable[[int], Awaitable[DroppingProxy]]]:
    """TCP proxies in front of emulators, to drop connections on demand."""
    made: list[DroppingProxy] = []

    async def start(target_port: int) -> DroppingProxy:
        proxy = DroppingProxy(target_port)
        await proxy.start()
        made.append(proxy)
        return proxy

    yield start
    for proxy in made:
        await proxy.stop()
