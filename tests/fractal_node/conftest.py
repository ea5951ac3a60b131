"""Fixtures for the integration's tests: the real HA test harness, certificates made per run."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymodbus.framer import FramerType

from tests.fractal.devices.modbus_emulator import (
    EmulatorServer,
)
from tests.fractal_node.helpers import NODE_ID
from tests.support.certificates import CertificateAuthority, Issued, make_ca


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/fractal_node in every test."""


@pytest.fixture(scope="session")
def local_ca() -> CertificateAuthority:
    """The local aggregator's CA."""
    return make_ca("Fractal Aggregator CA")


@pytest.fixture(scope="session")
def node_credentials(local_ca: CertificateAuthority) -> Issued:
    """What `fractal-aggregator enroll` gives node elm-road-12: valid for a year."""
    return local_ca.issue(NODE_ID)


@pytest.fixture(scope="session")
def amazon_root_ca() -> CertificateAuthority:
    """Stands in for Amazon Root CA 1 (RSA, like the real one)."""
    return make_ca("Amazon Root CA 1", key_type="rsa")


@pytest.fixture(scope="session")
def aws_credentials() -> Issued:
    """AWS IoT issues device certificates from its own CA, with no thing name in them."""
    return make_ca("AWS IoT issuing CA", key_type="rsa").issue(
        "AWS IoT Certificate", key_type="rsa"
    )


StartEmulator = Callable[..., Awaitable[EmulatorServer]]


@pytest.fixture
async def modbus_server(socket_enabled: None) -> AsyncIterator[StartEmulator]:
    """Start real pymodbus servers for {unit: emulated device}; all stopped afterwards."""
    servers: list[EmulatorServer] = []

    async def start(
        devices: dict[int, Any], framer: FramerType = FramerType.SOCKET
    ) -> EmulatorServer:
        server = EmulatorServer(devices)
        await server.start_tcp(0, framer)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()
