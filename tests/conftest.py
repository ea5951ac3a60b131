"""Shared test set-up.

pytest-homeassistant-custom-component is a global plugin: it disables sockets in every test
(again during each test's set-up) and allows only 127.0.0.1. Tests that talk to real local
servers take the ``socket_enabled`` fixture (the ``enable_socket`` marker alone is not enough
under this plugin) and connect to 127.0.0.1, never ``localhost`` (which may resolve to ::1).
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fractal.devices.modbus_emulator import plug_in_serial_line, unplug_serial_line


@pytest.fixture
async def serial_line(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """Two linked pseudo-terminals, like an RS485 line: (device end, adapter end)."""
    device_end, adapter_end = str(tmp_path / "device-tty"), str(tmp_path / "adapter-tty")
    line = await plug_in_serial_line(device_end, adapter_end)
    yield device_end, adapter_end
    await unplug_serial_line(line)
